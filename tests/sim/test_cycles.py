"""Cycle model: the closed form equals the cycle-by-cycle machine; hand-countable cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ditto import pipeline
from ditto.config import DittoConfig, preset
from ditto.sim.cycles import (
    beat_groups,
    beat_ops,
    dense_tile_cycles,
    ditto_tile_cycles,
    ditto_tiles_cycles,
    fixed_tile_cycles,
    ideal_tile_cycles,
    simulate_ditto_tile,
)

SMALL = DittoConfig(name="small", pes=2, scan_width=4, weight_depth=64, max_rows=32,
                    max_reduction=1024)


@st.composite
def tiles(draw):
    lanes = draw(st.sampled_from([2, 4, 6]))
    scan_width = draw(st.sampled_from([1, 2, 4, 8, 16]))
    per_cycle = draw(st.integers(1, 4))
    config = SMALL.replace(lanes=lanes, scan_width=scan_width, dispatch_groups=per_cycle,
                           dispatch_depth=per_cycle + draw(st.integers(0, 8)))
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


def first_push_cycle(config, k=None):
    """The cycle the first beat reaches the packer: after the weights (when ``k`` is given)
    and the stages in front of the packer, counted from the command at cycle 0."""
    return 1 + (k or 0) + pipeline.ENCODER + pipeline.PACKER


def test_all_zero_tile_is_scan_bound():
    # 3 rows x 2 beats: one empty group per row, pushed by the row's last beat; the beats
    # reach the packer one a cycle.
    config = SMALL
    costs = np.zeros((3, 8), np.uint8)
    k, beats = 8, 6
    last_push = first_push_cycle(config, k) + beats - 1
    last_pop = last_push + pipeline.DISPATCH_FIFO
    expected = last_pop + pipeline.WEIGHT_READ + pipeline.PE + pipeline.ACCUMULATOR + 1
    assert ditto_tile_cycles(costs, config) == expected
    assert simulate_ditto_tile(costs, config).row_done == [
        expected - 1 - 4, expected - 1 - 2, expected - 1]


def test_full_rows_are_lane_bound_after_the_fifo_fills():
    config = SMALL  # 4 lanes, 4 elements a beat -> every FULL beat completes 2 groups
    rows, k = 16, 64
    costs = np.full((rows, k), 2, np.uint8)
    groups = rows * k * 2 // config.lanes
    cycles = ditto_tile_cycles(costs, config, load_weights=False)
    # Groups leave one per cycle from the cycle after the first push, without a gap.
    first_pop = first_push_cycle(config) + pipeline.DISPATCH_FIFO
    assert cycles == first_pop + groups - 1 + config.drain_latency + 1
    assert simulate_ditto_tile(costs, config, load_weights=False).stall_cycles > 0


@pytest.mark.parametrize("per_cycle", [1, 2, 3, 4])
def test_a_beat_is_held_one_cycle_per_chunk_of_dispatch_groups(per_cycle):
    # Beat 0: 8 FULL elements = 16 operands = 4 groups; beat 1 (the row's last) is empty
    # and pushes the row's empty last group.
    config = SMALL.replace(scan_width=8, dispatch_groups=per_cycle, dispatch_depth=16)
    costs = np.array([[2] * 8 + [0] * 8], np.uint8)
    timing = simulate_ditto_tile(costs, config, load_weights=False)
    start = first_push_cycle(config)
    chunks = -(-4 // per_cycle)
    assert timing.packer_cycles == [start, start + chunks]
    assert timing.push_cycles == list(range(start, start + chunks + 1))
    first_pop = start + pipeline.DISPATCH_FIFO
    assert timing.pop_cycles == list(range(first_pop, first_pop + 5))
    assert timing.stall_cycles == 0
    assert ditto_tile_cycles(costs, config, load_weights=False) == timing.cycles


def test_a_cycle_pushes_all_its_groups_or_none():
    # FIFO of 4 with 2 groups a cycle; room is counted before the cycle's pop, in reserved
    # pop slots: a chunk pushed at cycle t reserves the next free slots from
    # t + DISPATCH_FIFO (1) on, one a cycle. Counted by hand, from s = the first push:
    # s: push, slots s+1, s+2 | s+1: 2 reserved, push, slots s+3, s+4 | s+2: 3 reserved, no
    # room | s+3: push, slots s+5, s+6 | s+4: no room | s+5: push (the last chunk).
    assert pipeline.DISPATCH_FIFO == 1, "the hand count below assumes it"
    config = SMALL.replace(scan_width=8, dispatch_groups=2, dispatch_depth=4)
    costs = np.array([[2] * 8 + [2] * 8], np.uint8)  # 2 beats of 4 groups
    timing = simulate_ditto_tile(costs, config, load_weights=False)
    s = first_push_cycle(config)
    assert timing.push_cycles == [s, s + 1, s + 3, s + 5]
    assert timing.stall_cycles == 2
    assert timing.pop_cycles == list(range(s + 1, s + 9))
    assert ditto_tile_cycles(costs, config, load_weights=False) == timing.cycles


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
    # The first group leaves at the earliest DISPATCH_FIFO after the first push; a row
    # leaves drain_latency after its last group.
    overhead = first_push_cycle(config) + pipeline.DISPATCH_FIFO + config.drain_latency
    beats = beat_ops(costs, config).size
    assert cycles >= ideal_tile_cycles(int(costs.sum()), config) + overhead
    assert cycles >= beats + overhead


def test_fixed_tile_cycles_is_what_a_one_group_tile_costs_beyond_its_group():
    # One row, one beat without operands: one (empty) group, and nothing waits.
    config = SMALL
    timing = simulate_ditto_tile(np.zeros((1, 3), np.uint8), config, load_weights=False)
    assert timing.groups == 1 and timing.stall_cycles == 0
    assert timing.cycles == fixed_tile_cycles(config) + 1


def test_dense_tile_counts_one_beat_of_dense_macs_per_cycle():
    config = preset("default")
    rows, k = 10, 9  # 5 beats per row with 2 MACs
    last_beat = (1 + k) + rows * 5 - 1
    expected = last_beat + pipeline.WEIGHT_READ + pipeline.PE + pipeline.ACCUMULATOR + 1
    assert dense_tile_cycles(rows, k, config) == expected


def test_tile_limits_are_enforced():
    config = preset("tiny")
    with pytest.raises(ValueError, match="max_rows=16"):
        ditto_tile_cycles(np.zeros((17, 4), np.uint8), config)
    with pytest.raises(ValueError, match="weight_depth=64"):
        dense_tile_cycles(1, 65, config)
