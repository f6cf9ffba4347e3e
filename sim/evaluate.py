"""The main job's numbers: a whole trajectory through the cycle models of DittoCore and
DenseCore, with memory traffic, a roofline bound and a first-order energy estimate.

Energy per operation (pJ) is from M. Horowitz, "Computing's energy problem (and what we can
do about it)", ISSCC 2014, 45 nm, 0.9 V: 8-bit add 0.03, 32-bit add 0.1, 8-bit multiply
0.2; a 64-bit SRAM read 10 (8 KB) / 20 (32 KB) / 100 (1 MB); DRAM 1.3-2.6 nJ per 64 bits.
Derived assumptions, stated in the report: a ``a x b``-bit multiplier costs ``0.2 a b / 64``
(an array multiplier's energy grows with its partial products); buffer accesses cost the
32 KB figure per byte (2.5 pJ), DRAM the middle of the range per byte (1.95 nJ / 8); a
register write costs an 8-bit add per byte (Horowitz lists no register figure: a stand-in).
It is an estimate of the datapath and buffers, not of clocking, control or leakage.
"""

from __future__ import annotations

from ditto.config import DittoConfig

from .analysis import add_work

__all__ = ["ENERGY_PJ", "ENERGY_SOURCE", "energy", "evaluate", "traffic"]

ENERGY_SOURCE = ("M. Horowitz, \"Computing's energy problem (and what we can do about it)\", "
                 "ISSCC 2014, 45 nm")
ENERGY_PJ = {
    "add8": 0.03,
    "add32": 0.1,
    "mult8x8": 0.2,
    "sram_byte": 20.0 / 8,      # 64-bit read of a 32 KB SRAM
    "dram_byte": 1950.0 / 8,    # middle of 1.3-2.6 nJ per 64-bit access
    "register_byte": 0.03,      # stand-in: one 8-bit add per register byte written
}


def multiply_pj(a_bits: int, b_bits: int) -> float:
    """Energy of an ``a_bits x b_bits`` multiply, scaled from the 8 x 8 figure."""
    return ENERGY_PJ["mult8x8"] * a_bits * b_bits / 64


def traffic(work: dict, core: str, config: DittoConfig) -> dict:
    """Off-chip bytes of one core's work (``analysis`` ``work_*`` dict): activations,
    previous activations (DittoCore's DIFF steps), weights, outputs stored (and, for DIFF,
    the stored outputs read back to be accumulated)."""
    word = config.acc_bits // 8
    out = {"activations": work.get("value_bytes", 0), "weights": work.get("weight_bytes", 0),
           "outputs": word * work.get("output_words", 0)}
    if core == "ditto":
        out["previous_activations"] = work.get("prev_value_bytes", 0)
        out["previous_outputs"] = word * work.get("prev_output_words", 0)
    out["total"] = sum(out.values())
    return out


def energy(work: dict, core: str, config: DittoConfig) -> dict:
    """Energy estimate in pJ by category (see the module docstring)."""
    e = ENERGY_PJ
    word = config.acc_bits // 8
    scanned, scanned_diff = work.get("scanned", 0), work.get("scanned_diff", 0)
    beats, beats_diff = work.get("output_beats", 0), work.get("output_beats_diff", 0)
    if core == "ditto":
        mults = work.get("lane_mults", 0)
        out = {
            # Encoder: a subtraction (DIFF) and a range check per element scanned.
            "encode": (scanned + scanned_diff) * e["add8"],
            "multiply": mults * multiply_pj(config.lane_bits, config.weight_bits),
            "add": mults * e["add32"],
            # Activation buffer: x_t, and x_{t-1} in DIFF; one weight byte per lane multiply;
            # accumulation buffer: write each output, read it first in DIFF.
            "sram": e["sram_byte"] * (scanned + scanned_diff + mults
                                      + word * config.pes * (beats + beats_diff)),
            # Pipeline registers per lane multiply: operand, weight, product (2 bytes).
            "registers": e["register_byte"] * mults * 4,
        }
    else:
        mults = work.get("int8_mults", 0)
        out = {
            "encode": 0.0,
            "multiply": mults * multiply_pj(config.act_bits, config.weight_bits),
            "add": mults * e["add32"],
            "sram": e["sram_byte"] * (scanned + mults + word * config.pes * beats),
            "registers": e["register_byte"] * mults * 4,
        }
    out["on_chip"] = sum(out.values())
    out["dram"] = e["dram_byte"] * traffic(work, core, config)["total"]
    out["total"] = out["on_chip"] + out["dram"]
    return out


