"""Cycle model of the reference microarchitecture (DESIGN.md §4, docs/model.md).

One *tile* is ``rows`` output rows of ``pes`` channels over a reduction of ``k`` elements
(``k <= weight_depth``, ``rows <= max_rows``). Its timeline, counted from the cycle the command
is accepted (cycle 0):

1. cycles ``1 .. k``: the weight buffer loads one row of ``pes`` weights per cycle;
2. from cycle ``s = k + 1``: activation beats of ``scan_width`` elements, one row after the
   other, ``ceil(k / scan_width)`` beats per row, offered every cycle (no source stalls);
3. a beat accepted at cycle ``i`` is classified into the encoder register at ``i + 1``; in
   that cycle the packer appends its lane operands to the row's carry (fewer than ``lanes``
   operands) and pushes every completed lane group into the dispatch FIFO, if the FIFO,
   after this cycle's pop, has room for all of them; otherwise the beat waits there and the
   input stalls. A row's last beat also flushes the carry as a partial group and always
   pushes at least one group, which carries the end-of-row mark (an empty group if needed);
4. the FIFO hands one group per cycle to the PEs, from the cycle after its push;
5. a row leaves the core ``drain_latency`` cycles after its last group left the FIFO.

The tile's cycle count is the number of cycles from the command (cycle 0) to the last output
beat, inclusive. Writing ``a_j`` for the cycle beat ``j`` is pushed and ``P_j`` for the cycle
the next pushed group would leave the FIFO, with ``g_j`` the groups beat ``j`` completes and
``Q`` the FIFO capacity::

    a_j = max(a_{j-1} + 1, P_{j-1} + g_j - Q - 1)      (room in the FIFO)
    P_j = max(a_{j-1} + g_j + 2, P_{j-1} + g_j)

a max-plus linear recurrence, ``(a_j, P_j) = M_j (x) (a_{j-1}, P_{j-1})``, which
``_maxplus_reduce`` evaluates exactly as a tree of 2x2 max-plus products (vectorised).
``simulate_ditto_tile`` is the same machine cycle by cycle; tests hold them equal.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ditto.config import DittoConfig

__all__ = ["TileTiming", "beat_groups", "beat_ops", "dense_tile_cycles", "ditto_tile_cycles",
           "ditto_tiles_cycles", "ideal_tile_cycles", "simulate_ditto_tile"]

_NEG = -(1 << 40)  # max-plus "minus infinity" that survives a few additions in int64


def beat_ops(costs: np.ndarray, config: DittoConfig) -> np.ndarray:
    """Lane operands per beat.

    Parameters
    ----------
    costs : uint8 array ``[..., rows, k]``
        Lane slots per element (0, 1 or 2), as from ``encoding.lane_costs``.

    Returns
    -------
    int32 array ``[..., rows, beats]`` with ``beats = ceil(k / scan_width)``; the padding of
    a row's last beat costs nothing.
    """
    costs = np.asarray(costs)
    e = config.scan_width
    k = costs.shape[-1]
    beats = max(1, -(-k // e))
    if beats * e != k:
        pad = [(0, 0)] * (costs.ndim - 1) + [(0, beats * e - k)]
        costs = np.pad(costs, pad)
    return costs.reshape(*costs.shape[:-1], beats, e).sum(axis=-1, dtype=np.int32)


def beat_groups(ops: np.ndarray, config: DittoConfig) -> np.ndarray:
    """Lane groups each beat completes (and pushes), with the carry rule of the packer.

    ``ops`` is ``[..., rows, beats]``. A non-last beat completes
    ``floor(cum_j / lanes) - floor(cum_{j-1} / lanes)`` groups (``cum`` the row's operands so
    far). The row's last beat flushes the carry and pushes ``max(1, ceil((carry + n) /
    lanes))`` groups: the row's end mark rides on a group pushed by its last beat, an empty
    one when that beat leaves nothing else to push.
    """
    lanes = config.lanes
    cum = np.cumsum(ops, axis=-1, dtype=np.int64)
    groups = np.diff(cum // lanes, axis=-1, prepend=0)
    carry_in = (cum[..., -1] - ops[..., -1]) % lanes
    groups[..., -1] = np.maximum(1, -(-(carry_in + ops[..., -1]) // lanes))
    return groups


def _maxplus_reduce(groups: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Product ``M_{J-1} (x) ... (x) M_0`` along the last axis, as four arrays ``[...]``.

    ``M_j = [[1, g_j - Q - 1], [g_j + 2, g_j]]`` acting on ``(a, P)``.
    """
    g = groups.astype(np.int64)
    m00 = np.ones_like(g)
    m01 = g - capacity - 1
    m10 = g + 2
    m11 = g.copy()
    while m00.shape[-1] > 1:
        if m00.shape[-1] % 2:  # pad with the max-plus identity
            pad = [(0, 0)] * (g.ndim - 1) + [(0, 1)]
            m00 = np.pad(m00, pad, constant_values=0)
            m01 = np.pad(m01, pad, constant_values=_NEG)
            m10 = np.pad(m10, pad, constant_values=_NEG)
            m11 = np.pad(m11, pad, constant_values=0)
        # Later (odd) matrix applied after the earlier (even) one: C = B (x) A.
        a00, a01, a10, a11 = m00[..., 0::2], m01[..., 0::2], m10[..., 0::2], m11[..., 0::2]
        b00, b01, b10, b11 = m00[..., 1::2], m01[..., 1::2], m10[..., 1::2], m11[..., 1::2]
        m00 = np.maximum(b00 + a00, b01 + a10)
        m01 = np.maximum(b00 + a01, b01 + a11)
        m10 = np.maximum(b10 + a00, b11 + a10)
        m11 = np.maximum(b10 + a01, b11 + a11)
        # Keep "minus infinity" from drifting towards overflow.
        m00, m01, m10, m11 = (np.maximum(m, _NEG) for m in (m00, m01, m10, m11))
    return m00[..., 0], m01[..., 0], m10[..., 0], m11[..., 0]


