"""Defo: the paper's per-layer choice between ACT and DIFF execution.

Step 0 of a layer runs ACT (there is no previous step) and its cycles are recorded; step 1
runs DIFF and its cycles are recorded; every later step runs DIFF only if step 1 was cheaper
than step 0, otherwise ACT. Outputs are identical either way (DIFF is exact), only the cycles
differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ditto.enums import Mode

__all__ = ["DefoTable"]


@dataclass
class DefoTable:
    """Per-layer record of the first ACT and first DIFF step's cycles.

    Parameters
    ----------
    entries : int
        Layers the table can hold (the paper's table has 512); recording more is an error.
    """

    entries: int = 512
    _act: dict[int, int] = field(default_factory=dict)
    _diff: dict[int, int] = field(default_factory=dict)

    def mode_for(self, layer: int, step: int) -> Mode:
        """The mode layer ``layer`` runs at ``step``."""
        if step == 0:
            return Mode.ACT
        if step == 1:
            return Mode.DIFF
        if layer not in self._act or layer not in self._diff:
            raise KeyError(f"Defo has no record of layer {layer}'s first two steps")
        return Mode.DIFF if self._diff[layer] < self._act[layer] else Mode.ACT

    def record(self, layer: int, step: int, cycles: int) -> None:
        """Record the cycles of layer ``layer`` at ``step`` (only steps 0 and 1 are kept)."""
        if not 0 <= layer < self.entries:
            raise IndexError(f"layer id {layer} outside the Defo table's {self.entries} "
                             "entries")
        if step == 0:
            self._act[layer] = int(cycles)
        elif step == 1:
            self._diff[layer] = int(cycles)
