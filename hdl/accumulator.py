"""Accumulation buffer: the stored outputs ``Y`` of a tile's rows, updated by the PEs'
partial sums (ACT: ``Y = bias + sums``; DIFF or a later K-chunk: ``Y += sums``)."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ditto import pipeline
from ditto.config import DittoConfig

from ._params import HasConfig, check_config, check_flag
from .sram import add_memory

__all__ = ["AccumulationBuffer", "accumulator_input_layout", "accumulator_output_layout"]



def _row_values(config: DittoConfig) -> data.ArrayLayout:
    return data.ArrayLayout(signed(config.acc_bits), config.pes)


def accumulator_input_layout(config: DittoConfig) -> data.StructLayout:
    """Payload of the buffer's input stream: one row of ``pes`` partial sums.

    Fields
    ------
    row : unsigned(row_addr_bits)
        Row address, ``0 <= row < max_rows``.
    sums : ArrayLayout(signed(acc_bits), pes)
        The PEs' partial sums for the row.
    accumulate : 1
        1: add to the stored row (DIFF mode, or a later reduction chunk); 0: store
        ``bias + sums`` (the first chunk of an ACT step).
    """
    return data.StructLayout({
        "row": unsigned(config.row_addr_bits),
        "sums": _row_values(config),
        "accumulate": unsigned(1),
    })


def accumulator_output_layout(config: DittoConfig) -> data.StructLayout:
    """Payload of the buffer's output stream: ``row`` and the new stored values ``y``."""
    return data.StructLayout({
        "row": unsigned(config.row_addr_bits),
        "y": _row_values(config),
    })


class AccumulationBuffer(HasConfig, wiring.Component):
    """Stored outputs of ``max_rows`` rows x ``pes`` channels, read-modify-written per beat.

    For each input beat, ``y = (accumulate ? Y[row] : bias) + sums`` (element-wise,
    ``acc_bits`` two's complement), ``Y[row] := y``, and ``(row, y)`` is emitted.

    Function, timing and handshake
    ------------------------------
    - Latency: :attr:`LATENCY` = 3 cycles. A beat transferred in cycle ``t`` reads
      ``Y[row]`` (synchronous read port) and enters stage 1 at the end of ``t``; the read
      row is registered beside it at the end of ``t + 1`` (stage 2), so that the memory's
      output drives a register and not the adders; stage 2 adds and writes ``Y[row]`` in
      cycle ``t + 2``; ``(row, y)`` is valid on ``o`` in cycle ``t + 3``.
    - Throughput: one beat per cycle while ``o`` is ready (or not holding a beat).
    - Backpressure: while an output beat waits, the pipeline holds and ``i.ready`` is low
      (``i.ready = ~o.valid | o.ready``); a held stage neither reads nor writes the memory.
    - Read-after-write hazard: beats to the same row back to back are handled by
      **forwarding**, never by stalling. The read port is transparent to the write port, so
      a read returns the write of its own cycle (the beat two ahead); the write of the next
      cycle (the beat one ahead, in stage 2) is forwarded into stage 2's row register when
      the rows match. No other write is in flight.
    - Reset: clears the pipeline's valid bits; the stored rows are not cleared (memory
      starts at zero after configuration). A tile writes each row in ACT mode
      (``accumulate = 0``) before accumulating into it.
    - ``bias`` is sampled when a beat with ``accumulate = 0`` is added (cycle ``t + 2``);
      hold it stable during a tile, zero when unused.

    Parameters
    ----------
    config : DittoConfig
        ``max_rows`` (depth), ``pes``, ``acc_bits``, ``row_addr_bits``.
    asic : bool
        Build the memory as an SRAM macro instance (``ditto.hdl.sram``, docs/asic.md);
        the behaviour is the same.

    Members
    -------
    bias : In(ArrayLayout(signed(acc_bits), pes))
        Per-output-channel bias added by ACT beats.
    i : In(stream.Signature(accumulator_input_layout(config)))
        Partial sums.
    o : Out(stream.Signature(accumulator_output_layout(config)))
        Updated rows, one beat per input beat, in order.
    """

    #: Cycles from the input transfer of a beat to its output beat being valid.
    LATENCY = pipeline.ACCUMULATOR

    def __init__(self, *, config: DittoConfig, asic: bool = False):
        self._config = check_config(self, config)
        self._asic = check_flag(self, "asic", asic)
        super().__init__({
            "bias": In(_row_values(config)),
            "i": In(stream.Signature(accumulator_input_layout(config))),
            "o": Out(stream.Signature(accumulator_output_layout(config))),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        write, (read,) = add_memory(m, "memory", shape=_row_values(config),
                                    depth=config.max_rows, transparent=True, asic=self._asic)

        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)

        # Stage 1: the beat, with Y[row] arriving from the read port in this stage.
        s1_valid = Signal()
        # The data registers have no reset: each is read only behind its valid bit.
        s1 = Signal(accumulator_input_layout(config), reset_less=True)
        m.d.comb += [read.addr.eq(self.i.payload.row), read.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(self.i.valid), s1.eq(self.i.payload)]

        # Stage 2: the beat and its stored row, registered; the add and the write.
        s2_valid = Signal()
        s2 = Signal(accumulator_input_layout(config), reset_less=True)
        stored = Signal(_row_values(config), reset_less=True)
        new = Signal(_row_values(config))
        for channel in range(config.pes):
            base = Mux(s2.accumulate, stored[channel], self.bias[channel])
            m.d.comb += new[channel].eq(base + s2.sums[channel])
        m.d.comb += [
            write.addr.eq(s2.row),
            write.data.eq(new),
            write.en.eq(advance & s2_valid),
        ]
        # The row stage 2 writes in this cycle is newer than what stage 1 read.
        forward = s2_valid & (s2.row == s1.row)
        with m.If(advance):
            m.d.sync += [s2_valid.eq(s1_valid), s2.eq(s1),
                         stored.eq(Mux(forward, new, read.data))]

        # Stage 3: the output register.
        output = Signal(accumulator_output_layout(config), reset_less=True)
        m.d.comb += self.o.payload.eq(output)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(s2_valid)
            with m.If(s2_valid):
                m.d.sync += [output.row.eq(s2.row), output.y.eq(new)]
        return m
