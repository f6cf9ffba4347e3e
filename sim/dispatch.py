"""Reference of the dispatcher's output: the exact lane groups of a tile.

The RTL's :class:`~ditto.hdl.dispatch.ZeroSkipDispatcher` must emit these groups, in this
order, bit for bit; ``cycles.simulate_ditto_tile`` gives the cycles they leave at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import DiffClass

from .encoding import Encoded

__all__ = ["LaneGroup", "LaneOp", "NULL_OP", "group_sum", "tile_groups"]


@dataclass(frozen=True)
class LaneOp:
    """One lane: ``operand`` (times ``2**split_shift`` when ``shift``) times weight row ``k``."""

    operand: int
    shift: int
    k: int


NULL_OP = LaneOp(0, 0, 0)


@dataclass(frozen=True)
class LaneGroup:
    lanes: tuple[LaneOp, ...]
    first: bool
    last: bool
    row: int


def _route(ops: list[LaneOp], lanes: int) -> tuple[LaneOp, ...]:
    """Pad to ``lanes`` and put a shifted operand on the even (shift-capable) lane of its
    pair. Each high part is followed by its low part, so no pair holds two."""
    ops = ops + [NULL_OP] * (lanes - len(ops))
    for p in range(0, lanes, 2):
        if ops[p + 1].shift:
            ops[p], ops[p + 1] = ops[p + 1], ops[p]
    return tuple(ops)


def tile_groups(encoded: Encoded, config: DittoConfig) -> list[LaneGroup]:
    """The lane groups of a tile whose rows are ``encoded`` (arrays ``[rows, k]``)."""
    classes, high, low = (np.asarray(a) for a in (encoded.classes, encoded.high, encoded.low))
    rows, k = classes.shape
    lanes, width = config.lanes, config.scan_width
    beats = max(1, -(-k // width))
    groups: list[LaneGroup] = []
    for r in range(rows):
        carry: list[LaneOp] = []
        first = True
        for b in range(beats):
            ops = list(carry)
            for n in range(b * width, min(k, (b + 1) * width)):
                cls = int(classes[r, n])
                if cls == DiffClass.LOW.value:
                    ops.append(LaneOp(int(low[r, n]), 0, n))
                elif cls == DiffClass.FULL.value:
                    ops += [LaneOp(int(high[r, n]), 1, n), LaneOp(int(low[r, n]), 0, n)]
            last = b == beats - 1
            complete = len(ops) // lanes
            if last:
                complete = max(1, -(-len(ops) // lanes))
            for g in range(complete):
                chunk = ops[g * lanes:(g + 1) * lanes]
                groups.append(LaneGroup(_route(chunk, lanes), first,
                                        last and g == complete - 1, r))
                first = False
            carry = [] if last else ops[complete * lanes:]
    return groups


def group_sum(group: LaneGroup, weights: np.ndarray, config: DittoConfig) -> np.ndarray:
    """What the PEs add for this group: ``sum operand << (shift * s) * weights[k]``, int64
    per output channel (``weights`` is ``[k, pes]``)."""
    total = np.zeros(weights.shape[1], dtype=np.int64)
    for op in group.lanes:
        total += (op.operand << (op.shift * config.split_shift)) * weights[op.k].astype(
            np.int64)
    return total
