"""Design-space sweep: area (Yosys), Fmax (nextpnr) and real-workload cycles (the cycle
model, which the RTL matches) of DittoCore over P, E, lane_bits, the lane groups the
packer pushes a cycle and the dispatch FIFO depth, written as a CSV and a Pareto plot of area
against cycles."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

from ditto.config import DittoConfig
from ditto.files import write_atomically

from .area import equal_area
from .synth import synthesise

__all__ = ["CSV_FIELDS", "pareto_flags", "run_sweep", "sweep_configs"]

CSV_FIELDS = ("slug", "pes", "scan_width", "lane_bits", "dispatch_groups", "dispatch_depth",
              "logic_transistors",
              "memory_bits", "area_transistors", "dense_area_transistors", "fmax_mhz",
              "dense_fmax_mhz", "cycles_ditto", "cycles_ditto_defo", "cycles_dense",
              "speedup_equal_area", "speedup_equal_area_defo", "pareto")


def _integers(text: str, name: str) -> list:
    values = []
    for item in str(text).split(","):
        item = item.strip()
        try:
            values.append(int(item))
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not an integer") from None
    if not values:
        raise ValueError(f"{name}: no values given")
    return values


def sweep_configs(base: DittoConfig, *, pes="4,8,16", scan_widths="16,32", lane_bits="5",
                  groups=None, depths=None) -> list[DittoConfig]:
    """Every combination of the comma-separated values, as configs derived from ``base``
    (each validated: an impossible combination is an error naming the field). ``groups``
    and ``depths`` (``dispatch_groups``, ``dispatch_depth``) default to ``base``'s."""
    lanes = _integers(lane_bits, "lane_bits")
    for value in lanes:
        if value < 5:
            raise ValueError(f"lane_bits={value}: the sweep covers lane_bits >= 5 (a 9-bit "
                             "difference in at most two lanes)")
    configs = []
    groups = base.dispatch_groups if groups is None else groups
    depths = base.dispatch_depth if depths is None else depths
    for p, e, lb, g, depth in itertools.product(
            _integers(pes, "pes"), _integers(scan_widths, "scan_width"), lanes,
            _integers(groups, "dispatch_groups"), _integers(depths, "dispatch_depth")):
        configs.append(base.replace(pes=p, scan_width=e, lane_bits=lb, dispatch_groups=g,
                                    dispatch_depth=depth))
    return configs


def pareto_flags(points: list[tuple[float, float]]) -> list[bool]:
    """True for points no other point dominates (lower or equal in both coordinates and
    lower in one)."""
    return [not any(a2 <= a and c2 <= c and (a2, c2) != (a, c) for a2, c2 in points)
            for a, c in points]


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({field: row[field] for field in CSV_FIELDS})
    write_atomically(path, buffer.getvalue())


def _plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    area = [row["area_transistors"] / 1e6 for row in rows]
    cycles = [row["cycles_ditto"] for row in rows]
    ax.scatter(area, cycles, color="#4c72b0", label="DittoCore")
    front = sorted((a, c) for a, c, row in zip(area, cycles, rows, strict=True)
                   if row["pareto"])
    if front:
        ax.plot(*zip(*front, strict=True), color="#4c72b0", linestyle="--",
                label="Pareto front")
    dense = sorted({(row["dense_area_transistors"] / 1e6, row["cycles_dense"], row["pes"])
                    for row in rows})
    ax.scatter([d[0] for d in dense], [d[1] for d in dense], marker="s", color="#c44e52",
               label="DenseCore (same P)")
    for a, c, row in zip(area, cycles, rows, strict=True):
        ax.annotate(f"P{row['pes']} E{row['scan_width']} L{row['lane_bits']} "
                    f"G{row['dispatch_groups']} Q{row['dispatch_depth']}", (a, c), fontsize=7,
                    textcoords="offset points", xytext=(4, 3))
    ax.set(xlabel="area, million transistors (logic + 6T SRAM estimate)",
           ylabel="cycles on the workload", xscale="log", yscale="log",
           title="Design space: area against cycles")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_sweep(configs: list[DittoConfig], *, trace=None, fmax_target: str | None = "ecp5",
              seeds: int = 1, build_dir="build/synth", csv_path="build/sweep.csv",
              plot_path="build/sweep.png", progress=None) -> list[dict]:
    """Synthesise, place and route (if ``fmax_target``) and cost every config; write the
    CSV and the plot; return the rows (fields :data:`CSV_FIELDS`)."""
    from ditto.sim.workload import analyze_workload

    progress = progress or (lambda text: None)
    targets = ("generic",) + ((fmax_target,) if fmax_target else ())
    rows = []
    for index, config in enumerate(configs):
        where = f"[{index + 1}/{len(configs)}] {config.slug}"
        synth = synthesise(config, targets=targets, components=["ditto_core", "dense_core"],
                           seeds=seeds, fmax=fmax_target is not None, build_dir=build_dir,
                           progress=lambda text, where=where: progress(f"{where} {text}"))
        progress(f"{where} cycles on the workload")
        comparison = equal_area(synth, analyze_workload(config, trace), config)
        ditto, dense = comparison["cores"]["ditto_core"], comparison["cores"]["dense_core"]
        pnr = synth["components"]["ditto_core"].get(f"{fmax_target}_pnr", {})
        dense_pnr = synth["components"]["dense_core"].get(f"{fmax_target}_pnr", {})
        rows.append({
            "slug": config.slug, "pes": config.pes, "scan_width": config.scan_width,
            "lane_bits": config.lane_bits, "dispatch_groups": config.dispatch_groups,
            "dispatch_depth": config.dispatch_depth,
            "logic_transistors": ditto["logic_transistors"],
            "memory_bits": ditto["memory_bits"],
            "area_transistors": ditto["area_transistors"],
            "dense_area_transistors": dense["area_transistors"],
            "fmax_mhz": pnr.get("fmax_mhz"), "dense_fmax_mhz": dense_pnr.get("fmax_mhz"),
            "cycles_ditto": ditto["cycles"], "cycles_ditto_defo": ditto["cycles_defo"],
            "cycles_dense": dense["cycles"],
            "speedup_equal_area": round(comparison["ratios"]["speedup_equal_area"], 4),
            "speedup_equal_area_defo": round(comparison["ratios"]["speedup_equal_area_defo"],
                                             4),
        })
    for row, flag in zip(rows, pareto_flags([(r["area_transistors"], r["cycles_ditto"])
                                             for r in rows]), strict=True):
        row["pareto"] = flag
    _write_csv(Path(csv_path), rows)
    _plot(Path(plot_path), rows)
    return rows
