"""`ditto evaluate`: work counts, traffic, energy, the summary keys, and the RTL sample that
must fail when the RTL and the model disagree."""

import json
import math

import numpy as np
import pytest

from ditto.cli import main
from ditto.config import preset
from ditto.enums import Mode
from ditto.sim.analysis import analyze, product_cost
from ditto.sim.evaluate import ENERGY_PJ, energy, evaluate, multiply_pj, traffic
from ditto.sim.layers import HwProduct
from ditto.sim.workload import fixture_layers
from ditto.verif import sample as sample_module

CONFIG = preset("tiny")


def test_product_work_counts_follow_the_tiling():
    rng = np.random.default_rng(1)
    values = rng.integers(-3, 4, size=(1, 5, 20), dtype=np.int16)   # G, M, K
    weights = rng.integers(-128, 128, size=(1, 20, 3), dtype=np.int8)  # N = 3 > pes = 2
    work = product_cost(HwProduct(values, weights, Mode.DIFF), CONFIG).work
    blocks = math.ceil(3 / CONFIG.pes)
    nonzero = np.count_nonzero(values)        # all |v| <= 3 are LOW: one lane each
    assert work["scanned"] == work["scanned_diff"] == 5 * 20 * blocks
    assert work["lane_mults"] == nonzero * blocks * CONFIG.pes
    assert work["int8_mults"] == 5 * 20 * blocks * CONFIG.pes
    assert work["output_beats"] == 5 * blocks
    assert (work["value_bytes"], work["prev_value_bytes"]) == (100, 100)
    assert (work["weight_bytes"], work["output_words"], work["prev_output_words"]) == (60, 15, 15)
    act = product_cost(HwProduct(values, weights, Mode.ACT), CONFIG).work
    assert act["prev_value_bytes"] == act["prev_output_words"] == act["scanned_diff"] == 0


def test_traffic_and_energy_by_hand():
    work = {"scanned": 40, "scanned_diff": 40, "lane_mults": 6, "int8_mults": 80,
            "output_beats": 5, "output_beats_diff": 5, "value_bytes": 10,
            "prev_value_bytes": 10, "weight_bytes": 5, "output_words": 2,
            "prev_output_words": 2}
    assert traffic(work, "ditto", CONFIG)["total"] == 10 + 10 + 5 + 4 * 2 + 4 * 2
    assert traffic(work, "dense", CONFIG)["total"] == 10 + 5 + 4 * 2
    # 8 x 8 is Horowitz's figure itself; a 5 x 8 multiplier has 40 of its 64 partial
    # products: 0.2 * 40 / 64 = 0.125 pJ; 4 x 8 half of them: 0.1 pJ.
    assert multiply_pj(8, 8) == pytest.approx(0.2)
    assert multiply_pj(5, 8) == pytest.approx(0.125)
    assert multiply_pj(4, 8) == pytest.approx(0.1)
    ditto = energy(work, "ditto", CONFIG)
    assert ditto["multiply"] == pytest.approx(6 * 0.125)
    assert ditto["sram"] == pytest.approx(2.5 * (80 + 6 + 4 * 2 * 10))
    assert ditto["dram"] == pytest.approx(ENERGY_PJ["dram_byte"] * 41)
    dense = energy(work, "dense", CONFIG)
    assert dense["multiply"] == pytest.approx(80 * 0.2)
    assert dense["total"] == pytest.approx(dense["on_chip"] + dense["dram"])


def _one_layer_report(cycles_ditto, cycles_ditto_defo, cycles_dense, lane_slots_issued,
                      work_ditto, work_dense):
    layer = {"name": "fc", "group": "linear", "elements": 10, "zero": 0.0, "low": 0.0,
             "full": 1.0, "defo_mode": "DIFF", "cycles_ditto": cycles_ditto,
             "cycles_ditto_defo": cycles_ditto_defo, "cycles_dense": cycles_dense,
             "ideal_speedup": 2.0, "lane_slots_issued": lane_slots_issued,
             "work_ditto": work_ditto, "work_ditto_defo": work_ditto, "work_dense": work_dense}
    totals = {"layers": 1, "cycles_ditto": cycles_ditto, "cycles_ditto_defo": cycles_ditto_defo,
              "cycles_dense": cycles_dense, "ideal_speedup": 2.0, "layers_act_by_defo": 0}
    return {"layers": [layer], "totals": totals}


