"""Formal property of the :class:`~ditto.hdl.accumulator.AccumulationBuffer`: read-after-write
forwarding, as its docstring states it.

The environment gives the buffer any run of beats (any row, sums and ``accumulate``), with
any ``i.valid`` and ``o.ready`` in every cycle, a ``bias`` held for the run (``AnyConst``), from
the reset state with the memory at zero (its power-on content). ``ditto.verif.formal`` runs
the proof; docs/rtl.md lists its depth and time.
"""

from __future__ import annotations

from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Elaboratable, Module, Mux, Signal, Value

from ditto.config import DittoConfig, preset

from .accumulator import AccumulationBuffer, accumulator_input_layout, accumulator_output_layout
from .props import FormalProperty, free_stream_inputs, no_reset

__all__ = ["FORMAL_CONFIG", "PROPERTIES", "AccumulationBufferHarness"]

#: The configuration the property is proven for: one channel of the narrowest accumulator
#: a config accepts (17 bits, for a reduction of one element) and 4 rows, so that beats hit
#: the same row often. Forwarding does not depend on the widths or the channel count; the
#: proof's time grows steeply with them (the solver bit-blasts the adders).
FORMAL_CONFIG = preset("tiny").replace(name="formal", pes=1, acc_bits=17, max_reduction=1,
                                      weight_depth=1, max_rows=4)


class AccumulationBufferHarness(Elaboratable):
    """The buffer in a free environment, with its read-after-write contract asserted.

    ``AnyConst`` picks a row ``A`` and a beat number ``J``. The harness keeps ``Y[A]`` as
    the contract defines it, beat by beat in input order (``y = (accumulate ? Y[A] : bias)
    + sums``, ``Y[A] := y``), so a beat to ``A`` right after others to ``A`` (one or two
    cycles ahead, or further) must see their sums. The ``J``-th output beat must carry the
    ``J``-th input beat's row and, if that row is ``A``, the ``y`` the contract gives.

    Parameters
    ----------
    config : DittoConfig
        Default :data:`FORMAL_CONFIG`.
    buffer : callable
        ``buffer(config=...)`` builds the buffer (a mutant, in the tests).
    """

    def __init__(self, *, config: DittoConfig = FORMAL_CONFIG, buffer=AccumulationBuffer):
        self.config, self.buffer = config, buffer

    def elaborate(self, platform):
        config = self.config
        m = Module()
        no_reset(m)
        m.submodules.dut = dut = self.buffer(config=config)
        beat, valid, ready = free_stream_inputs(m, dut, accumulator_input_layout(config))
        bias = Signal.like(dut.bias, name="bias")
        m.d.comb += [bias.eq(AnyConst(len(Value.cast(bias)))), dut.bias.eq(bias)]

        row_sel = Signal.like(beat.row, name="row_sel")
        beat_sel = Signal(8, name="beat_sel")
        m.d.comb += [row_sel.eq(AnyConst(len(row_sel))), beat_sel.eq(AnyConst(len(beat_sel)))]
        # Y[A] by the contract; the memory starts at zero.
        shadow = Signal.like(dut.o.payload.y, name="shadow")
        y = Signal.like(shadow, name="y_expected")
        for channel in range(config.pes):
            base = Mux(beat.accumulate, shadow[channel], bias[channel])
            m.d.comb += y[channel].eq(base + beat.sums[channel])
        i_xfer, o_xfer = dut.i.valid & dut.i.ready, dut.o.valid & dut.o.ready
        i_count, o_count = Signal(8, name="i_count"), Signal(8, name="o_count")
        expected = Signal(accumulator_output_layout(config), name="expected")
        expected_a = Signal(name="expected_a")  # the J-th beat is to row A
        expected_seen = Signal(name="expected_seen")
        with m.If(i_xfer):
            m.d.sync += i_count.eq(i_count + 1)
            with m.If(beat.row == row_sel):
                m.d.sync += shadow.eq(y)
            with m.If(i_count == beat_sel):
                m.d.sync += [expected.row.eq(beat.row), expected.y.eq(y),
                             expected_a.eq(beat.row == row_sel), expected_seen.eq(1)]
        with m.If(o_xfer):
            m.d.sync += o_count.eq(o_count + 1)
        with m.If(dut.o.valid & (o_count == beat_sel)):
            m.d.comb += [
                Assert(expected_seen, "an output beat before its input beat"),
                Assert(~expected_seen | (dut.o.payload.row == expected.row),
                       "an output beat of another row"),
                Assert(~(expected_seen & expected_a)
                       | (Value.cast(dut.o.payload.y) == Value.cast(expected.y)),
                       "y is not the row's stored value (or bias) plus the sums"),
            ]
        return m


#: The buffer's properties, in the order ``ditto prove`` runs them.
PROPERTIES = (
    FormalProperty("accumulator_read_after_write", "AccumulationBuffer",
                   "every output beat is its input beat's row with y = (accumulate ? Y[row] "
                   ": bias) + sums, Y[row] including the beats just before it (forwarding)",
                   "bmc", 8, FORMAL_CONFIG, AccumulationBufferHarness),
)
