"""Formal properties of the :class:`~ditto.hdl.dispatch.ZeroSkipDispatcher`: its contract,
as its docstring and the model (``ditto.sim.dispatch.tile_groups``) state it.

The environment gives the dispatcher any run of beats that keeps the encoder's output
contract (:func:`assume_encoded_beat`), with any ``i.valid`` and ``o.ready`` in every cycle,
from the reset state. A row and an element are chosen by ``AnyConst``; the harness counts the
row's operands as they arrive and records the chosen element, and checks the groups of that
row as they leave. Because the choices are arbitrary, every row and element is checked
(:class:`DispatcherHarness` has the details; ``ditto.verif.formal`` runs the proofs and
docs/rtl.md lists them with their depths and times).
"""

from __future__ import annotations

from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Assume, Cat, Elaboratable, Module, Mux, Signal, unsigned
from amaranth.lib import data

from ditto.config import DittoConfig, preset
from ditto.enums import DiffClass

from .dispatch import ZeroSkipDispatcher, dispatch_op_layout
from .encoding import encoder_output_layout
from .props import FormalProperty, assert_stream_rules, free_stream_inputs, no_reset

__all__ = ["FORMAL_CONFIG", "NARROW_CONFIG", "PROPERTIES", "DispatcherHarness",
           "assume_encoded_beat"]

#: The configuration of the local properties (lanes, handshakes): ``tiny`` (8 elements a
#: beat, 4 lanes, 2 groups a cycle into a 4-group FIFO).
FORMAL_CONFIG = preset("tiny")
#: The configuration of the properties that relate the output to the whole input (order,
#: rows), whose proofs grow fastest with the packer's size: 4 elements a beat and groups of
#: 2 lanes (one pair), so that a beat still fills up to 4 groups, pushed in two chunks of 2,
#: with carries between beats; 4 beats a row.
NARROW_CONFIG = preset("tiny").replace(name="narrow", lanes=2, scan_width=4, weight_depth=16)

#: The properties a harness can check (``DispatcherHarness(check=...)``).
CHECKS = ("order", "rows", "even_shift", "input_ready", "output_stream")


def assume_encoded_beat(m: Module, beat, config: DittoConfig) -> None:
    """Assume that ``beat`` (a view of :func:`~ditto.hdl.encoding.encoder_output_layout`)
    keeps the encoder's output contract: a class per element (no fourth value), operands
    0 for ZERO, ``high`` 0 for LOW, an unsigned ``low`` part for FULL, and the sums of the
    lane costs over the blocks of ``config.cost_blocks`` that the encoder adds up."""
    costs = [beat.cls[n].as_value() for n in range(config.scan_width)]
    for n in range(config.scan_width):
        cls, high, low = beat.cls[n], beat.high[n], beat.low[n]
        m.d.comb += [
            Assume(costs[n] != 3),
            Assume((cls != DiffClass.ZERO) | ((high == 0) & (low == 0))),
            Assume((cls != DiffClass.LOW) | ((high == 0) & (low != 0))),
            Assume((cls != DiffClass.FULL) | (low >= 0)),
        ]
    blocks = config.cost_blocks
    for members in blocks:
        for n in members:
            m.d.comb += Assume(beat.within[n] == sum(costs[members.start:n]))
    for b, members in enumerate(blocks):
        m.d.comb += Assume(beat.block_costs[b] == sum(costs[members.start:members.stop]))
    for j in range(len(beat.block_pair_costs)):
        pair = blocks[2 * j:2 * j + 2]
        m.d.comb += Assume(beat.block_pair_costs[j]
                           == sum(costs[pair[0].start:pair[-1].stop]))


