"""Run tile jobs through a core in Amaranth's simulator (the fast, pre-Verilog tier)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ditto.hdl.core import DenseCore, command_layout

from .amaranth_sim import run_testbench
from .tiles import TileJob, activation_rows, beat_width

__all__ = ["JobResult", "activation_beats", "run_jobs"]


class JobResult:
    """What a job produced: ``rows`` (absolute row, values) in output order, ``counters``,
    and ``cycles``, counted by the bench from the command's transfer to the last output
    beat's, inclusive."""

    def __init__(self, rows: list[tuple[int, list[int]]], counters: dict[str, int],
                 cycles: int = 0):
        self.rows = rows
        self.counters = counters
        self.cycles = cycles

    @property
    def values(self) -> np.ndarray:
        return np.array([values for _, values in self.rows], dtype=np.int64)


def activation_beats(job: TileJob, width: int, dense: bool) -> list[dict]:
    """Activation beats, row after row; the padding of a row's last beat is garbage that the
    core must ignore."""
    cur, prev = activation_rows(job.x_cur, job.x_prev, width,
                                np.random.default_rng(job.k))
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

    Each job's cycles are counted from the command's transfer to the last output beat's
    (inclusive) and ``counters.cycles`` must equal them, whatever the traffic (that is the
    counter's definition). A job that carries the model's prediction (``job.counters``, as
    :mod:`ditto.verif.tiles` fills it with ``job.cycles``) is checked against it, like the
    cocotb tier (``tb_core``): every predicted counter must equal the core's, except
    ``stall_cycles`` when a stream stalls; without stalls (neither ``act_ready`` nor
    ``out_ready`` given) the cycles must equal ``job.cycles``, with them they may only
    grow. A mismatch raises AssertionError naming the job.

    A job fails as a hang when it has not given all its rows within ``cycles_per_beat``
    cycles for each beat it moves (weight rows, activation beats, output rows), plus 1,000,
    from its command: far more than the slowest packing under heavy backpressure needs, so
    a broken core fails in seconds instead of running to a global limit."""
    config = core.config
    dense = isinstance(core, DenseCore)
    width = beat_width(config, "dense_core" if dense else "ditto_core")
    exact_timing = act_ready is None and out_ready is None
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
            start = cycle  # the command's transfer
            await ctx.tick()
            cycle += 1
            ctx.set(core.cmd.valid, 0)
            weights = [] if job.weights is None else [row.tolist() for row in job.weights]
            beats = activation_beats(job, width, dense)
            rows: list[tuple[int, list[int]]] = []
            last_out = cycle
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
                    last_out = cycle
                await ctx.tick()
                cycle += 1
            ctx.set(core.out.ready, 0)
            counters = ctx.get(core.counters)
            result = JobResult(rows, {name: int(getattr(counters, name)) for name in
                                      ("cycles", "elements", "zero", "low", "full",
                                       "lane_slots", "groups", "stall_cycles")},
                               cycles=last_out - start + 1)
            _check_prediction(job, result, exact_timing)
            results.append(result)
            await ctx.tick()
            cycle += 1

    run_testbench(core, bench)
    return results


def _check_prediction(job: TileJob, result: JobResult, exact_timing: bool) -> None:
    """The checks of :func:`run_jobs` on one finished job (see there)."""
    label, counters = job.label or "job", result.counters
    if counters["cycles"] != result.cycles:
        raise AssertionError(f"{label}: counters.cycles = {counters['cycles']}, measured "
                             f"{result.cycles} from the command to the last output")
    if not job.counters:
        return
    for name, want in job.counters.items():
        # Stalls depend on the traffic; the class and group counts do not.
        if (exact_timing or name != "stall_cycles") and counters[name] != want:
            raise AssertionError(f"{label}: counters.{name} = {counters[name]}, the model "
                                 f"says {want}")
    if exact_timing and result.cycles != job.cycles:
        raise AssertionError(f"{label}: {result.cycles} cycles from the command to the last "
                             f"output, the cycle model predicts {job.cycles}")
    if result.cycles < job.cycles:
        raise AssertionError(f"{label}: {result.cycles} cycles under stalls, fewer than the "
                             f"{job.cycles} the cycle model predicts without them")
