"""Cycle model: the closed form equals the cycle-by-cycle machine; hand-countable cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ditto.config import DittoConfig, preset
from ditto.sim.cycles import (
    beat_groups,
    beat_ops,
    dense_tile_cycles,
    ditto_tile_cycles,
    ditto_tiles_cycles,
    ideal_tile_cycles,
    simulate_ditto_tile,
)

SMALL = DittoConfig(name="small", pes=2, scan_width=4, weight_depth=64, max_rows=32,
                    max_reduction=1024)


@st.composite
def tiles(draw):
    lanes = draw(st.sampled_from([2, 4, 6]))
    scan_width = draw(st.sampled_from([1, 2, 4, 8, 16]))
    config = SMALL.replace(lanes=lanes, scan_width=scan_width)
    config = config.replace(dispatch_depth=config.max_groups_per_beat
                            + draw(st.integers(0, 8)))
    rows, k = draw(st.integers(1, 12)), draw(st.integers(1, 64))
    weights = draw(st.tuples(*[st.floats(0.01, 1.0)] * 3))
    seed = draw(st.integers(0, 2**32 - 1))
    p = np.array(weights) / sum(weights)
    costs = np.random.default_rng(seed).choice(3, size=(rows, k), p=p).astype(np.uint8)
    return config, costs, draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(tiles())
def test_closed_form_equals_cycle_by_cycle_machine(tile):
    config, costs, load_weights = tile
    timing = simulate_ditto_tile(costs, config, load_weights=load_weights)
    assert ditto_tile_cycles(costs, config, load_weights=load_weights) == timing.cycles
    assert timing.groups == int(beat_groups(beat_ops(costs, config), config).sum())


def test_batched_tiles_equal_single_tiles():
    rng = np.random.default_rng(3)
    costs = rng.choice(3, size=(5, 9, 40), p=[0.7, 0.2, 0.1]).astype(np.uint8)
    batch = ditto_tiles_cycles(costs, SMALL)
    assert batch.tolist() == [ditto_tile_cycles(c, SMALL) for c in costs]


def test_all_zero_tile_is_scan_bound():
    # 3 rows x 2 beats: one empty group per row; beats arrive one a cycle.
    config = SMALL
    costs = np.zeros((3, 8), np.uint8)
    k, beats = 8, 6
    # weights 1..8, beats accepted 9..14, last beat pushed at 15, popped at 16, output at
    # 16 + drain; cycles count 0..that inclusive.
    expected = (1 + k) + beats + 1 + config.drain_latency + 1
    assert ditto_tile_cycles(costs, config) == expected
    assert simulate_ditto_tile(costs, config).row_done == [
        expected - 1 - 4, expected - 1 - 2, expected - 1]


def test_full_rows_are_lane_bound_after_the_fifo_fills():
    config = SMALL  # 4 lanes, 4 elements a beat -> every FULL beat completes 2 groups
    rows, k = 16, 64
    costs = np.full((rows, k), 2, np.uint8)
    groups = rows * k * 2 // config.lanes
    cycles = ditto_tile_cycles(costs, config, load_weights=False)
    # Beat 0 accepted at cycle 1, pushed at 2; groups then leave one per cycle from cycle 3.
    assert cycles == 3 + groups - 1 + config.drain_latency + 1
    assert simulate_ditto_tile(costs, config, load_weights=False).stall_cycles > 0


def test_carry_packs_operands_across_beats_of_a_row():
    # Each beat of 4 elements has one LOW: 4 beats -> one full group of 4 lanes.
    costs = np.array([[1, 0, 0, 0] * 4], np.uint8)
    groups = beat_groups(beat_ops(costs, SMALL), SMALL)
    assert groups.tolist() == [[0, 0, 0, 1]]


def test_row_end_needs_its_own_group_when_the_last_beat_is_empty():
    costs = np.array([[1, 1, 1, 1, 0, 0, 0, 0]], np.uint8)
    assert beat_groups(beat_ops(costs, SMALL), SMALL).tolist() == [[1, 1]]


def test_rows_never_share_a_group():
    costs = np.array([[1, 0, 0, 0], [1, 0, 0, 0]], np.uint8)
    assert beat_groups(beat_ops(costs, SMALL), SMALL).tolist() == [[1], [1]]


@settings(max_examples=100, deadline=None)
@given(tiles())
def test_cycles_are_at_least_the_lane_bound_and_the_scan_bound(tile):
    config, costs, _ = tile
    cycles = ditto_tile_cycles(costs, config, load_weights=False)
    overhead = 3 + config.drain_latency  # first pop at cycle 3; drain after the last pop
    beats = beat_ops(costs, config).size
    assert cycles >= ideal_tile_cycles(int(costs.sum()), config) + overhead
    assert cycles >= beats + overhead


def test_dense_tile_counts_one_beat_of_dense_macs_per_cycle():
    config = preset("default")
    rows, k = 10, 9  # 5 beats per row with 2 MACs
    assert dense_tile_cycles(rows, k, config) == (1 + k) + rows * 5 + config.dense_drain_latency


def test_tile_limits_are_enforced():
    config = preset("tiny")
    with pytest.raises(ValueError, match="max_rows=16"):
        ditto_tile_cycles(np.zeros((17, 4), np.uint8), config)
    with pytest.raises(ValueError, match="weight_depth=64"):
        dense_tile_cycles(1, 65, config)