def _roofline(cycles: int, bytes_moved: int, bytes_per_cycle: float) -> tuple[float, str]:
    memory_cycles = bytes_moved / bytes_per_cycle
    return max(cycles, memory_cycles), ("memory" if memory_cycles > cycles else "compute")


def evaluate(report: dict, config: DittoConfig, *, areas: dict | None = None,
             bandwidth_gbps: float = 25.6, clock_mhz: float = 500.0) -> dict:
    """Evaluation of an ``analysis.analyze`` report (whose layers carry ``work_*``).

    ``areas``: ``{"ditto_core": a, "dense_core": b}`` in the same unit (``ditto.flow.area``), for
    the equal-area speedups. ``bandwidth_gbps`` and ``clock_mhz`` set the roofline: a layer
    is memory-bound on a core when its off-chip bytes need more cycles than it computes.
    """
    bytes_per_cycle = bandwidth_gbps * 1e9 / (clock_mhz * 1e6)
    layers, sums = [], {}
    totals_work = {"ditto": {}, "ditto_defo": {}, "dense": {}}
    for layer in report["layers"]:
        row = {key: layer[key] for key in ("name", "group", "elements", "zero", "low", "full",
                                           "defo_mode", "cycles_ditto", "cycles_ditto_defo",
                                           "cycles_dense", "ideal_speedup")}
        row["speedup"] = layer["cycles_dense"] / max(layer["cycles_ditto"], 1)
        row["speedup_defo"] = layer["cycles_dense"] / max(layer["cycles_ditto_defo"], 1)
        row["lane_utilisation"] = layer["lane_slots_issued"] / max(
            config.lanes * layer["cycles_ditto"], 1)
        for core, cycles_key in (("ditto", "cycles_ditto"), ("ditto_defo", "cycles_ditto_defo"),
                                 ("dense", "cycles_dense")):
            work = layer[f"work_{core}"]
            kind = "dense" if core == "dense" else "ditto"
            moved = traffic(work, kind, config)
            bound_cycles, bound = _roofline(layer[cycles_key], moved["total"], bytes_per_cycle)
            row[f"bytes_{core}"] = moved["total"]
            row[f"roofline_cycles_{core}"] = bound_cycles
            row[f"bound_{core}"] = bound
            row[f"energy_pj_{core}"] = energy(work, kind, config)["total"]
            totals_work[core] = add_work(totals_work[core], work)
            sums[f"roofline_cycles_{core}"] = sums.get(f"roofline_cycles_{core}", 0) + bound_cycles
        layers.append(row)
    t = report["totals"]
    lane_slots = sum(layer["lane_slots_issued"] for layer in report["layers"])
    result = {
        "config": {**config.as_dict(), "slug": config.slug},
        "workload": report.get("workload", {}),
        "trace": report.get("trace"),
        "layers_total": len(layers),
        "cycles_ditto": t["cycles_ditto"], "cycles_ditto_defo": t["cycles_ditto_defo"],
        "cycles_dense": t["cycles_dense"],
        "speedup": t["cycles_dense"] / t["cycles_ditto"],
        "speedup_defo": t["cycles_dense"] / t["cycles_ditto_defo"],
        "speedup_ideal": t["ideal_speedup"],
        "lane_utilisation": lane_slots / (config.lanes * t["cycles_ditto"]),
        "layers_act_by_defo": t["layers_act_by_defo"],
        "roofline": {"bandwidth_gbps": bandwidth_gbps, "clock_mhz": clock_mhz,
                     "bytes_per_cycle": bytes_per_cycle, **sums,
                     "speedup": sums["roofline_cycles_dense"] / sums["roofline_cycles_ditto"],
                     "speedup_defo": (sums["roofline_cycles_dense"]
                                      / sums["roofline_cycles_ditto_defo"]),
                     "memory_bound_layers_ditto": sum(r["bound_ditto"] == "memory"
                                                      for r in layers),
                     "memory_bound_layers_dense": sum(r["bound_dense"] == "memory"
                                                      for r in layers)},
        "traffic_bytes": {core: traffic(work, "dense" if core == "dense" else "ditto", config)
                          for core, work in totals_work.items()},
        "energy_pj": {core: energy(work, "dense" if core == "dense" else "ditto", config)
                      for core, work in totals_work.items()},
        "energy_source": ENERGY_SOURCE,
        "energy_assumptions": ENERGY_PJ,
    }
    energies = result["energy_pj"]
    result["energy_ratio"] = energies["ditto"]["total"] / energies["dense"]["total"]
    result["energy_ratio_defo"] = energies["ditto_defo"]["total"] / energies["dense"]["total"]
    result["energy_ratio_on_chip"] = energies["ditto"]["on_chip"] / energies["dense"]["on_chip"]
    if areas:
        area_ratio = areas["ditto_core"] / areas["dense_core"]
        result["area"] = {**areas, "ratio": area_ratio}
        result["speedup_equal_area"] = result["speedup"] / area_ratio
        result["speedup_equal_area_defo"] = result["speedup_defo"] / area_ratio
    result["layers"] = layers
    return result


