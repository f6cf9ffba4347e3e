"""Trajectory analysis, Defo and the synthetic generator."""

import json

import numpy as np
import pytest

from ditto.cli import main
from ditto.config import preset
from ditto.enums import Mode
from ditto.sim.analysis import LayerTrace, analyze, product_cost
from ditto.sim.cycles import dense_tile_cycles, ditto_tile_cycles
from ditto.sim.defo import DefoTable
from ditto.sim.encoding import lane_costs
from ditto.sim.layers import HwProduct, LayerKind, LayerSpec
from ditto.sim.synthetic import synthetic_trajectory

CONFIG = preset("tiny")
LAYER_KEYS = {"name", "kind", "elements", "zero", "low", "full", "low4", "lane_slots",
              "ideal_speedup", "cycles_ditto", "cycles_dense", "defo_mode"}


@pytest.fixture(scope="module")
def report():
    return analyze(synthetic_trajectory(CONFIG, steps=4, size=8, seed=5), CONFIG)


def test_report_has_the_documented_keys(report):
    assert set(report) >= {"config", "layers", "steps", "totals"}
    assert report["config"]["slug"] == CONFIG.slug
    assert report["config"]["lane_bits"] == CONFIG.lane_bits
    for layer in report["layers"]:
        assert set(layer) >= LAYER_KEYS
    assert "cycles_ditto_defo" in report["totals"]
    json.dumps(report)  # plain JSON types only


def test_class_fractions_sum_to_one_and_totals_add_up(report):
    layers, totals = report["layers"], report["totals"]
    for layer in layers:
        assert layer["zero"] + layer["low"] + layer["full"] == pytest.approx(1.0)
        assert 0 <= layer["low4"] <= layer["low"] + 1e-12 or CONFIG.lane_bits < 4
    for key in ("elements", "lane_slots", "cycles_ditto", "cycles_dense", "cycles_ditto_defo"):
        assert totals[key] == sum(layer[key] for layer in layers)
    zero = sum(layer["zero"] * layer["elements"] for layer in layers) / totals["elements"]
    assert totals["zero"] == pytest.approx(zero)
    assert [s["step"] for s in report["steps"]] == [1, 2, 3]


def _linear_layer(name, xs, w):
    return LayerTrace(LayerSpec(name, LayerKind.LINEAR), [(x, w) for x in xs])


def test_defo_runs_later_steps_in_the_mode_whose_recorded_step_was_cheaper():
    """Three one-tile layers (16 rows, k = 24, 2 output channels: one tile of the tiny
    core) over three steps, whose cycles the test costs itself with the cycle model:
    ``steady`` changes a few activations by 1 (DIFF cheaper: Defo keeps DIFF); ``jumpy``
    starts from zeros (ACT of zeros is cheap, the first difference is not: Defo goes back
    to ACT, which is cheaper again at step 2, where small values follow large ones);
    ``tie`` adds 20 to every activation each step (ACT and DIFF see the same FULL values:
    equal cycles, and only a strictly cheaper DIFF wins)."""
    rng = np.random.default_rng(3)
    rows, k = 16, 24
    w = rng.integers(-128, 128, (k, CONFIG.pes)).astype(np.int8)
    big = rng.integers(40, 128, (rows, k)) * rng.choice([-1, 1], (rows, k))
    nudge = (rng.random((3, rows, k)) < 0.1) * rng.choice([-1, 1], (3, rows, k))
    steady = [np.clip(big + nudge[:t].sum(axis=0), -128, 127).astype(np.int8)
              for t in (1, 2, 3)]
    small = rng.integers(1, 16, (rows, k)).astype(np.int8)
    jumpy = [np.zeros((rows, k), np.int8), big.astype(np.int8), small]
    tie = [np.full((rows, k), 20 * (t + 1), np.int8) for t in range(3)]
    layers = [_linear_layer("steady", steady, w), _linear_layer("jumpy", jumpy, w),
              _linear_layer("tie", tie, w)]
    report = analyze(layers, CONFIG)

    def act(x):
        return ditto_tile_cycles(lane_costs(x, CONFIG), CONFIG)

    def diff(x, x_prev):
        return ditto_tile_cycles(lane_costs(x.astype(np.int16) - x_prev, CONFIG), CONFIG)

    modes = {}
    for row, (name, xs) in zip(report["layers"], [("steady", steady), ("jumpy", jumpy),
                                                   ("tie", tie)], strict=True):
        acts = [act(x) for x in xs]
        diffs = [None] + [diff(xs[t], xs[t - 1]) for t in (1, 2)]
        # The paper's rule: DIFF from step 2 on only if step 1 (DIFF) took strictly fewer
        # cycles than step 0 (ACT).
        mode = "DIFF" if diffs[1] < acts[0] else "ACT"
        later = diffs[2] if mode == "DIFF" else acts[2]
        assert row["name"] == name
        assert row["defo_mode"] == mode, name
        assert row["cycles_act"] == sum(acts), name
        assert row["cycles_ditto"] == acts[0] + diffs[1] + diffs[2], name
        assert row["cycles_ditto_defo"] == acts[0] + diffs[1] + later, name
        assert row["cycles_dense"] == 3 * dense_tile_cycles(rows, k, CONFIG), name
        modes[name] = (mode, acts, diffs)
    # The layers take both branches, and the tie really is one.
    assert modes["steady"][0] == "DIFF" and modes["jumpy"][0] == modes["tie"][0] == "ACT"
    assert modes["tie"][2][1] == modes["tie"][1][0]
    assert modes["jumpy"][2][2] > modes["jumpy"][1][2]  # Defo saves cycles there


