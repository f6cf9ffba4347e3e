"""Capture of real activation traces from an ONNX diffusion model (docs/traces.md).

The model and how to sample it come from a sampler spec (``sim.spec``): the built-in
``terrain`` (the pretrained terrain U-Net of the PyPI package ``adaptive-terrain-diffusion``),
``dit-digits`` (the DiT trained here by ``scripts/train_dit.py``), or any spec file.

Capture runs the sampler twice on an instrumented copy of the graph (every input of every
Conv, Gemm, MatMul and Einsum node added as a graph output): pass 1 finds each tensor's
largest magnitude over the whole trajectory (its static int8 scale), pass 2 quantizes and
stores. The two passes must produce the same sample, bit for bit.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ditto.config import DittoConfig

from .quant import quantize, quantize_weights
from .spec import SAMPLERS, SamplerSpec, load_spec

__all__ = ["CaptureError", "SAMPLERS", "TRACED_OPS", "capture_trace", "open_model",
           "run_sampler", "sample"]

TRACED_OPS = ("Conv", "Gemm", "MatMul", "Einsum")
#: Ops between an attention score MatMul and its Softmax (scaling, masking, casting).
_ELEMENTWISE_OPS = ("Mul", "Div", "Add", "Sub", "Where", "Cast")

INSTALL_HINT = ("install the optional trace packages with 'make install' (onnx, onnxruntime "
                "and adaptive-terrain-diffusion without its GPU dependency)")


class CaptureError(RuntimeError):
    """Capture cannot proceed: missing packages, a bad model or option, an unsupported node."""


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CaptureError(f"module {module!r} is missing: {INSTALL_HINT}") from None


Denoiser = Callable[[np.ndarray, int], np.ndarray]


def run_sampler(denoise: Denoiser, sigmas: Sequence[float], *, sampler: str,
                shape: tuple[int, ...], seed: int, sigma_min: float = 0.0,
                eta: float = 0.0) -> np.ndarray:
    """Run ``sampler`` with one evaluation ``denoise(x, i)`` of the denoiser at each
    ``sigmas[i]``; returns the final sample (``shape`` includes the batch axis).

    All three start from ``x = sigma_0 * z``, work in the variance-exploding form
    (``sim.spec``) and return the last denoised estimate (the last step goes to sigma 0).

    - ``euler``: deterministic Euler on the probability-flow ODE (EDM).
    - ``ddim``: DDIM; ``x' = D + sqrt(sigma'^2 - u^2) * (x - D) / sigma + u * z`` with
      ``u = eta * sigma' * sqrt(sigma^2 - sigma'^2) / sigma``. With ``eta = 0`` it is the
      Euler step written in DDIM's form; with ``eta = 1``, ancestral sampling.
    - ``consistency``: the multistep consistency sampler; before every evaluation after the
      first, fresh noise of level ``sqrt(sigma_i^2 - sigma_min^2)`` is added to the previous
      denoised estimate.
    """
    if sampler not in SAMPLERS:
        raise CaptureError(f"--sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * sigmas[0]).astype(np.float32)
    denoised = None
    for i, sigma in enumerate(sigmas):
        if sampler == "consistency" and i > 0:
            noise = rng.standard_normal(shape).astype(np.float32)
            level = np.sqrt(max(sigma**2 - sigma_min**2, 0.0))
            x = (denoised + level * noise).astype(np.float32)
        denoised = denoise(x, i)
        if i + 1 == len(sigmas):
            break
        if sampler == "euler":
            slope = (x - denoised) / np.float32(sigma)
            x = (x + np.float32(sigmas[i + 1] - sigma) * slope).astype(np.float32)
        elif sampler == "ddim":
            following = sigmas[i + 1]
            up = eta * following * np.sqrt(max(sigma**2 - following**2, 0.0)) / sigma
            eps = (x - denoised) / np.float32(sigma)
            x = denoised + np.float32(np.sqrt(following**2 - up**2)) * eps
            if up > 0:
                x = x + np.float32(up) * rng.standard_normal(shape).astype(np.float32)
            x = x.astype(np.float32)
    return denoised


@dataclass(frozen=True)
class _Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict


def _session(model_bytes: bytes, path: Path):
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    # Every node runs as written: exposing intermediate tensors then changes nothing.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model_bytes, sess_options=options,
                                    providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own classes for every failure
        raise CaptureError(f"{path}: onnxruntime cannot run it: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def open_model(spec: SamplerSpec):
    """The spec's model as an ONNX ``ModelProto``, checked against the spec: readable,
    valid, with every input and the output the spec names, and no input it does not."""
    onnx = _require("onnx")
    path = spec.model_path(INSTALL_HINT)
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # protobuf's DecodeError, onnx's ValidationError, OSError
        raise CaptureError(f"{path}: not a valid ONNX model ({_first_line(error)})") from None
    graph = model.graph
    constants = {i.name for i in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in constants}
    names = ", ".join(inputs) or "none"
    for role, name in (("sample", spec.sample_input), ("noise", spec.noise_input),
                       *(("condition " + c.key, c.input) for c in spec.conditions)):
        if name not in inputs:
            raise CaptureError(f"{path}: spec {spec.name} names the {role} input {name!r}, "
                               f"which the model does not have (its inputs: {names})")
    unfed = [name for name in inputs if name not in spec.inputs]
    if unfed:
        raise CaptureError(f"{path}: model input {unfed[0]!r} is not in spec {spec.name} "
                           f"(the spec feeds {', '.join(spec.inputs)})")
    outputs = [o.name for o in graph.output]
    if spec.output not in outputs:
        raise CaptureError(f"{path}: spec {spec.name} names the output {spec.output!r}, "
                           f"which the model does not have (its outputs: {', '.join(outputs)})")
    dims = [d.dim_value or None for d in inputs[spec.sample_input].type.tensor_type.shape.dim]
    if len(dims) != 1 + len(spec.sample_shape) or any(
            d is not None and d != want for d, want in zip(dims[1:], spec.sample_shape,
                                                          strict=True)):
        raise CaptureError(f"{path}: input {spec.sample_input!r} has shape "
                           f"[{', '.join(str(d or '?') for d in dims)}], spec {spec.name} "
                           f"says [batch, {', '.join(map(str, spec.sample_shape))}]")
    return model, path


@dataclass(frozen=True)
class _Trajectory:
    """One sampling run of a spec: the options checked, the noise levels fixed."""

    spec: SamplerSpec
    steps: int
    sampler: str
    batch: int
    seed: int
    conditions: dict[str, tuple]
    sigmas: np.ndarray
    timesteps: np.ndarray | None

    @classmethod
    def of(cls, spec: SamplerSpec | str, *, steps: int, sampler: str | None, batch: int,
           seed: int, conditions: Mapping[str, Sequence] | None, onnx: str | None = None
           ) -> _Trajectory:
        spec = load_spec(spec) if isinstance(spec, str) else spec
        if onnx is not None:
            spec = spec.with_model(onnx)
        if steps < 2:
            raise CaptureError(f"--steps {steps}: a trajectory needs at least 2 steps")
        if batch < 1:
            raise CaptureError(f"--batch {batch}: must be at least 1")
        sampler = sampler or spec.sampler
        if sampler not in SAMPLERS:
            raise CaptureError(f"--sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
        sigmas, timesteps = spec.schedule.levels(steps)
        return cls(spec, steps, sampler, batch, seed, spec.condition_values(conditions),
                   sigmas, timesteps)

    def run(self, session, extra_outputs: Sequence[str],
            visit: Callable[[int, list[np.ndarray]], None] = lambda step, values: None,
            progress: Callable[[str], None] | None = None, label: str = "") -> np.ndarray:
        """Sample once; ``visit(step, values)`` sees ``extra_outputs`` at every step."""
        spec, outputs = self.spec, [self.spec.output, *extra_outputs]

        def denoise(x, i):
            sigma = float(self.sigmas[i])
            if progress:
                progress(f"{label}step {i + 1}/{self.steps} (sigma {sigma:.4g})")
            timestep = None if self.timesteps is None else self.timesteps[i]
            result = session.run(outputs, spec.feeds(x, sigma, timestep, self.conditions))
            visit(i, result[1:])
            return spec.denoised(result[0], x, sigma)

        return run_sampler(denoise, self.sigmas, sampler=self.sampler,
                           shape=(self.batch, *spec.sample_shape), seed=self.seed,
                           sigma_min=spec.schedule.lowest_sigma, eta=spec.eta)

    def index_fields(self) -> dict:
        """The trace index's description of the trajectory (conditions under their keys)."""
        fields = {"sampler": self.sampler, "steps": self.steps, "batch": self.batch,
                  "seed": self.seed, "sigmas": [float(s) for s in self.sigmas]}
        if self.timesteps is not None:
            fields["timesteps"] = [int(t) for t in self.timesteps]
        for key, values in self.conditions.items():
            fields[key] = values[0] if len(values) == 1 else list(values)
        return fields


