"""DittoCore and DenseCore (Amaranth simulator): whole tiles, ACT then DIFF steps, SPATIAL
tiles, values equal to plain integer arithmetic and cycles equal to the cycle model."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from ditto.config import DittoConfig, preset
from ditto.enums import Mode
from ditto.flow.sweep import sweep_configs
from ditto.hdl.core import DenseCore, DittoCore
from ditto.sim.cycles import dense_tile_counters, ditto_tile_counters, ditto_tile_cycles
from ditto.sim.encoding import classifies, lane_costs
from ditto.sim.spatial import spatial_values
from ditto.verif.simulate import run_jobs
from ditto.verif.tiles import TileJob, previous_rows

SMALL = DittoConfig(name="small", pes=2, scan_width=4, weight_depth=32, max_rows=8,
                    max_reduction=1024)


def drift(rng, x, p_change, spread):
    step = rng.integers(-spread, spread + 1, x.shape) * (rng.random(x.shape) < p_change)
    return np.clip(x.astype(np.int64) + step, -128, 127).astype(np.int8)


def predicted(core, config, mode, x_cur, x_prev, load_weights):
    """The cycle model's cycles and counters of one tile (``ditto.sim.cycles``)."""
    rows, k = x_cur.shape
    if isinstance(core, DenseCore):
        counters = dense_tile_counters(rows, k, config, load_weights=load_weights)
    else:
        if mode is Mode.SPATIAL:  # the model's values, not the x_prev the tile sends
            values = spatial_values(x_cur[None], config.max_rows)[0]
        else:
            values = x_cur.astype(np.int16) - (x_prev if mode is Mode.DIFF else 0)
        costs = lane_costs(values, config, classify=classifies(mode, config))
        counters = ditto_tile_counters(costs, config, load_weights=load_weights)
    return {"cycles": counters.pop("cycles"), "counters": counters}


def run_tiles(core, config, tiles, *, act_ready=None, out_ready=None):
    """Run ``tiles`` = [(mode, x_cur, x_prev, weights or None, bias, accumulate)] through
    ``core``; returns per tile (outputs [rows, pes], counters dict).

    Every tile carries the cycle model's prediction, which ``run_jobs`` checks: each
    counter (``stall_cycles`` only without stalls), and the cycles from the command to
    the last output equal to it without stalls, no fewer with them."""
    jobs = [TileJob(mode, x_cur, x_prev, weights, bool(accumulate), np.asarray(bias), 0,
                    expected=None, label=f"tile {index}",
                    **predicted(core, config, mode, x_cur, x_prev, weights is not None))
            for index, (mode, x_cur, x_prev, weights, bias, accumulate) in enumerate(tiles)]
    results = run_jobs(core, jobs, act_ready=act_ready, out_ready=out_ready)
    for job, result in zip(jobs, results, strict=True):
        assert [row for row, _ in result.rows] == list(range(len(result.rows)))
        # The checks run_jobs makes, restated on the result (so that a bench which stopped
        # checking fails here too).
        assert result.counters["cycles"] == result.cycles, job.label
        for name in ("groups", "low", "full", *(("stall_cycles",) if act_ready is None
                                                 and out_ready is None else ())):
            assert result.counters[name] == job.counters[name], f"{job.label}: {name}"
        if act_ready is None and out_ready is None:
            assert result.cycles == job.cycles, job.label
        else:
            assert result.cycles >= job.cycles, job.label
    return [(result.values, result.counters) for result in results]


def trajectory(config, rng, rows, k, steps, p_change=0.2, spread=30):
    xs = [rng.integers(-128, 128, (rows, k)).astype(np.int8)]
    for _ in range(steps - 1):
        xs.append(drift(rng, xs[-1], p_change, spread))
    weights = rng.integers(-128, 128, (k, config.pes)).astype(np.int8)
    bias = rng.integers(-1000, 1000, config.pes)
    return xs, weights, bias


