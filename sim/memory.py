"""The memory system around the cores: an on-chip buffer of ``config.onchip_bytes`` shared
by both cores under one residency policy, and DRAM at ``config.dram_mbps``.

What a layer step moves
-----------------------
Every step of every layer, on both cores, reads its input activations and its weights and
writes its outputs. Sizes are those of the layer's own tensors (``LayerMemory``): the input
as traced (a convolution's im2col windows are formed on chip from it), the weights once, and
the outputs at the width exactness needs (``output_bits``, from the range the trace actually
reaches, in whole bytes). A DIFF step also needs the previous step's input and outputs (its
*state*): ``x_t - x_{t-1}`` and ``y_t = y_{t-1} + ...``. ACT and SPATIAL steps need no state.

Residency policy
----------------
Before a phase of steps, the buffer is filled first-fit in layer order: first every layer's
weights (the same for both cores, so they are charged alike), then, for DittoCore, the state
of each layer that runs DIFF in that phase. An item is kept whole or not at all. A resident
item is written into the buffer once (weights at step 0, state at the step before the DIFF
step that reads it) and read from it instead of DRAM; what does not fit spills: it is read
from DRAM every step it is needed (the previous outputs and the inputs stay in DRAM, in a
second buffer, so a spill costs a read and no extra write). The phases are the Defo probe
steps (every layer runs DIFF at step 1) and the steps after the decision (only the layers
left in DIFF), so a layer that Defo takes out of DIFF frees its space for the others.

Energy of a buffer access
-------------------------
Per byte, from the 64-bit SRAM reads of M. Horowitz, ISSCC 2014 (45 nm): 10 pJ at 8 KB,
20 pJ at 32 KB, 100 pJ at 1 MB, interpolated linearly in log(capacity) vs log(energy). A
larger buffer is banked in 1 MB banks, so an access costs a 1 MB bank's energy (the wires
to the far banks are not counted: a lower bound for very large buffers). Below 8 KB, the
8 KB figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BANK_BYTES", "LayerMemory", "Residency", "SRAM_POINTS", "allocate",
           "buffer_pj_per_byte"]

#: (capacity in bytes, pJ per 64-bit read): Horowitz, ISSCC 2014, 45 nm.
SRAM_POINTS = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
#: The bank size of a larger buffer: the largest capacity with a cited figure.
BANK_BYTES = SRAM_POINTS[-1][0]


def buffer_pj_per_byte(capacity: int) -> float:
    """Energy of one byte of an access to an on-chip buffer of ``capacity`` bytes."""
    points = SRAM_POINTS
    size = min(max(capacity, points[0][0]), BANK_BYTES)
    for (c0, e0), (c1, e1) in zip(points, points[1:], strict=False):
        if size <= c1:
            slope = math.log(e1 / e0) / math.log(c1 / c0)
            return e0 * (size / c0) ** slope / 8
    raise AssertionError("unreachable: size is clamped to the last point")


@dataclass(frozen=True)
class LayerMemory:
    """The off-chip footprint of one layer step.

    ``input_bytes``: the activation operand(s) as traced (int8; for attention both operands);
    ``weight_bytes``: the constant weights (int8; 0 when both operands are activations);
    ``output_elements``: outputs per step; ``output_bits``: the signed width that holds every
    output of the trace exactly.
    """

    input_bytes: int
    weight_bytes: int
    output_elements: int
    output_bits: int

    @property
    def output_bytes(self) -> int:
        """Outputs stored at ``output_bits`` rounded up to whole bytes per element."""
        return self.output_elements * math.ceil(self.output_bits / 8)

    @property
    def state_bytes(self) -> int:
        """What a DIFF step keeps from the step before: its input and its outputs."""
        return self.input_bytes + self.output_bytes

    @classmethod
    def from_dict(cls, fields: dict) -> LayerMemory:
        return cls(**{key: int(fields[key]) for key in
                      ("input_bytes", "weight_bytes", "output_elements", "output_bits")})


@dataclass(frozen=True)
class Residency:
    """Which layers' weights and state stay on chip in one phase of steps."""

    weights: frozenset[int]
    state: frozenset[int]
    used_bytes: int


def allocate(capacity: int, layers: list[LayerMemory], needs_state: set[int] | frozenset[int],
             ) -> Residency:
    """The residency policy (module docstring): weights first, then the state of the layers
    in ``needs_state``, first-fit in layer order, each item whole."""
    free = capacity
    weights, state = set(), set()
    for index, layer in enumerate(layers):
        if 0 < layer.weight_bytes <= free:
            weights.add(index)
            free -= layer.weight_bytes
    for index, layer in enumerate(layers):
        if index in needs_state and layer.state_bytes <= free:
            state.add(index)
            free -= layer.state_bytes
    return Residency(frozenset(weights), frozenset(state), capacity - free)
