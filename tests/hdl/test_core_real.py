"""Real-trace regression (Amaranth simulator): tiles of a 3x3 conv, a 1x1 conv, a Gemm and
an attention Q K^T pair, cut from a captured trajectory of the terrain U-Net (the committed
fixture), over four consecutive steps: ACT, then DIFF, and the last step again in SPATIAL
mode, through DittoCore and DenseCore. Values equal plain integer arithmetic; cycles equal
the cycle model. (The cocotb tier runs the same jobs on the generated Verilog.)"""


import numpy as np
import pytest

from ditto.config import preset
from ditto.enums import Mode
from ditto.hdl.core import DenseCore, DittoCore
from ditto.sim.fixtures import committed_cases
from ditto.verif.simulate import run_jobs
from ditto.verif.tiles import case_operands, fixture_jobs

CASES = {case["name"]: case for case in committed_cases()}
CONFIG = preset("tiny")
MAX_COLS = 4  # two output-channel blocks of the tiny preset keep this tier quick


def check(jobs, results):
    for job, result in zip(jobs, results, strict=True):
        assert [row for row, _ in result.rows] == list(range(job.row_base,
                                                             job.row_base + job.rows))
        if job.expected is not None:
            assert (result.values == job.expected).all(), job.label
        assert result.counters["cycles"] == job.cycles, job.label
        assert job.counters, job.label  # every counter is predicted ...
        for name, want in job.counters.items():  # ... and equal to the model's
            assert result.counters[name] == want, f"{job.label}: {name}"


def attention_outputs(jobs, results):
    """``(c0, c1, t, Y_t)`` per column block and step, rebuilt as the host does: the stored
    main rows plus the sum of the transposed products since the last step from scratch."""
    outputs, added = [], {}
    transposed = {}
    for job, result in zip(jobs, results, strict=True):
        if job.extra["part"] == "transposed":
            r0, r1 = job.extra["rows"]
            transposed.setdefault((job.extra["cols"], job.extra["step"]), []).append(
                (r0, r1, result.values))
    for job, result in zip(jobs, results, strict=True):
        if job.extra["part"] != "main" or job.expected is None:
            continue
        (c0, c1), t = job.extra["cols"], job.extra["step"]
        total = np.zeros((job.rows, c1 - c0), np.int64)
        if job.mode is Mode.DIFF:
            total += added.get((c0, c1), 0)
            for r0, r1, values in transposed.get(((c0, c1), t), []):
                total[r0:r1] += values[:c1 - c0, :r1 - r0].T
        added[(c0, c1)] = total
        outputs.append((c0, c1, t, result.values[:, :c1 - c0] + total))
    return outputs


@pytest.mark.parametrize("name", sorted(CASES))
def test_ditto_core_on_real_tiles(name):
    case = CASES[name]
    jobs = fixture_jobs(case, CONFIG, "ditto", max_cols=MAX_COLS, spatial=True)
    assert Mode.SPATIAL in {job.mode for job in jobs}
    results = run_jobs(DittoCore(config=CONFIG), jobs)
    check(jobs, results)
    if case["kind"] == "both_change":
        xs, ws = case_operands(case, CONFIG, max_cols=MAX_COLS)
        for c0, c1, t, y in attention_outputs(jobs, results):
            plain = xs[t].astype(np.int64) @ ws[t][:, c0:c1].astype(np.int64)
            assert (y == plain).all(), f"attention output at step {t}, columns {c0}:{c1}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_dense_core_on_real_tiles(name):
    jobs = fixture_jobs(CASES[name], CONFIG, "dense", max_cols=MAX_COLS, spatial=True)
    check(jobs, run_jobs(DenseCore(config=CONFIG), jobs))
