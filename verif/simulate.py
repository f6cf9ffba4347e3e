"""Run tile jobs through a core in Amaranth's simulator (the fast, pre-Verilog tier)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ditto.hdl.core import DenseCore, command_layout

from .amaranth_sim import run_testbench
from .tiles import TileJob

__all__ = ["JobResult", "activation_beats", "run_jobs"]


class JobResult:
    """What a job produced: ``rows`` (absolute row, values) in output order, ``counters``."""

    def __init__(self, rows: list[tuple[int, list[int]]], counters: dict[str, int]):
        self.rows = rows
        self.counters = counters

    @property
    def values(self) -> np.ndarray:
        return np.array([values for _, values in self.rows], dtype=np.int64)


def activation_beats(job: TileJob, width: int, dense: bool) -> list[dict]:
    """Activation beats, row after row; the padding of a row's last beat is garbage that the
    core must ignore."""
    rows, k = job.x_cur.shape
    per_row = -(-k // width)
    garbage = np.random.default_rng(k).integers(-128, 128, (2, rows, per_row * width - k))
    cur = np.concatenate([job.x_cur, garbage[0]], axis=1).reshape(rows * per_row, width)
    prev = np.concatenate([job.x_prev, garbage[1]], axis=1).reshape(rows * per_row, width)
    if dense:
        return [{"x": a.tolist()} for a in cur]
    return [{"x_cur": a.tolist(), "x_prev": b.tolist()} for a, b in zip(cur, prev, strict=True)]


def run_jobs(core, jobs: Sequence[TileJob], *,
             act_ready: Callable[[int], bool] | None = None,
             out_ready: Callable[[int], bool] | None = None,
             cycles_per_beat: int = 200) -> list[JobResult]:
    """Drive ``jobs`` through ``core`` one after the other; weights and activations are
    offered every cycle unless ``act_ready(cycle)`` says otherwise, the output is ready
    unless ``out_ready(cycle)`` says otherwise.

    A job fails as a hang when it has not given all its rows within ``cycles_per_beat``
    cycles for each beat it moves (weight rows, activation beats, output rows), plus 1,000,
    from its command: far more than the slowest packing under heavy backpressure needs, so
    a broken core fails in seconds instead of running to a global limit."""
    config = core.config
    dense = isinstance(core, DenseCore)
    width = config.dense_macs if dense else config.scan_width
    act_ready = act_ready or (lambda cycle: True)
    out_ready = out_ready or (lambda cycle: True)
    results: list[JobResult] = []

    async def bench(ctx):
        cycle = 0
        for job in jobs:
            ctx.set(core.cmd.payload, command_layout(config).const(job.command()))
            ctx.set(core.cmd.valid, 1)
            while not ctx.get(core.cmd.ready):
                await ctx.tick()
                cycle += 1
            await ctx.tick()
            cycle += 1
            ctx.set(core.cmd.valid, 0)
            weights = [] if job.weights is None else [row.tolist() for row in job.weights]
            beats = activation_beats(job, width, dense)
            rows: list[tuple[int, list[int]]] = []
            start = cycle
            limit = cycles_per_beat * (len(weights) + len(beats) + job.rows) + 1000
            while len(rows) < job.rows:
                if cycle - start > limit:
                    raise AssertionError(f"{job.label}: core hangs: {len(rows)} of {job.rows} "
                                         f"output rows after {cycle - start} cycles")
                ctx.set(core.weights.valid, bool(weights))
                if weights:
                    ctx.set(core.weights.payload, weights[0])
                ctx.set(core.act.valid, bool(beats) and bool(act_ready(cycle)))
                if beats:
                    ctx.set(core.act.payload, beats[0])
                ctx.set(core.out.ready, bool(out_ready(cycle)))
                if weights and ctx.get(core.weights.ready):
                    weights.pop(0)
                if beats and ctx.get(core.act.valid) and ctx.get(core.act.ready):
                    beats.pop(0)
                if ctx.get(core.out.valid) and ctx.get(core.out.ready):
                    out = ctx.get(core.out.payload)
                    rows.append((int(out.row), [int(v) for v in out.y]))
                await ctx.tick()
                cycle += 1
            ctx.set(core.out.ready, 0)
            counters = ctx.get(core.counters)
            results.append(JobResult(rows, {name: int(getattr(counters, name)) for name in
                                            ("cycles", "elements", "zero", "low", "full",
                                             "lane_slots", "groups", "stall_cycles")}))
            await ctx.tick()
            cycle += 1

    run_testbench(core, bench)
    return results