def format_summary(result: dict) -> str:
    """The evaluation as a plain-text table."""
    e, traffic_bytes = result["energy_pj"], result["traffic_bytes"]
    columns = ("ditto", "ditto_defo", "dense")
    cycles = [result["cycles_ditto"], result["cycles_ditto_defo"], result["cycles_dense"]]
    speed = [result["speedup"], result["speedup_defo"], 1.0]
    rows = [("", "DittoCore", "Ditto + Defo", "DenseCore"),
            ("cycles (cycle model)", *(f"{c:,}" for c in cycles)),
            ("speedup over Dense", *(f"{s:.2f}" for s in speed))]
    if "speedup_equal_area" in result:
        area = result["area"]
        rows.append(("area, M transistors (est.)", f"{area['ditto_core'] / 1e6:.2f}",
                     f"{area['ditto_core'] / 1e6:.2f}", f"{area['dense_core'] / 1e6:.2f}"))
        rows.append(("speedup at equal area", f"{result['speedup_equal_area']:.2f}",
                     f"{result['speedup_equal_area_defo']:.2f}", "1.00"))
    roof = result["roofline"]
    rows += [
        ("roofline cycles", *(f"{roof[f'roofline_cycles_{c}']:,.0f}" for c in columns)),
        ("off-chip MB", *(f"{traffic_bytes[c]['total'] / 1e6:.2f}" for c in columns)),
        ("energy on chip, uJ (est.)", *(f"{e[c]['on_chip'] / 1e6:.2f}" for c in columns)),
        ("energy with DRAM, uJ (est.)", *(f"{e[c]['total'] / 1e6:.2f}" for c in columns)),
    ]
    width = max(len(row[0]) for row in rows)
    lines = [f"{a:<{width}}  {b:>14}  {c:>14}  {d:>14}" for a, b, c, d in rows]
    lines.append(f"ideal lane-bound speedup {result['speedup_ideal']:.2f}; lane utilisation "
                 f"{result['lane_utilisation']:.3f}; Defo leaves "
                 f"{result['layers_act_by_defo']}/{result['layers_total']} layers in ACT; "
                 f"energy ratio Ditto/Dense {result['energy_ratio']:.3f} (on chip "
                 f"{result['energy_ratio_on_chip']:.3f}); memory-bound layers at "
                 f"{roof['bandwidth_gbps']} GB/s and {roof['clock_mhz']:.0f} MHz: Ditto "
                 f"{roof['memory_bound_layers_ditto']}, Dense {roof['memory_bound_layers_dense']}")
    return "\n".join(lines)


def _group_rows(result: dict) -> list[dict]:
    groups: dict[str, dict] = {}
    for layer in result["layers"]:
        g = groups.setdefault(layer["group"], {"group": layer["group"], "layers": 0,
                                               "cycles_ditto": 0, "cycles_ditto_defo": 0,
                                               "cycles_dense": 0, "memory_bound_ditto": 0,
                                               "memory_bound_dense": 0})
        g["layers"] += 1
        for key in ("cycles_ditto", "cycles_ditto_defo", "cycles_dense"):
            g[key] += layer[key]
        g["memory_bound_ditto"] += layer["bound_ditto"] == "memory"
        g["memory_bound_dense"] += layer["bound_dense"] == "memory"
    return sorted(groups.values(), key=lambda g: g["group"])