def sample(spec: SamplerSpec | str = "terrain", *, steps: int, sampler: str | None = None,
           batch: int = 1, seed: int = 0, conditions: Mapping[str, Sequence] | None = None,
           onnx: str | None = None) -> np.ndarray:
    """The sample of an uninstrumented run (for the fidelity check and sample grids)."""
    run = _Trajectory.of(spec, steps=steps, sampler=sampler, batch=batch, seed=seed,
                         conditions=conditions, onnx=onnx)
    model, path = open_model(run.spec)
    return run.run(_session(model.SerializeToString(), path), [])


def _attributes(node) -> dict:
    helper = _require("onnx").helper
    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def _nodes(graph) -> list[_Node]:
    return [_Node(n.name or n.output[0], n.op_type, tuple(n.input), tuple(n.output),
                  _attributes(n)) for n in graph.node]


def _select_nodes(nodes: list[_Node], patterns: Sequence[str] | None) -> list[_Node]:
    """The traced nodes whose names match a pattern, in graph order. A pattern that matches
    only nodes of other ops, or no node at all, is an error."""
    traced = [n for n in nodes if n.op in TRACED_OPS]
    if not patterns:
        return traced
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(n.name, pattern) for n in traced):
            continue
        other = next((n for n in nodes if fnmatch.fnmatchcase(n.name, pattern)), None)
        if other is not None:
            raise CaptureError(f"node {other.name} is a {other.op}; ditto trace captures "
                               f"{', '.join(TRACED_OPS)} nodes only")
        examples = ", ".join(n.name for n in traced)[:120]
        raise CaptureError(f"--layers {pattern!r} matches no node "
                           f"(names look like: {examples} ...)")
    return [n for n in traced if any(fnmatch.fnmatchcase(n.name, p) for p in patterns)]


