"""The real workload the area and evaluation reports price: a captured trace, or the
committed real-trace fixture when no trace is at hand (CI, offline machines)."""

from __future__ import annotations

import os
from pathlib import Path

from ditto.config import DittoConfig

from .analysis import LayerTrace, analyze
from .fixtures import FIXTURE, load_fixture
from .layers import LayerKind, LayerSpec
from .trace import TraceFile, analyze_trace

__all__ = ["FIXTURE", "DEFAULT_TRACE", "analyze_workload", "fixture_layers", "workload_trace"]

DEFAULT_TRACE = Path("build/traces/terrain-20.npz")


def fixture_layers(path: str | os.PathLike = FIXTURE) -> list[LayerTrace]:
    """The fixture's cases as matmul layers over their steps (attention cases with both
    operands changing)."""
    layers = []
    for case in load_fixture(path):
        spec = LayerSpec(name=case["name"], kind=LayerKind.MATMUL, role=case["group"],
                         weights_change=case["kind"] == "both_change")
        layers.append(LayerTrace(spec, [(x, w) for x, w in zip(case["x"], case["w"],
                                                                strict=True)]))
    return layers


def workload_trace(trace: str | os.PathLike | None = None) -> Path | None:
    """The trace file ``analyze_workload`` reads: ``trace``, else ``DEFAULT_TRACE`` if it
    exists; None when it falls back to the committed fixture."""
    if trace is not None:
        return Path(trace)
    return DEFAULT_TRACE if DEFAULT_TRACE.exists() else None


def analyze_workload(config: DittoConfig, trace: str | os.PathLike | None = None, *,
                     progress=None) -> dict:
    """``analysis.analyze`` of ``trace``; with ``trace=None`` of ``build/traces/terrain-20.npz``
    if it exists, else of the committed fixture. ``report["workload"]`` names the source."""
    path = workload_trace(trace)
    if path is not None:
        with TraceFile(path) as opened:
            report = analyze_trace(opened, config, progress=progress)
        report["workload"] = {"source": "trace", "file": str(path)}
    else:
        report = analyze(fixture_layers(), config, progress=progress)
        report["workload"] = {"source": "fixture", "file": str(FIXTURE)}
    return report
