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
from ditto.sim.evaluate import core_energy, evaluate, multiply_pj, price
from ditto.sim.layers import HwProduct, layer_operands
from ditto.sim.memory import LayerMemory, allocate, buffer_pj_per_byte
from ditto.sim.synthetic import synthetic_trajectory
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


def test_a_spatial_product_subtracts_but_keeps_no_state():
    rng = np.random.default_rng(2)
    values = rng.integers(-3, 4, size=(1, 5, 20), dtype=np.int16)
    weights = rng.integers(-128, 128, size=(1, 20, 2), dtype=np.int8)
    work = product_cost(HwProduct(values, weights, Mode.SPATIAL, chain_rows=4), CONFIG).work
    assert work["scanned_diff"] == work["scanned"] == 100
    assert work["prev_value_bytes"] == work["prev_output_words"] == 0
    assert work["output_beats_diff"] == 0


def test_core_energy_by_hand():
    work = {"scanned": 40, "scanned_diff": 40, "lane_mults": 6, "int8_mults": 80,
            "output_beats": 5, "output_beats_diff": 5}
    # 8 x 8 is Horowitz's figure itself; a 5 x 8 multiplier has 40 of its 64 partial
    # products: 0.2 * 40 / 64 = 0.125 pJ; 4 x 8 half of them: 0.1 pJ.
    assert multiply_pj(8, 8) == pytest.approx(0.2)
    assert multiply_pj(5, 8) == pytest.approx(0.125)
    assert multiply_pj(4, 8) == pytest.approx(0.1)
    ditto = core_energy(work, "ditto", CONFIG)
    assert ditto["multiply"] == pytest.approx(6 * 0.125)
    assert ditto["encode"] == pytest.approx(80 * 0.03)
    # 80 activation reads, 6 weight bytes, 4-byte words x 2 PEs x (5 writes + 5 reads).
    assert ditto["sram"] == pytest.approx(2.5 * (80 + 6 + 4 * 2 * 10))
    dense = core_energy(work, "dense", CONFIG)
    assert dense["multiply"] == pytest.approx(80 * 0.2)
    assert dense["sram"] == pytest.approx(2.5 * (40 + 80 + 4 * 2 * 5))


def test_buffer_energy_follows_the_cited_points():
    # Horowitz: 10 / 20 / 100 pJ per 64-bit read at 8 KB / 32 KB / 1 MB.
    assert buffer_pj_per_byte(8 * 1024) == pytest.approx(10 / 8)
    assert buffer_pj_per_byte(32 * 1024) == pytest.approx(20 / 8)
    assert buffer_pj_per_byte(2**20) == pytest.approx(100 / 8)
    # Log-log interpolation: half-way (16 KB) is the geometric mean.
    assert buffer_pj_per_byte(16 * 1024) == pytest.approx((10 * 20) ** 0.5 / 8)
    # Smaller buffers cost the 8 KB figure; larger ones are 1 MB banks.
    assert buffer_pj_per_byte(100) == pytest.approx(10 / 8)
    assert buffer_pj_per_byte(192 * 2**20) == pytest.approx(100 / 8)


def test_residency_puts_weights_first_then_state_first_fit():
    layers = [LayerMemory(input_bytes=100, weight_bytes=50, output_elements=10,
                          output_bits=17),     # outputs 30 bytes, state 130
              LayerMemory(input_bytes=10, weight_bytes=0, output_elements=5,
                          output_bits=8)]      # outputs 5 bytes, state 15
    assert layers[0].output_bytes == 30 and layers[0].state_bytes == 130
    none = allocate(0, layers, {0, 1})
    assert none.weights == none.state == frozenset()
    # 150 bytes: the weights (50), then layer 0's state (130) does not fit, layer 1's does.
    some = allocate(150, layers, {0, 1})
    assert some.weights == {0} and some.state == {1} and some.used_bytes == 65
    # A layer that does not need its state is not given room for it.
    assert allocate(1000, layers, {1}).state == {1}
    assert allocate(1000, layers, {0, 1}).state == {0, 1}


def _hand_layer(act, diff, spatial, dense, memory, name="fc"):
    steps = len(act)
    zeros = [0] * steps
    return {"name": name, "group": "linear", "elements": 1, "zero": 0.0, "low": 0.0,
            "full": 1.0, "ideal_speedup": 1.0, "lane_slots_issued": 0,
            "per_step": {"ACT": {"cycles": act, "lane_mults": zeros},
                         "DIFF": {"cycles": [None, *diff], "lane_mults": [None, *zeros[1:]]},
                         "SPATIAL": {"cycles": spatial, "lane_mults": zeros}},
            "cycles_dense_step": dense, "work_modes": {"ACT": {}, "DIFF": {}, "SPATIAL": {}},
            "memory": memory}


