"""Design-space sweeps (docs/synthesis.md): every combination of the swept ``DittoConfig``
fields, costed on both cores.

Each configuration is one task: synthesis (Yosys generic; with ``asic`` the µm² of a
standard-cell library), Fmax (nextpnr on an FPGA, or OpenSTA on the asic netlist), the
cycles of a real workload (the cycle model, which the RTL matches), time (cycles ÷ Fmax),
energy (``sim.evaluate``) and the equal-area speedup. The tasks run on Dask distributed: a
local cluster of ``workers`` processes, or an existing cluster at ``scheduler``; with
``workers=0``, one after another in this process.

Caching, in a build directory every worker can reach: each synthesis step under
``BUILD/cache`` by its inputs (``flow.synth``), each finished point's row under
``BUILD/sweep/<key>.json``, the key made of the resolved config, the targets, the seeds,
the workload file, the tool versions and the source of the model and the flows. A rerun,
or a run that failed halfway, redoes only what is missing. A point that fails is a row
with its error.

The front is three-dimensional: a point is non-dominated when no other point is at least as
good in area, time (cycles where there is no Fmax) and energy, and better in one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ditto.config import ConfigError, DittoConfig, field_value
from ditto.files import write_atomically

__all__ = ["MEASURED_FIELDS", "TIMING_FIELDS", "Point", "SweepOptions", "cost_point", "csv_fields",
           "default_workers", "pareto_flags", "parse_sweeps", "run_sweep", "sweep_configs"]

#: Columns measured per point, after ``slug`` and the swept fields (DittoCore's figures,
#: then DenseCore's of the same config; the µm² columns need the asic target, the Fmax and
#: time columns an Fmax target).
MEASURED_FIELDS = (
    "logic_transistors", "memory_bits", "area_transistors", "dense_area_transistors",
    "area_um2", "dense_area_um2", "fmax_mhz", "dense_fmax_mhz",
    "cycles_ditto", "cycles_ditto_defo", "cycles_dense", "time_ms", "dense_time_ms",
    "energy_uj", "dense_energy_uj", "speedup_equal_area", "speedup_equal_area_defo")
#: Columns that differ between runs of the same sweep.
TIMING_FIELDS = ("seconds", "cached")
FMAX_TARGETS = ("ecp5", "ice40", "asic")


@dataclass(frozen=True)
class SweepOptions:
    """What every point is measured with (the same for all points of a sweep)."""

    fmax_target: str | None = "ecp5"
    seeds: int = 1
    trace: str | None = None
    build_dir: str = "build/synth"
    pnr_timeout_min: float = 60.0

    def __post_init__(self):
        if self.fmax_target not in (None, *FMAX_TARGETS):
            raise ValueError(f"--fmax-target {self.fmax_target}: choose one of "
                             f"{', '.join(FMAX_TARGETS)} or none")
        if self.seeds < 1:
            raise ValueError(f"--seeds {self.seeds}: need at least one")

    @property
    def targets(self) -> tuple[str, ...]:
        return ("generic",) + ((self.fmax_target,) if self.fmax_target else ())


@dataclass(frozen=True)
class Point:
    """One combination: the swept fields' values, and its config or why there is none."""

    values: dict
    config: DittoConfig | None
    error: str | None = None


def parse_sweeps(items: Sequence[str]) -> dict[str, list]:
    """``--sweep FIELD=V1,V2,...`` options as ``{field: values}``, each value of the field's
    type (``ConfigError`` names a bad field or value)."""
    sweeps: dict[str, list] = {}
    for item in items:
        field, equals, values = item.partition("=")
        field = field.strip()
        if not equals or not values.strip():
            raise ConfigError(f"--sweep {item!r}: write FIELD=V1,V2,... for example "
                              "pes=8,16,32")
        if field in sweeps:
            raise ConfigError(f"--sweep {field}: given twice; list all its values in one")
        sweeps[field] = [field_value(field, value, "--sweep") for value in values.split(",")]
    return sweeps