@pytest.mark.parametrize("rows,k", [(3, 10), (5, 4), (1, 1), (8, 32)])
def test_ditto_core_act_then_diff_steps(rows, k):
    config = SMALL
    rng = np.random.default_rng(rows * 100 + k)
    xs, weights, bias = trajectory(config, rng, rows, k, steps=3)
    tiles = [(Mode.ACT, xs[0], xs[0], weights, bias, 0)]
    tiles += [(Mode.DIFF, xs[t], xs[t - 1], None, bias, 1) for t in (1, 2)]
    results = run_tiles(DittoCore(config=config), config, tiles)
    for t, (outputs, counters) in enumerate(results):
        plain = xs[t].astype(np.int64) @ weights.astype(np.int64) + bias
        assert (outputs == plain).all(), f"step {t}"
        values = xs[t].astype(np.int16) - (xs[t - 1] if t else 0)
        costs = lane_costs(values, config)
        assert counters == ditto_tile_counters(costs, config, load_weights=(t == 0))
        # The model's counts, restated from the values themselves.
        assert counters["elements"] == rows * k
        assert counters["zero"] == int((values == 0).sum())
        assert counters["low"] == int(((values != 0) & (abs(values) <= 15)
                                       | (values == -16)).sum())


def spatial_tile(x, weights, bias, accumulate):
    """A SPATIAL tile of ``x`` as the feeder sends it: each row with the row before it."""
    return (Mode.SPATIAL, x, previous_rows(x), weights, bias, accumulate)


def repeat_rows(x):
    """``x`` with rows 2 and 3 (those it has) equal to row 1: all-zero spatial
    differences."""
    x = x.copy()
    x[2:4] = x[1:2]
    return x


def plain(x, weights, bias):
    return x.astype(np.int64) @ weights.astype(np.int64) + bias


@pytest.mark.parametrize("rows,k", [(8, 13), (5, 4), (1, 1), (8, 32)])
def test_spatial_tiles_chain_their_rows_to_the_plain_product(rows, k):
    """ACT, DIFF, then a SPATIAL tile after the DIFF tile, a DIFF tile onto the rows the
    SPATIAL tile stored, and SPATIAL again: every row equals plain ``x @ W + bias``, so the
    PEs chain a SPATIAL tile's rows and restart at each tile; the counters count the
    classes of the spatial differences (``run_tiles`` checks them and the cycles against
    the model's)."""
    config = SMALL
    rng = np.random.default_rng(rows * 100 + k + 1)
    xs, weights, bias = trajectory(config, rng, rows, k, steps=4)
    xs[2], xs[3] = repeat_rows(xs[2]), repeat_rows(xs[3])
    tiles = [(Mode.ACT, xs[0], xs[0], weights, bias, 0), (Mode.DIFF, xs[1], xs[0], None, bias, 1),
             spatial_tile(xs[2], None, bias, 0), (Mode.DIFF, xs[3], xs[2], None, bias, 1),
             spatial_tile(xs[3], None, bias, 0)]
    results = run_tiles(DittoCore(config=config), config, tiles)
    for step, (outputs, _) in zip([0, 1, 2, 3, 3], results, strict=True):
        assert (outputs == plain(xs[step], weights, bias)).all(), f"step {step}"
    for step, (_, counters) in ((2, results[2]), (3, results[4])):
        # The classes, restated from the differences of neighbouring rows.
        values = xs[step].astype(np.int16) - previous_rows(xs[step])
        assert counters["zero"] == int((values == 0).sum())
        assert counters["zero"] >= k * (min(rows, 4) - 2)  # the repeated rows


def test_spatial_reduction_chunks_accumulate_their_chained_sums():
    """A reduction longer than the weight buffer: the second SPATIAL chunk starts its chain
    from 0 again and adds each row's chained partial sum to the row the first stored."""
    config = SMALL
    rng = np.random.default_rng(19)
    x = repeat_rows(rng.integers(-128, 128, (8, 40)).astype(np.int8))
    weights = rng.integers(-128, 128, (40, config.pes)).astype(np.int8)
    bias = np.array([7, -7])
    tiles = [spatial_tile(x[:, :32], weights[:32], bias, 0),
             spatial_tile(x[:, 32:], weights[32:], bias, 1)]
    (first, _), (outputs, _) = run_tiles(DittoCore(config=config), config, tiles)
    assert (first == plain(x[:, :32], weights[:32], bias)).all()
    assert (outputs == plain(x, weights, bias)).all()


