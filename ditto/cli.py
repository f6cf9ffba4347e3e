"""The ``ditto`` command: one entry point for analysis, generation, regression and reports."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .config import PRESETS, ConfigError, preset

__all__ = ["main"]


class UserError(Exception):
    """A problem with the user's input; printed as one line, exit status 2."""


def write_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so nothing half-written remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def cmd_analyze(args: argparse.Namespace) -> int:
    from .sim.analysis import analyze, format_summary
    from .sim.synthetic import synthetic_trajectory
    from .sim.trace import TraceFile, analyze_trace

    config = preset(args.config)
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
    if args.json:
        write_atomically(args.json, json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.report:
        from .sim.report import write_markdown_report

        write_markdown_report(report, args.report)
        print(f"wrote {args.report}")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from .sim.capture import capture_trace
    from .sim.trace import write_trace

    config = preset(args.config)
    layers = [p for p in args.layers.split(",") if p] if args.layers else None
    start = time.perf_counter()
    index, arrays, _ = capture_trace(
        config, steps=args.steps, sampler=args.sampler, batch=args.batch, seed=args.seed,
        difficulty=args.difficulty, layers=layers, progress=_status)
    _end_progress()
    write_trace(args.out, index, arrays)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out}: {len(index['layers'])} layers, {args.steps} steps, "
          f"{size / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .sim.bench import run_benchmarks

    config = preset(args.config)
    print(f"model throughput, config {config.slug}, {args.elements} elements, "
          "one NumPy thread, best of 5:")
    for name, rate in run_benchmarks(config, elements=args.elements):
        print(f"  {rate / 1e6:9.1f} M elements/s  {name}")
    return 0


def cmd_exactness(args: argparse.Namespace) -> int:
    from .sim.exactness import check_exactness
    from .sim.trace import TraceFile

    config = preset(args.config)
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


def cmd_generate(args: argparse.Namespace) -> int:
    from .hdl.generate import generate

    config = preset(args.config)
    out = Path(args.gen_out or f"build/rtl/{config.slug}")
    manifest = generate(config, out)
    for name in [*manifest["files"], "manifest.json"]:
        print(f"wrote {out / name}")
    return 0


def cmd_utilisation(args: argparse.Namespace) -> int:
    from .sim.trace import TraceFile
    from .sim.utilisation import lane_utilisation

    config = preset(args.config)
    if args.scan_width:
        config = config.replace(scan_width=args.scan_width)
    if args.dispatch_depth:
        config = config.replace(dispatch_depth=args.dispatch_depth)
    steps = [int(s) for s in args.steps.split(",")]
    result = lane_utilisation(TraceFile(args.trace).layers(), config, steps)
    lane, scan = result["lane_bound"], result["scan_bound"]
    cycles = sum(v["cycles"] for v in lane.values())
    ideal = sum(v["ideal"] for v in lane.values())
    print(f"config {config.slug}, dispatch FIFO {config.dispatch_capacity} groups, DIFF steps "
          f"{steps}")
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


def cmd_regress(args: argparse.Namespace) -> int:
    from .verif.regress import format_table, run_regression
    from .verif.runner import selected_simulator, simulator_available

    config = preset(args.config)
    simulator = selected_simulator(args.sim)
    reason = simulator_available(simulator)
    if reason:
        raise UserError(f"{simulator} cannot run: {reason}; run 'make install'")
    try:
        rows = run_regression(config, simulator, pattern=args.k, progress=_status)
    except ValueError as error:
        raise UserError(str(error)) from None
    _end_progress()
    print(format_table(rows))
    return 0 if all(row.passed for row in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ditto", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p):
        p.add_argument("--config", default="default", choices=sorted(PRESETS),
                       help="configuration preset (default: %(default)s)")
        return p

    p = with_config(sub.add_parser("analyze", help="class statistics and cycles of a "
                                   "trajectory"))
    p.add_argument("trace", nargs="?", help="trace file written by 'ditto trace'")
    p.add_argument("--synthetic", action="store_true", help="use a synthetic trajectory")
    p.add_argument("--steps", type=int, default=8, help="synthetic: steps (default 8)")
    p.add_argument("--similarity", type=float, default=0.9,
                   help="synthetic: probability an element is unchanged (default 0.9)")
    p.add_argument("--seed", type=int, default=0, help="synthetic: random seed")
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--report", help="write a Markdown report (PNG plots beside it)")
    p.set_defaults(func=cmd_analyze)

    p = with_config(sub.add_parser("trace", help="capture a real diffusion trajectory"))
    p.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    p.add_argument("--sampler", default="euler", choices=["euler", "consistency"],
                   help="deterministic Euler on a Karras schedule (default) or the "
                        "multistep consistency sampler")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=int, default=50, help="terrain difficulty 1..100")
    p.add_argument("--layers", help="comma-separated glob patterns over node names, "
                   "e.g. 'node_conv2d_1,node_einsum_*'")
    p.add_argument("--out", default=None, help="trace file (default "
                   "build/traces/terrain-STEPS.npz)")
    p.set_defaults(func=cmd_trace)

    p = with_config(sub.add_parser("exactness", help="check DIFF == plain integer product "
                                   "on every layer and step of a trace"))
    p.add_argument("trace", help="trace file written by 'ditto trace'")
    p.set_defaults(func=cmd_exactness)

    p = with_config(sub.add_parser("utilisation", help="dispatcher lane utilisation on the "
                                   "DIFF tiles of a trace"))
    p.add_argument("trace", help="trace file written by 'ditto trace'")
    p.add_argument("--steps", default="5,10,15", help="DIFF steps to measure (default 5,10,15)")
    p.add_argument("--scan-width", type=int, help="override the config's scan_width")
    p.add_argument("--dispatch-depth", type=int, help="override the dispatch FIFO depth")
    p.set_defaults(func=cmd_utilisation)

    p = with_config(sub.add_parser("regress", help="cocotb regression on the generated "
                                   "Verilog, with a table per testbench"))
    p.add_argument("--sim", choices=["icarus", "verilator"], default=None,
                   help="simulator (default: $SIM or icarus)")
    p.add_argument("-k", help="run only the testbenches whose name contains or matches this")
    p.set_defaults(func=cmd_regress)

    p = with_config(sub.add_parser("bench", help="throughput of the model"))
    p.add_argument("--elements", type=int, default=1 << 24)
    p.set_defaults(func=cmd_bench)

    p = with_config(sub.add_parser("generate", help="write the Verilog of every component "
                                   "and manifest.json"))
    p.add_argument("--out", dest="gen_out", default=None,
                   help="output directory (default build/rtl/SLUG)")
    p.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .sim.capture import CaptureError
    from .sim.trace import TraceError

    args = build_parser().parse_args(argv)
    if getattr(args, "out", "") is None and args.command == "trace":
        args.out = f"build/traces/terrain-{args.steps}.npz"
    try:
        return args.func(args)
    except (UserError, ConfigError, CaptureError, TraceError, FileNotFoundError) as error:
        _end_progress()
        print(f"ditto {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
