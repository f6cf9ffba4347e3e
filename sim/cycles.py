"""Cycle model of the reference microarchitecture (docs/model.md §3).

One *tile* is ``rows`` output rows of ``pes`` channels over a reduction of ``k`` elements
(``k <= weight_depth``, ``rows <= max_rows``). Its timeline, counted from the cycle the command
is accepted (cycle 0):

1. cycles ``1 .. k``: the weight buffer loads one row of ``pes`` weights per cycle;
2. from cycle ``s = k + 1``: activation beats of ``scan_width`` elements, one row after the
   other, ``ceil(k / scan_width)`` beats per row, offered every cycle (no source stalls);
3. a beat accepted at cycle ``i`` reaches the packer at ``i + front_latency`` at the
   earliest (the encoder's register and the dispatcher's, ``ditto.pipeline``). The packer
   appends the beat's lane operands to the row's carry (fewer than ``lanes`` operands) and
   pushes the completed lane groups into the dispatch FIFO, at most ``G =
   dispatch_groups`` of them per cycle (a *chunk*), all of a chunk or none: a chunk is
   pushed only if the FIFO has room for all of it *before* this cycle's pop (so that no
   path runs from the PEs' handshake into the packer), counting the pop slots the groups
   pushed so far reserve (one a cycle, each at the earliest ``DISPATCH_FIFO`` cycles after
   its push). The beat is held until its last chunk is pushed, so it stays ``max(1, ceil(g
   / G))`` cycles when it completes ``g`` groups (``G`` groups a chunk, then the rest). A
   row's last beat also flushes the carry as a partial group and always pushes at least
   one group, which carries the end-of-row mark (an empty group if needed). The next beat
   is in the packer the cycle after;
4. the FIFO hands one group per cycle to the PEs, from ``DISPATCH_FIFO`` cycles after its
   push;
5. a row leaves the core ``drain_latency`` cycles after its last group left the FIFO.

The tile's cycle count is the number of cycles from the command (cycle 0) to the last output
beat, inclusive. Writing ``a_j`` for the cycle chunk ``j`` is pushed, ``P_j`` for the cycle
after the last pop slot reserved so far, ``g_j`` for the groups of chunk ``j`` and ``Q`` for
the FIFO capacity::

    a_j = max(a_{j-1} + 1, P_{j-1} + g_j - Q)          (room in the FIFO)
    P_j = max(a_j + D, P_{j-1}) + g_j                    (D = DISPATCH_FIFO; g_j > 0)
        = max(a_{j-1} + g_j + 1 + D, P_{j-1} + max(g_j, 2 g_j - Q + D))
    P_j = P_{j-1}                                        (a chunk without groups)

a max-plus linear recurrence, ``(a_j, P_j) = M(g_j) (x) (a_{j-1}, P_{j-1})``. A beat's chunks
multiply to one matrix per beat (``M(r) (x) M(G)^(c-1)``, from a table of powers), and
``_maxplus_reduce`` multiplies the beats' matrices exactly as a tree of 2x2 max-plus
products (vectorised). ``simulate_ditto_tile`` is the same machine cycle by cycle; tests
hold them equal.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ditto import pipeline
from ditto.config import DittoConfig

__all__ = ["TileTiming", "beat_groups", "beat_ops", "dense_tile_counters", "dense_tile_cycles",
           "ditto_tile_counters", "ditto_tile_cycles", "ditto_tiles_cycles", "fixed_tile_cycles",
           "ideal_tile_cycles", "simulate_ditto_tile"]

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


def _chunk_matrix(g: np.ndarray, capacity: int) -> tuple[np.ndarray, ...]:
    """``M(g)``: one push of ``g`` groups, acting on ``(a, P)`` (see the module docstring).
    A chunk without groups leaves ``P`` as it was."""
    g = np.asarray(g, dtype=np.int64)
    latency = pipeline.DISPATCH_FIFO
    some = g > 0
    return (np.ones_like(g), np.where(some, g - capacity, _NEG),
            np.where(some, g + 1 + latency, _NEG),
            np.where(some, np.maximum(g, 2 * g - capacity + latency), 0))


def _maxplus_product(b, a):
    """``B (x) A`` (A applied first) for stacks of 2x2 max-plus matrices given as four
    arrays each."""
    a00, a01, a10, a11 = a
    b00, b01, b10, b11 = b
    product = (np.maximum(b00 + a00, b01 + a10), np.maximum(b00 + a01, b01 + a11),
               np.maximum(b10 + a00, b11 + a10), np.maximum(b10 + a01, b11 + a11))
    # Keep "minus infinity" from drifting towards overflow.
    return tuple(np.maximum(m, _NEG) for m in product)


def _beat_matrices(groups: np.ndarray, config: DittoConfig) -> tuple[np.ndarray, ...]:
    """Per beat, the product of its chunks' matrices: ``c = max(1, ceil(g / G))`` chunks,
    ``G`` groups each but the last, which pushes the rest (0 for a beat without groups)."""
    per_cycle, capacity = config.dispatch_groups, config.dispatch_depth
    g = groups.astype(np.int64)
    chunks = np.maximum(1, -(-g // per_cycle))
    final = _chunk_matrix(g - (chunks - 1) * per_cycle, capacity)
    # powers[q] = M(G)^q, q = 0 .. most chunks - 1.
    step = _chunk_matrix(np.int64(per_cycle), capacity)
    powers = [(np.int64(0), np.int64(_NEG), np.int64(_NEG), np.int64(0))]
    for _ in range(int(chunks.max(initial=1)) - 1):
        powers.append(_maxplus_product(step, powers[-1]))
    table = [np.array([p[i] for p in powers], dtype=np.int64) for i in range(4)]
    earlier = tuple(t[chunks - 1] for t in table)
    return _maxplus_product(final, earlier)


def _maxplus_reduce(matrices: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Product ``M_{J-1} (x) ... (x) M_0`` along the last axis, as four arrays ``[...]``."""
    m00, m01, m10, m11 = matrices
    while m00.shape[-1] > 1:
        if m00.shape[-1] % 2:  # pad with the max-plus identity
            pad = [(0, 0)] * (m00.ndim - 1) + [(0, 1)]
            m00 = np.pad(m00, pad, constant_values=0)
            m01 = np.pad(m01, pad, constant_values=_NEG)
            m10 = np.pad(m10, pad, constant_values=_NEG)
            m11 = np.pad(m11, pad, constant_values=0)
        # Later (odd) matrix applied after the earlier (even) one.
        earlier = (m00[..., 0::2], m01[..., 0::2], m10[..., 0::2], m11[..., 0::2])
        later = (m00[..., 1::2], m01[..., 1::2], m10[..., 1::2], m11[..., 1::2])
        m00, m01, m10, m11 = _maxplus_product(later, earlier)
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
    _, _, m10, m11 = _maxplus_reduce(_beat_matrices(groups, config))
    # (a, P) before the first chunk: a = the cycle before the first beat can be pushed.
    a_init = _first_beat_cycle(k, load_weights) + config.front_latency - 1
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
    return last_beat + config.drain_latency + 1