def write_markdown(result: dict, path) -> None:
    """Markdown report with the summary, per-type table and two PNG plots beside it."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_suffix("").name
    groups = _group_rows(result)

    fig, ax = plt.subplots(figsize=(8, 4))
    names = [g["group"] for g in groups]
    x = range(len(groups))
    ax.bar([i - 0.2 for i in x], [g["cycles_dense"] / max(g["cycles_ditto"], 1) for g in groups],
           width=0.4, label="Ditto")
    ax.bar([i + 0.2 for i in x], [g["cycles_dense"] / max(g["cycles_ditto_defo"], 1)
                                  for g in groups], width=0.4, label="Ditto + Defo")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(x), names, rotation=20)
    ax.set(ylabel="speedup over DenseCore (cycles)", title="Speedup per layer type")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path.parent / f"{stem}-speedup.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    cores = ("ditto", "ditto_defo", "dense")
    parts = ("encode", "multiply", "add", "registers", "sram", "dram")
    bottom = [0.0] * len(cores)
    for part in parts:
        values = [result["energy_pj"][c][part] / 1e6 for c in cores]
        ax.bar(["Ditto", "Ditto + Defo", "Dense"], values, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set(ylabel="energy, uJ (first-order estimate)", title="Energy by operation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path.parent / f"{stem}-energy.png", dpi=110)
    plt.close(fig)

    workload = result.get("workload", {})
    lines = [f"# Evaluation: {result['config']['slug']}", "",
             f"Workload: {workload.get('source')} `{workload.get('file')}`, "
             f"{result['layers_total']} layers. Cycles from the cycle model, which the RTL "
             "matches to the cycle (`docs/core.md`).", "", "```", format_summary(result), "```",
             ""]
    sample = result.get("rtl_sample")
    if sample:
        lines += ["## RTL sample", "",
                  f"{sample['per_type']} random tiles per layer type through the generated "
                  f"Verilog ({sample['simulator']}): every value and every tile's cycle count "
                  "equal to the model.", "", "| core | commands | rows | cycles | seconds |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['core']} | {r['jobs']} | {r['rows']} | {r['cycles']} | "
                  f"{r['seconds']:.1f} |" for r in sample["runs"]]
        lines.append("")
    lines += ["## Per layer type", "",
              "| type | layers | Ditto cycles | Ditto + Defo | Dense cycles | speedup | "
              "memory-bound (Ditto / Dense) |", "|---|---|---|---|---|---|---|"]
    for g in groups:
        lines.append(f"| {g['group']} | {g['layers']} | {g['cycles_ditto']:,} | "
                     f"{g['cycles_ditto_defo']:,} | {g['cycles_dense']:,} | "
                     f"{g['cycles_dense'] / max(g['cycles_ditto'], 1):.2f} | "
                     f"{g['memory_bound_ditto']} / {g['memory_bound_dense']} |")
    lines += ["", f"![speedup]({stem}-speedup.png)", "", f"![energy]({stem}-energy.png)", "",
              "## Assumptions", "",
              f"- Energy: {result['energy_source']}; per operation (pJ): "
              + ", ".join(f"{k} {v:g}" for k, v in result["energy_assumptions"].items())
              + ". A first-order estimate of datapath, buffers and DRAM (module docstring of "
              "`sim/evaluate.py`), not of clocking, control or leakage.",
              "- Off-chip traffic: every step reads the activations and weights and writes the "
              "outputs (`acc_bits` words); DittoCore's DIFF steps also read the previous "
              "activations and the stored outputs they accumulate onto.",
              f"- Roofline: {result['roofline']['bandwidth_gbps']} GB/s at "
              f"{result['roofline']['clock_mhz']:.0f} MHz "
              f"({result['roofline']['bytes_per_cycle']:.1f} bytes per cycle).",
              "- Area: logic transistors (Yosys CMOS estimate) + 6 transistors per memory bit "
              "(`docs/synthesis.md`)."]
    path.write_text("\n".join(lines) + "\n")
