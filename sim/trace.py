"""Trace files: quantized activations of a real diffusion trajectory, per layer and step.

A trace is one ``.npz`` file (a zip of ``.npy`` members):

- ``index``: UTF-8 JSON (as a uint8 array) with ``schema`` (``"ditto-trace"``),
  ``version`` (``TRACE_VERSION``), the model and sampler description, ``sigmas`` (one per
  step), ``tensors`` (per stored activation tensor: ONNX name, per-step shape, static scale)
  and ``layers`` (per captured node: name, ONNX op, kind, operands, geometry, weight scales);
- ``act/<tensor>``: int8 ``[steps, ...]``, the tensor quantized with one static scale over
  the whole trajectory;
- ``weight/<layer>``: int8 weights of Conv and Gemm layers (per-output-channel scales).

Operands are stored in their ONNX layout; ``TraceFile.layers`` yields them in the layout
``layers.layer_operands`` expects (Gemm weights as ``[K, N]``, Einsum operands as
``[groups, M, K] @ [groups, K, N]``).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ditto.files import write_atomically

from .analysis import LayerTrace, analyze
from .layers import Conv2dGeometry, LayerKind, LayerSpec

__all__ = ["EINSUM_AS_MATMUL", "TRACE_VERSION", "TraceError", "TraceFile", "analyze_trace",
           "write_trace"]

TRACE_VERSION = 1
SCHEMA = "ditto-trace"

#: Einsum equations the trace understands, as (transpose of operand 0, of operand 1) that
#: turn them into ``A[g, M, K] @ B[g, K, N]``; the product of ``bts,bcs->bct`` comes out
#: transposed, which does not change its cost.
EINSUM_AS_MATMUL: dict[str, tuple[bool, bool]] = {
    "bct,bcs->bts": (True, False),   # attention scores Q^T K
    "bts,bcs->bct": (False, True),   # attention output P V^T
}
EINSUM_ROLES = {"bct,bcs->bts": "attention_qk", "bts,bcs->bct": "attention_pv"}


class TraceError(ValueError):
    """A trace file is missing, truncated, of another schema version, or inconsistent."""


def _json_member(index: Mapping) -> np.ndarray:
    return np.frombuffer(json.dumps(index, sort_keys=True).encode(), dtype=np.uint8)


def write_trace(path: str | os.PathLike, index: Mapping, arrays: Mapping[str, np.ndarray]
                ) -> None:
    """Write a trace atomically (temporary file in the same folder, then rename)."""
    write_atomically(path, lambda file: np.savez(file, index=_json_member(index), **arrays))


@dataclass(frozen=True)
class _LayerEntry:
    spec: LayerSpec
    x: str
    w: str
    transpose: tuple[bool, bool]


class TraceFile:
    """A trace opened for reading; arrays are loaded lazily, one layer at a time.

    Raises
    ------
    TraceError
        With a one-line message naming the problem: missing file, not a trace, truncated,
        wrong schema version, missing or malformed members.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise TraceError(f"{self.path}: no such trace file (write one with 'ditto trace')")
        try:
            self._npz = np.load(self.path, allow_pickle=False)
            raw = self._npz["index"]
            self.index = json.loads(bytes(raw.astype(np.uint8)).decode())
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise TraceError(f"{self.path}: not a readable trace file, truncated or corrupt "
                             f"({error}); capture it again with 'ditto trace'") from None
        except KeyError:
            raise TraceError(f"{self.path}: no 'index' member; not a ditto trace") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise TraceError(f"{self.path}: unreadable index ({error})") from None
        if self.index.get("schema") != SCHEMA:
            raise TraceError(f"{self.path}: schema {self.index.get('schema')!r} is not "
                             f"{SCHEMA!r}")
        version = self.index.get("version")
        if version != TRACE_VERSION:
            raise TraceError(f"{self.path}: trace schema version {version}, this ditto reads "
                             f"version {TRACE_VERSION}; capture it again with 'ditto trace'")
        try:
            self.sigmas = [float(s) for s in self.index["sigmas"]]
            self._entries = [self._entry(layer) for layer in self.index["layers"]]
        except (KeyError, TypeError, ValueError) as error:
            raise TraceError(f"{self.path}: malformed index ({error!r})") from None
        members = set(self._npz.files)
        for entry in self._entries:
            for key in (entry.x, entry.w):
                if key not in members:
                    raise TraceError(f"{self.path}: member {key!r} of layer "
                                     f"{entry.spec.name} is missing (truncated trace?)")

    @staticmethod
    def _entry(layer: dict) -> _LayerEntry:
        kind = LayerKind(layer["kind"])
        conv = Conv2dGeometry(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in layer["conv"].items()}) if layer.get("conv") \
            else None
        spec = LayerSpec(layer["name"], kind, conv=conv,
                         weights_change=bool(layer.get("weights_change", False)),
                         role=layer.get("role") or EINSUM_ROLES.get(layer.get("equation", "")))
        transpose = (False, False)
        if layer["op"] == "Einsum":
            transpose = EINSUM_AS_MATMUL[layer["equation"]]
        elif layer["op"] == "Gemm":
            transpose = (False, bool(layer.get("trans_b", 0)))
        return _LayerEntry(spec, layer["x"], layer["w"], transpose)

    @property
    def steps(self) -> int:
        return len(self.sigmas)

    @property
    def specs(self) -> list[LayerSpec]:
        """The layers' specs, in graph order, without loading any array."""
        return [entry.spec for entry in self._entries]

    @property
    def layer_names(self) -> list[str]:
        return [entry.spec.name for entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def _array(self, key: str) -> np.ndarray:
        try:
            array = self._npz[key]
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
            raise TraceError(f"{self.path}: member {key!r} unreadable ({error}); the file is "
                             "truncated or corrupt") from None
        if array.dtype != np.int8:
            raise TraceError(f"{self.path}: member {key!r} is {array.dtype}, expected int8")
        return array

    def layers(self) -> Iterator[LayerTrace]:
        """Each layer with its per-step operands, loaded when the iteration reaches it."""
        for entry in self._entries:
            yield self._load(entry)

    def layer(self, name: str) -> LayerTrace:
        """The layer called ``name`` (a node name of the index), loading only its arrays."""
        for entry in self._entries:
            if entry.spec.name == name:
                return self._load(entry)
        raise TraceError(f"{self.path}: no layer {name!r}; it has {len(self._entries)} "
                         f"layers, e.g. {', '.join(self.layer_names[:4])}")

    def _load(self, entry: _LayerEntry) -> LayerTrace:
        x_all = self._array(entry.x)
        w_all = self._array(entry.w)
        if x_all.shape[0] != self.steps or (entry.spec.weights_change
                                            and w_all.shape[0] != self.steps):
            raise TraceError(f"{self.path}: layer {entry.spec.name} has "
                             f"{x_all.shape[0]} steps, the index says {self.steps}")

        def operand(array, transposed):
            return np.swapaxes(array, -1, -2) if transposed else array

        steps = []
        for t in range(self.steps):
            x = operand(x_all[t], entry.transpose[0])
            w = operand(w_all[t] if entry.spec.weights_change else w_all, entry.transpose[1])
            steps.append((x, w))
        return LayerTrace(entry.spec, steps)

    def close(self) -> None:
        self._npz.close()

    def __enter__(self) -> TraceFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def analyze_trace(trace: TraceFile, config, *, progress=None) -> dict:
    """``analysis.analyze`` over a trace, with the trace's description under ``trace``."""
    report = analyze(trace.layers(), config, sigmas=trace.sigmas, progress=progress)
    # Everything but the bulky per-step and per-tensor lists: the model, the sampler and
    # its options, and the model's conditions (each under its own key).
    report["trace"] = {key: value for key, value in trace.index.items() if key not in
                       ("schema", "version", "sigmas", "timesteps", "tensors", "layers")}
    report["trace"]["file"] = str(trace.path)
    return report