class DispatcherHarness(Elaboratable):
    """The dispatcher in a free environment, with the assertions of ``check``.

    Checks
    ------
    order
        No operand lost, duplicated or reordered. An operand's identity is its element's
        position ``k`` in the row and its part, ordered as the row's operands are (a FULL
        element's ``high``, shifted, before its ``low``; then the next element). In the groups
        of row ``R`` (chosen by ``AnyConst``), with each pair put back in row order (the
        packer moves a shifted operand onto the pair's even lane), the identities strictly
        increase (nothing duplicated or reordered) over exactly the row's operand count of
        lanes (so nothing lost), and the lanes after them are idle, ``(0, 0, 0)``. An
        operand that claims to be the chosen element ``k_sel`` of the row must be of a LOW
        or FULL element that has arrived, with its value (a shifted one of a FULL element:
        its ``high``). By data independence (the packer moves values by the classes and
        never looks at them) every other element carries fixed values: the proof is many
        times faster, and a value taken from the wrong element is still caught.
    rows
        Groups never mix rows: row ``R`` (chosen by ``AnyConst``) leaves as the whole
        groups of operands its beats before the last fill, then ``max(1, ceil(rest /
        lanes))`` groups for the rest (an empty group when nothing is left: the model's
        count); the first marked ``first``, the last ``last``, no other marked; and no group
        leaves before all its operands (or the row's end) have arrived. With ``order``
        (every position of the row in its place) no group holds operands of two rows.
    even_shift
        A shifted (high-part) operand is only ever on an even lane.
    input_ready
        ``i.ready`` does not depend on ``i.valid``: two copies of the dispatcher get the
        same inputs, except ``i.valid`` flipped in one cycle chosen by ``AnyConst``; in that
        cycle (the copies still in the same state) their ``i.ready`` is equal.
    output_stream
        The ``amaranth.lib.stream`` rules on ``o``: ``valid`` is not retracted and
        ``payload`` does not change while ``valid`` waits for ``ready``.

    Parameters
    ----------
    check : str
        One of :data:`CHECKS`.
    config : DittoConfig
        Default :data:`FORMAL_CONFIG`.
    dispatcher : callable
        ``dispatcher(config=...)`` builds the dispatcher (a mutant, in the tests).
    """

    def __init__(self, *, check: str, config: DittoConfig = FORMAL_CONFIG,
                 dispatcher=ZeroSkipDispatcher):
        if check not in CHECKS:
            raise ValueError(f"check={check!r}: choose one of {', '.join(CHECKS)}")
        self.check, self.config, self.dispatcher = check, config, dispatcher

    def elaborate(self, platform):
        config = self.config
        m = Module()
        no_reset(m)
        m.submodules.dut = dut = self.dispatcher(config=config)
        beat, valid, ready = free_stream_inputs(m, dut, encoder_output_layout(config))
        assume_encoded_beat(m, beat, config)

        if self.check == "input_ready":
            self._input_ready(m, dut, beat, valid, ready)
        elif self.check == "output_stream":
            assert_stream_rules(m, dut.o, "o")
        elif self.check == "even_shift":
            with m.If(dut.o.valid):
                for lane in range(1, config.lanes, 2):
                    m.d.comb += Assert(~dut.o.payload.lanes[lane].shift,
                                       "a shifted operand on an odd lane")
        else:
            self._rows_and_order(m, dut, beat)
        return m

    def _input_ready(self, m, dut, beat, valid, ready):
        m.submodules.twin = twin = self.dispatcher(config=self.config)
        cycle = Signal(8, name="cycle")
        flip_at = Signal(8, name="flip_at")
        m.d.comb += flip_at.eq(AnyConst(8))
        m.d.sync += cycle.eq(cycle + (cycle != 255))
        flip = cycle == flip_at
        m.d.comb += [twin.i.payload.eq(beat), twin.i.valid.eq(valid ^ flip),
                     twin.o.ready.eq(ready)]
        with m.If(flip):
            m.d.comb += Assert(dut.i.ready == twin.i.ready, "i.ready depends on i.valid")

    def _rows_and_order(self, m, dut, beat):
        config = self.config
        lanes, width = config.lanes, config.scan_width
        beats_per_row = -(-config.weight_depth // width)
        row_operands = beats_per_row * 2 * width
        op_layout = dispatch_op_layout(config)
        # Counters wide enough for any run the proofs unroll; rows, operands and groups.
        rows = unsigned(5)
        positions = range(row_operands + 1)
        groups = range(-(-row_operands // lanes) + 1)

        # ---- input side: the row and the position of each operand -------------------------
        i_xfer = dut.i.valid & dut.i.ready
        in_row = Signal(rows, name="in_row")
        in_pos = Signal(positions, name="in_pos")  # operands of the row before this beat
        in_beat = Signal(range(beats_per_row), name="in_beat")
        costs = [beat.cls[n].as_value() for n in range(width)]
        total = sum(costs)
        # A row holds at most weight_depth elements (the weight buffer's rows).
        m.d.comb += Assume(~i_xfer | beat.last | (in_beat < beats_per_row - 1))
        with m.If(i_xfer):
            m.d.sync += [in_row.eq(in_row + beat.last),
                         in_pos.eq(Mux(beat.last, 0, in_pos + total)),
                         in_beat.eq(Mux(beat.last, 0, in_beat + 1))]

        row_sel = Signal(rows, name="row_sel")
        m.d.comb += row_sel.eq(AnyConst(rows))
        row_done = Signal(name="row_done")  # row R's last beat has arrived
        row_total = Signal(positions, name="row_total")  # the row's operands
        row_before = Signal(positions, name="row_before")  # those before its last beat
        recording = i_xfer & (in_row == row_sel) & ~row_done
        with m.If(recording & beat.last):
            m.d.sync += [row_done.eq(1), row_total.eq(in_pos + total),
                         row_before.eq(in_pos)]

        # ---- output side: the row and the index of each group -----------------------------
        out = dut.o.payload
        o_xfer = dut.o.valid & dut.o.ready
        out_row = Signal(rows, name="out_row")
        out_group = Signal(groups, name="out_group")
        with m.If(o_xfer):
            m.d.sync += [out_row.eq(out_row + out.last),
                         out_group.eq(Mux(out.last, 0, out_group + 1))]
        of_row = dut.o.valid & (out_row == row_sel)

        if self.check == "rows":
            with m.If(of_row):
                m.d.comb += Assert(out.first == (out_group == 0),
                                   "first marks a group other than the row's first")
                with m.If(row_done):
                    # The row's groups: the whole groups its beats before the last fill,
                    # then at least one (max(1, ceil(rest / lanes))) from the last beat.
                    m.d.comb += [
                        Assert((out_group * lanes < row_total)
                               | (out_group * lanes <= row_before),
                               "more groups than the row's operands fill"),
                        Assert(out.last == (((out_group + 1) * lanes >= row_total)
                                            & ((out_group + 1) * lanes > row_before)),
                               "last does not mark exactly the row's final group"),
                    ]
                with m.Else():
                    m.d.comb += [
                        Assert(in_row == row_sel, "a group of a row not yet started"),
                        Assert(~out.last, "a row ends before its last beat arrived"),
                        Assert((out_group + 1) * lanes <= in_pos,
                               "a group leaves before its operands arrived"),
                    ]
            return

        # ---- order: every operand of row R is one of its own, once, in order -------------
        # An operand's identity is its element's position k in the row and its part: the
        # key 2k for a FULL element's high part, 2k + 1 for its low part or a LOW value,
        # increasing along the row. The chosen element k_sel of row R is recorded as it
        # arrives; an operand that claims to be it must carry its class's part and value.
        k_bits = config.weight_addr_bits
        k_sel = Signal(k_bits, name="k_sel")
        m.d.comb += [k_sel.eq(AnyConst(k_bits)),
                     Assume(k_sel < min(beats_per_row * width, 1 << k_bits))]
        chosen = Signal(data.StructLayout({"cls": DiffClass, "high": op_layout["operand"].shape,
                                           "low": op_layout["operand"].shape}), name="chosen")
        chosen_seen = Signal(name="chosen_seen")
        for n in range(width):
            is_chosen = (in_row == row_sel) & ((in_beat * width + n)[:k_bits] == k_sel)
            with m.If(recording & is_chosen):
                m.d.sync += [chosen.cls.eq(beat.cls[n]), chosen.high.eq(beat.high[n]),
                             chosen.low.eq(beat.low[n]), chosen_seen.eq(1)]
            # Data independence: the dispatcher moves operands by their classes and never
            # looks at their values, so every element but the chosen one carries fixed
            # values (LOW 1, FULL high 1 and low 0); the chosen one's are free.
            cls = beat.cls[n]
            m.d.comb += Assume(is_chosen | (beat.high[n] == (cls == DiffClass.FULL))
                               & (beat.low[n] == (cls == DiffClass.LOW)))

        def key(op):
            return Cat(~op.shift, op.k)

        # Lanes past the row's last operand are idle, (0, 0, 0); the others hold operands.
        # Each pair is taken back to the order of the row (a shifted operand was moved onto
        # the even lane), and the keys must increase along the row, across groups.
        real = [~row_done | (out_group * lanes + j < row_total) for j in range(lanes)]
        prev_key = Signal(k_bits + 1, name="prev_key")
        prev_any = Signal(name="prev_any")  # an operand of row R has left
        running, running_any = prev_key, prev_any
        checks = []
        for j in range(lanes):
            op = out.lanes[j]
            checks.append(Assert(real[j] | (op.as_value() == 0), "an idle lane is not zero"))
            with m.If(of_row & real[j] & (op.k == k_sel)):
                m.d.comb += [
                    Assert(chosen_seen, "an operand leaves before its element arrived"),
                    Assert(chosen.cls != DiffClass.ZERO, "an operand of a ZERO element"),
                    Assert(~op.shift | (chosen.cls == DiffClass.FULL),
                           "a shifted operand of an element that is not FULL"),
                    Assert(op.operand == Mux(op.shift, chosen.high, chosen.low),
                           "an operand's value is not its element's"),
                ]
        for p in range(lanes // 2):
            even, odd = out.lanes[2 * p], out.lanes[2 * p + 1]
            swapped = real[2 * p + 1] & (key(even) > key(odd))
            for j, op in enumerate((Mux(swapped, odd.as_value(), even.as_value()),
                                    Mux(swapped, even.as_value(), odd.as_value()))):
                op = op_layout(op)
                lane_real = real[2 * p + j]
                checks.append(Assert(~lane_real | ~running_any | (key(op) > running),
                                     "an operand lost, duplicated or out of order"))
                running = Mux(lane_real, key(op), running)
                running_any = running_any | lane_real
        with m.If(of_row):
            m.d.comb += checks
        with m.If(of_row & dut.o.ready):
            m.d.sync += [prev_key.eq(running), prev_any.eq(running_any)]


def _harness(check):
    def build(**arguments):
        return DispatcherHarness(check=check, **arguments)
    return build


#: The dispatcher's properties, in the order ``ditto prove`` runs them.
PROPERTIES = (
    FormalProperty("dispatch_order", "ZeroSkipDispatcher",
                   "no operand lost, duplicated or reordered: each row's groups hold its "
                   "operands, each once, in order, with their values; idle lanes zero",
                   "bmc", 8, NARROW_CONFIG, _harness("order")),
    FormalProperty("dispatch_rows", "ZeroSkipDispatcher",
                   "groups never mix rows: each row leaves as the model's count of groups, "
                   "first and last marked, each group after its operands",
                   "bmc", 9, NARROW_CONFIG, _harness("rows")),
    FormalProperty("dispatch_even_shift", "ZeroSkipDispatcher",
                   "shifted (high-part) operands only on even lanes", "bmc", 12,
                   FORMAL_CONFIG, _harness("even_shift")),
    FormalProperty("dispatch_input_ready", "ZeroSkipDispatcher",
                   "i.ready does not depend on i.valid", "bmc", 12, FORMAL_CONFIG,
                   _harness("input_ready")),
    FormalProperty("dispatch_output_stream", "ZeroSkipDispatcher",
                   "o.valid not retracted and o.payload stable while waiting for o.ready",
                   "bmc", 20, FORMAL_CONFIG, _harness("output_stream")),
)