def test_evaluate_a_hand_worked_layer():
    """One layer whose every figure is worked out by hand (tiny: 4 lanes, 5-bit lanes, 2 PEs,
    32-bit words of 4 bytes)."""
    ditto = {"scanned": 10, "scanned_diff": 0, "lane_mults": 8, "output_beats": 1,
             "output_beats_diff": 0, "value_bytes": 10}
    dense = {"scanned": 10, "int8_mults": 20, "output_beats": 1, "value_bytes": 10}
    report = _one_layer_report(200, 150, 600, 400, ditto, dense)
    result = evaluate(report, CONFIG, areas={"ditto_core": 3.0, "dense_core": 2.0},
                      bandwidth_gbps=0.01, clock_mhz=500.0)
    # Speedups: 600 / 200 = 3 and 600 / 150 = 4; at equal area (3.0 / 2.0 = 1.5 times
    # the area) 3 / 1.5 = 2 and 4 / 1.5 = 8 / 3.
    assert result["speedup"] == pytest.approx(3.0)
    assert result["speedup_defo"] == pytest.approx(4.0)
    assert result["area"]["ratio"] == pytest.approx(1.5)
    assert result["speedup_equal_area"] == pytest.approx(2.0)
    assert result["speedup_equal_area_defo"] == pytest.approx(8 / 3)
    # 400 lane slots over 200 cycles of 4 lanes: half the lanes busy.
    assert result["lane_utilisation"] == pytest.approx(0.5)
    # Ditto, in pJ: encode 10 x 0.03 = 0.3; multiply 8 x 0.125 = 1.0; add 8 x 0.1 = 0.8;
    # SRAM 2.5 x (10 scanned + 8 weight bytes + 4 bytes x 2 PEs x 1 beat) = 2.5 x 26 = 65;
    # registers 0.03 x 8 x 4 = 0.96; on chip 68.06; DRAM 10 bytes x 243.75 = 2437.5.
    # Dense: multiply 20 x 0.2 = 4; add 20 x 0.1 = 2; SRAM 2.5 x (10 + 20 + 8) = 95;
    # registers 0.03 x 20 x 4 = 2.4; on chip 103.4; DRAM 2437.5.
    e = result["energy_pj"]
    assert e["ditto"]["encode"] == pytest.approx(0.3)
    assert e["ditto"]["multiply"] == pytest.approx(1.0)
    assert e["ditto"]["sram"] == pytest.approx(65.0)
    assert e["ditto"]["on_chip"] == pytest.approx(68.06)
    assert e["ditto"]["total"] == pytest.approx(2505.56)
    assert e["dense"]["on_chip"] == pytest.approx(103.4)
    assert e["dense"]["total"] == pytest.approx(2540.9)
    assert result["energy_ratio"] == pytest.approx(2505.56 / 2540.9)
    assert result["energy_ratio_on_chip"] == pytest.approx(68.06 / 103.4)
    # Roofline: 0.01 GB/s at 500 MHz moves 0.02 bytes a cycle, so the 10 bytes of either
    # core take 500 cycles: Ditto (200 cycles) is memory-bound at 500, Dense (600) is not.
    roof = result["roofline"]
    assert roof["bytes_per_cycle"] == pytest.approx(0.02)
    assert roof["roofline_cycles_ditto"] == pytest.approx(500)
    assert roof["roofline_cycles_dense"] == pytest.approx(600)
    assert roof["speedup"] == pytest.approx(1.2)
    assert (roof["memory_bound_layers_ditto"], roof["memory_bound_layers_dense"]) == (1, 0)


