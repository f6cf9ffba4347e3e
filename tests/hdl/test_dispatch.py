"""ZeroSkipDispatcher (Amaranth simulator): the exact groups of the reference, at the exact
push and pop cycles of the cycle-by-cycle machine, never losing or reordering work."""

import numpy as np
import pytest

from ditto import pipeline
from ditto.config import DittoConfig, preset
from ditto.hdl.dispatch import ZeroSkipDispatcher
from ditto.hdl.encoding import encoder_output_layout
from ditto.sim.cycles import simulate_ditto_tile
from ditto.sim.dispatch import LaneGroup, LaneOp, group_sum, tile_groups
from ditto.sim.encoding import encode_values, lane_costs
from ditto.verif.amaranth_sim import run_testbench
from ditto.verif.vectors import block_cost_sums

SMALL = DittoConfig(name="small", pes=2, scan_width=4, weight_depth=64, max_rows=16,
                    max_reduction=1024)


def random_values(rng, rows, k, p):
    """Values of a tile with class probabilities p = (zero, low, full)."""
    cls = rng.choice(3, size=(rows, k), p=p)
    low = rng.integers(-16, 16, (rows, k))
    low[low == 0] = 1
    full = rng.integers(16, 256, (rows, k)) * rng.choice([-1, 1], (rows, k))
    return np.where(cls == 0, 0, np.where(cls == 1, low, full))