def test_spatial_tiles_stay_exact_under_random_backpressure():
    """Chunked SPATIAL, DIFF and SPATIAL steps with the input and the output stalling."""
    config = SMALL
    rng = np.random.default_rng(20)
    xs, weights, bias = trajectory(config, rng, 8, 40, steps=3, p_change=0.5, spread=120)
    xs[0] = repeat_rows(xs[0])
    tiles = []
    for step, mode in enumerate((Mode.SPATIAL, Mode.DIFF, Mode.SPATIAL)):
        for chunk, (k0, k1) in enumerate(((0, 32), (32, 40))):
            x = xs[step][:, k0:k1]
            if mode is Mode.DIFF:
                tiles.append((mode, x, xs[step - 1][:, k0:k1], weights[k0:k1], bias, 1))
            else:
                tiles.append(spatial_tile(x, weights[k0:k1], bias, chunk))
    gate = np.random.default_rng(21).random(100_000)
    results = run_tiles(DittoCore(config=config), config, tiles,
                        act_ready=lambda c: bool(gate[c] < 0.6),
                        out_ready=lambda c: bool(gate[-c] < 0.5))
    for step in range(3):
        outputs, _ = results[2 * step + 1]
        assert (outputs == plain(xs[step], weights, bias)).all(), f"step {step}"


def test_spatial_tiles_classify_also_in_the_paper_act_mode():
    """Without ACT classification, ACT costs two lanes an element; SPATIAL differences
    are classified all the same."""
    config = SMALL.replace(act_classify=False)
    rng = np.random.default_rng(22)
    # Four rows of FULL activations; the rows after the first differ by 0 or 3 (LOW).
    row = rng.integers(20, 100, 12) * rng.choice([-1, 1], 12)
    x = np.repeat(row[None], 4, axis=0).astype(np.int8)
    x[3, :6] += 3
    weights = rng.integers(-128, 128, (12, config.pes)).astype(np.int8)
    bias = np.zeros(config.pes, np.int64)
    (_, act), (outputs, spatial) = run_tiles(
        DittoCore(config=config), config,
        [(Mode.ACT, x, x, weights, bias, 0), spatial_tile(x, None, bias, 0)])
    assert (outputs == plain(x, weights, bias)).all()
    assert act["lane_slots"] == 2 * 4 * 12
    assert (spatial["zero"], spatial["low"], spatial["full"]) == (2 * 12 + 6, 6, 12)


def test_dense_core_runs_spatial_commands_as_act():
    """DenseCore has no difference mode: a SPATIAL command multiplies the plain rows its
    feeder sends, its PEs never chain them, and the class counts are those of ACT."""
    config = SMALL
    rng = np.random.default_rng(23)
    xs, weights, bias = trajectory(config, rng, 6, 40, steps=2)
    tiles = [(Mode.ACT, xs[0][:, :32], xs[0][:, :32], weights[:32], bias, 0),
             (Mode.SPATIAL, xs[1][:, :32], xs[1][:, :32], None, bias, 0),
             (Mode.SPATIAL, xs[1][:, 32:], xs[1][:, 32:], weights[32:], bias, 1)]
    results = run_tiles(DenseCore(config=config), config, tiles)
    assert (results[0][0] == plain(xs[0][:, :32], weights[:32], bias)).all()
    assert (results[2][0] == plain(xs[1], weights, bias)).all()
    for (_, x, *_), (_, counters) in zip(tiles, results, strict=True):
        assert counters == dense_tile_counters(*x.shape, config,
                                               load_weights=counters is not results[1][1])


def test_full_fifo_stalls_the_packer_as_the_model_says():
    """FULL values only (two lanes each, 4 elements a beat: two groups a beat, as fast as
    the PEs take one): the dispatch FIFO fills and the packer stalls; the core's stall and
    group counts and its cycles equal the model's (``run_tiles`` checks them)."""
    config = SMALL
    rng = np.random.default_rng(18)
    x = (rng.integers(20, 128, (6, 16)) * rng.choice([-1, 1], (6, 16))).astype(np.int8)
    weights = rng.integers(-128, 128, (16, config.pes)).astype(np.int8)
    zero = np.zeros(config.pes, np.int64)
    ((outputs, counters),) = run_tiles(DittoCore(config=config), config,
                                       [(Mode.ACT, x, x, weights, zero, 0)])
    assert (outputs == x.astype(np.int64) @ weights.astype(np.int64)).all()
    # 6 rows of 16 FULL elements: 32 lane operands, 8 groups of 4 lanes a row.
    assert (counters["full"], counters["groups"]) == (6 * 16, 6 * 8)
    assert counters["stall_cycles"] > 0


