"""DittoCore and DenseCore as generated Verilog (cocotb): real-trace tiles over four steps
(ACT, then DIFF) and synthetic tiles; exact values always, exact cycles without
backpressure, values under random backpressure and idle sources."""


import numpy as np
import pytest

from ditto.config import preset
from ditto.sim.fixtures import FIXTURE, load_fixture
from ditto.verif.core_runner import CoreTraffic, run_core_bench
from ditto.verif.tiles import ditto_jobs, fixture_jobs

TRAFFIC = [CoreTraffic("exact_timing"),
           CoreTraffic("backpressure", backpressure=0.4, idle=0.3, seed=3)]


def real_jobs(config, core, max_cols):
    """Jobs of every fixture case for ``core`` ("ditto_core" or "dense_core")."""
    jobs = []
    for case in load_fixture(FIXTURE):
        jobs += fixture_jobs(case, config, core.removesuffix("_core"), max_cols=max_cols)
    return jobs


@pytest.mark.parametrize("core", ["ditto_core", "dense_core"])
def test_real_trace_tiles_on_generated_verilog(core, simulator):
    config = preset("tiny")
    run = run_core_bench(core, config, real_jobs(config, core, max_cols=4), TRAFFIC,
                         simulator=simulator, tag="real")
    assert run.jobs == 2 * len(real_jobs(config, core, max_cols=4))


def test_default_config_real_tiles_on_verilator():
    """The default configuration (8 PEs, 32 elements a beat) through Verilator."""
    config = preset("default")
    run = run_core_bench("ditto_core", config, real_jobs(config, "ditto_core", max_cols=16),
                         TRAFFIC[:1], simulator="verilator", tag="real")
    assert run.rows > 0


def test_synthetic_high_difference_tiles(simulator):
    """Many FULL differences: the dispatcher FIFO fills and the input stalls."""
    config = preset("tiny")
    rng = np.random.default_rng(21)
    xs = [rng.integers(-128, 128, (16, 40)).astype(np.int8) for _ in range(3)]
    ws = [rng.integers(-128, 128, (40, 4)).astype(np.int8)] * 3
    run_core_bench("ditto_core", config, ditto_jobs(xs, ws, config, weights_change=False),
                   TRAFFIC, simulator=simulator, tag="synthetic")