def sweep_configs(base: DittoConfig, sweeps: Mapping[str, Sequence]) -> list[Point]:
    """Every combination of ``sweeps`` applied to ``base``, in order. A combination that
    is no valid config is a point with its error (the rest of the sweep goes on)."""
    fields = list(sweeps)
    points = []
    for combination in itertools.product(*(sweeps[field] for field in fields)):
        values = dict(zip(fields, combination, strict=True))
        try:
            points.append(Point(values, base.replace(**values)))
        except (ConfigError, ValueError) as error:
            points.append(Point(values, None, str(error)))
    return points


def pareto_flags(points: Sequence[Sequence[float]]) -> list[bool]:
    """True for points no other point dominates (lower or equal in every coordinate, lower
    in one). Points with a missing coordinate are never on the front."""
    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b, strict=True)) and tuple(a) != tuple(b)

    complete = [all(v is not None for v in p) for p in points]
    return [ok and not any(other_ok and dominates(other, p)
                           for other, other_ok in zip(points, complete, strict=True))
            for p, ok in zip(points, complete, strict=True)]


def _source_digest() -> str:
    """A digest of the model's and the flows' source (``ditto.sim``, ``ditto.flow``): what
    a point measures, and how, changes with them."""
    digest = hashlib.sha256()
    for package in ("ditto.sim", "ditto.flow"):
        root = resources.files(package)
        for name in sorted(e.name for e in root.iterdir() if e.name.endswith(".py")):
            digest.update(f"{package}/{name}".encode() + root.joinpath(name).read_bytes())
    return digest.hexdigest()


def _workload_identity(trace: str | None) -> dict:
    from ditto.sim.workload import FIXTURE, workload_trace

    path = workload_trace(trace) or FIXTURE
    stat = path.stat()
    return {"file": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _point_key(config: DittoConfig, options: SweepOptions) -> str:
    from .synth import tool_versions

    description = {"config": config.as_dict(), "targets": options.targets,
                   "seeds": options.seeds, "workload": _workload_identity(options.trace),
                   "tools": tool_versions(), "source": _source_digest()}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]