def test_dense_core_matches_plain_product_and_cycles():
    config = SMALL
    rng = np.random.default_rng(9)
    xs, weights, bias = trajectory(config, rng, 4, 7, steps=2)
    tiles = [(Mode.ACT, xs[0], xs[0], weights, bias, 0), (Mode.ACT, xs[1], xs[1], None, bias, 0)]
    results = run_tiles(DenseCore(config=config), config, tiles)
    for t, (outputs, counters) in enumerate(results):
        assert (outputs == xs[t].astype(np.int64) @ weights.astype(np.int64) + bias).all()
        assert counters == dense_tile_counters(4, 7, config, load_weights=(t == 0))
        assert counters["groups"] == 4 * 4  # 4 beats of 2 MACs a row of 7


def test_reduction_chunks_accumulate_in_act_mode():
    config = SMALL
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (3, 40)).astype(np.int8)
    weights = rng.integers(-128, 128, (40, config.pes)).astype(np.int8)
    bias = np.array([5, -5])
    tiles = [(Mode.ACT, x[:, :32], x[:, :32], weights[:32], bias, 0),
             (Mode.ACT, x[:, 32:], x[:, 32:], weights[32:], bias, 1)]
    (_, _), (outputs, _) = run_tiles(DittoCore(config=config), config, tiles)
    assert (outputs == x.astype(np.int64) @ weights.astype(np.int64) + bias).all()


def test_values_stay_exact_under_random_backpressure():
    config = SMALL
    rng = np.random.default_rng(12)
    xs, weights, bias = trajectory(config, rng, 6, 13, steps=3, p_change=0.5, spread=120)
    tiles = [(Mode.ACT, xs[0], xs[0], weights, bias, 0)]
    tiles += [(Mode.DIFF, xs[t], xs[t - 1], None, bias, 1) for t in (1, 2)]
    gate = np.random.default_rng(13).random(100_000)
    results = run_tiles(DittoCore(config=config), config, tiles,
                        act_ready=lambda c: bool(gate[c] < 0.6),
                        out_ready=lambda c: bool(gate[-c] < 0.5))
    for t, (outputs, _) in enumerate(results):
        assert (outputs == xs[t].astype(np.int64) @ weights.astype(np.int64) + bias).all()


@pytest.mark.parametrize("core_class", [DittoCore, DenseCore])
def test_values_stay_exact_when_the_output_holds_the_pes(core_class):
    """Short rows and an output ready one cycle in five: the PEs' outputs wait on the
    accumulation buffer, so the group stage holds while groups arrive and they wait in its
    skid register; a SPATIAL tile's rows chain through the held partial sums (DenseCore
    runs it as ACT, on the plain rows)."""
    config = SMALL
    rng = np.random.default_rng(16)
    xs, weights, bias = trajectory(config, rng, 8, 3, steps=2, p_change=0.5, spread=120)
    second = ((Mode.DIFF, xs[1], xs[0], None, bias, 1) if core_class is DittoCore
              else (Mode.ACT, xs[1], xs[1], None, bias, 0))  # DenseCore runs ACT only
    third = (spatial_tile(xs[1], None, bias, 0) if core_class is DittoCore
             else (Mode.SPATIAL, xs[1], xs[1], None, bias, 0))
    tiles = [(Mode.ACT, xs[0], xs[0], weights, bias, 0), second, third]
    gate = np.random.default_rng(17).random(100_000)
    results = run_tiles(core_class(config=config), config, tiles,
                        out_ready=lambda c: bool(gate[c] < 0.2))
    for step, (outputs, _) in zip([0, 1, 1], results, strict=True):
        assert (outputs == plain(xs[step], weights, bias)).all()