def _first_beat_cycle(k: int, load_weights: bool) -> int:
    return 1 + (k if load_weights else 0)


def ditto_tiles_cycles(costs: np.ndarray, config: DittoConfig, *,
                       load_weights: bool = True) -> np.ndarray:
    """Cycle counts of a batch of equally shaped tiles.

    Parameters
    ----------
    costs : uint8 array ``[tiles, rows, k]``
        Lane slots per element of each tile.

    Returns
    -------
    int64 array ``[tiles]``.
    """
    costs = np.asarray(costs)
    if costs.ndim != 3:
        raise ValueError(f"costs must be [tiles, rows, k], got shape {costs.shape}")
    tiles, rows, k = costs.shape
    _check_tile(rows, k, config)
    groups = beat_groups(beat_ops(costs, config), config).reshape(tiles, -1)
    m00, m01, m10, m11 = _maxplus_reduce(groups, config.dispatch_capacity)
    a_init = _first_beat_cycle(k, load_weights)
    p_final = np.maximum(m10 + a_init, m11 + _NEG)
    last_pop = p_final - 1
    return last_pop + config.drain_latency + 1


def ditto_tile_cycles(costs: np.ndarray, config: DittoConfig, *,
                      load_weights: bool = True) -> int:
    """Cycle count of one tile with lane costs ``costs[rows, k]``."""
    return int(ditto_tiles_cycles(np.asarray(costs)[None], config,
                                  load_weights=load_weights)[0])


def dense_tile_cycles(rows: int, k: int, config: DittoConfig, *,
                      load_weights: bool = True) -> int:
    """Cycle count of one DenseCore tile: ``dense_macs`` elements per beat, one beat a cycle."""
    _check_tile(rows, k, config)
    beats = rows * -(-k // config.dense_macs)
    last_beat = _first_beat_cycle(k, load_weights) + beats - 1
    return last_beat + config.dense_drain_latency + 1


def ideal_tile_cycles(lane_slots: int, config: DittoConfig) -> int:
    """Lane-bound lower bound of a tile's compute: ``ceil(lane slots / lanes)``."""
    return -(-int(lane_slots) // config.lanes)


def _check_tile(rows: int, k: int, config: DittoConfig) -> None:
    if not 1 <= rows <= config.max_rows:
        raise ValueError(f"tile of {rows} rows: must be 1..max_rows={config.max_rows}")
    if not 1 <= k <= config.weight_depth:
        raise ValueError(f"tile reduction k={k}: must be 1..weight_depth={config.weight_depth}")


@dataclass(frozen=True)
class TileTiming:
    """What the cycle-by-cycle simulation of one tile observed."""

    cycles: int              # command to last output, inclusive
    row_done: list[int]      # cycle each row's output beat appears
    groups: int              # lane groups issued to the PEs
    stall_cycles: int        # cycles a classified beat waited for room in the FIFO
    pop_cycles: list[int]    # cycle each lane group left the dispatch FIFO
    push_cycles: list[int]   # cycle each beat was pushed (accepted by the packer)


def simulate_ditto_tile(costs: np.ndarray, config: DittoConfig, *,
                        load_weights: bool = True) -> TileTiming:
    """The reference microarchitecture, one cycle at a time (slow; the executable spec).

    Within a cycle: the FIFO pops its head group (if it has one pushed in an earlier cycle),
    then the encoder register's beat is pushed if the FIFO has room for all its groups after
    that pop, and then the input register takes the next beat if it was freed.
    """
    costs = np.asarray(costs)
    rows, k = costs.shape
    _check_tile(rows, k, config)
    ops = beat_ops(costs, config)
    lanes, capacity = config.lanes, config.dispatch_capacity
    beats_per_row = ops.shape[1]
    beats = [(r, b, int(ops[r, b]), b == beats_per_row - 1)
             for r in range(rows) for b in range(beats_per_row)]

    fifo: deque[tuple[int, bool]] = deque()   # (row, ends_row) per group
    encoder = None                            # beat held in the encoder register
    next_beat = 0
    carry = 0
    cycle = _first_beat_cycle(k, load_weights) - 1
    row_done: list[int] = []
    pops: list[int] = []
    pushes: list[int] = []
    issued = stalls = 0
    while len(row_done) < rows:
        cycle += 1
        # FIFO pop: groups pushed in earlier cycles only.
        if fifo:
            row, ends_row = fifo.popleft()
            issued += 1
            pops.append(cycle)
            if ends_row:
                row_done.append(cycle + config.drain_latency)
        # Packer: push the encoder register's groups if they all fit.
        pushed = False
        if encoder is not None:
            row, _, n, last = encoder
            total = carry + n
            complete = total // lanes
            new_carry = total % lanes
            if last:
                complete = max(1, -(-total // lanes))
                new_carry = 0
            if len(fifo) + complete <= capacity:
                fifo.extend((row, last and i == complete - 1) for i in range(complete))
                carry = new_carry
                pushed = True
                pushes.append(cycle)
            else:
                stalls += 1
        # Input register: accept the next beat when the encoder register is free.
        if encoder is None or pushed:
            encoder = beats[next_beat] if next_beat < len(beats) else None
            next_beat += encoder is not None
    return TileTiming(cycles=row_done[-1] + 1, row_done=row_done, groups=issued,
                      stall_cycles=stalls, pop_cycles=pops, push_cycles=pushes)