def _measure(config: DittoConfig, options: SweepOptions) -> dict:
    """The measured columns of one point (``MEASURED_FIELDS``)."""
    from ditto.sim.evaluate import evaluate
    from ditto.sim.workload import analyze_workload

    from .area import equal_area
    from .synth import CORES, FPGA_TARGETS, synthesise

    target = options.fmax_target
    synth = synthesise(config, targets=options.targets, components=list(CORES),
                       seeds=options.seeds, fmax=target in FPGA_TARGETS,
                       pnr_timeout_min=options.pnr_timeout_min, build_dir=options.build_dir)
    report = analyze_workload(config, options.trace)
    comparison = equal_area(synth, report, config)
    schemes = evaluate(report, config, sweep=False)["schemes"]
    ditto, dense = comparison["cores"]["ditto_core"], comparison["cores"]["dense_core"]
    row = {
        "logic_transistors": ditto["logic_transistors"], "memory_bits": ditto["memory_bits"],
        "area_transistors": ditto["area_transistors"],
        "dense_area_transistors": dense["area_transistors"],
        "cycles_ditto": ditto["cycles"], "cycles_ditto_defo": ditto["cycles_defo"],
        "cycles_dense": dense["cycles"],
        "energy_uj": round(schemes["ditto_defo"]["energy_pj"]["total"] / 1e6, 3),
        "dense_energy_uj": round(schemes["dense"]["energy_pj"]["total"] / 1e6, 3),
        "speedup_equal_area": round(comparison["ratios"]["speedup_equal_area"], 4),
        "speedup_equal_area_defo": round(comparison["ratios"]["speedup_equal_area_defo"], 4),
    }
    components = synth["components"]
    if target == "asic":
        for prefix, core in (("", "ditto_core"), ("dense_", "dense_core")):
            asic = components[core]["asic"]
            row[f"{prefix}area_um2"] = round(asic["area_um2"] + asic["memory_um2"], 1)
            row[f"{prefix}fmax_mhz"] = asic["fmax_mhz"]
    elif target is not None:
        row["fmax_mhz"] = components["ditto_core"][f"{target}_pnr"].get("fmax_mhz")
        row["dense_fmax_mhz"] = components["dense_core"][f"{target}_pnr"].get("fmax_mhz")
    # Time of the whole workload, each core at its own Fmax (Ditto with Defo).
    if row.get("fmax_mhz"):
        row["time_ms"] = round(row["cycles_ditto_defo"] / (row["fmax_mhz"] * 1e3), 3)
    if row.get("dense_fmax_mhz"):
        row["dense_time_ms"] = round(row["cycles_dense"] / (row["dense_fmax_mhz"] * 1e3), 3)
    return {field: row.get(field) for field in MEASURED_FIELDS}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def cost_point(config: DittoConfig, options: SweepOptions) -> dict:
    """One point's measured columns plus ``seconds``, ``cached`` and ``error``; served from
    the point cache when there. Runs on a Dask worker (or in this process); never raises
    for a failing point: its row carries the error, and it is not cached."""
    start = time.perf_counter()
    try:
        path = Path(options.build_dir) / "sweep" / f"{_point_key(config, options)}.json"
        if path.is_file():
            return {**json.loads(path.read_text()), "cached": True, "error": None}
        row = {**_measure(config, options), "seconds": round(time.perf_counter() - start, 1)}
        write_atomically(path, json.dumps(row, sort_keys=True) + "\n")
        return {**row, "cached": False, "error": None}
    except Exception as error:  # a failed point is a row with its error, never a crash
        return {"error": _first_line(error), "seconds": round(time.perf_counter() - start, 1),
                "cached": False}


def csv_fields(sweeps: Mapping[str, Sequence]) -> list[str]:
    """The CSV's columns: ``slug``, the swept fields, the measured ones, then ``pareto``,
    ``error`` and the timing columns."""
    return ["slug", *sweeps, *MEASURED_FIELDS, "pareto", "error", *TIMING_FIELDS]


def _write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({field: row.get(field) for field in fields})
    write_atomically(path, buffer.getvalue())


def _label(row: dict, sweeps: Mapping[str, Sequence]) -> str:
    """The point's swept values, ``/``-separated in the order of ``sweeps``."""
    return "/".join(str(row[field]) for field in sweeps)


def _scale(values: list[float]) -> str:
    """Log scale for values spanning more than a factor of ten."""
    positive = [v for v in values if v and v > 0]
    return "log" if positive and max(positive) > 10 * min(positive) else "linear"


