"""Sampler specs: parameterisations and samplers on models whose exact answer is known, and
one-line errors for bad specs and bad models.

The toy models here are exact denoisers of a point mass: every training image is the
constant ``c = 0.25 * label``. Their ``edm`` form returns ``c``, their ``eps`` and ``v`` forms
return the noise and velocity that a DDPM model of that data must predict. Whatever the
sampler, a correct conversion between the sampler's variance-exploding state and the
model's own inputs and outputs gives the sample ``c``; a wrong one does not.
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ditto.cli import main
from ditto.config import preset
from ditto.sim.capture import CaptureError, capture_trace, sample
from ditto.sim.spec import SpecError, load_spec

BETA_START, BETA_END, TRAIN_STEPS = 1e-4, 0.02, 1000
SPEC_TOML = """
name = "toy"
prediction = "{prediction}"

[model]
file = "toy.onnx"
output = "out"

[inputs.sample]
input = "x"
shape = [1, 2, 2]

[inputs.noise]
input = "{noise_input}"

[inputs.conditions.label]
input = "y"
dtype = "int64"
default = [1, 2, 3]
range = [0, 9]

[schedule]
{schedule}

[sampler]
default = "euler"
"""
KARRAS = "kind = 'karras'\nsigma_min = 0.002\nsigma_max = 80.0\nrho = 7.0"
DDPM = (f"kind = 'ddpm'\ntrain_steps = {TRAIN_STEPS}\nbeta_start = {BETA_START}\n"
        f"beta_end = {BETA_END}")


def alphas_cumprod() -> np.ndarray:
    """DDPM's linear schedule (Ho et al. 2020), written out independently of sim.spec."""
    return np.cumprod(1.0 - np.linspace(BETA_START, BETA_END, TRAIN_STEPS))


def point_mass_model(prediction: str) -> onnx.ModelProto:
    """An exact model of the data ``c = 0.25 * y``, as an ``edm`` denoiser of ``(x, sigma)``
    or a DDPM ``eps``/``v`` model of ``(x_vp, t)``. ``x`` passes through a MatMul with the
    identity, so the capture has a linear layer to record."""
    noise = "sigma" if prediction == "edm" else "t"
    constants = [
        numpy_helper.from_array(np.eye(2, dtype=np.float32), "identity"),
        numpy_helper.from_array(np.array([0.25], dtype=np.float32), "quarter"),
        numpy_helper.from_array(np.array([-1, 1, 1, 1], dtype=np.int64), "column"),
        numpy_helper.from_array(alphas_cumprod().astype(np.float32), "abar_table"),
        numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "identity"], ["xm"], name="identity_linear"),
        helper.make_node("Cast", ["y"], ["yf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["yf", "quarter"], ["c_flat"]),
        helper.make_node("Reshape", ["c_flat", "column"], ["c"]),
    ]
    if prediction == "edm":
        nodes += [helper.make_node("Sub", ["xm", "xm"], ["zero"]),
                  helper.make_node("Add", ["c", "zero"], ["out"])]
    else:
        nodes += [
            helper.make_node("Cast", ["t"], ["ti"], to=TensorProto.INT64),
            helper.make_node("Gather", ["abar_table", "ti"], ["abar_flat"]),
            helper.make_node("Reshape", ["abar_flat", "column"], ["abar"]),
            helper.make_node("Sqrt", ["abar"], ["alpha"]),
            helper.make_node("Sub", ["one", "abar"], ["s2"]),
            helper.make_node("Sqrt", ["s2"], ["s"]),
            helper.make_node("Mul", ["alpha", "c"], ["alpha_c"]),
            helper.make_node("Sub", ["xm", "alpha_c"], ["s_eps"]),
            helper.make_node("Div", ["s_eps", "s"], ["eps"]),
        ]
        if prediction == "eps":
            nodes.append(helper.make_node("Identity", ["eps"], ["out"]))
        else:  # v = alpha * eps - s * x0
            nodes += [helper.make_node("Mul", ["alpha", "eps"], ["alpha_eps"]),
                      helper.make_node("Mul", ["s", "c"], ["s_c"]),
                      helper.make_node("Sub", ["alpha_eps", "s_c"], ["out"])]
    graph = helper.make_graph(
        nodes, "point_mass",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 2, 2]),
         helper.make_tensor_value_info(noise, TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("y", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 1, 2, 2])],
        constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def write_toy(folder, prediction: str, model: onnx.ModelProto | None = None,
              **overrides) -> str:
    """A spec and its model in ``folder``; returns the spec's path."""
    fields = {"prediction": prediction,
              "noise_input": "sigma" if prediction == "edm" else "t",
              "schedule": KARRAS if prediction == "edm" else DDPM, **overrides}
    onnx.save(model or point_mass_model(prediction), str(folder / "toy.onnx"))
    spec = folder / "toy.toml"
    spec.write_text(SPEC_TOML.format(**fields))
    return str(spec)


