"""Defo: the paper's per-layer choice of execution mode, from the cycles its first steps took.

Each candidate mode is *probed* once per layer, at a fixed step: ``probes[t]`` runs at step
``t``. Each probe's cycles are recorded; every later step runs the mode whose probe took the
fewest cycles. Ties go to the mode that needs the least memory: ACT, then SPATIAL, then DIFF
(so DIFF runs only when strictly cheaper, as in the paper). Outputs are identical in every
mode (all are exact), only cycles and memory traffic differ.

Probe sets (``PROBES``):

- ``defo`` (ACT, DIFF): the paper's Defo.
- ``ditto_plus`` (SPATIAL, DIFF): Ditto+, where the layers Defo would leave in ACT run
  spatial differences instead. SPATIAL needs no previous step, so it replaces ACT at step 0.
- ``three`` (ACT, DIFF, SPATIAL): all three modes, at the price of a third probe step; on the
  real trace it is slower than ``ditto_plus`` (docs/evaluation.md).

Which cycles are recorded is the caller's choice: the RTL unit records the core's
``counters.cycles``, which include the cycles the core waited for memory (docs/core.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ditto.enums import Mode

__all__ = ["DefoTable", "PREFERENCE", "PROBES", "check_probes", "cheapest_mode"]

#: Tie order: a mode earlier in this tuple wins a tie (it needs less memory).
PREFERENCE = (Mode.ACT, Mode.SPATIAL, Mode.DIFF)
#: The probe sets, by name: the mode probed at step 0, 1 (, 2).
PROBES = {
    "defo": (Mode.ACT, Mode.DIFF),
    "ditto_plus": (Mode.SPATIAL, Mode.DIFF),
    "three": (Mode.ACT, Mode.DIFF, Mode.SPATIAL),
}


def check_probes(probes) -> tuple[Mode, ...]:
    """``probes`` as a tuple of distinct modes, DIFF not first (it needs a previous step);
    a ``ValueError`` names what is wrong."""
    if isinstance(probes, Mode):
        raise ValueError(f"probes={probes!r}: give a sequence of modes, one per probe step")
    probes = tuple(probes)
    if not probes or not all(isinstance(mode, Mode) for mode in probes):
        raise ValueError(f"probes={probes!r}: give one or more Mode values")
    if len(set(probes)) != len(probes):
        raise ValueError(f"probes={probes!r}: each mode is probed once")
    if probes[0] is Mode.DIFF:
        raise ValueError(f"probes={probes!r}: step 0 cannot run DIFF (no previous step)")
    return probes


def cheapest_mode(cycles: Mapping[Mode, float]) -> Mode:
    """The mode with the fewest ``cycles``; ties go to the earlier mode of :data:`PREFERENCE`."""
    if not cycles:
        raise ValueError("no recorded mode to choose from")
    return min(cycles, key=lambda mode: (cycles[mode], PREFERENCE.index(mode)))


@dataclass
class DefoTable:
    """Per-layer record of each probed mode's cycles.

    Parameters
    ----------
    entries : int
        Layers the table can hold (the paper's table has 512); recording more is an error.
    probes : tuple of Mode
        The mode probed at each step from 0 (:data:`PROBES`); default the paper's Defo.
    """

    entries: int = 512
    probes: tuple[Mode, ...] = PROBES["defo"]
    _records: dict[int, dict[Mode, int]] = field(default_factory=dict)

    def __post_init__(self):
        self.probes = check_probes(self.probes)

    def mode_for(self, layer: int, step: int) -> Mode:
        """The mode layer ``layer`` runs at ``step``."""
        if step < 0:
            raise IndexError(f"step {step}: steps count from 0")
        if step < len(self.probes):
            return self.probes[step]
        record = self._records.get(layer, {})
        if len(record) < len(self.probes):
            raise KeyError(f"Defo has no record of layer {layer}'s first {len(self.probes)} "
                           "steps")
        return cheapest_mode(record)

    def record(self, layer: int, step: int, cycles: int) -> None:
        """Record the cycles of layer ``layer`` at ``step`` (only the probe steps are kept)."""
        if not 0 <= layer < self.entries:
            raise IndexError(f"layer id {layer} outside the Defo table's {self.entries} "
                             "entries")
        if step < 0:
            raise IndexError(f"step {step}: steps count from 0")
        if step < len(self.probes):
            self._records.setdefault(layer, {})[self.probes[step]] = int(cycles)