def _plot(path: Path, rows: list[dict], sweeps: Mapping[str, Sequence], y_field: str,
          dense_y_field: str, y_label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    done = [row for row in rows if row.get(y_field) is not None]
    for on_front in (False, True):
        chosen = [row for row in done if bool(row["pareto"]) == on_front]
        if chosen:
            ax.scatter([row["area_transistors"] / 1e6 for row in chosen],
                       [row[y_field] for row in chosen],
                       color="#dd8452" if on_front else "#4c72b0",
                       marker="*" if on_front else "o", s=90 if on_front else 30,
                       label="DittoCore, non-dominated (area, time, energy)" if on_front
                       else "DittoCore")
    dense = sorted({(row["dense_area_transistors"] / 1e6, row[dense_y_field]) for row in done
                    if row.get(dense_y_field) is not None})
    if dense:
        ax.scatter(*zip(*dense, strict=True), marker="s", color="#c44e52",
                   label="DenseCore of the same config")
    for row in done:
        ax.annotate(_label(row, sweeps), (row["area_transistors"] / 1e6, row[y_field]),
                    fontsize=7, textcoords="offset points", xytext=(4, 3))
    areas = [row["area_transistors"] / 1e6 for row in done] + [d[0] for d in dense]
    ax.set(xlabel="area, million transistors (logic + 6T SRAM estimate)", ylabel=y_label,
           xscale=_scale(areas), yscale=_scale([row[y_field] for row in done]),
           title=f"Design space: area against {y_label}\n(labels: {'/'.join(sweeps)})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _run_points(configs: list[DittoConfig], options: SweepOptions, *, workers: int,
                scheduler: str | None, progress: Callable[[int, dict], None]) -> list[dict]:
    """``cost_point`` of every config, in order: serially here (``workers=0`` and no
    scheduler) or as one Dask task each."""
    if workers == 0 and scheduler is None:
        rows = []
        for config in configs:
            rows.append(cost_point(config, options))
            progress(len(rows) - 1, rows[-1])
        return rows
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        # One single-threaded process per worker: Yosys, nextpnr and the cycle model each
        # keep a core busy, and a crashing tool takes only its own worker down.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            futures = {client.submit(cost_point, config, options, pure=False,
                                     key=f"sweep-{index}-{config.slug}"): index
                       for index, config in enumerate(configs)}
            rows: list[dict | None] = [None] * len(configs)
            for future in as_completed(futures):
                index = futures[future]
                try:
                    rows[index] = future.result()
                except Exception as error:  # the task's worker died too often (KilledWorker)
                    rows[index] = {"error": _first_line(error), "cached": False}
                progress(index, rows[index])
            return rows
    finally:
        if cluster is not None:
            cluster.close()


def run_sweep(base: DittoConfig, sweeps: Mapping[str, Sequence], options: SweepOptions, *,
              workers: int = 0, scheduler: str | None = None, csv_path="build/sweep.csv",
              plot_prefix="build/sweep", progress: Callable[[int, dict], None] | None = None
              ) -> list[dict]:
    """Cost every point of ``sweeps`` over ``base``; write the CSV (``csv_fields``) and the
    plots ``PREFIX-area-time.png`` and ``PREFIX-area-energy.png``; return the rows.

    ``progress(index, row)`` is called as each point finishes (in any order).
    """
    points = sweep_configs(base, sweeps)
    valid = [point for point in points if point.config is not None]
    progress = progress or (lambda index, row: None)
    measured = iter(_run_points([point.config for point in valid], options, workers=workers,
                                scheduler=scheduler, progress=progress))
    rows = []
    for point in points:
        row = ({"error": point.error} if point.config is None else next(measured))
        slug = point.config.slug if point.config is not None else ""
        rows.append({"slug": slug, **point.values, **row})
    # Time where every measured point has an Fmax, else cycles (a clock-free comparison).
    measured_rows = [row for row in rows if row.get("error") is None]
    has_time = bool(measured_rows) and all(row.get("time_ms") for row in measured_rows)
    speed = "time_ms" if has_time else "cycles_ditto_defo"
    coordinates = [(row.get("area_transistors"), row.get(speed), row.get("energy_uj"))
                   if row.get("error") is None else (None, None, None) for row in rows]
    for row, flag in zip(rows, pareto_flags(coordinates), strict=True):
        row["pareto"] = flag
    _write_csv(Path(csv_path), csv_fields(sweeps), rows)
    _plot(Path(f"{plot_prefix}-area-time.png"), rows, sweeps,
          "time_ms" if has_time else "cycles_ditto_defo",
          "dense_time_ms" if has_time else "cycles_dense",
          "time on the workload, ms" if has_time else "cycles on the workload (no Fmax)")
    _plot(Path(f"{plot_prefix}-area-energy.png"), rows, sweeps, "energy_uj",
          "dense_energy_uj", "energy on the workload, µJ")
    return rows


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
