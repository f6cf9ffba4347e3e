"""Zero-skipping dispatcher: packs classified beats into lane groups and queues them.

This is the packer and dispatch FIFO of the reference microarchitecture (docs/model.md §3);
``ditto.sim.cycles.simulate_ditto_tile`` describes the same machine cycle by cycle and the
cycle model predicts its timing exactly.
"""

import operator

from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ditto import pipeline
from ditto.config import DittoConfig
from ditto.enums import DiffClass

from ._params import HasConfig, check_config
from .compute_unit import PeShape, adder_tree, balanced_tree
from .encoding import encoder_output_layout

#: Attributes of registers that are copies of one another, each copy driving its own sinks,
#: which Yosys would merge back into one (``opt_merge``): the synthesis flows keep the
#: flip-flops of wires marked ``keep`` apart (``ditto.flow.synth.KEEP_COPIES``).
KEEP = {"keep": 1}

__all__ = ["ZeroSkipDispatcher", "dispatch_group_layout", "dispatch_op_layout", "weight_row"]


def dispatch_op_layout(config: DittoConfig, shape: PeShape | None = None) -> data.StructLayout:
    """One lane operand on its way to the PEs of ``shape`` (default: DittoCore's,
    ``PeShape.ditto(config)``): ``operand``, ``shift`` and the weight row ``k`` it
    multiplies (its position in the row's reduction)."""
    shape = shape or PeShape.ditto(config)
    return data.StructLayout({
        "operand": signed(shape.lane_bits),
        "shift": unsigned(1),
        "k": unsigned(config.weight_addr_bits),
    })


