"""Real traces: capture from the pretrained U-Net, fidelity, exactness, reports, bad input.

The capture here is small (3 steps, a handful of layers) to keep CI fast; the full check over
every layer of a 20-step trace is `ditto exactness` (see `make bench-trace`).
"""

import json
import zipfile

import numpy as np
import pytest

from ditto.cli import main
from ditto.config import preset
from ditto.sim.capture import CaptureError, capture_trace, sample
from ditto.sim.exactness import check_exactness
from ditto.sim.layers import layer_operands
from ditto.sim.report import write_markdown_report
from ditto.sim.spec import SpecError, karras_sigmas
from ditto.sim.trace import TRACE_VERSION, TraceFile, analyze_trace, write_trace

CONFIG = preset("default")
# A 3x3 conv, a 1x1 conv, a Gemm (time embedding) and one attention block's two matmuls.
LAYERS = ["node_conv2d_1", "node_conv2d_23", "node_linear", "node_einsum", "node_einsum_1"]
STEPS = 3
# The terrain spec's schedule, written out: EDM's Karras levels from 80 down to 0.002.
TERRAIN_SIGMAS = dict(sigma_min=0.002, sigma_max=80.0, rho=7.0)


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    index, arrays, first_sample = capture_trace(CONFIG, steps=STEPS, layers=LAYERS, seed=7)
    path = tmp_path_factory.mktemp("trace") / "small.npz"
    write_trace(path, index, arrays)
    return path, first_sample


def test_capture_does_not_change_the_sample(captured):
    _, instrumented = captured
    assert np.array_equal(instrumented, sample(steps=STEPS, seed=7))


def test_capture_records_every_requested_layer_with_its_geometry(captured):
    path, _ = captured
    with TraceFile(path) as trace:
        assert sorted(trace.layer_names) == sorted(LAYERS)  # graph order
        assert trace.steps == STEPS
        assert trace.sigmas == pytest.approx(karras_sigmas(STEPS, **TERRAIN_SIGMAS).tolist())
        layers = {layer.spec.name: layer for layer in trace.layers()}
    conv = layers["node_conv2d_1"].spec.conv
    assert conv.kernel == (3, 3) and conv.pads == (1, 1, 1, 1) and conv.groups == 1
    assert layers["node_conv2d_23"].spec.conv.kernel == (1, 1)
    assert layers["node_einsum"].spec.weights_change
    assert not layers["node_linear"].spec.weights_change
    x, w = layers["node_einsum"].steps[0]
    assert x.dtype == np.int8 and w.dtype == np.int8 and x.shape[-1] == w.shape[-2]
    # Static scale: the largest magnitude over the trajectory maps to 127 exactly once per
    # tensor, at some step.
    peaks = [max(int(np.abs(x).max()) for x, _ in layer.steps) for layer in layers.values()]
    assert peaks == [127] * len(peaks)


def test_diff_equals_the_plain_integer_product_on_real_data(captured):
    path, _ = captured

    def int64_matmul(a, b):
        return np.matmul(a.astype(np.int64), b.astype(np.int64))

    with TraceFile(path) as trace:
        result = check_exactness(trace.layers(), CONFIG, reference=int64_matmul)
    assert result.layers == len(LAYERS) and result.steps == STEPS
    assert result.mismatches == []


def test_a_corrupted_difference_is_caught(captured):
    """The exactness check is not vacuous: it compares the DIFF step's output with the
    product of the step's own (changed) activations, so a reference that still holds the
    unchanged step's product is caught, at exactly the outputs the change reaches."""
    path, _ = captured
    with TraceFile(path) as trace:
        layer = next(trace.layers())
    x0, w = layer.steps[0]
    x1 = x0.copy()
    x1.flat[0] = np.int8(-x1.flat[0] - 1)  # an activation that really changed (v -> -v-1)
    changed = type(layer)(layer.spec, [(x0, w), (x1, w)])

    def int64_product(x):
        a, b = layer_operands(layer.spec, x, w)
        return np.matmul(a.astype(np.int64), b.astype(np.int64))

    stale, fresh = int64_product(x0), int64_product(x1)
    reached = int(np.count_nonzero(stale != fresh))
    assert reached > 0, "the changed activation must reach some output"
    # The plain product of each step's own operands: no mismatch at either step.
    honest = check_exactness([changed], CONFIG,
                             reference=lambda a, b: np.matmul(a.astype(np.int64),
                                                              b.astype(np.int64)))
    assert honest.mismatches == []
    # The unchanged step's product at every step: step 0 agrees, step 1 differs exactly
    # where the changed activation reaches (a check that ignored x1 would see none).
    result = check_exactness([changed], CONFIG, reference=lambda a, b: stale)
    assert result.mismatches == [f"{layer.spec.name} step 1: {reached} outputs differ"]