def test_evaluate_on_the_fixture_workload_behaves_like_a_speedup():
    report = analyze(fixture_layers(), CONFIG)
    t = report["totals"]
    same = evaluate(report, CONFIG, areas={"ditto_core": 2.0, "dense_core": 2.0})
    # Equal areas: the equal-area speedup is the speedup; a Ditto core twice as large
    # halves it, one a third as large triples it.
    assert same["speedup_equal_area"] == pytest.approx(same["speedup"])
    larger = evaluate(report, CONFIG, areas={"ditto_core": 4.0, "dense_core": 2.0})
    smaller = evaluate(report, CONFIG, areas={"ditto_core": 1.0, "dense_core": 3.0})
    assert larger["speedup_equal_area"] == pytest.approx(same["speedup"] / 2)
    assert smaller["speedup_equal_area"] == pytest.approx(same["speedup"] * 3)
    # The same workload with fewer Dense cycles is a smaller speedup; equal cycles none.
    dense_faster = dict(report, totals=dict(t, cycles_dense=t["cycles_dense"] // 2))
    assert evaluate(dense_faster, CONFIG)["speedup"] < same["speedup"]
    level = dict(report, totals=dict(t, cycles_dense=t["cycles_ditto"]))
    assert evaluate(level, CONFIG)["speedup"] == pytest.approx(1.0)
    assert 0 < same["lane_utilisation"] <= 1
    assert len(same["layers"]) == t["layers"]
    # A starved memory system makes every layer memory-bound on both cores.
    slow = evaluate(report, CONFIG, bandwidth_gbps=1e-6)
    assert slow["roofline"]["memory_bound_layers_dense"] == t["layers"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DITTO_BUILD", str(tmp_path / "build"))
    return tmp_path


def test_evaluate_with_rtl_sample_writes_the_summary(in_tmp):
    out = in_tmp / "eval.json"
    assert main(["evaluate", "--config", "tiny", "--rtl-sample", "1", "--sim", "icarus",
                 "--json", str(out), "--report", str(in_tmp / "eval.md")]) == 0
    result = json.loads(out.read_text())
    for key in ("speedup_equal_area", "speedup_ideal", "lane_utilisation", "energy_ratio",
                "layers"):
        assert key in result
    assert result["rtl_sample"]["passed"]
    assert {run["core"] for run in result["rtl_sample"]["runs"]} == {"ditto_core",
                                                                    "dense_core"}
    assert all(run["cycles"] > 0 for run in result["rtl_sample"]["runs"])
    assert (in_tmp / "eval-speedup.png").stat().st_size > 0


@pytest.mark.parametrize("fault", ["value", "cycles"])
def test_evaluate_fails_when_the_rtl_disagrees(in_tmp, monkeypatch, capsys, fault):
    real_jobs = sample_module.fixture_jobs

    def corrupted(case, config, core, **kwargs):
        jobs = real_jobs(case, config, core, **kwargs)
        if core == "ditto":
            job = next(j for j in jobs if j.expected is not None)
            if fault == "value":
                job.expected = job.expected.copy()
                job.expected[0, 0] += 1
            else:
                job.cycles += 1
        return jobs

    monkeypatch.setattr(sample_module, "fixture_jobs", corrupted)
    out = in_tmp / "eval.json"
    assert main(["evaluate", "--config", "tiny", "--rtl-sample", "1", "--sim", "icarus",
                 "--json", str(out)]) == 1
    assert "RTL mismatch in ditto_core" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_rejects_a_missing_trace(capsys):
    assert main(["evaluate", "no/such/trace.npz", "--config", "tiny"]) == 2
    assert "no such trace file" in capsys.readouterr().err


def test_evaluate_rejects_a_missing_area_file_before_any_work(capsys):
    assert main(["evaluate", "--config", "tiny", "--area", "no/such/area.json"]) == 2
    captured = capsys.readouterr()
    assert "--area no/such/area.json: no such file" in captured.err
    assert "cycle model" not in captured.err
