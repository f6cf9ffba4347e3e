"""The DiT trained here (``sim/models/dit_digits.onnx``) through the generic capture: its
layers are recognised, the capture does not change its sample, and DIFF processing of its
real activations equals the plain integer product.

A short trajectory (3 DDIM steps, a batch of 2) keeps this quick; docs/results-dit.md has
the 20-step figures.
"""

import numpy as np
import pytest

from ditto.cli import main
from ditto.config import preset
from ditto.sim.capture import capture_trace, sample
from ditto.sim.exactness import check_exactness
from ditto.sim.fixtures import DIT_CASES, DIT_FIXTURE, load_fixture
from ditto.sim.spec import BUILTIN_SPECS, load_spec
from ditto.sim.trace import TraceFile, write_trace

CONFIG = preset("default")
STEPS, BATCH = 3, 2
BLOCK = ["blocks.1.*"]


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    index, arrays, result = capture_trace(CONFIG, spec="dit-digits", steps=STEPS,
                                          batch=BATCH, layers=BLOCK, seed=4)
    path = tmp_path_factory.mktemp("dit") / "dit.npz"
    write_trace(path, index, arrays)
    return path, index, result


def test_the_capture_does_not_change_the_sample(captured):
    _, _, result = captured
    assert result.shape == (BATCH, 1, 8, 8)
    assert np.array_equal(result, sample("dit-digits", steps=STEPS, batch=BATCH, seed=4))


def test_a_block_has_its_linear_layers_and_both_attention_products(captured):
    path, index, _ = captured
    with TraceFile(path) as trace:
        groups = {spec.name.removeprefix("blocks.1."): spec.group for spec in trace.specs}
        changing = {spec.name for spec in trace.specs if spec.weights_change}
    assert groups == {"adaLN": "linear", "attn.qkv": "linear", "attn.qk": "attention_qk",
                      "attn.pv": "attention_pv", "attn.proj": "linear", "mlp.fc1": "linear",
                      "mlp.fc2": "linear"}
    assert changing == {"blocks.1.attn.qk", "blocks.1.attn.pv"}
    assert index["sampler"] == "ddim" and index["label"] == list(range(10))
    assert index["model"]["spec"] == "dit-digits"


def test_diff_equals_the_plain_integer_product_on_the_dit(captured):
    path, _, _ = captured
    with TraceFile(path) as trace:
        result = check_exactness(trace.layers(), CONFIG)
    assert result.layers == 7 and result.steps == STEPS and not result.mismatches


def test_the_committed_model_is_the_one_its_spec_names():
    spec = load_spec(BUILTIN_SPECS["dit-digits"])
    assert spec.model_file.is_file() and spec.model_file.stat().st_size < 4_000_000
    cli_spec = load_spec(str(BUILTIN_SPECS["dit-digits"]))  # the same spec given as a file
    assert cli_spec.model_file == spec.model_file


def test_the_dit_fixture_holds_its_cases(tmp_path):
    cases = {case["name"]: case for case in load_fixture(DIT_FIXTURE)}
    assert set(cases) == {name for name, _ in DIT_CASES}
    assert {cases[name]["kind"] for name in cases} == {"constant", "both_change"}


def test_cli_traces_the_dit_from_its_onnx_file_and_spec_file(tmp_path, capsys):
    out = tmp_path / "dit.npz"
    spec = BUILTIN_SPECS["dit-digits"]
    assert main(["trace", "--onnx", str(spec.parent / "dit_digits.onnx"), "--spec", str(spec),
                 "--steps", "2", "--layers", "final.linear", "--out", str(out)]) == 0
    with TraceFile(out) as trace:
        assert trace.layer_names == ["final.linear"] and trace.steps == 2
