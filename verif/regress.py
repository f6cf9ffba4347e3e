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
from .runner import run_bench
from .testbench import CLOCK_NS

__all__ = ["BENCHES", "RegressionRow", "format_table", "run_regression"]


@dataclass(frozen=True)
class RegressionRow:
    bench: str
    simulator: str
    passed: bool
    vectors: int        # output beats (rows for the cores) checked
    cycles: int         # simulated clock cycles
    seconds: float
    message: str = ""

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0


def _simulated_cycles(build_dir: Path) -> int:
    """Clock cycles simulated in the last run, from cocotb's results file."""
    total = 0.0
    for testcase in ET.parse(build_dir / "results.xml").getroot().iter("testcase"):
        times = {p.get("name"): p.get("value") for p in testcase.iter("property")}
        if times.get("sim_time_unit") == "ns" and "sim_time_stop" in times:
            total += float(times["sim_time_stop"]) - float(times.get("sim_time_start", 0))
    return int(total // CLOCK_NS)


def _component(name: str, make_cases: Callable[[DittoConfig], list]):
    def run(config: DittoConfig, simulator: str) -> tuple[int, Path]:
        cases = make_cases(config)
        result = run_bench(name, config, cases, simulator=simulator)
        beats = sum(len(case.source) for case in cases)
        return beats, result.build_dir
    return run


def _core(core: str):
    def run(config: DittoConfig, simulator: str) -> tuple[int, Path]:
        from ditto.sim.fixtures import FIXTURE, load_fixture

        from .tiles import fixture_jobs

        jobs = []
        for case in load_fixture(FIXTURE):
            jobs += fixture_jobs(case, config, core.removesuffix("_core"))
        traffic = [CoreTraffic("exact_timing"),
                   CoreTraffic("backpressure", backpressure=0.4, idle=0.3, seed=3)]
        result = run_core_bench(core, config, jobs, traffic, simulator=simulator,
                                tag="regress-real")
        return result.rows, result.build_dir
    return run


def _encoder_cases(config):
    return vectors.encoder_cases(config)


def _pe_cases(config):
    return [vectors.pe_random_groups(config), vectors.pe_encoded_rows(config),
            vectors.pe_corners(config), vectors.pe_acc_extremes(config)]


def _accumulator_cases(config):
    return [vectors.accumulator_layer_steps(config), vectors.accumulator_random_sequence(config)]


#: Testbench name -> runner(config, simulator) -> (vectors checked, build directory).
BENCHES: dict[str, Callable[[DittoConfig, str], tuple[int, Path]]] = {
    "encoding_unit": _component("encoding_unit", _encoder_cases),
    "compute_unit": _component("compute_unit", _pe_cases),
    "accumulation_buffer": _component("accumulation_buffer", _accumulator_cases),
    "ditto_core_real_tiles": _core("ditto_core"),
    "dense_core_real_tiles": _core("dense_core"),
}


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
            checked, build_dir = BENCHES[name](config, simulator)
            rows.append(RegressionRow(name, simulator, True, checked,
                                      _simulated_cycles(build_dir),
                                      time.perf_counter() - start))
        except AssertionError as error:
            rows.append(RegressionRow(name, simulator, False, 0, 0,
                                      time.perf_counter() - start, str(error)))
    return rows


def format_table(rows: list[RegressionRow]) -> str:
    header = (f"{'testbench':<24} {'sim':<10} {'result':<7} {'vectors':>9} {'cycles':>10} "
              f"{'wall s':>8} {'cycles/s':>10}")
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row.bench:<24} {row.simulator:<10} "
                     f"{'passed' if row.passed else 'FAILED':<7} {row.vectors:>9} "
                     f"{row.cycles:>10} {row.seconds:>8.1f} {row.cycles_per_second:>10.0f}")
    passed = sum(row.passed for row in rows)
    lines.append(f"{passed} passed, {len(rows) - passed} failed")
    for row in rows:
        if not row.passed:
            lines += ["", f"{row.bench} FAILED:", row.message]
    return "\n".join(lines)
