"""The ``ditto`` command: one entry point for analysis, generation, regression and reports."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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


def _progress(total: int):
    def show(index: int, name: str) -> None:
        if sys.stderr.isatty() or os.environ.get("DITTO_PROGRESS"):
            print(f"\r[{index + 1}/{total}] {name[:60]:<60}", end="", file=sys.stderr,
                  flush=True)
    return show


def cmd_analyze(args: argparse.Namespace) -> int:
    from .sim.analysis import analyze, format_summary
    from .sim.synthetic import synthetic_trajectory

    config = preset(args.config)
    if args.synthetic == (args.trace is not None):
        raise UserError("give either a trace file or --synthetic")
    if args.trace is not None:
        raise UserError(f"reading traces ({args.trace}) arrives with 'ditto trace'; "
                        "use --synthetic for now")
    layers = synthetic_trajectory(config, steps=args.steps, similarity=args.similarity,
                                  seed=args.seed)
    report = analyze(layers, config, progress=_progress(len(layers)))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(format_summary(report))
    if args.json:
        write_atomically(args.json, json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .sim.bench import run_benchmarks

    config = preset(args.config)
    print(f"model throughput, config {config.slug}, {args.elements} elements, "
          "one NumPy thread, best of 5:")
    for name, rate in run_benchmarks(config, elements=args.elements):
        print(f"  {rate / 1e6:9.1f} M elements/s  {name}")
    return 0


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
    p.set_defaults(func=cmd_analyze)

    p = with_config(sub.add_parser("bench", help="throughput of the model"))
    p.add_argument("--elements", type=int, default=1 << 24)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ConfigError, FileNotFoundError) as error:
        print(f"ditto {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
