"""DittoCore and DenseCore as generated Verilog (cocotb): real-trace tiles over four steps
(ACT, then DIFF, and the last again in SPATIAL mode) and synthetic tiles; exact values
always, exact cycles and counters without backpressure, values under random backpressure
and idle sources. Each run's summary must
account for exactly the jobs sent: their rows, the cycles the model predicts, the dispatcher
stalls the model predicts and the input stalls they cause."""


import numpy as np
import pytest

from ditto.config import preset
from ditto.enums import Mode
from ditto.sim.cycles import simulate_ditto_tile
from ditto.sim.encoding import classifies, lane_costs, operand_values
from ditto.sim.fixtures import committed_cases
from ditto.verif.core_runner import CoreTraffic, run_core_bench
from ditto.verif.tiles import ditto_jobs, fixture_jobs

TRAFFIC = [CoreTraffic("exact_timing"),
           CoreTraffic("backpressure", backpressure=0.4, idle=0.3, seed=3)]


def real_jobs(config, core, max_cols):
    """Jobs of every fixture case for ``core`` ("ditto_core" or "dense_core")."""
    jobs = []
    for case in committed_cases():
        jobs += fixture_jobs(case, config, core.removesuffix("_core"), max_cols=max_cols,
                             spatial=True)
    return jobs


def act_waits_bound(job, config, core):
    """The most cycles, between the job's first and last activation transfer, in which the
    core may hold an offered beat with every source valid and the output ready. DenseCore
    takes one beat a cycle: none. DittoCore: as many as the cycle model's machine
    (``simulate_ditto_tile``) holds its first stage, at most: the RTL's dispatcher also has
    a spare register in front of its prefix register, which the model's stage chain leaves
    out (it cannot change when the packer gets a beat), so the core may take a beat
    earlier than the model's first stage does, never later."""
    if core == "dense_core":
        return 0
    values = operand_values(job.x_cur, job.x_prev, job.mode, config)
    costs = lane_costs(values, config, classify=classifies(job.mode, config))
    taken = simulate_ditto_tile(costs, config,
                                load_weights=job.weights is not None).stage_cycles[0]
    return taken[-1] - taken[0] + 1 - len(taken)


def check_exact_summary(summary, jobs, config, core):
    """The summary of a run without stalls: exactly these jobs, rows, cycles and stalls."""
    assert summary["jobs"] == len(jobs)
    assert summary["rows"] == sum(job.rows for job in jobs)
    assert summary["cycles"] == sum(job.cycles for job in jobs)
    assert summary["stall_cycles"] == sum(job.counters["stall_cycles"] for job in jobs)
    assert 0 <= summary["act_waits"] <= sum(act_waits_bound(job, config, core)
                                            for job in jobs)


@pytest.mark.parametrize("core", ["ditto_core", "dense_core"])
def test_real_trace_tiles_on_generated_verilog(core, simulator):
    config = preset("tiny")
    jobs = real_jobs(config, core, max_cols=4)
    run = run_core_bench(core, config, jobs, TRAFFIC, simulator=simulator, tag="real")
    check_exact_summary(run.cases["exact_timing"], jobs, config, core)
    stalled = run.cases["backpressure"]
    assert (stalled["jobs"], stalled["rows"]) == (len(jobs), sum(job.rows for job in jobs))
    assert stalled["cycles"] > run.cases["exact_timing"]["cycles"]
    assert run.jobs == 2 * len(jobs)


def test_default_config_real_tiles_on_verilator():
    """The default configuration (8 PEs, 32 elements a beat) through Verilator."""
    config = preset("default")
    jobs = real_jobs(config, "ditto_core", max_cols=16)
    run = run_core_bench("ditto_core", config, jobs, TRAFFIC[:1], simulator="verilator",
                         tag="real")
    check_exact_summary(run.cases["exact_timing"], jobs, config, "ditto_core")
    assert run.stall_cycles > 0


def test_synthetic_high_difference_tiles(simulator):
    """Many FULL differences: the dispatcher FIFO fills and the input stalls, in the cycles
    the model predicts without backpressure, and under it too."""
    config = preset("tiny")
    rng = np.random.default_rng(21)
    xs = [rng.integers(-128, 128, (16, 40)).astype(np.int8) for _ in range(3)]
    ws = [rng.integers(-128, 128, (40, 4)).astype(np.int8)] * 3
    jobs = ditto_jobs(xs, ws, config, weights_change=False)
    run = run_core_bench("ditto_core", config, jobs, TRAFFIC, simulator=simulator,
                         tag="synthetic")
    exact, stalled = run.cases["exact_timing"], run.cases["backpressure"]
    check_exact_summary(exact, jobs, config, "ditto_core")
    assert exact["stall_cycles"] > 0 and exact["act_waits"] > 0
    assert (stalled["jobs"], stalled["rows"]) == (len(jobs), sum(job.rows for job in jobs))
    assert stalled["stall_cycles"] > 0 and stalled["act_waits"] > 0


def test_synthetic_spatial_tiles_chain_their_rows(simulator):
    """SPATIAL steps from scratch around a DIFF step, each cut into two reduction chunks,
    with rows equal to the row before: exact values (plain ``x @ W + bias``), cycles and
    counters, and exact values under backpressure."""
    config = preset("tiny")
    rng = np.random.default_rng(22)
    x0 = rng.integers(-128, 128, (16, 100))
    x0[3:6] = x0[2]
    x1 = np.clip(x0 + rng.integers(-20, 21, x0.shape), -128, 127)
    x1[8:10] = x1[7]
    xs = [x0.astype(np.int8), x1.astype(np.int8), x1.astype(np.int8)]
    ws = [rng.integers(-128, 128, (100, 4)).astype(np.int8)] * 3
    bias = rng.integers(-1000, 1000, 4)
    jobs = ditto_jobs(xs, ws, config, weights_change=False, bias=bias,
                      modes=[Mode.SPATIAL, Mode.DIFF, Mode.SPATIAL], label="synthetic")
    assert {job.mode for job in jobs} == {Mode.SPATIAL, Mode.DIFF}
    run = run_core_bench("ditto_core", config, jobs, TRAFFIC, simulator=simulator,
                         tag="spatial")
    check_exact_summary(run.cases["exact_timing"], jobs, config, "ditto_core")
    stalled = run.cases["backpressure"]
    assert (stalled["jobs"], stalled["rows"]) == (len(jobs), sum(job.rows for job in jobs))