#: One layer of 3 steps: input 100 bytes, weights 50, outputs 30 (10 of 17 bits), so a
#: DIFF step's state is 130 bytes. ACT 300 cycles, DIFF 200, SPATIAL 250, Dense 1000.
HAND = {"layers": [_hand_layer([300, 300, 300], [200, 200], [250, 250, 250], 1000,
                               {"input_bytes": 100, "weight_bytes": 50,
                                "output_elements": 10, "output_bits": 17})],
        "totals": {"ideal_speedup": 1.0}}
#: 1 byte per cycle.
SLOW = CONFIG.replace(dram_mbps=1000, clock_mhz=1000)


def test_price_without_residency_by_hand():
    priced = price(HAND, SLOW.replace(onchip_bytes=0))
    s = priced["schemes"]
    # Every step: input 100 + outputs 30 + weights 50 = 180 bytes; a DIFF step 130 more.
    assert s["dense"]["dram_bytes"] == 3 * 180
    assert s["ditto"]["dram_bytes"] == 180 + 2 * 310
    assert s["dense"]["buffer_bytes"] == s["ditto"]["buffer_bytes"] == 0
    # Compute only, DIFF (200) beats ACT (300); with its 310 bytes at 1 byte a cycle the DIFF
    # probe takes 310 cycles and ACT (180 bytes) 300: the memory rule keeps ACT.
    defo = priced["decisions"]["ditto_defo"][0]
    assert defo["compute"] is Mode.DIFF and defo["memory"] is Mode.ACT
    assert defo["memory_cycles"] == {Mode.ACT: 300, Mode.DIFF: 310}
    assert priced["schedules"]["ditto_defo"][0] == [Mode.ACT, Mode.DIFF, Mode.ACT]
    # Ditto+ probes SPATIAL at step 0 (250 cycles, 180 bytes) and DIFF at step 1: with
    # memory SPATIAL wins, on compute alone DIFF. Probing all three, ACT is the third.
    plus = priced["decisions"]["ditto_plus"][0]
    assert plus["memory"] is Mode.SPATIAL and plus["compute"] is Mode.DIFF
    assert priced["schedules"]["ditto_plus"][0] == [Mode.SPATIAL, Mode.DIFF, Mode.SPATIAL]
    three = priced["decisions"]["ditto_plus_three"][0]
    assert three["memory_cycles"] == {Mode.ACT: 300, Mode.DIFF: 310, Mode.SPATIAL: 250}
    assert priced["schedules"]["ditto_plus_three"][0] == [Mode.ACT, Mode.DIFF, Mode.SPATIAL]
    # Cycles with stalls: ditto 300 + 2 x max(200, 310); Dense max(1000, 180) a step.
    assert s["ditto"]["cycles_with_memory"] == pytest.approx(300 + 2 * 310)
    assert s["dense"]["cycles_with_memory"] == pytest.approx(3000)
    assert s["ditto"]["memory_bound_layers"] == 1 and s["dense"]["memory_bound_layers"] == 0
    # The compute rule, when asked for, runs DIFF after the probes.
    compute = price(HAND, SLOW.replace(onchip_bytes=0), defo_rule="compute")
    assert compute["schedules"]["ditto_defo"][0] == [Mode.ACT, Mode.DIFF, Mode.DIFF]


def test_price_with_residency_by_hand():
    config = SLOW.replace(onchip_bytes=180)   # the weights (50) and the state (130)
    priced = price(HAND, config)
    s = priced["schemes"]
    # Weights: read from DRAM and written on chip at step 0, read on chip after.
    assert s["dense"]["dram_bytes"] == 180 + 2 * 130
    assert s["dense"]["buffer_bytes"] == 3 * 50
    # Ditto's state: written on chip at the step before, read at the DIFF step.
    assert s["ditto"]["dram_bytes"] == 180 + 2 * 130
    assert s["ditto"]["buffer_bytes"] == 3 * 50 + 2 * 2 * 130
    # The DIFF probe now moves 130 bytes: 200 cycles, and DIFF wins under either rule.
    assert priced["decisions"]["ditto_defo"][0]["memory"] is Mode.DIFF
    # Energy with no core work: buffer bytes at the 8 KB figure, DRAM bytes at 243.75 pJ.
    e = s["ditto"]["energy_pj"]
    assert e["buffer"] == pytest.approx((150 + 520) * 10 / 8)
    assert e["dram"] == pytest.approx(440 * 243.75)
    assert e["total"] == pytest.approx(e["buffer"] + e["dram"])


