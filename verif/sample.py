"""Random real-trace tiles through the RTL: the check behind ``ditto evaluate --rtl-sample``.

Per layer type (conv3x3, conv1x1, linear, attention_qk...), ``n`` randomly chosen layers of
the workload; from each, a few random rows and one block of output columns over consecutive
steps (ACT, then DIFF). Both cores run them on the generated Verilog; every output value and
every tile's cycle count must equal the model's (plain integer products, the cycle model).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ditto.config import DittoConfig
from ditto.sim.fixtures import FIXTURE, extract_fixture, load_fixture
from ditto.sim.trace import TraceFile

from .core_runner import CoreTraffic, run_core_bench
from .tiles import fixture_jobs

__all__ = ["RtlMismatch", "SampleResult", "rtl_sample", "sample_cases"]


class RtlMismatch(AssertionError):
    """The RTL disagreed with the model on a sampled tile."""


@dataclass(frozen=True)
class SampleResult:
    core: str
    simulator: str
    cases: list[str]
    jobs: int
    rows: int
    cycles: int
    seconds: float


def sample_cases(config: DittoConfig, trace: str | Path | None, n: int, *, seed: int = 0,
                 steps: int = 3, rows: int = 8) -> list[dict]:
    """``n`` random layers per layer type, as fixture cases (``sim.fixtures``) of ``rows``
    random rows, ``config.pes`` output columns and ``steps`` consecutive steps. Without a
    trace, the cases of the committed fixture (``n`` per type, trimmed the same way)."""
    if n < 1:
        raise ValueError(f"--rtl-sample {n}: sample at least one tile per layer type")
    rng = np.random.default_rng(seed)
    if trace is None:
        cases = load_fixture(FIXTURE)
        by_group = defaultdict(list)
        for case in cases:
            by_group[case["group"]].append(case)
        picked = [case for group in sorted(by_group) for case in by_group[group][:n]]
        return [{**case, "x": case["x"][:steps, :rows], "w": case["w"][:steps, :, :config.pes]}
                for case in picked]
    with TraceFile(trace) as opened:
        by_group = defaultdict(list)
        for spec in opened.specs:
            by_group[spec.group].append(spec.name)
        total_steps = opened.steps
    if total_steps < steps:
        raise ValueError(f"{trace}: {total_steps} steps; the sample needs {steps}")
    chosen = []
    for group in sorted(by_group):
        names = by_group[group]
        for index in rng.choice(len(names), min(n, len(names)), replace=False):
            chosen.append((f"{group}_{len(chosen)}", names[index]))
    first = int(rng.integers(0, total_steps - steps + 1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.npz"
        extract_fixture(trace, path, first_step=first, steps=steps, rows=rows,
                        cols=config.pes, seed=seed, cases=tuple(chosen))
        return load_fixture(path)


def rtl_sample(config: DittoConfig, cases: list[dict], *, simulator: str | None = None,
               progress=None) -> list[SampleResult]:
    """Run ``cases`` through DittoCore and DenseCore with exact timing; raises
    :class:`RtlMismatch` naming the core and the mismatch if anything differs."""
    results = []
    for core in ("ditto_core", "dense_core"):
        jobs = []
        for case in cases:
            jobs += fixture_jobs(case, config, core.removesuffix("_core"))
        if progress:
            progress(f"RTL sample: {core}, {len(cases)} tile sets, {len(jobs)} commands")
        try:
            run = run_core_bench(core, config, jobs, [CoreTraffic("exact_timing")],
                                 simulator=simulator, tag="evaluate-sample")
        except AssertionError as error:
            raise RtlMismatch(f"RTL mismatch in {core} on the sampled tiles "
                              f"({', '.join(c['name'] for c in cases)}): {error}") from None
        results.append(SampleResult(core, run.simulator, [c["name"] for c in cases], run.jobs,
                                    run.rows,
                                    run.cycles, run.seconds))
    return results