def beats_of(encoded, config):
    """The encoder's output beats for a tile (padding elements are ZERO)."""
    layout = encoder_output_layout(config)
    rows, k = encoded.classes.shape
    width = config.scan_width
    nbeats = -(-k // width)
    beats = []
    for r in range(rows):
        for b in range(nbeats):
            cols = range(b * width, (b + 1) * width)
            pick = [(int(encoded.classes[r, c]), int(encoded.high[r, c]),
                     int(encoded.low[r, c])) if c < k else (0, 0, 0) for c in cols]
            # A class's value is its lane cost (ZERO 0, LOW 1, FULL 2).
            sums = block_cost_sums(np.array([[p[0] for p in pick]]), config)
            beats.append(layout.const({"cls": [p[0] for p in pick],
                                       "high": [p[1] for p in pick],
                                       "low": [p[2] for p in pick],
                                       **{name: value[0].tolist()
                                          for name, value in sums.items()},
                                       "last": int(b == nbeats - 1)}))
    return beats


def run_dispatcher(config, beats, ready=None):
    """Drive ``beats`` (always valid), collect groups; returns (groups, the cycles each beat
    was accepted, pop cycles, cycles with ``stalled``)."""
    dut = ZeroSkipDispatcher(config=config)
    got, accepts, pops = [], [], []
    stalls = 0
    ready = ready or (lambda cycle: True)

    async def bench(ctx):
        nonlocal stalls
        index, cycle, idle = 0, 0, 0
        # After the last beat: until nothing has left for long enough to drain the packer.
        while index < len(beats) or idle <= pipeline.PACKER + pipeline.DISPATCH_FIFO:
            idle = idle + 1 if index == len(beats) and not ctx.get(dut.o.valid) else 0
            assert cycle < 100 * (len(beats) + 10), "dispatcher hangs"
            # i.ready is a register: this cycle's i.valid and o.ready do not move it.
            seen = set()
            for flip in (True, False):
                ctx.set(dut.i.valid, (index < len(beats)) != flip)
                ctx.set(dut.o.ready, bool(ready(cycle)) != flip)
                seen.add(ctx.get(dut.i.ready))
            assert len(seen) == 1, f"cycle {cycle}: i.ready follows this cycle's handshakes"
            if index < len(beats):
                ctx.set(dut.i.payload, beats[index])
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                p = ctx.get(dut.o.payload)
                got.append(LaneGroup(tuple(LaneOp(int(lane.operand), int(lane.shift),
                                                  int(lane.k)) for lane in p.lanes),
                                     bool(p.first), bool(p.last), -1))
                pops.append(cycle)
            if index < len(beats) and ctx.get(dut.i.ready):
                accepts.append(cycle)
                index += 1
            stalls += ctx.get(dut.stalled)
            await ctx.tick()
            cycle += 1

    run_testbench(dut, bench)
    return got, accepts, pops, stalls


def check_tile(config, values, *, ready=None):
    encoded = encode_values(values, config)
    expected = tile_groups(encoded, config)
    got, accepts, pops, stalls = run_dispatcher(config, beats_of(encoded, config), ready)
    strip = [(g.lanes, g.first, g.last) for g in expected]
    assert [(g.lanes, g.first, g.last) for g in got] == strip
    # Every group's arithmetic adds up to the row's dot product with any weights.
    weights = np.arange(values.shape[1] * config.pes).reshape(-1, config.pes) % 251 - 125
    row_sums = np.zeros((values.shape[0], config.pes), np.int64)
    for g in expected:
        row_sums[g.row] += group_sum(g, weights, config)
    assert (row_sums == values.astype(np.int64) @ weights).all()
    if ready is None:
        timing = simulate_ditto_tile(lane_costs(values, config), config, load_weights=False)
        # The model's beats enter the dispatcher's first register after the encoder's; the
        # RTL takes the first beat at its cycle 0, so it is in that register from cycle 1.
        entered = timing.stage_cycles[pipeline.ENCODER]
        offset = entered[0] - 1
        in_prefix = [c - offset for c in entered]
        # The spare register takes the next beat as soon as the one in it (or passing
        # through it) has reached the prefix register.
        assert accepts == [0] + in_prefix[:-1]
        assert pops == [c - offset for c in timing.pop_cycles]
        assert stalls == timing.stall_cycles


@pytest.mark.parametrize("p", [(0.85, 0.145, 0.005), (0.3, 0.3, 0.4), (0.0, 0.0, 1.0),
                               (1.0, 0.0, 0.0)], ids=["real-like", "mixed", "all-full",
                                                      "all-zero"])
@pytest.mark.parametrize("shape", [(5, 13), (3, 4), (2, 1)])
def test_groups_and_cycles_match_the_model(p, shape):
    rng = np.random.default_rng(hash((p, shape)) % 2**32)
    check_tile(SMALL, random_values(rng, *shape, p))


@pytest.mark.parametrize("config", [
    SMALL.replace(lanes=2), SMALL.replace(lanes=6), SMALL.replace(scan_width=1),
    SMALL.replace(scan_width=6), SMALL.replace(dispatch_groups=1, dispatch_depth=1),
    SMALL.replace(dispatch_groups=3, dispatch_depth=3),
    SMALL.replace(scan_width=16, dispatch_groups=1, dispatch_depth=5),
    SMALL.replace(lane_bits=6), SMALL.replace(lane_bits=9), preset("tiny"), preset("default"),
], ids=["lanes2", "lanes6", "e1", "e6", "g1-q1", "g3-q3", "e16-g1-q5", "l6", "l9", "tiny",
        "default"])
def test_other_shapes_of_the_machine(config):
    rng = np.random.default_rng(4)
    check_tile(config, random_values(rng, 6, 19, (0.4, 0.3, 0.3)))


def test_places_of_pushed_elements_never_wrap_onto_the_chunk():
    # The packer keeps places modulo a power of two of at least the beat's most operands:
    # at E = 14, 31, so 32. A full beat pushes three chunks before its last, so a place
    # falls by up to 24, and a modulus of 16 would bring a pushed element back onto a slot.
    config = SMALL.replace(scan_width=14)
    assert config.max_beat_operands == 31
    rng = np.random.default_rng(7)
    check_tile(config, random_values(rng, 4, 28, (0.0, 0.1, 0.9)))


def test_output_backpressure_loses_nothing():
    rng = np.random.default_rng(5)
    pattern = np.random.default_rng(6).random(10_000) < 0.4
    check_tile(SMALL, random_values(rng, 6, 17, (0.3, 0.4, 0.3)),
               ready=lambda cycle: bool(pattern[cycle]))


def test_row_whose_last_beat_is_empty_gets_an_empty_last_group():
    values = np.array([[1, 2, 3, 4, 0, 0, 0, 0]])
    encoded = encode_values(values, SMALL)
    groups = tile_groups(encoded, SMALL)
    assert len(groups) == 2 and not groups[0].last and groups[1].last
    assert all(op.operand == 0 for op in groups[1].lanes)
    check_tile(SMALL, values)
