"""Throughput of the model's hot paths, in elements per second (a benchmark, not a test)."""

from __future__ import annotations

import time

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import Mode

from .cycles import ditto_tiles_cycles
from .encoding import class_counts, lane_costs, operand_values

__all__ = ["run_benchmarks"]


def _best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_benchmarks(config: DittoConfig, *, elements: int = 1 << 24, repeats: int = 5,
                   seed: int = 0) -> list[tuple[str, float]]:
    """Time classification, lane accounting and the cycle model on ``elements`` int8 pairs
    with realistic similarity (about 85 % of differences zero). Single-threaded NumPy.

    Returns ``(name, elements per second)`` pairs (best of ``repeats``).
    """
    rng = np.random.default_rng(seed)
    x_prev = rng.integers(-128, 128, elements, dtype=np.int8)
    step = rng.integers(-6, 7, elements, dtype=np.int16) * (rng.random(elements) < 0.15)
    x_cur = np.clip(x_prev + step, -128, 127).astype(np.int8)
    values = operand_values(x_cur, x_prev, Mode.DIFF, config)
    if elements < 512:
        raise ValueError(f"elements={elements}: need at least 512 (one 512-element row)")
    # Tiles of up to max_rows rows of 512 elements, as many whole tiles as fit.
    rows_per_tile = min(elements // 512, config.max_rows)
    tile_elements = rows_per_tile * 512
    tiles = lane_costs(values, config)[: elements // tile_elements * tile_elements].reshape(
        -1, rows_per_tile, 512)

    def classify():
        class_counts(operand_values(x_cur, x_prev, Mode.DIFF, config), config)

    def account():
        lane_costs(operand_values(x_cur, x_prev, Mode.DIFF, config), config).sum(
            dtype=np.int64)

    def cycle_model():
        ditto_tiles_cycles(tiles, config.replace(weight_depth=max(512, config.weight_depth)))

    return [(name, elements / _best_of(repeats, fn)) for name, fn in (
        ("classification (difference + ZERO/LOW/FULL/low4 counts)", classify),
        ("lane accounting (difference + per-element lane slots + sum)", account),
        ("cycle model (beats, groups, max-plus FIFO recurrence)", cycle_model),
    )]