def test_more_similar_trajectories_have_more_zeros():
    def zeros(similarity):
        layers = synthetic_trajectory(CONFIG, steps=3, size=8, similarity=similarity)
        return analyze(layers, CONFIG)["totals"]["zero"]
    assert zeros(0.5) < zeros(0.8) < zeros(0.99)


def test_product_cost_tiles_rows_reduction_and_output_channels():
    rng = np.random.default_rng(0)
    config = CONFIG  # 16 rows, 64 reduction, 2 PEs per tile
    values = rng.integers(-20, 21, (1, 20, 100)).astype(np.int16)
    weights = np.zeros((1, 100, 5), np.int8)
    cost = product_cost(HwProduct(values, weights, Mode.DIFF), config)
    costs = lane_costs(values[0], config)
    expected = sum(ditto_tile_cycles(costs[r:r + 16, k:k + 64], config)
                   for r in (0, 16) for k in (0, 64))
    assert cost.cycles_ditto == 3 * expected  # ceil(5 / 2) output-channel blocks
    dense = sum(dense_tile_cycles(rows, kc, config) for rows in (16, 4) for kc in (64, 36))
    assert cost.cycles_dense == 3 * dense
    assert cost.counts.lane_slots == int(costs.sum())


def test_defo_table_follows_the_paper_rule():
    table = DefoTable(entries=4)
    table.record(0, 0, 100)
    table.record(0, 1, 60)
    table.record(1, 0, 100)
    table.record(1, 1, 100)
    assert table.mode_for(0, 0) is Mode.ACT and table.mode_for(0, 1) is Mode.DIFF
    assert table.mode_for(0, 5) is Mode.DIFF
    assert table.mode_for(1, 5) is Mode.ACT  # DIFF only if strictly cheaper
    with pytest.raises(KeyError, match="layer 2"):
        table.mode_for(2, 2)
    with pytest.raises(IndexError, match="4 entries"):
        table.record(4, 0, 1)


def test_trajectory_needs_two_steps():
    x = np.zeros((2, 3), np.int8)
    layer = LayerTrace(LayerSpec("fc", LayerKind.LINEAR), [(x, np.zeros((3, 2), np.int8))])
    with pytest.raises(ValueError, match="at least 2 steps"):
        analyze([layer], CONFIG)


def test_cli_analyze_synthetic_writes_json(tmp_path, capsys):
    out = tmp_path / "sub" / "out.json"
    assert main(["analyze", "--synthetic", "--config", "tiny", "--steps", "3",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "TOTAL" in printed and "speedup over dense" in printed
    data = json.loads(out.read_text())
    assert len(data["layers"]) == 6 and len(data["steps"]) == 2
    assert not list(out.parent.glob(".out.json.*")), "temporary file left behind"


def test_cli_analyze_without_input_is_a_clear_error(capsys):
    assert main(["analyze"]) == 2
    assert "give either a trace file or --synthetic" in capsys.readouterr().err


def test_cli_bench_prints_throughput(capsys):
    assert main(["bench", "--config", "tiny", "--elements", "65536"]) == 0
    assert "M elements/s" in capsys.readouterr().out
