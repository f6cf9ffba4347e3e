"""Small real-trace fixtures: tiles cut from a captured trajectory, for RTL regressions.

A fixture is an ``.npz`` with an ``index`` (JSON as uint8: source trace, cases) and, per
case, ``<case>/x`` int8 ``[steps, rows, k]`` (the encoded side's rows, in the core's
layout) and ``<case>/w`` int8 ``[steps, k, n]`` (the weight side at each step). Case kinds:

- ``constant``: conv (im2col rows) and Gemm layers; the weights are the same every step.
- ``both_change``: attention ``Q^T K``; ``x`` holds ``Q^T`` rows (tokens x head dim) and
  ``w`` the ``K`` columns (head dim x tokens). A DIFF step is two hardware products:
  ``dX @ W_{t-1}`` and ``(dW^T @ X_t^T)^T`` (see ``layers.step_products``).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from .layers import layer_operands
from .trace import TraceFile, write_trace

__all__ = ["DEFAULT_CASES", "DIT_CASES", "DIT_FIXTURE", "FIXTURE", "FIXTURES", "committed_cases",
           "extract_fixture", "load_fixture"]

FIXTURE_SCHEMA = "ditto-tile-fixture"

#: The committed fixtures (package data of ``ditto.sim``, so they are in the wheel too): the
#: terrain U-Net's (``FIXTURE``, from ``build/traces/terrain-20.npz``) and the DiT's
#: (``DIT_FIXTURE``, from ``ditto trace --spec dit-digits --batch 10 --steps 20``).
FIXTURE = Path(str(resources.files("ditto.sim") / "terrain_tiles.npz"))
DIT_FIXTURE = Path(str(resources.files("ditto.sim") / "dit_tiles.npz"))
FIXTURES = (FIXTURE, DIT_FIXTURE)

#: (case name, layer name) of the terrain fixture.
DEFAULT_CASES = (
    ("conv3x3", "node_conv2d_1"),
    ("conv1x1", "node_conv2d_23"),
    ("gemm", "node_linear"),
    ("attention_qk", "node_einsum"),
)
#: (case name, layer name) of the DiT fixture: a linear layer over the tokens, the MLP's
#: wide one, and one attention block's two products (both operands changing).
DIT_CASES = (
    ("dit_qkv", "blocks.1.attn.qkv"),
    ("dit_mlp_fc2", "blocks.2.mlp.fc2"),
    ("dit_attention_qk", "blocks.1.attn.qk"),
    ("dit_attention_pv", "blocks.1.attn.pv"),
)


def extract_fixture(trace_path: str | os.PathLike, out: str | os.PathLike, *,
                    first_step: int = 8, steps: int = 4, rows: int = 16, cols: int = 16,
                    seed: int = 0, cases=DEFAULT_CASES) -> dict:
    """Cut ``rows`` random rows (and ``cols`` random output columns) of each case's layer
    over ``steps`` consecutive steps from ``first_step`` on; write them to ``out``."""
    rng = np.random.default_rng(seed)
    arrays, index_cases = {}, []
    with TraceFile(trace_path) as trace:
        if first_step + steps > trace.steps:
            raise ValueError(f"trace has {trace.steps} steps; cannot take {steps} from "
                             f"step {first_step}")
        wanted = {layer: name for name, layer in cases}
        for layer in trace.layers():
            if layer.spec.name not in wanted:
                continue
            operands = [layer_operands(layer.spec, *layer.steps[t])
                        for t in range(first_step, first_step + steps)]
            a0, b0 = operands[0]
            group = 0
            row_pick = np.sort(rng.choice(a0.shape[1], min(rows, a0.shape[1]), replace=False))
            col_pick = np.sort(rng.choice(b0.shape[2], min(cols, b0.shape[2]), replace=False))
            name = wanted[layer.spec.name]
            arrays[f"{name}/x"] = np.stack([a[group][row_pick] for a, _ in operands])
            arrays[f"{name}/w"] = np.stack([b[group][:, col_pick] for _, b in operands])
            index_cases.append({
                "name": name, "layer": layer.spec.name, "group": layer.spec.group,
                "kind": "both_change" if layer.spec.weights_change else "constant",
                "steps": list(range(first_step, first_step + steps)),
                "sigmas": trace.sigmas[first_step:first_step + steps],
                "rows": row_pick.tolist(), "cols": col_pick.tolist()})
        missing = set(wanted) - {c["layer"] for c in index_cases}
        if missing:
            raise ValueError(f"layers {sorted(missing)} are not in {trace_path}")
        index = {"schema": FIXTURE_SCHEMA, "version": 1, "source": trace.index.get("model"),
                 "sampler": trace.index.get("sampler"), "trace_steps": trace.steps,
                 "cases": index_cases}
    write_trace(out, index, arrays)
    return index


def load_fixture(path: str | os.PathLike) -> list[dict]:
    """The cases of a fixture: dicts with the index fields plus ``x`` and ``w`` arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such fixture (make one with 'ditto fixture')")
    with np.load(path, allow_pickle=False) as npz:
        index = json.loads(bytes(npz["index"]).decode())
        if index.get("schema") != FIXTURE_SCHEMA or index.get("version") != 1:
            raise ValueError(f"{path}: not a version-1 {FIXTURE_SCHEMA} file")
        cases = []
        for case in index["cases"]:
            x, w = npz[f"{case['name']}/x"], npz[f"{case['name']}/w"]
            if x.dtype != np.int8 or w.dtype != np.int8 or x.shape[0] != w.shape[0]:
                raise ValueError(f"{path}: case {case['name']} has malformed arrays")
            cases.append({**case, "x": x, "w": w})
    return cases


def committed_cases() -> list[dict]:
    """The cases of every committed fixture: the terrain U-Net's, then the DiT's."""
    return [case for path in FIXTURES for case in load_fixture(path)]