def dispatch_group_layout(config: DittoConfig,
                          shape: PeShape | None = None) -> data.StructLayout:
    """Payload of the dispatcher's output stream (and of DenseCore's group stage, with its
    own ``shape``): one lane group.

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
        "lanes": data.ArrayLayout(dispatch_op_layout(config, shape),
                                  (shape or PeShape.ditto(config)).lanes),
        "first": unsigned(1),
        "last": unsigned(1),
    })


class ZeroSkipDispatcher(HasConfig, wiring.Component):
    """Turn classified beats into lane groups, dropping ZERO elements, at most
    ``dispatch_groups`` groups a cycle.

    A beat's lane operands, in element order (LOW: its value; FULL: ``high`` with shift, then
    ``low``), follow the row's *carry* (fewer than ``lanes`` operands left over from the
    row's earlier beats); every complete group of ``lanes`` operands is pushed into a FIFO
    of ``config.dispatch_depth`` groups, at most ``G = config.dispatch_groups`` groups a
    cycle (a *chunk*). A row's last beat flushes the carry as a partial group and always
    pushes at least one group, which carries ``last`` (an empty group when nothing else is
    left). Groups never mix rows; operands are never lost, duplicated or reordered across
    groups (within a group the two operands of a pair may swap so that a shifted operand
    sits on the pair's shift-capable lane).

    Structure
    ---------
    1. Prefix register: the next beat (per element its class and operands), per element
       the exclusive prefix sum of the element costs (ZERO 0, LOW 1, FULL 2) before it in
       the beat, and the beat's total: from the encoder's sums over blocks of elements (per
       element its sum within its block, per block and pair of blocks their costs), at most
       a pair of blocks and a block before an element's own, plus its sum within the block.
       Behind it a spare register of the same contents holds a beat the prefix register
       cannot take yet, so that ``i.ready`` is a register.
    2. Packer register: the beat being packed and, per element, the slot where its first
       operand lands (``place``): the carry count plus its prefix sum, less
       ``G * lanes`` for each chunk already pushed, and the same place one-hot over the
       chunk's slots (``window``), both registered from the next cycle's place; the
       operands not yet pushed and, from them, the next chunk's size and whether it is the
       beat's last. The beat is held as each element's first-lane operand and a FULL
       element's low part. It stays here until its last chunk is pushed.
    3. Packer: slot ``s`` of the chunk holds element ``n``'s first operand where
       ``place[n] == s`` and a FULL element's low part where ``place[n] == s - 1``: a
       one-hot AND-OR of registers (window bits and operands, no comparison in front),
       into the chunk register beside it. Whether a slot holds anything at all is a
       comparison of the operand count with a constant, off the AND-OR. The carry fills
       the first slots of a beat's first chunk; the slots past the chunk's groups become
       the next carry. The only state that flows from one beat to the next is the carry (a
       count and fewer than ``lanes`` operands). The push decision (``push``) is made a
       cycle ahead into two registers, one for each outcome of that cycle's pop, and
       chosen by whether it popped; the packer's ``advance``, ``load`` and ``taken`` (for
       the beats) follow from it in a few gates. The thousand enables and multiplexers of
       the wide registers take copies of ``push``, ``load`` and ``taken`` made the same way
       into registers of their own, so they start one multiplexer after flip-flops, apart
       from the packer's own loop. A beat's first chunk is planned ahead too: its plan is
       in the prefix register for every carry count the beat may find.
    4. Group FIFO of ``dispatch_depth`` entries, written from the chunk register a cycle
       after the push, up to ``G`` writes and one read a cycle; a group's lanes are routed
       (a shifted operand onto its pair's even lane) on the way in. The head is a
       register, kept from the entry after it at each pop, or, in the cycle after a push
       into an empty FIFO, the chunk register's first group: the output is one
       multiplexer on registers (the weight-buffer addresses a group carries start here).

    Function, timing and handshake
    ------------------------------
    - A beat transferred on ``i`` in cycle ``t`` is in the packer register from ``t + 1``
      at the earliest (``pipeline.PACKER`` registers). There it stays ``max(1, ceil(g /
      G))`` cycles when it completes ``g`` groups, or longer: a chunk is pushed in cycle
      ``t`` only if all its groups fit in the FIFO before the pop of cycle ``t``, counting
      both the groups it holds and the pop slots reserved from ``t`` on (a pushed group
      reserves the first free slot ``DISPATCH_FIFO`` cycles after its push or later, one a
      cycle), else the packer stalls (``stalled``). ``i.ready`` is high while the spare
      register is empty: a register, so it depends on neither ``i.valid`` nor ``o.ready``.
      A beat passes through the spare in the cycle it arrives when the prefix register
      takes it; so the next beat is accepted in the cycle the previous one is in the
      prefix register.
    - Groups pushed in cycle ``t`` can be popped from cycle ``t + DISPATCH_FIFO`` on; one
      pop per cycle, ``o.valid = count > 0``, ``o.payload`` is the FIFO head.
    - So a beat transferred in cycle ``t`` gives its first group at the earliest in cycle
      ``t + LATENCY``. ``ditto.sim.cycles`` is the exact timing.
    - Reset: empty registers, FIFO and carry; the next group is a row's first. Only the
      control registers are reset: the data registers (beats, prefix sums and their
      spares, places and windows, the carry's operands, the FIFO's entries and head) are
      written before they are read, and a reset on them would take a reset input on every
      one of their flip-flops.

    Parameters
    ----------
    config : DittoConfig
        ``scan_width``, ``lanes``, ``lane_bits``, ``weight_depth`` (``k`` width),
        ``dispatch_groups``, ``dispatch_depth``.

    Members
    -------
    i : In(stream.Signature(encoder_output_layout(config)))
        Classified beats from the :class:`~ditto.hdl.encoding.EncodingUnit`.
    o : Out(stream.Signature(dispatch_group_layout(config)))
        Lane groups for the PEs.
    count : Out(range(dispatch_depth + 1))
        Groups in the FIFO (for monitoring).
    stalled : Out(1)
        The packer holds a chunk that does not fit in the FIFO this cycle.
    """

    #: Cycles from a beat's transfer to the first cycle its first group may leave.
    LATENCY = pipeline.PACKER + pipeline.DISPATCH_FIFO

    def __init__(self, *, config: DittoConfig):
        self._config = check_config(self, config)
        super().__init__({
            "i": In(stream.Signature(encoder_output_layout(config))),
            "o": Out(stream.Signature(dispatch_group_layout(config))),
            "count": Out(range(config.dispatch_depth + 1)),
            "stalled": Out(1),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        lanes, width = config.lanes, config.scan_width
        per_cycle, depth = config.dispatch_groups, config.dispatch_depth
        # The chunk's groups, then the operands that become the carry after them.
        slots = per_cycle * lanes + lanes - 1
        op_layout = dispatch_op_layout(config)

        def chunk_plan(at_least, last):
            """``(final, pushed)`` of the next chunk, from ``at_least(n)``: whether at least
            ``n`` operands are left (``n`` a constant). Not a row's last beat: complete groups
            only; a row's last beat: a partial group too, and at least one. Comparisons with
            constants and a count of a few bits, no adder."""
            full_chunks = at_least((per_cycle + 1) * lanes)
            whole = sum(at_least(g * lanes) for g in range(1, per_cycle + 1))
            last_full = at_least(per_cycle * lanes + 1)
            started = 1 + sum(at_least(g * lanes + 1) for g in range(1, per_cycle))
            is_final = Mux(last, ~last_full, ~full_chunks)
            return is_final, Mux(is_final, Mux(last, started, whole), per_cycle)

        # ---- 1. prefix register: the next beat and its prefix sums ---------------------------
        held_layout = _held_beat_layout(config)
        ahead = Signal(held_layout, reset_less=True)
        ahead_valid = Signal()
        # Each element's place is the carry count plus the lane costs (ZERO/LOW/FULL =
        # 0/1/2) of the beat's elements before it, an exclusive prefix sum. Its log-depth
        # tree is split across three stages, so that none holds more than two adder levels
        # (the whole tree in one stage was the dispatcher's critical path at E = 32,
        # docs/synthesis.md): the encoder registers each element's sum within its block
        # and the costs of each block and each pair of blocks (``config.cost_blocks``); here each
        # element's prefix (``ahead_prefix``: the blocks before its own, as at most one pair
        # of blocks and one block, plus its sum within the block) and the beat's total are
        # registered; at the load a place is the carry plus the element's prefix.
        blocks = config.cost_blocks
        payload = self.i.payload

        def blocks_before(b):
            """The encoder's sums that make the costs of the blocks before block ``b``: the
            pairs of blocks before it and, after an even block, that block."""
            return [*(payload.block_pair_costs[j] for j in range(b // 2)),
                    *([payload.block_costs[b - 1]] if b % 2 else [])]

        ahead_prefix = {}  # element -> its prefix (element 0's is 0: no register)
        # The beat's total, in the prefix register beside the prefixes.
        beat_total = Signal(range(2 * width + 1), name="ahead_total", reset_less=True)
        # (register, value) of the prefix register.
        total = adder_tree(blocks_before(len(blocks)))
        loads = [(ahead, _held_beat(payload, config)), (beat_total, total)]
        # The plan of the beat's first chunk (``chunk_plan``) for each carry count it may
        # find, so that at a load the plan is a select by the carry count, not comparisons
        # of the carry and the total in front of the push decision (docs/synthesis.md).
        plan_by_carry = []
        for c in range(lanes):
            plan = Signal(1 + Shape.cast(range(per_cycle + 1)).width,
                          name=f"ahead_plan_{c}", reset_less=True)  # final, then pushed
            plan_by_carry.append(plan)
            loads.append((plan, Cat(*chunk_plan(
                lambda n, c=c: total >= n - c if n > c else Const(1), payload.last))))
        for b, members in enumerate(blocks):
            for n in members:
                if n == 0:
                    continue
                prefix = Signal(range(2 * n + 1), name=f"ahead_prefix_{n}", reset_less=True)
                ahead_prefix[n] = prefix
                loads.append((prefix, adder_tree(
                    [*blocks_before(b), *([payload.within[n]] if n != members[0] else [])])))
        # A spare prefix register behind it holds a beat that the prefix register cannot
        # take, so that ``i.ready`` is a register (``~spare_valid``) and the push decision
        # stays off the enables of the encoder's and the core's input registers. The spare
        # is loaded whenever it is empty, so its enables are a register too; a beat is
        # taken from it first, through a multiplexer after the prefix trees.
        # ``advance`` and ``taken`` follow from the push decision (section 4);
        # ``taken_fanout`` is ``taken`` for the wide registers.
        advance = Signal()  # the packer takes the beat of the prefix register
        taken = Signal()  # the prefix register takes the beat offered
        taken_fanout = Signal(name="taken_fanout")
        spare_valid = Signal()
        offered = spare_valid | self.i.valid
        ahead_valid_next = Signal()
        m.d.comb += [self.i.ready.eq(~spare_valid),
                     ahead_valid_next.eq(Mux(taken, offered, ahead_valid))]
        m.d.sync += [spare_valid.eq(offered & ~taken), ahead_valid.eq(ahead_valid_next)]
        for register, value in loads:
            spare = Signal(register.shape(), name=f"spare_{Value.cast(register).name}",
                           reset_less=True)
            with m.If(~spare_valid):
                m.d.sync += spare.eq(value)
            with m.If(taken_fanout):
                m.d.sync += register.eq(Mux(spare_valid, spare, value))

        # ---- 2. packer register: the beat and where its elements land ----------------------
        beat = Signal(held_layout, reset_less=True)
        held = Signal()
        first_chunk = Signal()  # the held beat has pushed nothing yet
        beat_index = Signal(range(-(-config.weight_depth // width)))  # of the held beat
        next_index = Signal.like(beat_index)  # of the next beat the packer takes
        # places[n]: the slot of the current chunk where element n's first operand lands,
        # i.e. the carry count plus the element's exclusive prefix sum, less the operands
        # of this beat already pushed. window[n]: the same place one-hot over the chunk's
        # slots, 0 for a ZERO element (bit i: place i - 1; bit 0 is a FULL element whose
        # low part is left for slot 0). Both registered, so that each slot is an AND-OR
        # of registers with no comparison in front. A place is kept modulo a power of two M
        # of at least B (config.max_beat_operands): a beat's places start at 0 or more and
        # fall by the operands pushed, so with ``left`` operands still to push a place that
        # has left the chunk is at least ``left - B``; wrapped, it is at least ``left``, past
        # every operand still to come, and never -1 (M - 1) either.
        place_modulus = 1 << (config.max_beat_operands - 1).bit_length()
        places = [Signal(range(place_modulus), name=f"place_{n}", reset_less=True)
                  for n in range(width)]
        window = [Signal(slots + 1, name=f"window_{n}", reset_less=True) for n in range(width)]

        # ---- 3. packer: the next chunk and its slots --------------------------------------
        carry = Signal(data.ArrayLayout(op_layout, max(lanes - 1, 1)), reset_less=True)
        # The chunk register: the slots of the last chunk pushed, the groups' first and last
        # marks, and which FIFO entries are still to be written from it (``pending[g]``:
        # the entry of its group g, one-hot). The packer's slots end at this register, right
        # beside the crossbar; the FIFO's entries are written from it a cycle later, and the
        # FIFO's head is read from it in that cycle, so a group still leaves in the cycle
        # after its push.
        chunk = Signal(data.ArrayLayout(op_layout, slots), reset_less=True)
        chunk_first = Signal(per_cycle, reset_less=True)
        chunk_last = Signal(per_cycle, reset_less=True)
        pending = [Signal(depth, name=f"pending_{g}") for g in range(per_cycle)]
        # The carry a beat finds: after a final chunk it is in the chunk register, the slots
        # after the chunk's ``carry_groups`` groups (``carry_fresh``); later in ``carry``.
        carry_fresh = Signal()
        carry_groups = Signal(range(per_cycle + 1))
        carry_now = Signal.like(carry)
        m.d.comb += carry_now.eq(Mux(carry_fresh, Array(
            Cat(*(chunk[g * lanes + c] for c in range(lanes - 1)))
            for g in range(per_cycle + 1))[carry_groups], carry))
        m.d.sync += [carry.eq(carry_now), carry_fresh.eq(0)]
        carry_count = Signal(range(lanes))  # operands in ``carry``
        row_first = Signal(init=1)   # the next group pushed starts a row
        # Operands of the held beat (carry included) not yet pushed, and what the next chunk
        # of them is: registers, computed when ``available`` changes, so that the push
        # decision and the handshakes are a few gates on registers.
        available = Signal(range(2 * width + lanes))
        final = Signal()        # the next chunk is the beat's last
        pushed = Signal(range(per_cycle + 1))  # groups in the next chunk

        index_bits = max(1, (width - 1).bit_length())
        slot = Signal(data.ArrayLayout(op_layout, slots))
        full = [beat.cls[n] == DiffClass.FULL for n in range(width)]
        for s in range(slots):
            operand, shift, index = [], [], []
            for n in range(width):
                # Element n's first operand lands in slot s, or in slot s - 1 (then slot s
                # holds its ``second``, which is 0 unless it is FULL).
                first_part, second_part = window[n][s + 1], window[n][s]
                operand.append(Mux(first_part, beat.first[n], 0)
                               | Mux(second_part, beat.second[n], 0))
                shift.append(first_part & full[n])
                index.append(Mux(first_part | (second_part & full[n]), n, 0))
            element = Signal(index_bits, name=f"element_{s}")
            # Slot s holds an operand of the beat or of the carry when fewer than
            # ``available`` precede it: a comparison of a register, off the AND-OR.
            # An idle lane reads weight row 0, as in the reference.
            k = Mux(available > s, weight_row(beat_index, element, width), 0)
            parts = [_or_all(operand), _or_all(shift)]
            if s < lanes - 1:
                # The carry precedes the beat's operands in its first chunk only, where no
                # element lands below the carry count: an OR, not a multiplexer.
                use = first_chunk & (s < carry_count)
                parts = [part | Mux(use, value, 0) for part, value in
                         zip(parts, (carry_now[s].operand, carry_now[s].shift), strict=True)]
                k = Mux(use, carry_now[s].k, k)
            m.d.comb += [element.eq(_or_all(index)), slot[s].operand.eq(parts[0]),
                         slot[s].shift.eq(parts[1]), slot[s].k.eq(k)]

        # ---- 4. FIFO and handshakes ---------------------------------------------------------
        # A group's lanes are routed (a shifted operand onto its pair's even lane) on its
        # way from the chunk register into the FIFO, off the packer's paths; the FIFO holds
        # routed groups.
        group_layout = dispatch_group_layout(config)
        fifo = Signal(data.ArrayLayout(group_layout, depth), reset_less=True)
        read_ptr = Signal(range(depth))
        next_ptr = Signal(range(depth), init=1 % depth)  # read_ptr + 1, modulo depth
        # One-hot: the entry the next group goes to. Group g of a chunk goes to the entry g
        # places further on, a rotation by a constant (wiring, no adder).
        write_at = Signal(depth, init=1)
        count = Signal(range(depth + 1))
        # Pop slots reserved from this cycle on: each group pushed takes the first free slot
        # from DISPATCH_FIFO cycles after its push, one a cycle. With the PEs always ready the
        # slots are the pops, so ``count <= reserved``; room is counted in both, and the
        # cycle model's recurrence is exact (``ditto.sim.cycles``).
        reserved = Signal(range(depth + per_cycle + pipeline.DISPATCH_FIFO))
        pop = Signal()
        reserved_next = Signal.like(reserved)
        # The push decision is made a cycle ahead, from the next count, reservations and
        # chunk plan, into registers, once for each outcome of this cycle's pop: ``push``
        # (the held chunk fits and is pushed) is a select of two registers by whether the
        # last cycle popped. The packer's own state follows from it: ``advance`` and
        # ``load`` (the packer takes the next beat, and there is one) and ``taken``
        # (section 1) are a few gates on ``push`` and registers. The wide registers it
        # enables (beats, prefixes, places, chunk: a thousand or more enables and
        # multiplexers) take copies of ``push``, ``load`` and ``taken`` (``_fanout``), each a
        # select of its own two registers, kept apart from ``push``'s (``KEEP``), by a
        # register of the pop of their own: computed in their own cycle, a
        # select of the room and its fan-out were DittoCore's critical path on ECP5, with
        # the pop in front of the registers so were the PEs' ready chain and the count, and
        # with one copy the select sat among its sinks, so that the path back into the next
        # decision crossed the chip twice (docs/synthesis.md).
        push, push_fanout = Signal(name="push"), Signal(name="push_fanout")
        load, load_fanout = Signal(name="load"), Signal(name="load_fanout")
        # The carry the next beat finds: the operands after the last beat's last groups
        # (none after a row). A beat's last chunk takes every complete group of the operands
        # left, and each earlier chunk ``G`` whole groups, so this is known when the beat is
        # loaded: its operands, carry included, modulo ``lanes``. A register, set at each
        # load, so that the places of the next beat start at registers only.
        carry_next = Signal(range(lanes))
        chunk_groups = [_routed_group([chunk[g * lanes + j] for j in range(lanes)],
                                      chunk_first[g], chunk_last[g])
                        for g in range(per_cycle)]
        # The head is a register (``head_entry``, the entry at ``read_ptr``) unless it is
        # still in the chunk register (``head_in_chunk``, registered): then it is the
        # chunk's first group (a chunk is pushed only where it fits before this cycle's
        # pop, so only its first group can be the head in the cycle after its push). A
        # group, and so the weight-buffer addresses it carries, leaves through one
        # multiplexer on registers.
        head_entry = Signal(group_layout, reset_less=True)
        head_in_chunk = Signal()
        # ``next_in_chunk[g]``: the entry after the head is the chunk register's group g,
        # still to be written; registered like ``head_in_chunk``.
        next_in_chunk = Signal(per_cycle)
        head = Signal(group_layout)
        m.d.comb += head.eq(Mux(head_in_chunk, chunk_groups[0], head_entry))
        after_head = fifo[next_ptr].as_value()
        for g in reversed(range(per_cycle)):
            after_head = Mux(next_in_chunk[g], chunk_groups[g], after_head)
        m.d.sync += head_entry.eq(Mux(pop, after_head, head))
        m.d.comb += [self.o.payload.eq(head),
                     self.o.valid.eq(count != 0), pop.eq(self.o.valid & self.o.ready),
                     self.count.eq(count),
                     self.stalled.eq(held & ~push)]

        def rotated(onehot, places):
            places %= depth
            return Cat(onehot[depth - places:], onehot[:depth - places]) if places else onehot

        def wrapped(pointer):
            return Mux(pointer == depth - 1, 0, pointer + 1)

        read_ptr_next = Signal.like(read_ptr)
        next_ptr_next = Signal.like(next_ptr)
        pending_next = [Signal.like(pending_g) for pending_g in pending]
        m.d.comb += [read_ptr_next.eq(Mux(pop, next_ptr, read_ptr)),
                     next_ptr_next.eq(Mux(pop, wrapped(next_ptr), next_ptr)),
                     *(pending_next[g].eq(Mux(push & (g < pushed), rotated(write_at, g), 0))
                       for g in range(per_cycle))]
        m.d.sync += [read_ptr.eq(read_ptr_next), next_ptr.eq(next_ptr_next),
                     *(now.eq(after) for now, after in zip(pending, pending_next, strict=True)),
                     head_in_chunk.eq(pending_next[0].bit_select(read_ptr_next, 1)),
                     next_in_chunk.eq(Cat(n.bit_select(next_ptr_next, 1)
                                          for n in pending_next))]
        later = Mux(reserved == 0, 0, reserved - 1)  # the slots reserved after this cycle
        m.d.comb += reserved_next.eq(Mux(push & (pushed != 0),
                                         Mux(later < pipeline.DISPATCH_FIFO - 1,
                                             pipeline.DISPATCH_FIFO - 1, later) + pushed,
                                         later))
        # The next count before the pop: the count after it is one less if this cycle pops.
        count_pushed = count + Mux(push, pushed, 0)
        m.d.sync += [reserved.eq(reserved_next), count.eq(count_pushed - pop)]
        # The chunk register's groups go to their entries a cycle after their push.
        for e in range(depth):
            for g in range(per_cycle):
                with m.If(pending[g][e]):
                    m.d.sync += fifo[e].eq(chunk_groups[g])
        with m.If(push_fanout):
            m.d.sync += [chunk.eq(slot),
                         *(chunk_first[g].eq(row_first & (g == 0)) for g in range(per_cycle)),
                         *(chunk_last[g].eq(beat.last & final & (pushed == g + 1))
                           for g in range(per_cycle))]
        with m.If(push):
            m.d.sync += [write_at.eq(Array(rotated(write_at, n)
                                           for n in range(per_cycle + 1))[pushed]),
                         row_first.eq(Mux(beat.last & final, 1, row_first & (pushed == 0))),
                         first_chunk.eq(0)]
            with m.If(final):
                # The slots after the chunk's groups are the next carry.
                m.d.sync += [carry_fresh.eq(1), carry_groups.eq(pushed)]
            with m.Else():
                m.d.sync += available.eq(available - per_cycle * lanes)

        # Where each element of the new beat lands: the carry it finds plus its prefix, both
        # registers (one adder per element).
        offsets = [carry_next + ahead_prefix[n] if n in ahead_prefix else carry_next
                   for n in range(width)]

        # The places of the next cycle: a new beat's, or the held beat's after a chunk
        # that is not its last; the window is their one-hot, registered beside them.
        for n in range(width):
            place_next = Signal.like(places[n], name=f"place_next_{n}")
            m.d.comb += place_next.eq(Mux(load_fanout, offsets[n], Mux(
                push_fanout & ~final, places[n] - per_cycle * lanes, places[n])))
            real = Mux(load_fanout, ahead.cls[n], beat.cls[n]) != DiffClass.ZERO
            m.d.sync += [places[n].eq(place_next),
                         window[n].eq(Cat(real & (place_next == (i - 1) % place_modulus)
                                          for i in range(slots + 1)))]
        with m.If(advance):
            m.d.sync += carry_count.eq(carry_next)
        with m.If(load):
            # A new beat's operands follow the carry it finds.
            loaded = carry_next + beat_total
            m.d.sync += [beat_index.eq(next_index),
                         next_index.eq(Mux(ahead.last, 0, next_index + 1)),
                         first_chunk.eq(1), available.eq(loaded),
                         carry_next.eq(Mux(ahead.last, 0, _modulo(loaded, lanes)))]
        with m.If(load_fanout):
            m.d.sync += beat.eq(ahead)

        # The next cycle's state of the packer and its push decision. A chunk fits when
        # its groups fit before the next cycle's pop (the cycle model counts the same way).
        held_next, final_next = Signal(), Signal()
        pushed_next = Signal.like(pushed)
        rest_plan = chunk_plan(lambda n: available >= n + per_cycle * lanes, beat.last)
        m.d.comb += [held_next.eq(Mux(advance, ahead_valid, held)),
                     Cat(final_next, pushed_next).eq(
                         Mux(load, Array(plan_by_carry)[carry_next],
                             Mux(push & ~final, Cat(*rest_plan), Cat(final, pushed))))]
        m.d.sync += [held.eq(held_next), Cat(final, pushed).eq(Cat(final_next, pushed_next))]
        m.d.comb += [advance.eq(~held | (push & final)), load.eq(advance & ahead_valid),
                     taken.eq(~ahead_valid | advance)]
        decision_next = {}  # (decision, whether this cycle pops) -> its value
        for popping in (1, 0):
            room_next = Array([Const(1), *((reserved_next <= depth - n)
                                           & (count_pushed <= depth - n + popping)
                                           for n in range(1, per_cycle + 1))])
            push_next = held_next & room_next[pushed_next]
            advance_next = ~held_next | (push_next & final_next)
            decision_next.update({("push", popping): push_next,
                                  ("push_fanout", popping): push_next,
                                  ("load_fanout", popping): advance_next & ahead_valid_next,
                                  ("taken_fanout", popping): ~ahead_valid_next | advance_next})
        # Whether the last cycle popped a group, for ``push`` and for the copies.
        popped, popped_fanout = (Signal(name=name, attrs=KEEP)
                                 for name in ("popped", "popped_fanout"))
        m.d.sync += [popped.eq(pop), popped_fanout.eq(pop)]
        for select, init in ((push, 0), (push_fanout, 0), (load_fanout, 0), (taken_fanout, 1)):
            if_popped, if_kept = (Signal(init=init, name=f"{select.name}_if_{outcome}",
                                         attrs=KEEP) for outcome in ("popped", "kept"))
            m.d.sync += [if_popped.eq(decision_next[select.name, 1]),
                         if_kept.eq(decision_next[select.name, 0])]
            m.d.comb += select.eq(Mux(popped if select is push else popped_fanout,
                                      if_popped, if_kept))
        return m


def _modulo(value: Value, divisor: int) -> Value:
    """``value % divisor``, its low bits when ``divisor`` is a power of two."""
    if divisor & (divisor - 1) == 0:
        return value[:(divisor - 1).bit_length()]
    return value % divisor


def _routed_group(lanes: list, first: Value, last: Value) -> Value:
    """A group in :func:`dispatch_group_layout` from its ``lanes`` (views of
    :func:`dispatch_op_layout`) as the packer's slots made them: in each pair, a shifted
    operand on the odd lane swaps with the even one (the shift-capable lane). Each high part
    is followed by its low part, so no pair holds two."""
    routed = [lane.as_value() for lane in lanes]
    for p in range(len(lanes) // 2):
        swap = lanes[2 * p + 1].shift
        even, odd = routed[2 * p], routed[2 * p + 1]
        routed[2 * p], routed[2 * p + 1] = Mux(swap, odd, even), Mux(swap, even, odd)
    return Cat(*routed, first, last)


def _held_beat_layout(config: DittoConfig) -> data.StructLayout:
    """A classified beat as the dispatcher holds it: per element the class, the operand of
    its first lane (``first``: ``high`` for FULL, ``low`` for LOW) and the unsigned low part
    of a FULL element (``second``, 0 otherwise), so that each slot is an AND-OR of these
    registers (together one bit fewer than ``high`` and ``low``)."""
    return data.StructLayout({
        "cls": data.ArrayLayout(DiffClass, config.scan_width),
        "first": data.ArrayLayout(signed(config.lane_bits), config.scan_width),
        "second": data.ArrayLayout(unsigned(config.split_shift), config.scan_width),
        "last": unsigned(1),
    })


def _held_beat(beat, config: DittoConfig) -> Value:
    """The encoder's beat in :func:`_held_beat_layout`."""
    width, shift = config.scan_width, config.split_shift
    full = [beat.cls[n] == DiffClass.FULL for n in range(width)]
    return Cat(beat.cls.as_value(),
               *(Mux(full[n], beat.high[n], beat.low[n]) for n in range(width)),
               *(Mux(full[n], beat.low[n][:shift], 0) for n in range(width)), beat.last)


def _or_all(values: list) -> Value:
    """OR of ``values`` as a balanced tree (one-hot selection: at most one is nonzero)."""
    return balanced_tree(values, operator.or_)


def weight_row(beat_index: Value, element, width: int) -> Value:
    """Reduction index of element ``element`` of beat ``beat_index`` in its row: a plain
    concatenation when the beat width is a power of two."""
    if width & (width - 1) == 0:
        bits = (width - 1).bit_length()
        if isinstance(element, int):
            element = Const(element, bits)
        return Cat(element[:bits], beat_index)
    return beat_index * width + element