def test_paper_act_mode_costs_two_lanes_per_element():
    config = preset("tiny").replace(act_classify=False, pes=2)
    rng = np.random.default_rng(14)
    xs, weights, bias = trajectory(config, rng, 3, 9, steps=1)
    ((outputs, counters),) = run_tiles(DittoCore(config=config), config,
                                       [(Mode.ACT, xs[0], xs[0], weights, bias, 0)])
    assert (outputs == xs[0].astype(np.int64) @ weights.astype(np.int64) + bias).all()
    assert counters["lane_slots"] == 2 * 3 * 9
    assert counters["cycles"] == ditto_tile_cycles(lane_costs(xs[0], config, classify=False),
                                                   config)


@pytest.mark.parametrize("core_class", [DittoCore, DenseCore])
def test_padding_never_meets_stale_weights_of_a_longer_tile(core_class):
    """A tile with k=8 leaves weights in row 7; the next tile (k=7) must not use them for
    its padding elements (which hold garbage)."""
    config = SMALL.replace(act_classify=False)
    rng = np.random.default_rng(15)
    x8 = rng.integers(-128, 128, (2, 8)).astype(np.int8)
    x7 = rng.integers(-128, 128, (3, 7)).astype(np.int8)
    w8 = rng.integers(1, 128, (8, config.pes)).astype(np.int8)
    w7 = rng.integers(-128, 128, (7, config.pes)).astype(np.int8)
    zero = np.zeros(config.pes, np.int64)
    tiles = [(Mode.ACT, x8, x8, w8, zero, 0), (Mode.ACT, x7, x7, w7, zero, 0)]
    (_, _), (outputs, _) = run_tiles(core_class(config=config), config, tiles)
    assert (outputs == x7.astype(np.int64) @ w7.astype(np.int64)).all()


def _sweep_points() -> list[DittoConfig]:
    """Configs ``ditto sweep`` produces from SMALL, each knob over its range with the others
    at SMALL's (lane widths 5..9, G = 1..4 with the shallowest and a deep FIFO, odd P, E down
    to one element)."""
    sweeps = [{"pes": [2], "scan_width": [4], "lane_bits": [5, 6, 7, 8, 9]}]
    sweeps += [{"pes": [2], "scan_width": [4], "dispatch_groups": [groups],
                "dispatch_depth": [groups, 20]} for groups in (1, 2, 3, 4)]
    sweeps.append({"pes": [1, 3], "scan_width": [1, 2, 8]})
    return [point.config for grid in sweeps for point in sweep_configs(SMALL, grid)]


@pytest.mark.parametrize("config", _sweep_points(), ids=lambda c: c.slug)
def test_both_cores_build_at_every_sweep_point(config):
    # DenseCore's PEs have their own shape (dense_macs lanes of whole activations), so no
    # rule of the dispatcher's (depth >= groups, for example) is checked against them.
    for core_class in (DittoCore, DenseCore):
        core = core_class(config=config)
        Fragment.get(core, None)
        assert core.config == config


@pytest.mark.parametrize("mode", [Mode.ACT, Mode.DIFF, Mode.SPATIAL])
@pytest.mark.parametrize("delay", [1, 9])
def test_memory_stalls_reach_the_cycle_counter(mode, delay):
    """A Defo unit records ``counters.cycles``; memory stalls must be in it. When the
    activations arrive ``delay`` cycles after the core first wants them (memory not
    ready), nothing else is in flight, so the tile is the unstalled one shifted by
    ``delay``: the counter must say exactly the model's cycles plus ``delay``."""
    config = SMALL
    rng = np.random.default_rng(delay)
    rows, k = 5, 11
    xs, weights, bias = trajectory(config, rng, rows, k, steps=2)
    x_prev = {Mode.ACT: xs[1], Mode.DIFF: xs[0], Mode.SPATIAL: previous_rows(xs[1])}[mode]
    job = TileJob(mode, xs[1], x_prev, weights, mode is Mode.DIFF, np.asarray(bias), 0,
                  expected=None, label="delayed",
                  **predicted(DittoCore(config=config), config, mode, xs[1], x_prev, True))
    # The command is taken at cycle 0, the k weight rows in cycles 1..k; the core wants
    # its first activation beat at cycle k + 1.
    first_wanted = k + 1
    (result,) = run_jobs(DittoCore(config=config), [job],
                         act_ready=lambda cycle: cycle >= first_wanted + delay)
    assert result.counters["cycles"] == job.cycles + delay
    assert result.counters["stall_cycles"] == job.counters["stall_cycles"]
