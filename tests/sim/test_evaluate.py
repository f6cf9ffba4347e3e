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
    assert multiply_pj(5, 8) == pytest.approx(0.2 * 40 / 64)
    ditto = energy(work, "ditto", CONFIG)
    assert ditto["multiply"] == pytest.approx(6 * 0.125)
    assert ditto["sram"] == pytest.approx(2.5 * (80 + 6 + 4 * 2 * 10))
    assert ditto["dram"] == pytest.approx(ENERGY_PJ["dram_byte"] * 41)
    dense = energy(work, "dense", CONFIG)
    assert dense["multiply"] == pytest.approx(80 * 0.2)
    assert dense["total"] == pytest.approx(dense["on_chip"] + dense["dram"])


def test_evaluate_totals_are_consistent_with_the_analysis():
    report = analyze(fixture_layers(), CONFIG)
    result = evaluate(report, CONFIG, areas={"ditto_core": 3.0, "dense_core": 2.0})
    t = report["totals"]
    assert result["speedup"] == pytest.approx(t["cycles_dense"] / t["cycles_ditto"])
    assert result["speedup_equal_area"] == pytest.approx(result["speedup"] / 1.5)
    assert 0 < result["lane_utilisation"] <= 1
    assert result["energy_ratio"] == pytest.approx(
        result["energy_pj"]["ditto"]["total"] / result["energy_pj"]["dense"]["total"])
    assert len(result["layers"]) == t["layers"]
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
