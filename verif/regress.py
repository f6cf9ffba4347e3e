"""The cocotb regression behind ``ditto regress``: every testbench on the generated Verilog
of one configuration, with a table of what each checked."""

from __future__ import annotations

import fnmatch
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ditto.config import DittoConfig

from . import vectors
from .core_runner import CoreTraffic, run_core_bench
from .coverage import Coverage
from .runner import run_bench
from .testbench import CLOCK_NS

__all__ = ["BENCHES", "BenchOutcome", "RegressionRow", "format_table", "run_coverage",
           "run_regression"]


@dataclass(frozen=True)
class BenchOutcome:
    """What a passing bench checked and simulated."""

    simulator: str
    vectors: int          # output beats (rows for the cores) checked
    cycles: int           # simulated clock cycles
    sim_seconds: float    # time spent simulating (no generation, build or stimulus)


@dataclass(frozen=True)
class RegressionRow:
    bench: str
    simulator: str
    passed: bool
    vectors: int
    cycles: int
    sim_seconds: float
    seconds: float        # wall time: generation, build and simulation
    message: str = ""

    @property
    def cycles_per_second(self) -> float:
        """Simulated cycles per second of simulation."""
        return self.cycles / self.sim_seconds if self.sim_seconds else 0.0


def _cocotb_outcome(simulator: str, vectors: int, build_dir: Path) -> BenchOutcome:
    """Clock cycles simulated in the last cocotb run and the time its tests took, from
    cocotb's results file."""
    cycles, seconds = 0.0, 0.0
    for testcase in ET.parse(build_dir / "results.xml").getroot().iter("testcase"):
        times = {p.get("name"): p.get("value") for p in testcase.iter("property")}
        if times.get("sim_time_unit") == "ns" and "sim_time_stop" in times:
            cycles += float(times["sim_time_stop"]) - float(times.get("sim_time_start", 0))
        seconds += float(testcase.get("time", 0))
    return BenchOutcome(simulator, vectors, int(cycles // CLOCK_NS), seconds)


def _component(name: str, make_cases: Callable[[DittoConfig], list]):
    def run(config: DittoConfig, simulator: str) -> BenchOutcome:
        cases = make_cases(config)
        result = run_bench(name, config, cases, simulator=simulator)
        beats = sum(len(case.source) for case in cases)
        return _cocotb_outcome(result.simulator, beats, result.build_dir)
    return run


#: The two traffic cases of the real-tile benches: exact timing (values, cycles, counters)
#: and seeded random idle cycles and backpressure (values, rows, class and group counts).
REAL_TILE_TRAFFIC = (CoreTraffic("exact_timing"),
                     CoreTraffic("backpressure", backpressure=0.4, idle=0.3, seed=3))
#: The bulk benches run the fixture's jobs this many times per traffic case, so that their
#: speed is measured over about a million cycles on the default configuration.
BULK_REPEATS = 40


def _fixture_jobs(config: DittoConfig, core: str) -> list:
    """The fixture's jobs for ``core``, with the SPATIAL re-run of each case's last step."""
    from ditto.sim.fixtures import committed_cases

    from .tiles import fixture_jobs

    jobs = []
    for case in committed_cases():
        jobs += fixture_jobs(case, config, core.removesuffix("_core"), spatial=True)
    return jobs


def _core(core: str):
    def run(config: DittoConfig, simulator: str) -> BenchOutcome:
        result = run_core_bench(core, config, _fixture_jobs(config, core),
                                list(REAL_TILE_TRAFFIC), simulator=simulator,
                                tag="regress-real")
        return _cocotb_outcome(result.simulator, result.rows, result.build_dir)
    return run


def _bulk(core: str):
    def run(config: DittoConfig, simulator: str) -> BenchOutcome:
        from .bulk import build_bulk_model, run_bulk

        model = build_bulk_model(core, config)
        jobs = _fixture_jobs(config, core) * BULK_REPEATS
        runs = [run_bulk(model, jobs, traffic) for traffic in REAL_TILE_TRAFFIC]
        return BenchOutcome("verilator-bulk", sum(r.rows for r in runs),
                            sum(r.cycles for r in runs), sum(r.sim_seconds for r in runs))
    return run


def _encoder_cases(config):
    return vectors.encoder_cases(config)


def _pe_cases(config):
    return [vectors.pe_random_groups(config), vectors.pe_encoded_rows(config),
            vectors.pe_corners(config), vectors.pe_acc_extremes(config)]


def _accumulator_cases(config):
    return [vectors.accumulator_layer_steps(config), vectors.accumulator_random_sequence(config)]


#: Testbench name -> runner(config, simulator) -> what it checked and simulated. The bulk
#: benches always run on Verilator (``ditto.verif.bulk``).
BENCHES: dict[str, Callable[[DittoConfig, str], BenchOutcome]] = {
    "encoding_unit": _component("encoding_unit", _encoder_cases),
    "compute_unit": _component("compute_unit", _pe_cases),
    "accumulation_buffer": _component("accumulation_buffer", _accumulator_cases),
    "ditto_core_real_tiles": _core("ditto_core"),
    "dense_core_real_tiles": _core("dense_core"),
    "ditto_core_bulk": _bulk("ditto_core"),
    "dense_core_bulk": _bulk("dense_core"),
}


def run_coverage(config: DittoConfig, *, progress: Callable[[str], None] | None = None
                 ) -> list[Coverage]:
    """``ditto regress --coverage``: both cores' bulk models run the fixture's real tiles
    and the synthetic coverage tiles (``coverage.coverage_jobs``) with both traffic cases,
    every value, cycle and counter checked as in the bulk benches; returns each core's
    :class:`~ditto.verif.coverage.Coverage`."""
    from collections import Counter

    from .bulk import build_bulk_model, run_bulk
    from .coverage import coverage_jobs

    coverages = []
    for core in ("ditto_core", "dense_core"):
        model = build_bulk_model(core, config, progress=progress)
        jobs = _fixture_jobs(config, core) + coverage_jobs(config, core)
        hits: Counter = Counter()
        for traffic in REAL_TILE_TRAFFIC:
            if progress:
                progress(f"coverage: {core} [{config.slug}], {traffic.name} ...")
            hits += run_bulk(model, jobs, traffic, coverage=True).bins
        coverages.append(Coverage(core, config, hits))
    return coverages


def run_regression(config: DittoConfig, simulator: str, *, pattern: str | None = None,
                   progress: Callable[[str], None] | None = None) -> list[RegressionRow]:
    """Run every bench whose name matches ``pattern`` (a glob or substring); failures are
    caught and reported in their row."""
    chosen = [name for name in BENCHES if pattern is None or pattern in name
              or fnmatch.fnmatchcase(name, pattern)]
    if not chosen:
        raise ValueError(f"-k {pattern!r} matches no testbench; there are "
                         f"{', '.join(BENCHES)}")
    rows = []
    for name in chosen:
        if progress:
            progress(f"{name} [{config.slug}, {simulator}] ...")
        start = time.perf_counter()
        try:
            outcome = BENCHES[name](config, simulator)
            rows.append(RegressionRow(name, outcome.simulator, True, outcome.vectors,
                                      outcome.cycles, outcome.sim_seconds,
                                      time.perf_counter() - start))
        except AssertionError as error:
            rows.append(RegressionRow(name, simulator, False, 0, 0, 0.0,
                                      time.perf_counter() - start, str(error)))
    return rows


def format_table(rows: list[RegressionRow]) -> str:
    """The table of ``ditto regress``; its last line is ``simulated cycles/s: N`` over the
    passed rows (cycles over simulation time: generation and builds excluded)."""
    header = (f"{'testbench':<24} {'sim':<15} {'result':<7} {'vectors':>9} {'cycles':>10} "
              f"{'sim s':>8} {'wall s':>8} {'cycles/s':>10}")
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row.bench:<24} {row.simulator:<15} "
                     f"{'passed' if row.passed else 'FAILED':<7} {row.vectors:>9} "
                     f"{row.cycles:>10} {row.sim_seconds:>8.1f} {row.seconds:>8.1f} "
                     f"{row.cycles_per_second:>10.0f}")
    passed = [row for row in rows if row.passed]
    lines.append(f"{len(passed)} passed, {len(rows) - len(passed)} failed")
    for row in rows:
        if not row.passed:
            lines += ["", f"{row.bench} FAILED:", row.message]
    cycles = sum(row.cycles for row in passed)
    seconds = sum(row.sim_seconds for row in passed)
    lines.append(f"simulated cycles/s: {cycles / seconds if seconds else 0:.0f}")
    return "\n".join(lines)
