"""Whole real layers through the RTL of both cores: ``ditto regress --trace T --layer NAME``.

Every row and every output channel of one layer of a captured trajectory, over a range of
its steps (ACT at the first, DIFF after it for DittoCore; every step from scratch for
DenseCore), cut into tiles the cores hold: groups (attention heads) one after another,
rows in blocks of the accumulation buffer, output channels in blocks of ``pes`` and the
reduction in chunks of ``weight_depth`` (``ditto.verif.tiles``). The tiles run through the
bulk tier (``ditto.verif.bulk``), which checks every value against plain integer
arithmetic and every tile's cycles and counters against the cycle model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ditto.config import DittoConfig
from ditto.sim.layers import layer_operands
from ditto.sim.trace import TraceFile

from .bulk import BulkRun, build_bulk_model, run_bulk
from .core_runner import CoreTraffic
from .tiles import TileJob, dense_jobs, ditto_jobs

__all__ = ["LayerRun", "format_layer_runs", "layer_jobs", "parse_steps", "regress_layer"]

CORES = ("ditto_core", "dense_core")
EXACT_TIMING = CoreTraffic("exact_timing")


@dataclass(frozen=True)
class LayerRun:
    layer: str
    steps: range
    run: BulkRun
    build_seconds: float


def parse_steps(text: str | None, total: int) -> range:
    """``"A..B"`` (inclusive, numbered from 0 as in the trace) or ``"A"`` as a range of the
    trace's ``total`` steps; ``None``: every step."""
    if text is None:
        return range(total)
    first, sep, last = text.partition("..")
    try:
        a = int(first)
        b = int(last) if sep else a
    except ValueError:
        raise ValueError(f"--steps {text!r}: write A..B, e.g. 1..3 (steps numbered from 0)"
                         ) from None
    if not 0 <= a <= b < total:
        raise ValueError(f"--steps {text}: the trace has steps 0..{total - 1}; A..B needs "
                         "0 <= A <= B < steps")
    return range(a, b + 1)


def layer_jobs(layer, steps: range, config: DittoConfig, core: str) -> Iterator[TileJob]:
    """The tile jobs of ``layer`` (a ``LayerTrace``) over ``steps`` for ``core``, made one
    block of rows at a time so that a large layer never sits in memory as jobs. Each job's
    ``extra["block"]`` is ``(group, first row, end row)`` of its rows in the layer."""
    if core not in CORES:
        raise ValueError(f"core {core!r}: choose one of {', '.join(CORES)}")
    operands = [layer_operands(layer.spec, *layer.steps[t]) for t in steps]
    groups, rows, _ = operands[0][0].shape
    both = layer.spec.weights_change
    # With changing weights a DIFF step's second product is stored after the block's rows.
    block = config.max_rows - config.pes if both and core == "ditto_core" else config.max_rows
    for g in range(groups):
        for r0 in range(0, rows, block):
            r1 = min(r0 + block, rows)
            xs = [a[g, r0:r1] for a, _ in operands]
            ws = [b[g] for _, b in operands]
            label = f"{layer.spec.name} group {g} rows {r0}:{r1}"
            if core == "ditto_core":
                jobs = ditto_jobs(xs, ws, config, weights_change=both, label=label,
                                  first_step=steps.start)
            else:
                jobs = dense_jobs(xs, ws, config, label=label, first_step=steps.start)
            for job in jobs:
                job.extra["block"] = (g, r0, r1)  # where its rows sit in the layer
                yield job


def regress_layer(trace: str, name: str, config: DittoConfig, *, steps: str | None = None,
                  traffic: CoreTraffic = EXACT_TIMING,
                  cores: tuple[str, ...] = CORES,
                  progress: Callable[[str], None] | None = None,
                  every: float = 10.0) -> list[LayerRun]:
    """Run layer ``name`` of ``trace`` over ``steps`` through each of ``cores``; raises
    AssertionError at the first difference from the model. ``progress`` gets a line at
    least every ``every`` seconds."""
    with TraceFile(trace) as opened:
        chosen = parse_steps(steps, opened.steps)
        layer = opened.layer(name)
    results = []
    for core in cores:
        model = build_bulk_model(core, config, progress=progress)
        last = [time.perf_counter()]

        def report(index: int, job: TileJob, core=core, last=last) -> None:
            now = time.perf_counter()
            if progress and now - last[0] >= every:
                last[0] = now
                progress(f"{core}: job {index + 1}, {job.label}")

        run = run_bulk(model, layer_jobs(layer, chosen, config, core), traffic,
                       progress=report)
        results.append(LayerRun(name, chosen, run, model.build_seconds))
    return results


def format_layer_runs(runs: list[LayerRun], config: DittoConfig) -> str:
    """The table ``ditto regress --trace`` prints."""
    first = runs[0]
    steps = f"{first.steps.start}..{first.steps.stop - 1}"
    header = (f"{'core':<11} {'jobs':>6} {'rows':>9} {'cycles':>12} {'sim s':>8} "
              f"{'wall s':>8} {'cycles/s':>10}")
    lines = [f"layer {first.layer}, steps {steps} [{config.slug}, Verilator bulk tier, "
             f"{first.run.traffic}]: every value, and with exact timing every tile's "
             "cycles and counters, equal to the model", header, "-" * len(header)]
    for r in runs:
        lines.append(f"{r.run.core:<11} {r.run.jobs:>6} {r.run.rows:>9} {r.run.cycles:>12} "
                     f"{r.run.sim_seconds:>8.1f} {r.run.seconds:>8.1f} "
                     f"{r.run.cycles_per_second:>10.0f}")
    total = sum(r.run.seconds + r.build_seconds for r in runs)
    lines.append(f"passed in {total:.1f} s (model builds included)")
    return "\n".join(lines)

