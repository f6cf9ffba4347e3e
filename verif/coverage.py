"""Functional coverage of the bulk tier: which situations the RTL regression went through.

Bins, counted over every job a bulk run drives:

- ``class mix``: per activation beat of DittoCore, which classes its real elements have,
  from all ZERO to all FULL (seven bins, one per non-empty set of classes);
- ``row end``: per row, the position in its last beat of the row's last element (one bin
  per position, ``1 .. beat width``);
- ``command``: ACT, DIFF and SPATIAL (DittoCore), accumulate, and a store with a nonzero
  bias;
- ``traffic`` (counted by the harness in the RTL, cycle by cycle, inside jobs): the input
  stalled (``act.valid`` and not ``act.ready``), the output held (``out.valid`` and not
  ``out.ready``), and for DittoCore the dispatch FIFO full (the dispatcher's ``stalled``:
  the packer holds groups it has no room for) and empty mid-tile (no group for the PEs,
  after the tile's first group and with activation beats still to come).

The stimulus bins come from the jobs; the traffic bins from the RTL's own signals, so they
say what the hardware did. :func:`coverage_jobs` adds synthetic tiles that reach the bins
real tiles do not (every row-end position, every class mix, a bias).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import Mode
from ditto.sim.encoding import classifies, lane_costs, operand_values

from .tiles import TileJob, beat_width, dense_jobs, ditto_jobs

__all__ = ["CLASS_MIXES", "RTL_BINS", "Coverage", "coverage_jobs", "expected_bins",
           "format_coverage", "job_bins"]

#: Class-mix bins by the set of classes present: bit 0 ZERO, bit 1 LOW, bit 2 FULL.
CLASS_MIXES = {1: "all ZERO", 2: "all LOW", 4: "all FULL", 3: "ZERO+LOW", 5: "ZERO+FULL",
               6: "LOW+FULL", 7: "ZERO+LOW+FULL"}
#: Bins the harness counts in the RTL (its output's names), and the cores that have them.
RTL_BINS = {"input_stall": ("ditto_core", "dense_core"),
            "output_backpressure": ("ditto_core", "dense_core"),
            "fifo_full": ("ditto_core",), "fifo_empty": ("ditto_core",)}


def expected_bins(config: DittoConfig, core: str) -> list[tuple[str, str]]:
    """Every ``(group, bin)`` a full coverage run of ``core`` must hit."""
    bins = []
    if core == "ditto_core":
        bins += [("class mix", name) for name in CLASS_MIXES.values()]
    bins += [("row end", f"element {p}") for p in range(1, beat_width(config, core) + 1)]
    modes = ("ACT", "DIFF", "SPATIAL") if core == "ditto_core" else ("ACT",)
    bins += [("command", name) for name in (*modes, "accumulate", "bias")]
    bins += [("traffic", name) for name, cores in RTL_BINS.items() if core in cores]
    return bins


def job_bins(job: TileJob, config: DittoConfig, core: str) -> Counter:
    """The stimulus bins one job hits, with their counts."""
    hits: Counter = Counter()
    width = beat_width(config, core)
    hits[("row end", f"element {(job.k - 1) % width + 1}")] += job.rows
    hits[("command", job.mode.name if core == "ditto_core" else "ACT")] += 1
    if job.accumulate:
        hits[("command", "accumulate")] += 1
    elif np.any(job.bias):
        hits[("command", "bias")] += 1
    if core == "ditto_core":
        # The values the encoder sees: in SPATIAL mode the job's x_prev is the row before.
        values = operand_values(job.x_cur, job.x_prev, job.mode, config)
        costs = lane_costs(values, config,
                           classify=classifies(job.mode, config)).astype(np.int8)
        per_row = -(-job.k // width)
        padded = np.full((job.rows, per_row * width), -1, np.int8)  # -1: padding
        padded[:, :job.k] = costs
        beats = padded.reshape(-1, width)
        present = sum((beats == cost).any(axis=1).astype(np.int64) << cost
                      for cost in range(3))
        for code, count in zip(*np.unique(present, return_counts=True), strict=True):
            hits[("class mix", CLASS_MIXES[int(code)])] += int(count)
    return hits


@dataclass
class Coverage:
    """Bin hits of one core over one or more bulk runs."""

    core: str
    config: DittoConfig
    hits: Counter

    def missed(self) -> list[tuple[str, str]]:
        return [b for b in expected_bins(self.config, self.core) if not self.hits[b]]


def format_coverage(coverages: list[Coverage]) -> str:
    """The report of ``ditto regress --coverage``: every bin with its hits per core."""
    cores = [c.core for c in coverages]
    rows: list[tuple[str, str]] = []
    for c in coverages:
        rows += [b for b in expected_bins(c.config, c.core) if b not in rows]
    header = f"{'group':<10} {'bin':<20}" + "".join(f" {core:>12}" for core in cores)
    lines = [header, "-" * len(header)]
    # The row-end positions (up to the beat width) in one line: the fewest hits of any
    # position per core; a position that was missed gets its own line below it.
    ends = {c.core: [c.hits[b] for b in expected_bins(c.config, c.core) if b[0] == "row end"]
            for c in coverages}
    lines.append(f"{'row end':<10} {'every position':<20}" + "".join(
        f" {f'{len(ends[core])} x >= {min(ends[core])}':>12}" for core in cores))
    for group, name in rows:
        if group == "row end" and all(c.hits[(group, name)] or (group, name) not in
                                      expected_bins(c.config, c.core) for c in coverages):
            continue
        cells = []
        for c in coverages:
            if (group, name) not in expected_bins(c.config, c.core):
                cells.append(f" {'n/a':>12}")
            else:
                hits = c.hits[(group, name)]
                cells.append(f" {hits if hits else 'MISSED':>12}")
        lines.append(f"{group:<10} {name:<20}" + "".join(cells))
    missed = sum(len(c.missed()) for c in coverages)
    total = sum(len(expected_bins(c.config, c.core)) for c in coverages)
    lines.append(f"{total - missed} of {total} bins hit" + (f", {missed} MISSED" if missed
                                                            else ""))
    return "\n".join(lines)


def coverage_jobs(config: DittoConfig, core: str, *, seed: int = 0) -> list[TileJob]:
    """Synthetic tile pairs (ACT with a bias, then DIFF; on DittoCore every other pair
    starts in SPATIAL mode instead of ACT) that reach the bins real tiles may not: one pair
    per row-end position (reductions ``width + 1 .. 2 * width``) and one whose reduction is
    cut into two chunks (``weight_depth + 1``), whose differences are drawn, element by
    element, from one set of classes per pair, cycling through all seven; expected rows
    from plain integer arithmetic, cycles from the model."""
    rng = np.random.default_rng(seed)
    width = beat_width(config, core)
    lo, hi = config.lane_range
    rows, n = 3, config.pes
    choices = {1: [0], 2: [d for d in range(lo, hi + 1) if d],
               4: [d for d in range(-64, 65) if not lo <= d <= hi]}
    jobs = []
    # Every row-end position, and one reduction longer than the weight buffer, which is
    # cut into chunks that accumulate.
    reductions = [*range(width + 1, 2 * width + 1), config.weight_depth + 1]
    for index, k in enumerate(reductions):
        mix = list(CLASS_MIXES)[index % len(CLASS_MIXES)]
        pool = np.array([d for bit, ds in choices.items() if mix & bit for d in ds])
        x0 = rng.integers(-60, 61, (rows, k))
        x1 = x0 + rng.choice(pool, (rows, k))
        xs = [x0.astype(np.int8), x1.astype(np.int8)]
        ws = [rng.integers(-128, 128, (k, n)).astype(np.int8)] * 2
        bias = rng.integers(-1000, 1000, n)
        label = f"coverage k={k} {CLASS_MIXES[mix]}"
        if core == "ditto_core":
            first = Mode.SPATIAL if index % 2 else Mode.ACT
            jobs += ditto_jobs(xs, ws, config, weights_change=False, label=label, bias=bias,
                               modes=[first, Mode.DIFF])
        else:
            jobs += dense_jobs(xs, ws, config, label=label, bias=bias)
    return jobs
