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


def test_defo_never_chooses_the_more_expensive_recorded_mode(report):
    for layer in report["layers"]:
        # With Defo, step 2.. run in the mode whose recorded step was cheaper; the report
        # must be consistent with running that mode.
        assert layer["defo_mode"] in ("ACT", "DIFF")
        if layer["defo_mode"] == "DIFF":
            assert layer["cycles_ditto_defo"] == layer["cycles_ditto"]


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
