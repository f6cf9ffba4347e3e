"""Zero-skipping dispatcher: packs classified beats into lane groups and queues them.

This is the packer and dispatch FIFO of the reference microarchitecture (docs/model.md §3);
``ditto.sim.cycles.simulate_ditto_tile`` describes the same machine cycle by cycle and the
cycle model predicts its timing exactly.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ditto.config import DittoConfig
from ditto.enums import DiffClass

from ._params import check_config
from .encoding import encoder_output_layout

__all__ = ["ZeroSkipDispatcher", "dispatch_group_layout", "dispatch_op_layout"]


def dispatch_op_layout(config: DittoConfig) -> data.StructLayout:
    """One lane operand on its way to the PEs: ``operand``, ``shift`` and the weight row
    ``k`` it multiplies (its position in the row's reduction)."""
    return data.StructLayout({
        "operand": signed(config.lane_bits),
        "shift": unsigned(1),
        "k": unsigned(config.weight_addr_bits),
    })


def dispatch_group_layout(config: DittoConfig) -> data.StructLayout:
    """Payload of the dispatcher's output stream: one lane group.

    Fields
    ------
    lanes : ArrayLayout(dispatch_op_layout, lanes)
        Idle lanes hold operand 0. A lane with ``shift`` set is always an even lane (the
        shift-capable first lane of a pair).
    first : 1
        First group of a row.
    last : 1
        Last group of a row (it carries the row-end mark).
    """
    return data.StructLayout({
        "lanes": data.ArrayLayout(dispatch_op_layout(config), config.lanes),
        "first": unsigned(1),
        "last": unsigned(1),
    })


class ZeroSkipDispatcher(wiring.Component):
    """Turn classified beats into lane groups, dropping ZERO elements.

    A beat's lane operands, in element order (LOW: its value; FULL: ``high`` with shift, then
    ``low``), are appended to the row's *carry* (fewer than ``lanes`` operands left over from
    the row's earlier beats); every complete group of ``lanes`` operands is pushed into a FIFO
    of ``config.dispatch_capacity`` groups. A row's last beat flushes the carry as a partial
    group and always pushes at least one group, which carries ``last`` (an empty group when
    nothing else is left). Groups never mix rows; operands are never lost, duplicated or
    reordered across groups (within a group the two operands of a pair may swap so that a
    shifted operand sits on the pair's shift-capable lane).

    Function, timing and handshake
    ------------------------------
    - A beat is accepted in cycle ``t`` only if all groups it completes fit in the FIFO after
      the pop of cycle ``t``: ``count - pop + groups <= dispatch_capacity``; otherwise
      ``i.ready`` is low (it depends on ``i.payload``, never on ``i.valid``).
    - Groups pushed in cycle ``t`` can be popped from cycle ``t + 1`` on; one pop per cycle,
      ``o.valid = count > 0``, ``o.payload`` is the FIFO head.
    - Reset: empty FIFO, empty carry, next group is a row's first.

    Parameters
    ----------
    config : DittoConfig
        ``scan_width``, ``lanes``, ``lane_bits``, ``weight_depth`` (``k`` width),
        ``dispatch_capacity``.

    Members
    -------
    i : In(stream.Signature(encoder_output_layout(config)))
        Classified beats from the :class:`~ditto.hdl.encoding.EncodingUnit`.
    o : Out(stream.Signature(dispatch_group_layout(config)))
        Lane groups for the PEs.
    count : Out(range(dispatch_capacity + 1))
        Groups in the FIFO (for monitoring).
    """

    #: Groups pushed in cycle ``t`` can leave from cycle ``t + LATENCY`` on.
    LATENCY = 1

    def __init__(self, *, config: DittoConfig):
        self._config = check_config(self, config)
        super().__init__({
            "i": In(stream.Signature(encoder_output_layout(config))),
            "o": Out(stream.Signature(dispatch_group_layout(config))),
            "count": Out(range(config.dispatch_capacity + 1)),
        })

    @property
    def config(self) -> DittoConfig:
        return self._config

    def elaborate(self, platform):
        config = self._config
        m = Module()
        lanes, width = config.lanes, config.scan_width
        capacity = config.dispatch_capacity
        max_groups = config.max_groups_per_beat
        slots = max_groups * lanes
        op_layout = dispatch_op_layout(config)
        group_layout = dispatch_group_layout(config)
        beat = self.i.payload

        # ---- state -----------------------------------------------------------------------
        carry = Signal(data.ArrayLayout(op_layout, max(lanes - 1, 1)))
        carry_count = Signal(range(lanes))
        row_first = Signal(init=1)            # the next group pushed starts a row
        beat_index = Signal(range(-(-config.weight_depth // width) + 1))  # beat in its row
        fifo = Signal(data.ArrayLayout(group_layout, capacity))
        read_ptr = Signal(range(capacity))
        write_ptr = Signal(range(capacity))
        count = Signal(range(capacity + 1))

        # ---- packing (combinational from the input beat) -----------------------------------
        cost_bits = (2 * width + lanes).bit_length()
        prefix = [Signal(cost_bits, name=f"prefix_{n}") for n in range(width + 1)]
        m.d.comb += prefix[0].eq(carry_count)
        for n in range(width):
            cls = beat.cls[n]
            cost = Mux(cls == DiffClass.FULL, 2, Mux(cls == DiffClass.LOW, 1, 0))
            m.d.comb += prefix[n + 1].eq(prefix[n] + cost)
        total = prefix[width]

        # Operand sequence of the beat after the carry: slot s (s >= carry) holds an operand
        # of the element n whose prefix range [prefix[n], prefix[n+1]) covers s; since the
        # prefixes grow with n, n is the number of elements whose range ends at or before s.
        slot = Signal(data.ArrayLayout(op_layout, slots))
        for s in range(slots):
            index_bits = max(1, (width - 1).bit_length())
            element = Signal(range(width + 1), name=f"element_{s}")
            m.d.comb += element.eq(sum(prefix[n + 1] <= s for n in range(width)))
            index = element[:index_bits] if width > 1 else Const(0, 1)
            in_beat = element < width
            if s < lanes - 1:  # later slots are always past the carry (fewer than lanes)
                in_beat = in_beat & (prefix[0] <= s)
            start = Signal(cost_bits, name=f"start_{s}")
            m.d.comb += start.eq(Array(prefix[:width])[index])
            is_high = (beat.cls[index] == DiffClass.FULL) & (start == s)
            beat_op = Signal(op_layout, name=f"beat_op_{s}")
            m.d.comb += [beat_op.operand.eq(Mux(is_high, beat.high[index], beat.low[index])),
                         beat_op.shift.eq(is_high),
                         beat_op.k.eq(beat_index * width + index)]
            op = slot[s]
            if s < lanes - 1:
                with m.If(carry_count > s):
                    m.d.comb += op.eq(carry[s])
                with m.Elif(in_beat):
                    m.d.comb += op.eq(beat_op)
            else:
                with m.If(in_beat):
                    m.d.comb += op.eq(beat_op)

        complete = Signal(range(max_groups + 1))
        last_groups = Signal(range(max_groups + 1))
        m.d.comb += [complete.eq(total // lanes),
                     last_groups.eq(Mux(total == 0, 1, (total + lanes - 1) // lanes))]
        pushed = Signal(range(max_groups + 1))
        m.d.comb += pushed.eq(Mux(beat.last, last_groups, complete))

        groups = Signal(data.ArrayLayout(group_layout, max_groups))
        for g in range(max_groups):
            for p in range(lanes // 2):
                even, odd = slot[g * lanes + 2 * p], slot[g * lanes + 2 * p + 1]
                swap = odd.shift  # a high part on the odd lane moves to the even one
                m.d.comb += [groups[g].lanes[2 * p].eq(Mux(swap, odd, even)),
                             groups[g].lanes[2 * p + 1].eq(Mux(swap, even, odd))]
            m.d.comb += [groups[g].first.eq(row_first & (g == 0)),
                         groups[g].last.eq(beat.last & (pushed == g + 1))]

        # ---- FIFO handshake ------------------------------------------------------------------
        pop = Signal()
        m.d.comb += [self.o.valid.eq(count != 0), pop.eq(self.o.valid & self.o.ready),
                     self.count.eq(count)]
        m.d.comb += self.i.ready.eq(count - pop + pushed <= capacity)
        push = Signal()
        m.d.comb += push.eq(self.i.valid & self.i.ready)

        head = Signal(group_layout)
        m.d.comb += head.eq(fifo[read_ptr])
        m.d.comb += self.o.payload.eq(head)

        def advance(pointer, amount):
            wrapped = pointer + amount
            return Mux(wrapped >= capacity, wrapped - capacity, wrapped)

        with m.If(pop):
            m.d.sync += read_ptr.eq(advance(read_ptr, 1))
        with m.If(push):
            m.d.sync += write_ptr.eq(advance(write_ptr, pushed))
            for e in range(capacity):
                # Entry e receives group (e - write_ptr) mod capacity, if that many are pushed.
                offset = Signal(range(capacity), name=f"offset_{e}")
                m.d.comb += offset.eq(Mux(write_ptr <= e, e - write_ptr,
                                          e + capacity - write_ptr))
                with m.If(offset < pushed):
                    m.d.sync += fifo[e].eq(groups[offset[:max(1, (max_groups - 1)
                                                             .bit_length())]])
            # Leftover operands become the carry (none after a row's last beat).
            m.d.sync += carry_count.eq(Mux(beat.last, 0, total - complete * lanes))
            for c in range(lanes - 1):
                # Slot complete * lanes + c; slots beyond the array only hold nothing.
                m.d.sync += carry[c].eq(slot[complete * lanes + c])
            m.d.sync += row_first.eq(beat.last | (row_first & (pushed == 0)))
            m.d.sync += beat_index.eq(Mux(beat.last, 0, beat_index + 1))
        m.d.sync += count.eq(count - pop + Mux(push, pushed, 0))
        return m