@pytest.mark.parametrize("prediction", ["edm", "eps", "v"])
@pytest.mark.parametrize("sampler", ["euler", "ddim", "consistency"])
def test_every_sampler_and_parameterisation_recovers_the_point_mass(tmp_path, prediction,
                                                                     sampler):
    spec = write_toy(tmp_path, prediction)
    result = sample(spec, steps=6, sampler=sampler, batch=5, seed=1)
    labels = np.resize([1, 2, 3], 5)  # the spec's default labels, cycled over the batch
    expected = np.broadcast_to(0.25 * labels[:, None, None, None], (5, 1, 2, 2))
    np.testing.assert_allclose(result, expected, atol=1e-3)


def test_ancestral_ddim_recovers_it_too_and_differs_in_its_path(tmp_path):
    spec = write_toy(tmp_path, "eps")
    spec_file = tmp_path / "toy.toml"
    spec_file.write_text(spec_file.read_text().replace('default = "euler"',
                                                       'default = "ddim"\neta = 1.0'))
    assert load_spec(spec).eta == 1.0
    np.testing.assert_allclose(sample(spec, steps=6, batch=2, conditions={"label": [4]}),
                               np.full((2, 1, 2, 2), 1.0), atol=1e-3)


def test_a_ddpm_trace_records_its_timesteps_and_noise_levels(tmp_path):
    spec = write_toy(tmp_path, "eps")
    index, arrays, _ = capture_trace(preset("tiny"), spec=spec, steps=5, batch=3)
    timesteps = np.linspace(TRAIN_STEPS - 1, 0, 5).round().astype(int)
    abar = alphas_cumprod()[timesteps]
    assert index["timesteps"] == timesteps.tolist()
    np.testing.assert_allclose(index["sigmas"], np.sqrt((1 - abar) / abar), rtol=1e-12)
    assert index["label"] == [1, 2, 3]
    assert index["model"]["spec"] == "toy" and index["model"]["prediction"] == "eps"
    assert index["model"]["file"] == "toy.onnx" and len(index["model"]["sha256"]) == 64
    # The MatMul with a constant 2-D weight is a linear layer over all leading axes.
    (layer,) = index["layers"]
    assert layer["kind"] == "linear" and layer["op"] == "MatMul"
    assert arrays[layer["x"]].shape == (5, 3, 1, 2, 2)


def test_the_terrain_spec_feeds_what_its_model_expects():
    spec = load_spec("terrain")
    values = spec.condition_values({"difficulty": [34]})
    x = np.ones((2, 1, 128, 128), dtype=np.float32)
    feeds = spec.feeds(x, 1.5, None, values)
    assert set(feeds) == {"noisy", "sigma", "difficulty"}
    assert np.array_equal(feeds["noisy"], x)  # an EDM denoiser takes the state unscaled
    np.testing.assert_array_equal(feeds["sigma"], np.float32([1.5, 1.5]))
    np.testing.assert_array_equal(feeds["difficulty"], np.float32([33 / 99, 33 / 99]))
    assert spec.denoised(feeds["noisy"], x, 1.5) is feeds["noisy"]