def test_evaluate_a_hand_worked_layer():
    result = evaluate(HAND, SLOW.replace(onchip_bytes=0),
                      areas={"ditto_core": 3.0, "dense_core": 2.0}, sweep=False)
    # Dense 3000 cycles; Ditto 300 + 200 + 200 = 700; Defo (memory rule) 300 + 200 + 300;
    # Ditto+ 250 + 200 + 250; Ditto+ with three probes 300 + 200 + 250.
    assert result["speedup"] == pytest.approx(3000 / 700)
    assert result["speedup_defo"] == pytest.approx(3000 / 800)
    assert result["speedup_ditto_plus"] == pytest.approx(3000 / 700)
    assert result["speedup_ditto_plus_three"] == pytest.approx(3000 / 750)
    # Ditto+ moves 180 bytes at the SPATIAL steps and 310 at the DIFF probe.
    assert result["traffic_ratio_ditto_plus"] == pytest.approx((180 + 310 + 180) / 540)
    assert result["speedup_equal_area"] == pytest.approx(3000 / 700 / 1.5)
    assert result["traffic_ratio"] == pytest.approx(800 / 540)
    assert result["traffic_ratio_defo"] == pytest.approx((180 + 310 + 180) / 540)
    assert result["energy_ratio"] == pytest.approx(800 / 540)   # DRAM only, no core work
    assert result["energy_ratio_no_residency"] == result["energy_ratio"]
    assert result["defo_rules_disagree"] == 1
    row = result["defo"][0]
    assert (row["mode"], row["compute_rule"], row["memory_rule"]) == ("ACT", "DIFF", "ACT")
    assert row["ditto_plus"] == "SPATIAL"
    assert "ACT 300 cycles against DIFF 310" in row["reason"]


def test_evaluate_on_the_fixture_workload():
    report = analyze(fixture_layers(), CONFIG)
    same = evaluate(report, CONFIG, areas={"ditto_core": 2.0, "dense_core": 2.0})
    assert same["speedup_equal_area"] == pytest.approx(same["speedup"])
    larger = evaluate(report, CONFIG, areas={"ditto_core": 4.0, "dense_core": 2.0},
                      sweep=False)
    assert larger["speedup_equal_area"] == pytest.approx(same["speedup"] / 2)
    # The cycles are the analysis's (Defo's compute rule and this one agree here: no
    # layer is memory-bound at the default bandwidth).
    t = report["totals"]
    assert same["cycles_ditto"] == t["cycles_ditto"]
    assert same["cycles_dense"] == t["cycles_dense"]
    assert same["defo_rules_disagree"] == 0
    assert same["cycles_ditto_defo"] == t["cycles_ditto_defo"]
    assert 0 < same["lane_utilisation"] <= 1
    # No residency is the sweep's capacity 0, and the configured capacity is priced as is.
    points = {p["capacity"]: p for p in same["capacity_sweep"]["points"]}
    assert points[0]["energy_ratio"] == pytest.approx(same["energy_ratio_no_residency"])
    at_config = evaluate(report, CONFIG.replace(onchip_bytes=2**16), sweep=False)
    assert points[2**16]["energy_ratio"] == pytest.approx(at_config["energy_ratio"])
    # Below the crossover Ditto costs more energy than Dense, from it on less.
    cross = same["capacity_sweep"]["crossover_bytes"]["energy_ratio"]
    if cross is not None:
        assert evaluate(report, CONFIG.replace(onchip_bytes=cross),
                        sweep=False)["energy_ratio"] < 1
    # A starved memory system makes every layer memory-bound on both cores.
    slow = evaluate(report, CONFIG.replace(dram_mbps=1, clock_mhz=10_000), sweep=False)
    assert slow["schemes"]["dense"]["memory_bound_layers"] == t["layers"]
    assert slow["speedup_with_memory"]["ditto"] < same["speedup_with_memory"]["ditto"]


def test_the_analysis_records_the_output_width_the_trace_needs():
    layers = list(synthetic_trajectory(CONFIG, steps=3, size=8, seed=4))
    report = analyze(layers, CONFIG)
    for layer, row in zip(layers, report["layers"], strict=True):
        largest = 0
        for x, w in layer.steps:
            a, b = layer_operands(layer.spec, np.asarray(x), np.asarray(w))
            largest = max(largest, int(np.abs(a.astype(np.int64) @ b.astype(np.int64)).max()))
        bits = row["memory"]["output_bits"]
        # Signed: the largest magnitude fits in bits - 1, and not in bits - 2.
        assert largest < 2 ** (bits - 1) and largest >= 2 ** (bits - 2), row["name"]


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
                "energy_ratio_no_residency", "traffic_ratio", "speedup_ditto_plus",
                "energy_ratio_ditto_plus", "defo", "layers"):
        assert key in result
    assert result["rtl_sample"]["passed"]
    assert {run["core"] for run in result["rtl_sample"]["runs"]} == {"ditto_core",
                                                                    "dense_core"}
    assert all(run["cycles"] > 0 for run in result["rtl_sample"]["runs"])
    assert {"mode", "reason", "compute_rule", "memory_rule", "ditto_plus"} <= set(
        result["defo"][0])
    for plot in ("speedup", "energy", "capacity"):
        assert (in_tmp / f"eval-{plot}.png").stat().st_size > 0


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
