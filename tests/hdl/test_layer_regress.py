"""Whole real layers through the RTL (``ditto regress --trace T --layer NAME``): a Gemm and
one attention head group of a freshly captured 3-step trajectory, every row and output
channel, through both cores' bulk models on the default configuration. The tiling is
checked too: the jobs' expected rows, put back together, are the whole layer's plain
integer product at every step."""

import numpy as np
import pytest

from ditto.cli import main
from ditto.config import preset
from ditto.sim.capture import capture_trace
from ditto.sim.layers import layer_operands
from ditto.sim.trace import TraceFile, write_trace
from ditto.verif.layer_regress import layer_jobs, parse_steps

CONFIG = preset("default")
GEMM, ATTENTION = "node_linear_1", "node_einsum_22"   # 1 x 128 @ 128 x 128; 4 x 64x32 @ 32x64
STEPS = 3


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    index, arrays, _ = capture_trace(CONFIG, steps=STEPS, layers=[GEMM, ATTENTION], seed=3)
    path = tmp_path_factory.mktemp("trace") / "layers.npz"
    write_trace(path, index, arrays)
    return path


@pytest.mark.parametrize("layer", [GEMM, ATTENTION])
def test_a_whole_layer_equals_the_model_on_both_cores(trace, layer, capsys):
    assert main(["regress", "--trace", str(trace), "--layer", layer, "--steps", "0..2"]) == 0
    table = capsys.readouterr().out
    with TraceFile(trace) as opened:
        spec = opened.layer(layer)
    for core in ("ditto_core", "dense_core"):
        jobs = list(layer_jobs(spec, range(STEPS), CONFIG, core))
        line = next(row for row in table.splitlines() if row.startswith(core))
        # The table reports every job and row it ran.
        assert line.split()[1:3] == [str(len(jobs)), str(sum(job.rows for job in jobs))]


def _rebuilt_outputs(jobs, shape):
    """``Y[t][g]`` put back together from the jobs' expected rows as the host would: the
    stored main rows plus, with changing weights, the transposed products so far."""
    groups, rows, cols = shape
    transposed = {}
    for job in jobs:
        if job.extra["part"] == "transposed" and job.expected is not None:
            g, r0, _ = job.extra["block"]
            (c0, c1), (q0, q1) = job.extra["cols"], job.extra["rows"]
            transposed.setdefault((g, r0, c0, job.extra["step"]), []).append(
                (r0 + q0, r0 + q1, job.expected[:c1 - c0, :q1 - q0].T))
    outputs = np.zeros((STEPS, groups, rows, cols), np.int64)
    seen = np.zeros(outputs.shape, bool)
    added = np.zeros((groups, rows, cols), np.int64)
    for job in jobs:
        if job.extra["part"] != "main" or job.expected is None:
            continue
        (g, r0, r1), (c0, c1), t = job.extra["block"], job.extra["cols"], job.extra["step"]
        for a0, a1, values in transposed.get((g, r0, c0, t), []):
            added[g, a0:a1, c0:c1] += values
        outputs[t, g, r0:r1, c0:c1] = job.expected[:, :c1 - c0] + added[g, r0:r1, c0:c1]
        seen[t, g, r0:r1, c0:c1] = True
    assert seen.all(), "some outputs of the layer are in no job"
    return outputs


@pytest.mark.parametrize("core", ["ditto_core", "dense_core"])
@pytest.mark.parametrize("layer", [GEMM, ATTENTION])
def test_the_jobs_cover_the_whole_layer(trace, layer, core):
    with TraceFile(trace) as opened:
        spec = opened.layer(layer)
    plain = np.stack([np.matmul(*(operand.astype(np.int64) for operand in
                                  layer_operands(spec.spec, *spec.steps[t])))
                      for t in range(STEPS)])
    # A small buffer: several blocks of rows, also for the 64-row attention heads.
    small = CONFIG.replace(max_rows=48)
    jobs = list(layer_jobs(spec, range(STEPS), small, core))
    assert (_rebuilt_outputs(jobs, plain.shape[1:]) == plain).all()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--layer", "node_nowhere", "--steps", "0..2"], "no layer 'node_nowhere'"),
    (["--layer", GEMM, "--steps", "1..5"], "the trace has steps 0..2"),
    (["--layer", GEMM, "--steps", "two"], "write A..B"),
    (["--steps", "0..1"], "needs both --trace TRACE and --layer NAME"),
])
def test_bad_layer_arguments_fail_with_one_line(trace, arguments, message, capsys):
    assert main(["regress", "--trace", str(trace), *arguments]) != 0
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_steps_are_parsed_inclusively():
    assert parse_steps("1..3", 20) == range(1, 4)
    assert parse_steps("4", 20) == range(4, 5)
    assert parse_steps(None, 3) == range(3)