def _attention_role(node: _Node, nodes: list[_Node]) -> str | None:
    """``attention_pv`` for a MatMul whose first operand is a Softmax's output,
    ``attention_qk`` for one whose output reaches a Softmax through elementwise ops only."""
    producer = next((n for n in nodes if node.inputs[0] in n.outputs), None)
    if producer is not None and producer.op == "Softmax":
        return "attention_pv"
    frontier, seen = list(node.outputs), set()
    while frontier:
        tensor = frontier.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        for consumer in (n for n in nodes if tensor in n.inputs):
            if consumer.op == "Softmax":
                return "attention_qk"
            if consumer.op in _ELEMENTWISE_OPS:
                frontier.extend(consumer.outputs)
    return None


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


def capture_trace(config: DittoConfig, *, spec: SamplerSpec | str = "terrain",
                  onnx: str | None = None, steps: int, sampler: str | None = None,
                  batch: int = 1, seed: int = 0,
                  conditions: Mapping[str, Sequence] | None = None,
                  layers: Sequence[str] | None = None,
                  progress: Callable[[str], None] | None = None
                  ) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    """Capture a trajectory; returns ``(index, arrays, sample)`` for ``trace.write_trace``.

    ``spec`` is a built-in spec name, a spec file or a loaded spec; ``onnx`` replaces its
    model file; ``sampler`` (default: the spec's) and ``conditions`` (key -> values cycled
    over the batch; default: the spec's) shape the run. See the module docstring for the two
    passes; ``layers`` are glob patterns over node names.
    """
    from .layers import LayerKind
    from .trace import EINSUM_AS_MATMUL, SCHEMA, TRACE_VERSION

    trajectory = _Trajectory.of(spec, steps=steps, sampler=sampler, batch=batch, seed=seed,
                                conditions=conditions, onnx=onnx)
    onnx_module = _require("onnx")
    numpy_helper = onnx_module.numpy_helper
    model, path = open_model(trajectory.spec)
    graph = model.graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    all_nodes = _nodes(graph)
    nodes = _select_nodes(all_nodes, layers)

    layer_records, arrays, tensors = [], {}, {}

    def activation(name: str) -> str:
        key = f"act/{len(tensors)}" if name not in tensors else tensors[name]["key"]
        tensors.setdefault(name, {"key": key, "onnx_name": name})
        return key

    for node in nodes:
        if len(node.inputs) < 2:
            raise CaptureError(f"node {node.name}: a {node.op} with one input is not a product")
        x_name, w_name = node.inputs[0], node.inputs[1]
        if x_name in initializers:
            raise CaptureError(f"node {node.name}: {node.op} whose first input is a constant "
                               "is not supported")
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
        elif node.op == "MatMul" and w_name in initializers \
                and initializers[w_name].ndim == 2:
            # x[..., K] @ W[K, N] with constant W: a linear layer over all leading axes.
            record["kind"] = str(LayerKind.LINEAR)
            q, scales = quantize_weights(initializers[w_name], config, channel_axis=1)
        else:
            if node.op == "Einsum":
                equation = node.attributes.get("equation", "").replace(" ", "")
                if equation not in EINSUM_AS_MATMUL:
                    raise CaptureError(f"node {node.name}: Einsum {equation!r} is not "
                                       f"supported (known: {', '.join(EINSUM_AS_MATMUL)})")
                record["equation"] = equation
            else:
                role = _attention_role(node, all_nodes)
                if role:
                    record["role"] = role
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
        graph.output.append(onnx_module.helper.make_tensor_value_info(
            name, onnx_module.TensorProto.FLOAT, None))
    session = _session(model.SerializeToString(), path)
    names = list(tensors)
    peaks = dict.fromkeys(names, 0.0)

    def measure(step, values):
        for name, value in zip(names, values, strict=True):
            if not np.isfinite(value).all():
                raise CaptureError(f"tensor {name} has inf/NaN at step {step}")
            peaks[name] = max(peaks[name], float(np.max(np.abs(value), initial=0.0)))

    first = trajectory.run(session, names, measure, progress, "pass 1/2 (scales): ")
    qmax = (1 << (config.act_bits - 1)) - 1
    scales = {name: (peak / qmax if peak > 0 else 1.0) for name, peak in peaks.items()}
    stored: dict[str, list[np.ndarray]] = {name: [] for name in names}

    def keep(step, values):
        for name, value in zip(names, values, strict=True):
            stored[name].append(quantize(value, scales[name], config))

    second = trajectory.run(session, names, keep, progress, "pass 2/2 (quantize): ")
    if not np.array_equal(first, second):
        raise CaptureError("the two capture passes produced different samples; onnxruntime "
                           "is not deterministic here, static scales would be wrong")
    for name, info in tensors.items():
        arrays[info["key"]] = np.stack(stored.pop(name))
        info.update(scale=scales[name], shape=list(arrays[info["key"]].shape[1:]))
    index = {
        "schema": SCHEMA, "version": TRACE_VERSION,
        "model": trajectory.spec.model_record(path),
        **trajectory.index_fields(),
        "act_bits": config.act_bits, "layer_filter": list(layers or []),
        "tensors": {info["key"]: {k: v for k, v in info.items() if k != "key"}
                    for info in tensors.values()},
        "layers": layer_records,
    }
    return index, arrays, second
