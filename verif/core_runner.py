"""Running tile jobs through the generated Verilog of DittoCore or DenseCore (cocotb)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ditto.config import DittoConfig
from ditto.files import write_atomically

from .runner import prepare_bench, simulate
from .tiles import TileJob

__all__ = ["CoreRun", "CoreTraffic", "run_core_bench"]

TB_CORE = "ditto.verif.tb_core"


@dataclass(frozen=True)
class CoreTraffic:
    """One cocotb test of a core bench: the jobs run with these traffic knobs. Without idle
    cycles and backpressure the cycle counts are checked exactly."""

    name: str
    backpressure: float = 0.0
    idle: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class CoreRun:
    build_dir: Path
    simulator: str
    passed: list[str]
    seconds: float
    jobs: int            # jobs checked, over every traffic case
    rows: int            # output rows checked
    cycles: int          # simulated cycles of the jobs
    stall_cycles: int    # the core's counters.stall_cycles, summed over the jobs
    act_waits: int       # cycles the core held an offered activation beat within a job
    #: Per traffic case, its summary (the fields above, for that case alone).
    cases: dict[str, dict] = field(default_factory=dict)

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0


def _job_meta(job: TileJob) -> dict:
    command = job.command()
    command["mode"] = int(job.mode.value)
    return {"command": command, "rows": job.rows, "cycles": int(job.cycles),
            "counters": {name: int(value) for name, value in job.counters.items()},
            "label": job.label}


def run_core_bench(core: str, config: DittoConfig, jobs: list[TileJob],
                   traffic: list[CoreTraffic], *, simulator: str | None = None,
                   tag: str = "jobs", asic: bool = False) -> CoreRun:
    """Run ``jobs`` through the generated Verilog of ``core`` (``"ditto_core"`` or
    ``"dense_core"``) once per traffic case, all in one simulator process; raises
    AssertionError (with the mismatch) if any value, row order, protocol rule or exact
    cycle count is wrong. ``asic=True`` runs the ASIC output (synthesisable file plus SRAM
    macro models) in its own build directory."""
    if core not in ("ditto_core", "dense_core"):
        raise ValueError(f"core {core!r}: choose ditto_core or dense_core")
    start = time.perf_counter()
    # One directory per job set: runs of different job sets never share a bench manifest.
    with prepare_bench(core, config, simulator=simulator, asic=asic, tag=tag) as bench:
        arrays = {}
        for index, job in enumerate(jobs):
            arrays[f"{index}/x_cur"] = job.x_cur
            arrays[f"{index}/x_prev"] = job.x_prev
            if job.weights is not None:
                arrays[f"{index}/weights"] = job.weights
            if job.expected is not None:
                arrays[f"{index}/expected"] = job.expected
        write_atomically(bench.vector_dir / f"{tag}.npz",
                         lambda file: np.savez(file, **arrays))
        meta = [_job_meta(job) for job in jobs]
        cases = {t.name: {"vectors": f"vectors/{tag}.npz", "jobs": meta,
                          "backpressure": t.backpressure, "idle": t.idle, "seed": t.seed}
                 for t in traffic}
        bench_path = bench.write_bench(cases)
        build_dir = bench.build_dir
        for t in traffic:
            (build_dir / f"summary-{t.name}.json").unlink(missing_ok=True)
        passed = simulate(bench, config, bench_path, [t.name for t in traffic],
                          tb_module=TB_CORE)
    totals = {"jobs": 0, "rows": 0, "cycles": 0, "stall_cycles": 0, "act_waits": 0}
    summaries = {}
    for t in traffic:
        summaries[t.name] = json.loads((build_dir / f"summary-{t.name}.json").read_text())
        for key in totals:
            totals[key] += summaries[t.name][key]
    return CoreRun(build_dir, bench.simulator, passed, time.perf_counter() - start, **totals,
                   cases=summaries)