def test_analyze_trace_reports_steps_with_sigma_and_writes_plots(captured, tmp_path):
    path, _ = captured
    with TraceFile(path) as trace:
        report = analyze_trace(trace, CONFIG)
    assert [s["step"] for s in report["steps"]] == [1, 2]
    assert report["steps"][0]["sigma"] == pytest.approx(karras_sigmas(STEPS, **TERRAIN_SIGMAS)[1])
    groups = {layer["group"] for layer in report["layers"]}
    assert groups == {"conv3x3", "conv1x1", "linear", "attention_qk", "attention_pv"}
    out = tmp_path / "rep" / "small.md"
    write_markdown_report(report, out)
    text = out.read_text()
    for png in ("small-classes-per-layer.png", "small-classes-per-step.png",
                "small-cycles-per-layer.png"):
        assert f"]({png})" in text
        assert (out.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "distilled for one-step sampling" in text


def test_cli_trace_and_analyze(tmp_path, capsys):
    trace = tmp_path / "t.npz"
    assert main(["trace", "--steps", "2", "--layers", "node_conv2d_23", "--out",
                 str(trace)]) == 0
    out_json = tmp_path / "t.json"
    assert main(["analyze", str(trace), "--json", str(out_json)]) == 0
    data = json.loads(out_json.read_text())
    assert data["trace"]["sampler"] == "euler" and len(data["steps"]) == 1
    assert "wrote" in capsys.readouterr().out


def one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and match in err[-1], err
    return err[-1]


def test_missing_trace_file(capsys, tmp_path):
    one_line_error(capsys, ["analyze", str(tmp_path / "none.npz")], "no such trace file")


def test_truncated_trace_file(captured, tmp_path, capsys):
    path, _ = captured
    cut = tmp_path / "cut.npz"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    one_line_error(capsys, ["analyze", str(cut)], "truncated or corrupt")


def test_trace_missing_a_member(captured, tmp_path, capsys):
    path, _ = captured
    partial = tmp_path / "partial.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(partial, "w") as dst:
        for item in src.infolist()[:-1]:
            dst.writestr(item, src.read(item))
    one_line_error(capsys, ["analyze", str(partial)], "is missing (truncated trace?)")


def test_wrong_schema_version(captured, tmp_path, capsys):
    path, _ = captured
    with TraceFile(path) as trace:
        index = dict(trace.index, version=TRACE_VERSION + 1)
        arrays = {name: trace._npz[name] for name in trace._npz.files if name != "index"}
    other = tmp_path / "v2.npz"
    write_trace(other, index, arrays)
    one_line_error(capsys, ["analyze", str(other)], f"schema version {TRACE_VERSION + 1}")


def test_filter_that_matches_no_layer(capsys, tmp_path):
    one_line_error(capsys, ["trace", "--steps", "2", "--layers", "no_such_*", "--out",
                            str(tmp_path / "x.npz")], "matches no node")
    assert not (tmp_path / "x.npz").exists()


def test_unsupported_node_type():
    with pytest.raises(CaptureError, match="node_softmax is a Softmax"):
        capture_trace(CONFIG, steps=2, layers=["node_softmax"])


def test_bad_capture_options():
    with pytest.raises(CaptureError, match="--steps 1"):
        capture_trace(CONFIG, steps=1)
    with pytest.raises(SpecError, match="--condition difficulty=0: must be 1..100"):
        capture_trace(CONFIG, steps=2, conditions={"difficulty": [0]})
    with pytest.raises(SpecError, match="--condition label: spec terrain has difficulty"):
        capture_trace(CONFIG, steps=2, conditions={"label": [1]})


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError, match="disk full"):
        write_trace(tmp_path / "t.npz", {"schema": "ditto-trace"}, {})
    assert list(tmp_path.iterdir()) == []


def test_consistency_sampler_runs():
    index, arrays, result = capture_trace(CONFIG, steps=2, sampler="consistency",
                                          layers=["node_conv2d_23"])
    assert index["sampler"] == "consistency" and result.shape == (1, 1, 128, 128)
    assert np.array_equal(result, sample(steps=2, sampler="consistency"))


def test_utilisation_report_on_a_real_trace(captured, capsys):
    path, _ = captured
    assert main(["utilisation", str(path), "--steps", "1,2", "--config", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "lane-bound tiles" in out and "scan-bound tiles" in out