def one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    return err[0]


def test_a_malformed_onnx_file_is_a_one_line_error(tmp_path, capsys):
    spec = write_toy(tmp_path, "edm")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf of a model" * 10)
    line = one_line_error(capsys, ["trace", "--onnx", str(bad), "--spec", spec, "--steps",
                                   "2", "--out", str(tmp_path / "t.npz")],
                          "not a valid ONNX model")
    assert str(bad) in line
    assert not (tmp_path / "t.npz").exists()


def test_a_spec_naming_a_missing_input_is_a_one_line_error(tmp_path, capsys):
    spec = write_toy(tmp_path, "edm", noise_input="noise_level")
    one_line_error(capsys, ["trace", "--spec", spec, "--steps", "2", "--out",
                            str(tmp_path / "t.npz")],
                   "spec toy names the noise input 'noise_level', which the model does not "
                   "have (its inputs: x, sigma, y)")


def test_a_model_input_the_spec_does_not_feed_is_an_error(tmp_path):
    model = point_mass_model("edm")
    model.graph.input.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1]))
    spec = write_toy(tmp_path, "edm", model=model)
    with pytest.raises(CaptureError, match="model input 'mask' is not in spec toy"):
        sample(spec, steps=2)


def test_an_op_onnxruntime_cannot_run_names_the_node_and_op(tmp_path, capsys):
    model = point_mass_model("edm")
    model.graph.node.append(helper.make_node("Frobnicate", ["xm"], ["unused"],
                                             name="odd_node", domain="org.example"))
    model.opset_import.append(helper.make_opsetid("org.example", 1))
    spec = write_toy(tmp_path, "edm", model=model)
    line = one_line_error(capsys, ["trace", "--spec", spec, "--steps", "2", "--out",
                                   str(tmp_path / "t.npz")], "Frobnicate")
    assert "odd_node" in line or "org.example" in line


@pytest.mark.parametrize("change, match", [
    (("prediction = \"edm\"", "prediction = \"x0\""), "prediction = 'x0'; choose one of"),
    (("kind = 'karras'", "kind = 'cosine'"), "kind = 'cosine'; choose one of karras, ddpm"),
    (("sigma_min = 0.002", "sigma_min = 100.0"), "need 0 < sigma_min < sigma_max"),
    (("shape = [1, 2, 2]", "shape = [1, 0, 2]"), "'shape' must be positive integers"),
    (("[model]", "[modell]"), "missing table [model]"),
    (("range = [0, 9]", "range = [4, 9]"), "--condition label=1: must be 4..9"),
    (("input = \"y\"", "input = \"x\""), "two roles name the same model input"),
    (("name = \"toy\"", "name = toy"), "not valid TOML"),
])
def test_bad_specs_name_the_problem(tmp_path, change, match):
    spec = write_toy(tmp_path, "edm")
    path = tmp_path / "toy.toml"
    text = path.read_text()
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(SpecError, match=match.replace("[", r"\[").replace("]", r"\]")):
        load_spec(spec)


def test_an_edm_denoiser_needs_a_karras_schedule(tmp_path):
    spec = write_toy(tmp_path, "edm", schedule=DDPM)
    with pytest.raises(SpecError, match="edm denoiser takes sigma"):
        load_spec(spec)


def test_cli_rejects_unknown_specs_and_malformed_conditions(tmp_path, capsys):
    one_line_error(capsys, ["trace", "--spec", "no-such-spec", "--steps", "2"],
                   "neither a built-in spec (")
    one_line_error(capsys, ["trace", "--condition", "difficulty", "--steps", "2"],
                   "expected KEY=VALUE")


def test_an_integer_condition_takes_whole_numbers(tmp_path):
    spec = write_toy(tmp_path, "edm")
    with pytest.raises(SpecError, match="int64 input 'y' takes whole numbers"):
        sample(spec, steps=2, conditions={"label": [1.5]})
