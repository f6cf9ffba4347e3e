"""Capture of real activation traces from a pretrained diffusion U-Net (docs/traces.md).

The model is the ONNX consistency U-Net shipped inside the PyPI package
``adaptive-terrain-diffusion`` (MIT): 128x128x1 terrain heightfields, EDM noise levels
sigma 0.002..80, inputs ``noisy``, ``sigma``, ``difficulty``, output ``denoised``.
It was distilled for one-step sampling: multi-step trajectories are outside what it was
trained for; its activations are real, its images are not its best.

Capture runs the sampler twice on an instrumented copy of the graph (every input of every
Conv, Gemm, MatMul and Einsum node added as a graph output): pass 1 finds each tensor's
largest magnitude over the whole trajectory (its static int8 scale), pass 2 quantizes and
stores. The two passes must produce the same sample, bit for bit.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import importlib.resources
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ditto.config import DittoConfig

from .quant import quantize, quantize_weights

__all__ = ["CaptureError", "SAMPLERS", "TRACED_OPS", "capture_trace", "karras_sigmas",
           "model_path", "sample"]

MODEL_PACKAGE = "adaptive-terrain-diffusion"
MODEL_RESOURCE = "weights/terrain_consistency_unet_difficulty100.onnx"
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
IMAGE_SIZE, DIFFICULTY_CLASSES = 128, 100
TRACED_OPS = ("Conv", "Gemm", "MatMul", "Einsum")
SAMPLERS = ("euler", "consistency")

INSTALL_HINT = ("install the optional trace packages with 'make install' (onnx, onnxruntime "
                f"and {MODEL_PACKAGE} without its GPU dependency)")


class CaptureError(RuntimeError):
    """Capture cannot proceed: missing packages, a bad option, an unsupported node."""


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CaptureError(f"module {module!r} is missing: {INSTALL_HINT}") from None


def model_path() -> str:
    """Path of the bundled ONNX model."""
    try:
        resource = importlib.resources.files("terrain_diffusion").joinpath(MODEL_RESOURCE)
    except ModuleNotFoundError:
        raise CaptureError(f"package {MODEL_PACKAGE} is missing: {INSTALL_HINT}") from None
    if not resource.is_file():
        raise CaptureError(f"{MODEL_PACKAGE} has no {MODEL_RESOURCE}; reinstall it")
    return str(resource)


def karras_sigmas(steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX,
                  rho: float = RHO) -> np.ndarray:
    """Karras et al. (2022) noise levels, ``steps`` of them from ``sigma_max`` down."""
    if steps < 1:
        raise CaptureError(f"--steps {steps}: need at least 1")
    if steps == 1:
        return np.array([sigma_max])
    ramp = np.linspace(0.0, 1.0, steps)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


Denoiser = Callable[[np.ndarray, float], np.ndarray]


def run_sampler(denoise: Denoiser, sigmas: Sequence[float], *, sampler: str, batch: int,
                seed: int) -> np.ndarray:
    """Run ``sampler`` with one denoiser evaluation per sigma; returns the final sample.

    - ``euler``: deterministic Euler on the probability-flow ODE (EDM), from
      ``x = sigma_0 * z``; the last step goes to sigma 0, i.e. the sample is the last
      denoised estimate.
    - ``consistency``: the multistep consistency sampler; before every evaluation after the
      first, fresh noise of level ``sqrt(sigma_i^2 - sigma_min^2)`` is added to the previous
      denoised estimate.
    """
    if sampler not in SAMPLERS:
        raise CaptureError(f"--sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    rng = np.random.default_rng(seed)
    shape = (batch, 1, IMAGE_SIZE, IMAGE_SIZE)
    x = (rng.standard_normal(shape) * sigmas[0]).astype(np.float32)
    denoised = None
    for i, sigma in enumerate(sigmas):
        if sampler == "consistency" and i > 0:
            noise = rng.standard_normal(shape).astype(np.float32)
            level = np.sqrt(max(sigma**2 - SIGMA_MIN**2, 0.0))
            x = (denoised + level * noise).astype(np.float32)
        denoised = denoise(x, float(sigma))
        if sampler == "euler" and i + 1 < len(sigmas):
            slope = (x - denoised) / np.float32(sigma)
            x = (x + np.float32(sigmas[i + 1] - sigma) * slope).astype(np.float32)
    return denoised


@dataclass(frozen=True)
class _Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    attributes: dict


def _session(model_bytes: bytes):
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    # Every node runs as written: exposing intermediate tensors then changes nothing.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=options,
                                providers=["CPUExecutionProvider"])


def _feeds(x: np.ndarray, sigma: float, difficulty: int) -> dict[str, np.ndarray]:
    batch = x.shape[0]
    label = (difficulty - 1) / (DIFFICULTY_CLASSES - 1)
    return {"noisy": np.ascontiguousarray(x, dtype=np.float32),
            "sigma": np.full(batch, sigma, dtype=np.float32),
            "difficulty": np.full(batch, label, dtype=np.float32)}


def _check_options(steps: int, batch: int, difficulty: int) -> None:
    if steps < 2:
        raise CaptureError(f"--steps {steps}: a trajectory needs at least 2 steps")
    if batch < 1:
        raise CaptureError(f"--batch {batch}: must be at least 1")
    if not 1 <= difficulty <= DIFFICULTY_CLASSES:
        raise CaptureError(f"--difficulty {difficulty}: must be 1..{DIFFICULTY_CLASSES}")


def sample(*, steps: int, sampler: str = "euler", batch: int = 1, seed: int = 0,
           difficulty: int = 50) -> np.ndarray:
    """The sample of an uninstrumented run (for the fidelity check)."""
    _check_options(steps, batch, difficulty)
    session = _session(open(model_path(), "rb").read())

    def denoise(x, sigma):
        return session.run(["denoised"], _feeds(x, sigma, difficulty))[0]

    return run_sampler(denoise, karras_sigmas(steps), sampler=sampler, batch=batch, seed=seed)


def _attributes(node) -> dict:
    helper = _require("onnx").helper
    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def _select_nodes(graph, patterns: Sequence[str] | None) -> list[_Node]:
    nodes = [_Node(n.name or n.output[0], n.op_type, tuple(n.input), _attributes(n))
             for n in graph.node]
    if not patterns:
        return [n for n in nodes if n.op in TRACED_OPS]
    chosen = [n for n in nodes if any(fnmatch.fnmatchcase(n.name, p) for p in patterns)]
    if not chosen:
        examples = ", ".join(n.name for n in nodes if n.op in TRACED_OPS)[:120]
        raise CaptureError(f"--layers {','.join(patterns)!r} matches no node "
                           f"(names look like: {examples} ...)")
    unsupported = [n for n in chosen if n.op not in TRACED_OPS]
    if unsupported:
        n = unsupported[0]
        raise CaptureError(f"node {n.name} is a {n.op}; ditto trace captures "
                           f"{', '.join(TRACED_OPS)} nodes only")
    return chosen


def _conv_geometry(node: _Node, weight: np.ndarray) -> dict:
    a = node.attributes
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise CaptureError(f"node {node.name}: Conv auto_pad={a['auto_pad']} is not supported")
    if weight.ndim != 4:
        raise CaptureError(f"node {node.name}: only 2-D convolutions are supported "
                           f"(weight shape {weight.shape})")
    pads = list(a.get("pads", [0, 0, 0, 0]))  # ONNX: top, left, bottom, right
    return {"kernel": [int(d) for d in weight.shape[2:]],
            "stride": list(a.get("strides", [1, 1])), "pads": pads,
            "dilation": list(a.get("dilations", [1, 1])), "groups": int(a.get("group", 1))}


def capture_trace(config: DittoConfig, *, steps: int, sampler: str = "euler", batch: int = 1,
                  seed: int = 0, difficulty: int = 50, layers: Sequence[str] | None = None,
                  progress: Callable[[str], None] | None = None
                  ) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    """Capture a trajectory; returns ``(index, arrays, sample)`` for ``trace.write_trace``.

    See the module docstring for the two passes; ``layers`` are glob patterns over node
    names.
    """
    from .layers import LayerKind
    from .trace import EINSUM_AS_MATMUL, SCHEMA, TRACE_VERSION

    _check_options(steps, batch, difficulty)
    if sampler not in SAMPLERS:
        raise CaptureError(f"--sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    onnx = _require("onnx")
    numpy_helper = onnx.numpy_helper
    model = onnx.load(model_path())
    graph = model.graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = _select_nodes(graph, layers)

    layer_records, arrays, tensors = [], {}, {}

    def activation(name: str) -> str:
        key = f"act/{len(tensors)}" if name not in tensors else tensors[name]["key"]
        tensors.setdefault(name, {"key": key, "onnx_name": name})
        return key

    for node in nodes:
        x_name, w_name = node.inputs[0], node.inputs[1]
        if x_name in initializers:
            raise CaptureError(f"node {node.name}: its first input is a constant")
        record = {"name": node.name, "op": node.op, "x": activation(x_name)}
        if node.op == "Conv":
            weight = initializers.get(w_name)
            if weight is None:
                raise CaptureError(f"node {node.name}: Conv weights are not constant")
            record.update(kind=str(LayerKind.CONV2D), conv=_conv_geometry(node, weight))
            q, scales = quantize_weights(weight, config, channel_axis=0)
        elif node.op == "Gemm":
            weight = initializers.get(w_name)
            a = node.attributes
            if weight is None or a.get("transA", 0):
                raise CaptureError(f"node {node.name}: Gemm needs constant B and transA=0")
            trans_b = int(a.get("transB", 0))
            record.update(kind=str(LayerKind.LINEAR), trans_b=trans_b)
            q, scales = quantize_weights(weight, config, channel_axis=0 if trans_b else 1)
        else:
            if node.op == "Einsum":
                equation = node.attributes.get("equation", "").replace(" ", "")
                if equation not in EINSUM_AS_MATMUL:
                    raise CaptureError(f"node {node.name}: Einsum {equation!r} is not "
                                       f"supported (known: {', '.join(EINSUM_AS_MATMUL)})")
                record["equation"] = equation
            record["kind"] = str(LayerKind.MATMUL)
            if w_name in initializers:
                q, scales = quantize_weights(initializers[w_name], config, channel_axis=-1)
            else:
                record.update(w=activation(w_name), weights_change=True)
                layer_records.append(record)
                continue
        key = f"weight/{node.name}"
        arrays[key] = q
        record.update(w=key, w_scales=scales.tolist())
        layer_records.append(record)

    for name in tensors:
        graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                               None))
    session = _session(model.SerializeToString())
    names = list(tensors)
    sigmas = karras_sigmas(steps)
    outputs = ["denoised", *names]

    def run(pass_name: str, visit: Callable[[int, list[np.ndarray]], None]) -> np.ndarray:
        step = 0

        def denoise(x, sigma):
            nonlocal step
            if progress:
                progress(f"{pass_name}: step {step + 1}/{steps} (sigma {sigma:.4g})")
            result = session.run(outputs, _feeds(x, sigma, difficulty))
            visit(step, result[1:])
            step += 1
            return result[0]

        return run_sampler(denoise, sigmas, sampler=sampler, batch=batch, seed=seed)

    peaks = dict.fromkeys(names, 0.0)

    def measure(step, values):
        for name, value in zip(names, values, strict=True):
            if not np.isfinite(value).all():
                raise CaptureError(f"tensor {name} has inf/NaN at step {step}")
            peaks[name] = max(peaks[name], float(np.max(np.abs(value), initial=0.0)))

    first = run("pass 1/2 (scales)", measure)
    qmax = (1 << (config.act_bits - 1)) - 1
    scales = {name: (peak / qmax if peak > 0 else 1.0) for name, peak in peaks.items()}
    stored: dict[str, list[np.ndarray]] = {name: [] for name in names}

    def keep(step, values):
        for name, value in zip(names, values, strict=True):
            stored[name].append(quantize(value, scales[name], config))

    second = run("pass 2/2 (quantize)", keep)
    if not np.array_equal(first, second):
        raise CaptureError("the two capture passes produced different samples; onnxruntime "
                           "is not deterministic here, static scales would be wrong")
    for name, info in tensors.items():
        arrays[info["key"]] = np.stack(stored.pop(name))
        info.update(scale=scales[name], shape=list(arrays[info["key"]].shape[1:]))
    index = {
        "schema": SCHEMA, "version": TRACE_VERSION,
        "model": {"package": MODEL_PACKAGE, "version": _package_version(),
                  "file": MODEL_RESOURCE,
                  "caveat": "distilled for one-step sampling; multi-step trajectories are "
                            "outside its training"},
        "sampler": sampler, "steps": steps, "batch": batch, "seed": seed,
        "difficulty": difficulty, "sigmas": [float(s) for s in sigmas],
        "act_bits": config.act_bits, "layer_filter": list(layers or []),
        "tensors": {info["key"]: {k: v for k, v in info.items() if k != "key"}
                    for info in tensors.values()},
        "layers": layer_records,
    }
    return index, arrays, second


def _package_version() -> str:
    try:
        return importlib.metadata.version(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
