"""Defo unit: the per-layer ACT/DIFF decision table of the paper, in hardware."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ditto.config import DittoConfig
from ditto.enums import Mode

from ._params import check_config, check_flag
from .sram import add_memory

__all__ = ["DefoUnit", "defo_answer_layout", "defo_query_layout", "defo_record_layout"]


def defo_record_layout(config: DittoConfig) -> data.StructLayout:
    """``layer``; ``step`` (0: the ACT step, 1: the DIFF step; others are ignored);
    ``cycles`` (saturated to ``defo_cycle_bits``)."""
    return data.StructLayout({"layer": unsigned(max(1, (config.defo_entries - 1).bit_length())),
                              "step": unsigned(16),
                              "cycles": unsigned(config.defo_cycle_bits)})


def defo_query_layout(config: DittoConfig) -> data.StructLayout:
    return data.StructLayout({"layer": unsigned(max(1, (config.defo_entries - 1).bit_length())),
                              "step": unsigned(16)})


def defo_answer_layout() -> data.StructLayout:
    """``mode`` to run; ``known`` is 0 when a step >= 2 asks about a layer whose first two
    steps were not both recorded (``mode`` is then ACT, which is always correct)."""
    return data.StructLayout({"mode": Mode, "known": unsigned(1)})


class DefoUnit(wiring.Component):
    """Per layer, the cycles of its first ACT step (step 0) and first DIFF step (step 1);
    a query for step 0 answers ACT, for step 1 DIFF, for later steps DIFF only if the
    recorded DIFF step was strictly cheaper, as ``ditto.sim.defo.DefoTable``.

    Storage: ``defo_entries`` x (2 x ``defo_cycle_bits`` + 2 valid bits), in two
    ``amaranth.lib.memory`` memories (``asic=True``: two SRAM macro instances, docs/asic.md).

    Function, timing and handshake
    ------------------------------
    - ``record``: always ready; writes in the cycle of the transfer.
    - ``query`` -> ``answer``: one answer per query, valid the cycle after the query's
      transfer; ``query.ready = ~answer.valid | answer.ready``. A record and a query of the
      same layer in the same cycle: the query sees the old entry.
    - Reset: valid bits are not cleared by reset (memories start empty after
      configuration); ``clear`` forgets every entry, one per cycle, over ``defo_entries``
      cycles during which ``busy`` is high and nothing else is accepted. An SRAM macro
      powers up with unknown content: on an ASIC, ``clear`` once after reset.
    - A record and a query of one layer in one cycle rely on the memories' read-first
      behaviour (docs/asic.md).
    """

    #: Cycles from a query's transfer to its answer being valid.
    LATENCY = 1

    def __init__(self, *, config: DittoConfig, asic: bool = False):
        self._config = check_config(self, config)
        self._asic = check_flag(self, "asic", asic)
        super().__init__({
            "record": In(stream.Signature(defo_record_layout(config))),
            "query": In(stream.Signature(defo_query_layout(config))),
            "answer": Out(stream.Signature(defo_answer_layout())),
            "clear": In(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        entry = data.StructLayout({"cycles": unsigned(config.defo_cycle_bits),
                                   "valid": unsigned(1)})
        act_write, (act_read,) = add_memory(m, "act", shape=entry, depth=config.defo_entries,
                                            asic=self._asic)
        diff_write, (diff_read,) = add_memory(m, "diff", shape=entry,
                                              depth=config.defo_entries, asic=self._asic)

        clearing = Signal()
        clear_addr = Signal(range(config.defo_entries))
        m.d.comb += self.busy.eq(clearing)
        with m.If(self.clear & ~clearing):
            m.d.sync += [clearing.eq(1), clear_addr.eq(0)]
        with m.If(clearing):
            m.d.sync += clear_addr.eq(clear_addr + 1)
            with m.If(clear_addr == config.defo_entries - 1):
                m.d.sync += clearing.eq(0)

        record = self.record.payload
        m.d.comb += self.record.ready.eq(~clearing)
        writing = self.record.valid & self.record.ready
        for port, step in ((act_write, 0), (diff_write, 1)):
            m.d.comb += [port.addr.eq(Mux(clearing, clear_addr, record.layer)),
                         port.data.cycles.eq(record.cycles), port.data.valid.eq(~clearing),
                         port.en.eq(clearing | (writing & (record.step == step)))]

        advance = ~self.answer.valid | self.answer.ready
        m.d.comb += self.query.ready.eq(advance & ~clearing)
        asked = Signal.like(self.query.payload)
        for port in (act_read, diff_read):
            m.d.comb += [port.addr.eq(self.query.payload.layer), port.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [self.answer.valid.eq(self.query.valid & self.query.ready),
                         asked.eq(self.query.payload)]
        both = act_read.data.valid & diff_read.data.valid
        cheaper = diff_read.data.cycles < act_read.data.cycles
        with m.If(asked.step == 0):
            m.d.comb += [self.answer.payload.mode.eq(Mode.ACT), self.answer.payload.known.eq(1)]
        with m.Elif(asked.step == 1):
            m.d.comb += [self.answer.payload.mode.eq(Mode.DIFF),
                         self.answer.payload.known.eq(1)]
        with m.Else():
            m.d.comb += [self.answer.payload.mode.eq(Mux(both & cheaper, Mode.DIFF, Mode.ACT)),
                         self.answer.payload.known.eq(both)]
        return m