def ditto_tile_counters(costs: np.ndarray, config: DittoConfig, *,
                        load_weights: bool = True) -> dict[str, int]:
    """Every performance counter DittoCore reports for one tile with lane costs
    ``costs[rows, k]``, with sources always valid and outputs always ready: ``cycles`` (the
    closed form), ``groups`` and ``stall_cycles`` (the cycle-by-cycle machine), and the
    class counts ``elements``, ``zero``, ``low``, ``full``, ``lane_slots``."""
    costs = np.asarray(costs)
    timing = simulate_ditto_tile(costs, config, load_weights=load_weights)
    low, full = int((costs == 1).sum()), int((costs == 2).sum())
    return {"cycles": ditto_tile_cycles(costs, config, load_weights=load_weights),
            "elements": int(costs.size), "zero": int(costs.size) - low - full, "low": low,
            "full": full, "lane_slots": low + 2 * full, "groups": timing.groups,
            "stall_cycles": timing.stall_cycles}


def dense_tile_counters(rows: int, k: int, config: DittoConfig, *,
                        load_weights: bool = True) -> dict[str, int]:
    """DenseCore's counters for one tile (as :func:`ditto_tile_counters`): every element
    counts as FULL, every beat as a group of ``dense_macs`` lane slots, nothing stalls."""
    beats = rows * -(-k // config.dense_macs)
    return {"cycles": dense_tile_cycles(rows, k, config, load_weights=load_weights),
            "elements": rows * k, "zero": 0, "low": 0, "full": rows * k,
            "lane_slots": beats * config.dense_macs, "groups": beats, "stall_cycles": 0}


def fixed_tile_cycles(config: DittoConfig) -> int:
    """Cycles of a DittoCore tile (without weight loading) that no lane group fills: from
    the command to the earliest first pop, plus the drain after the last pop. A tile of
    ``n`` groups popped back to back takes ``fixed_tile_cycles + n - 1 + 1`` cycles."""
    return (_first_beat_cycle(0, False) + config.front_latency + pipeline.DISPATCH_FIFO
            + config.drain_latency)


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
    stall_cycles: int        # cycles the packer held groups that found no room in the FIFO
    pop_cycles: list[int]    # cycle each lane group left the dispatch FIFO
    stage_cycles: list[list[int]]  # per register in front of the packer (the encoder's,
                                   # then the dispatcher's), the first cycle each beat was
                                   # in it; the last is the packer's

    @property
    def packer_cycles(self) -> list[int]:
        """The first cycle each beat was in the packer."""
        return self.stage_cycles[-1]

    push_cycles: list[int]   # cycle each chunk was pushed (a beat without groups: one
                             # chunk of none)


def simulate_ditto_tile(costs: np.ndarray, config: DittoConfig, *,
                        load_weights: bool = True) -> TileTiming:
    """The reference microarchitecture, one cycle at a time (slow; the executable spec).

    Within a cycle: the FIFO pops its head group (if it was pushed at least
    ``DISPATCH_FIFO`` cycles earlier); the packer pushes its beat's next chunk
    (``dispatch_groups`` groups, or the rest) if it has room for all of it before that pop,
    counting as occupied both the groups in the FIFO and the pop slots reserved by the
    groups pushed so far (a group reserves the first free slot from ``DISPATCH_FIFO``
    cycles after its push on; with the output always ready, the slots are the pops); then
    every stage in front of the packer (``front_latency`` registers, the first of which
    takes beats from the source) moves on where the stage after it is free or freed.
    """
    costs = np.asarray(costs)
    rows, k = costs.shape
    _check_tile(rows, k, config)
    ops = beat_ops(costs, config)
    lanes, capacity = config.lanes, config.dispatch_depth
    per_cycle = config.dispatch_groups
    beats_per_row = ops.shape[1]
    beats = [(r, b, int(ops[r, b]), b == beats_per_row - 1)
             for r in range(rows) for b in range(beats_per_row)]

    fifo: deque[tuple[int, bool, int]] = deque()   # (row, ends_row, push cycle) per group
    stages = [None] * config.front_latency    # stages[-1] is the packer's beat
    pending = 0                               # groups of the packer's beat not yet pushed
    # The cycle after the last pop slot the pushed groups reserve, one pop a cycle from
    # DISPATCH_FIFO cycles after their push on (the FIFO's room is counted in these slots).
    next_slot = 0
    next_beat = 0
    carry = 0
    cycle = _first_beat_cycle(k, load_weights) - 1
    row_done: list[int] = []
    pops: list[int] = []
    pushes: list[int] = []
    stage_cycles: list[list[int]] = [[] for _ in stages]
    issued = stalls = 0
    while len(row_done) < rows:
        cycle += 1
        occupancy = len(fifo)
        reserved = max(next_slot - cycle, 0)
        # FIFO pop: a group pushed at least DISPATCH_FIFO cycles ago.
        if fifo and fifo[0][2] + pipeline.DISPATCH_FIFO <= cycle:
            row, ends_row, _ = fifo.popleft()
            issued += 1
            pops.append(cycle)
            if ends_row:
                row_done.append(cycle + config.drain_latency)
        # Packer: push the held beat's next chunk if all of it fits.
        done = False
        if stages[-1] is not None:
            row, _, _, last = stages[-1]
            chunk = min(per_cycle, pending)
            if chunk == 0 or (reserved + chunk <= capacity and occupancy + chunk <= capacity):
                pending -= chunk
                if chunk:
                    next_slot = max(cycle + pipeline.DISPATCH_FIFO, next_slot) + chunk
                fifo.extend((row, last and pending == 0 and i == chunk - 1, cycle)
                            for i in range(chunk))
                pushes.append(cycle)
                done = pending == 0
            else:
                stalls += 1
        # Stages in front of the packer: each takes the beat of the stage before it (the
        # first: the next beat of the source) when it is empty or its beat moves on.
        moves = [False] * len(stages)
        moving = stages[-1] is None or done
        for index in reversed(range(len(stages))):
            moving = moving or stages[index] is None
            moves[index] = moving
        for index in reversed(range(len(stages))):
            if not moves[index]:
                continue
            if index:
                stages[index] = stages[index - 1]
            else:
                stages[0] = beats[next_beat] if next_beat < len(beats) else None
                next_beat += stages[0] is not None
            if stages[index] is not None:
                stage_cycles[index].append(cycle + 1)
        if moves[-1] and stages[-1] is not None:
            _, _, n, last = stages[-1]
            total = carry + n
            pending = max(1, -(-total // lanes)) if last else total // lanes
            carry = 0 if last else total % lanes
    return TileTiming(cycles=row_done[-1] + 1, row_done=row_done, groups=issued,
                      stall_cycles=stalls, pop_cycles=pops, stage_cycles=stage_cycles,
                      push_cycles=pushes)
