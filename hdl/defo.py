"""Defo unit: the paper's per-layer choice of execution mode, in hardware, probing the modes
of ``probes`` (the paper's Defo: ACT, DIFF; Ditto+: SPATIAL, DIFF)."""

import operator
from functools import reduce

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ditto.config import DittoConfig
from ditto.enums import Mode

from ._amaranth import never_elaborated
from ._params import check_config, check_flag
from .sram import add_memory

__all__ = ["DefoUnit", "defo_answer_layout", "defo_query_layout", "defo_record_layout"]

# Gateware does not import the model: these restate ``ditto.sim.defo.PREFERENCE`` and
# ``check_probes``, and tests/hdl/test_defo.py checks the unit against DefoTable.
#: Tie order: an earlier mode wins a tie (it needs less memory).
_PREFERENCE = (Mode.ACT, Mode.SPATIAL, Mode.DIFF)


def _check_probes(owner, probes) -> tuple[Mode, ...]:
    """``probes`` as a tuple of distinct modes, DIFF not first; else a TypeError (not a
    tuple or list of Mode values) or ValueError (empty, repeated, DIFF first)."""
    if not isinstance(probes, (tuple, list)) or not all(isinstance(mode, Mode)
                                                        for mode in probes):
        never_elaborated(owner)
        raise TypeError(f"probes must be a tuple of Mode values, not {probes!r}")
    probes = tuple(probes)
    problem = ("is empty" if not probes
               else "repeats a mode" if len(set(probes)) != len(probes)
               else "starts with DIFF, which needs a previous step" if probes[0] is Mode.DIFF
               else None)
    if problem is not None:
        never_elaborated(owner)
        raise ValueError(f"probes {problem}: {probes!r}")
    return probes


def defo_record_layout(config: DittoConfig) -> data.StructLayout:
    """``layer``; ``step`` (step ``t`` records the probe of ``probes[t]``; later steps are
    ignored); ``cycles`` (saturated to ``defo_cycle_bits``)."""
    return data.StructLayout({"layer": unsigned(max(1, (config.defo_entries - 1).bit_length())),
                              "step": unsigned(16),
                              "cycles": unsigned(config.defo_cycle_bits)})


def defo_query_layout(config: DittoConfig) -> data.StructLayout:
    return data.StructLayout({"layer": unsigned(max(1, (config.defo_entries - 1).bit_length())),
                              "step": unsigned(16)})


def defo_answer_layout() -> data.StructLayout:
    """``mode`` to run; ``known`` is 0 when a step after the probes asks about a layer whose
    probe steps were not all recorded (``mode`` is then ACT, which is always correct)."""
    return data.StructLayout({"mode": Mode, "known": unsigned(1)})


class DefoUnit(wiring.Component):
    """Per layer, the cycles of each probed mode, and the mode each step runs, as
    ``ditto.sim.defo.DefoTable(probes=probes)``.

    A query for step ``t < len(probes)`` answers ``probes[t]`` (``known`` 1). A later step
    answers, once every probe of the layer is recorded, the probed mode whose probe took
    the fewest cycles, ties going to ACT, then SPATIAL, then DIFF (so DIFF only if strictly
    cheaper; with (SPATIAL, DIFF) a tie runs SPATIAL); before that, ACT with ``known`` 0
    (ACT needs no state, so it is always correct).

    Storage: ``defo_entries`` x ``len(probes)`` x (``defo_cycle_bits`` + 1 valid bit), in
    one ``amaranth.lib.memory`` memory per probe, in probe order, named after its mode
    (``act``, ``diff``, ``spatial``; ``asic=True``: one SRAM macro instance each,
    docs/asic.md).

    Parameters
    ----------
    config : DittoConfig
        ``defo_entries`` and ``defo_cycle_bits``.
    asic : bool
        Memories as SRAM macro instances.
    probes : tuple of Mode
        The mode probed at step 0, 1 (, 2): one to three distinct modes, DIFF not first (it
        needs a previous step). Default (ACT, DIFF), the paper's Defo; Ditto+ is (SPATIAL,
        DIFF) (``ditto.sim.defo.PROBES``).

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

    Members
    -------
    record : In(stream.Signature(defo_record_layout(config)))
    query : In(stream.Signature(defo_query_layout(config)))
    answer : Out(stream.Signature(defo_answer_layout()))
    clear : In(1)
    busy : Out(1)
    """

    #: Cycles from a query's transfer to its answer being valid.
    LATENCY = 1

    def __init__(self, *, config: DittoConfig, asic: bool = False,
                 probes: tuple[Mode, ...] = (Mode.ACT, Mode.DIFF)):
        self._config = check_config(self, config)
        self._asic = check_flag(self, "asic", asic)
        self._probes = _check_probes(self, probes)
        super().__init__({
            "record": In(stream.Signature(defo_record_layout(config))),
            "query": In(stream.Signature(defo_query_layout(config))),
            "answer": Out(stream.Signature(defo_answer_layout())),
            "clear": In(1),
            "busy": Out(1),
        })

    @property
    def probes(self) -> tuple[Mode, ...]:
        """The mode probed at step 0, 1 (, 2)."""
        return self._probes

    def elaborate(self, platform):
        config = self._config
        m = Module()
        entry = data.StructLayout({"cycles": unsigned(config.defo_cycle_bits),
                                   "valid": unsigned(1)})
        writes, reads = [], {}
        for mode in self.probes:
            write, (reads[mode],) = add_memory(m, mode.name.lower(), shape=entry,
                                               depth=config.defo_entries, asic=self._asic)
            writes.append(write)

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
        for step, port in enumerate(writes):
            m.d.comb += [port.addr.eq(Mux(clearing, clear_addr, record.layer)),
                         port.data.cycles.eq(record.cycles), port.data.valid.eq(~clearing),
                         port.en.eq(clearing | (writing & (record.step == step)))]

        advance = ~self.answer.valid | self.answer.ready
        m.d.comb += self.query.ready.eq(advance & ~clearing)
        asked = Signal.like(self.query.payload)
        for port in reads.values():
            m.d.comb += [port.addr.eq(self.query.payload.layer), port.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [self.answer.valid.eq(self.query.valid & self.query.ready),
                         asked.eq(self.query.payload)]

        known = reduce(operator.and_, (port.data.valid for port in reads.values()))
        # The mode DefoTable picks is the one strictly cheaper than every mode before it in
        # the tie order and no dearer than every mode after it; the first mode in the tie
        # order if no later one is; ACT if the layer is not known. Parallel comparators, no
        # chain of minimums.
        order = [mode for mode in _PREFERENCE if mode in reads]
        chosen = Mode.ACT if order[0] is Mode.ACT else Mux(known, order[0], Mode.ACT)
        for i, mode in enumerate(order[1:], 1):
            cycles = reads[mode].data.cycles
            wins = known
            for other in order[:i]:
                wins = wins & (cycles < reads[other].data.cycles)
            for other in order[i + 1:]:
                wins = wins & (cycles <= reads[other].data.cycles)
            chosen = Mux(wins, mode, chosen)
        for step, mode in enumerate(self.probes):
            with (m.If if step == 0 else m.Elif)(asked.step == step):
                m.d.comb += [self.answer.payload.mode.eq(mode),
                             self.answer.payload.known.eq(1)]
        with m.Else():
            m.d.comb += [self.answer.payload.mode.eq(chosen),
                         self.answer.payload.known.eq(known)]
        return m
