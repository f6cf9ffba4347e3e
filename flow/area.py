"""Area report: per-component synthesis figures and the equal-area comparison of DittoCore
and DenseCore on a real workload (cycles from the cycle model, which the RTL matches to the
cycle).

Area measure. Both cores have the same weight and accumulation buffers; an ASIC flow would
build them from SRAM macros, which Yosys' transistor estimate does not cover. The
comparison therefore uses ``logic transistors + 6 x memory bits`` (a 6T SRAM cell per bit,
no periphery): an estimate, stated as such in the report, with the logic-only figures
beside it.
"""

from __future__ import annotations

from pathlib import Path

from ditto.config import DittoConfig

from .synth import CORES

__all__ = ["SRAM_TRANSISTORS_PER_BIT", "core_area", "equal_area", "equal_area_asic",
           "format_asic_summary", "format_summary", "write_markdown"]

SRAM_TRANSISTORS_PER_BIT = 6


def core_area(generic: dict) -> int:
    """Area estimate of a generic synthesis result: logic transistors + 6T per memory bit."""
    return generic["transistors"] + SRAM_TRANSISTORS_PER_BIT * generic["memory_bits"]


def _core_figures(synth: dict, target: str) -> dict:
    """Both cores' figures for ``target``; a clear error when the synthesis has none."""
    missing = [core for core in CORES if target not in synth["components"].get(core, {})]
    if missing:
        raise ValueError(f"the synthesis result has no {target} figures for {missing}; run "
                         f"'ditto synth' with --target {target}")
    return {core: synth["components"][core][target] for core in CORES}


def _core_cycles(workload: dict) -> dict:
    totals = workload["totals"]
    return {"ditto_core": totals["cycles_ditto"], "dense_core": totals["cycles_dense"]}


def act_macs_per_cycle(config: DittoConfig, core: str) -> int:
    """int8 x int8 multiply-accumulates per cycle in ACT mode at worst case (every activation
    FULL: two lanes each for DittoCore)."""
    if core == "ditto_core":
        return config.pes * config.lanes // 2
    return config.pes * config.dense_macs


def _speedup_ratios(ditto: dict, dense: dict, area_ratio: float) -> dict:
    """``area``, ``speedup`` and ``speedup_defo`` (Dense cycles over Ditto's), and both at
    equal area (divided by the area ratio), from the cores' ``cycles``/``cycles_defo``."""
    speedup = dense["cycles"] / ditto["cycles"]
    speedup_defo = dense["cycles"] / ditto["cycles_defo"]
    return {"area": area_ratio, "speedup": speedup, "speedup_defo": speedup_defo,
            "speedup_equal_area": speedup / area_ratio,
            "speedup_equal_area_defo": speedup_defo / area_ratio}


def equal_area(synth: dict, workload: dict, config: DittoConfig) -> dict:
    """Equal-area comparison of the cores from ``synth`` (``ditto.flow.synth.synthesise``, with the
    generic target) and ``workload`` (``analysis.analyze`` report).

    Returns per core ``logic_transistors``, ``memory_bits``, ``area_transistors`` (logic +
    SRAM estimate), ``area_per_pe``, ``area_per_act_mac``, ``cycles`` (``cycles_defo`` for
    DittoCore), ``throughput_per_area`` (runs of the workload per 10^9 cycles per million
    transistors), and
    ``ratios``: ``area`` (Ditto / Dense), ``speedup`` and ``speedup_defo`` (Dense cycles /
    Ditto cycles), ``speedup_equal_area`` and ``speedup_equal_area_defo`` (speedup / area
    ratio: the speedup of a Ditto accelerator over a dense one of the same area, both
    scaled by replicating cores) and, where both cores have an Fmax on a target,
    ``speedup_equal_area_time_<target>`` (the same in time, each core at its own Fmax).
    """
    figures = _core_figures(synth, "generic")
    totals = workload["totals"]
    cycles = _core_cycles(workload)
    cores = {}
    for core in CORES:
        generic = figures[core]
        area = core_area(generic)
        entry = {
            "logic_transistors": generic["transistors"],
            "memory_bits": generic["memory_bits"],
            "area_transistors": area,
            "pes": config.pes,
            "act_macs_per_cycle": act_macs_per_cycle(config, core),
            "area_per_pe": area / config.pes,
            "logic_per_pe": generic["transistors"] / config.pes,
            "area_per_act_mac": area / act_macs_per_cycle(config, core),
            "cycles": cycles[core],
            "throughput_per_area": (1e9 / cycles[core]) / (area / 1e6),
        }
        if core == "ditto_core":
            entry["cycles_defo"] = totals["cycles_ditto_defo"]
        for target in ("ice40", "ecp5"):
            if target in synth["components"][core]:
                entry[f"{target}_luts"] = synth["components"][core][target]["luts"]
            pnr = synth["components"][core].get(f"{target}_pnr")
            if pnr:
                entry[f"{target}_fmax_mhz"] = pnr["fmax_mhz"]
        cores[core] = entry
    ditto, dense = cores["ditto_core"], cores["dense_core"]
    ratios = {
        **_speedup_ratios(ditto, dense, ditto["area_transistors"] / dense["area_transistors"]),
        "logic_area": ditto["logic_transistors"] / dense["logic_transistors"],
        "area_per_pe": ditto["area_per_pe"] / dense["area_per_pe"],
    }
    for target in ("ecp5", "ice40"):
        # Cycles do not count the clock: where both cores were placed and routed, also the
        # speedup in time, each core at its own Fmax.
        ditto_fmax, dense_fmax = ditto.get(f"{target}_fmax_mhz"), dense.get(f"{target}_fmax_mhz")
        if ditto_fmax and dense_fmax:
            ratios[f"speedup_equal_area_time_{target}"] = (
                ratios["speedup_equal_area"] * ditto_fmax / dense_fmax)
    return {
        "workload": workload.get("workload", {}),
        "layers": totals["layers"],
        "sram_transistors_per_bit": SRAM_TRANSISTORS_PER_BIT,
        "cores": cores,
        "ratios": ratios,
    }


def equal_area_asic(synth: dict, workload: dict, transistor_basis: dict | None = None) -> dict:
    """The equal-area comparison in µm² from the ``asic`` target (``ditto.flow.asic``): per
    core ``logic_um2``, ``memory_um2``, ``total_um2`` (their sum), ``fmax_mhz`` and
    ``critical_path``; ``ratios``: ``area``, ``speedup`` (and ``_defo``),
    ``speedup_equal_area`` (and ``_defo``), ``speedup_equal_area_time`` (each core at its
    own ASIC Fmax) and, given the transistor-based comparison (:func:`equal_area`),
    ``speedup_equal_area_transistors`` and ``bases_differ_by`` (µm² over transistors,
    minus 1)."""
    asic_figures = _core_figures(synth, "asic")
    totals = workload["totals"]
    cycles = _core_cycles(workload)
    cores = {}
    for core in CORES:
        figures = asic_figures[core]
        timing = figures["timing"]
        cores[core] = {"logic_um2": figures["area_um2"], "memory_um2": figures["memory_um2"],
                       "total_um2": figures["area_um2"] + figures["memory_um2"],
                       "flip_flop_area_um2": figures["flip_flop_area_um2"],
                       "fmax_mhz": timing["fmax_mhz"],
                       "critical_path": {key: timing[key] for key in
                                         ("startpoint", "endpoint", "critical_path_ns")},
                       "cycles": cycles[core]}
    cores["ditto_core"]["cycles_defo"] = totals["cycles_ditto_defo"]
    ditto, dense = cores["ditto_core"], cores["dense_core"]
    ratios = _speedup_ratios(ditto, dense, ditto["total_um2"] / dense["total_um2"])
    ratios.update(logic_area=ditto["logic_um2"] / dense["logic_um2"],
                  fmax=ditto["fmax_mhz"] / dense["fmax_mhz"])
    ratios["speedup_equal_area_time"] = ratios["speedup_equal_area"] * ratios["fmax"]
    if transistor_basis is not None:
        other = transistor_basis["ratios"]["speedup_equal_area"]
        ratios["speedup_equal_area_transistors"] = other
        ratios["bases_differ_by"] = ratios["speedup_equal_area"] / other - 1
    return {"liberty": synth.get("liberty"), "workload": workload.get("workload", {}),
            "cores": cores, "ratios": ratios}


def format_asic_summary(comparison: dict) -> str:
    """The µm² comparison as a plain-text table."""
    ditto, dense = comparison["cores"]["ditto_core"], comparison["cores"]["dense_core"]
    r = comparison["ratios"]
    rows = [("", "DittoCore", "DenseCore"),
            ("logic, um2", _fmt(ditto["logic_um2"]), _fmt(dense["logic_um2"])),
            ("  of it flip-flops, um2", _fmt(ditto["flip_flop_area_um2"]),
             _fmt(dense["flip_flop_area_um2"])),
            ("SRAM macros, um2", _fmt(ditto["memory_um2"]), _fmt(dense["memory_um2"])),
            ("area, um2", _fmt(ditto["total_um2"]), _fmt(dense["total_um2"])),
            ("Fmax (OpenSTA), MHz", _fmt(ditto["fmax_mhz"], 1), _fmt(dense["fmax_mhz"], 1)),
            ("cycles on the workload", _fmt(ditto["cycles"]), _fmt(dense["cycles"]))]
    width = max(len(row[0]) for row in rows)
    text = "\n".join(f"{a:<{width}}  {b:>14}  {c:>14}" for a, b, c in rows)
    text += (f"\nASIC area ratio Ditto/Dense {r['area']:.2f} (logic {r['logic_area']:.2f}); "
             f"speedup at equal area {r['speedup_equal_area']:.2f} (Defo "
             f"{r['speedup_equal_area_defo']:.2f}); in time, each core at its Fmax, "
             f"{r['speedup_equal_area_time']:.2f}")
    if "bases_differ_by" in r:
        text += (f"\nthe transistor estimate gives {r['speedup_equal_area_transistors']:.2f} at "
                 f"equal area: the um2 basis differs by {100 * r['bases_differ_by']:+.1f} %")
    for name, core in (("DittoCore", ditto), ("DenseCore", dense)):
        path = core["critical_path"]
        text += (f"\n{name} worst path {path['critical_path_ns']:.2f} ns: "
                 f"{path['startpoint']} -> {path['endpoint']}")
    return text


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _component_rows(synth: dict) -> list[str]:
    lines = ["| component | cells | flip-flops | transistors (logic) | memory bits | iCE40 LUTs "
             "| iCE40 carry | iCE40 FFs | iCE40 RAM | iCE40 DSP | ECP5 LUTs | ECP5 carry "
             "| ECP5 FFs | ECP5 RAM | ECP5 DSP |", "|---" * 15 + "|"]
    for name, entry in synth["components"].items():
        generic = entry.get("generic", {})
        cells = [_fmt(generic.get(key)) for key in ("cells", "flip_flops", "transistors",
                                                     "memory_bits")]
        for target in ("ice40", "ecp5"):
            fpga = entry.get(target, {})
            cells += [_fmt(fpga.get(key)) for key in ("luts", "carries", "flip_flops", "ram",
                                                       "dsp")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _asic_rows(synth: dict) -> list[str]:
    lines = ["| component | cells | logic µm² | of it flip-flops µm² | SRAM macros µm² | "
             "Fmax MHz | worst path ns | from → to |", "|---" * 8 + "|"]
    for name, entry in synth["components"].items():
        figures = entry.get("asic")
        if not figures:
            continue
        timing = figures["timing"]
        lines.append(f"| {name} | {_fmt(figures['cells'])} | {_fmt(figures['area_um2'])} | "
                     f"{_fmt(figures['flip_flop_area_um2'])} | {_fmt(figures['memory_um2'])} | "
                     f"{_fmt(timing['fmax_mhz'], 1)} | {timing['critical_path_ns']:.2f} | "
                     f"`{timing['startpoint']}` → `{timing['endpoint']}` |")
    return lines


def _pnr_rows(synth: dict) -> list[str]:
    lines = ["| core | target | device | fits | Fmax (MHz, median) | Fmax by seed | "
             "serialised I/O (in/out bits) | critical path of the first seed |",
             "|---" * 8 + "|"]
    for name, entry in synth["components"].items():
        for target in ("ice40", "ecp5"):
            pnr = entry.get(f"{target}_pnr")
            if not pnr:
                continue
            wrapper = entry.get("wrapper", {})
            seeds = ", ".join(f"{f:.1f}" for f in pnr.get("fmax_by_seed", [])) or pnr.get(
                "error", "")
            path = (pnr.get("critical_paths") or [None])[0]
            where = f"`{path['from']}` → `{path['to']}`" if path else ""
            lines.append(f"| {name} | {target} | {pnr['device']} | "
                         f"{'yes' if pnr['fits'] else 'no'} | {_fmt(pnr['fmax_mhz'], 1)} | "
                         f"{seeds} | {wrapper.get('input_bits')}/{wrapper.get('output_bits')} "
                         f"| {where} |")
    return lines


def format_summary(comparison: dict) -> str:
    """The equal-area comparison as a plain-text table."""
    ditto, dense = comparison["cores"]["ditto_core"], comparison["cores"]["dense_core"]
    r = comparison["ratios"]
    rows = [("", "DittoCore", "DenseCore"),
            ("logic transistors", _fmt(ditto["logic_transistors"]),
             _fmt(dense["logic_transistors"])),
            ("memory bits", _fmt(ditto["memory_bits"]), _fmt(dense["memory_bits"])),
            ("area (logic + 6T SRAM)", _fmt(ditto["area_transistors"]),
             _fmt(dense["area_transistors"])),
            ("area per PE", _fmt(ditto["area_per_pe"]), _fmt(dense["area_per_pe"])),
            ("area per ACT int8 MAC/cycle", _fmt(ditto["area_per_act_mac"]),
             _fmt(dense["area_per_act_mac"])),
            ("cycles on the workload", _fmt(ditto["cycles"]), _fmt(dense["cycles"])),
            ("workload runs per 1e9 cycles per M transistors",
             _fmt(ditto["throughput_per_area"], 3), _fmt(dense["throughput_per_area"], 3))]
    width = max(len(row[0]) for row in rows)
    text = "\n".join(f"{a:<{width}}  {b:>14}  {c:>14}" for a, b, c in rows)
    text += (f"\narea ratio Ditto/Dense {r['area']:.2f} (per PE {r['area_per_pe']:.2f}, "
             f"logic only {r['logic_area']:.2f}); speedup in cycles {r['speedup']:.2f} "
             f"(Defo {r['speedup_defo']:.2f}); at equal area {r['speedup_equal_area']:.2f} "
             f"(Defo {r['speedup_equal_area_defo']:.2f})")
    for target in ("ecp5", "ice40"):
        if f"speedup_equal_area_time_{target}" in r:
            text += (f"\nat equal area in time on {target}, each core at its Fmax: "
                     f"{r[f'speedup_equal_area_time_{target}']:.2f}")
    return text


def _plot(comparison: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cores = comparison["cores"]
    names = ["DittoCore", "DenseCore"]
    entries = [cores["ditto_core"], cores["dense_core"]]
    sram = comparison["sram_transistors_per_bit"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    logic = [e["logic_transistors"] / 1e6 for e in entries]
    memory = [sram * e["memory_bits"] / 1e6 for e in entries]
    left.bar(names, logic, label="logic (Yosys CMOS estimate)", color="#4c72b0")
    left.bar(names, memory, bottom=logic, label=f"SRAM ({sram}T per bit)", color="#dd8452")
    left.set(ylabel="million transistors", title="Area")
    left.legend()
    right.bar(names, [e["throughput_per_area"] for e in entries], color=["#55a868", "#8172b2"])
    right.set(ylabel="workload runs per 1e9 cycles per M transistors",
              title=f"Throughput per area ({comparison['workload'].get('source', '?')})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(path: str | Path, synth: dict, comparison: dict | None) -> None:
    """Markdown report with the component table, place-and-route results and, when given,
    the equal-area comparison with its plot (PNG beside the report)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Area report: {synth['slug']}", "",
             "Figures read from the tools' JSON output: Yosys `stat -json` (generic gates; "
             "transistors from `dffunmap` + `stat -tech cmos`, logic only, memories kept as "
             "`$mem_v2` and counted in bits), `synth_ice40` / `synth_ecp5`, nextpnr "
             "`--report`. Tools: " + ", ".join(f"{k} {v}" for k, v in synth["tools"].items())
             + ".", "", "## Components", "", *_component_rows(synth), ""]
    asic_rows = _asic_rows(synth)
    if len(asic_rows) > 2:
        lines += [f"## ASIC ({synth.get('liberty')})", "",
                  "Cell area from `stat -liberty`; Fmax from OpenSTA's worst path (library "
                  "corner, ideal clock, input and output delay 0, no wire load; paths through "
                  "SRAM macros untimed; docs/asic.md).", "", *asic_rows, ""]
        if synth.get("equal_area_asic"):
            lines += ["```", format_asic_summary(synth["equal_area_asic"]), "```", ""]
    pnr = _pnr_rows(synth)
    if len(pnr) > 2:
        lines += ["## Place and route (cores in serialised, registered I/O)", "",
                  "Fmax is nextpnr's register-to-register figure, median over seeds.", "",
                  *pnr, ""]
    if comparison:
        plot = path.with_suffix("").name + "-equal-area.png"
        _plot(comparison, path.parent / plot)
        r = comparison["ratios"]
        workload = comparison["workload"]
        lines += ["## Equal-area comparison", "",
                  f"Workload: {workload.get('source')} `{workload.get('file')}`, "
                  f"{comparison['layers']} layers, every step; cycles "
                  "from the cycle model (equal to the RTL's, see docs/core.md). Area = logic "
                  f"transistors + {comparison['sram_transistors_per_bit']} transistors per "
                  "memory bit: an estimate.", "", "```", format_summary(comparison), "```", "",
                  f"Speedup of Ditto over Dense of equal area: **{r['speedup_equal_area']:.2f}**"
                  f" (with Defo {r['speedup_equal_area_defo']:.2f}).", "",
                  f"![equal area]({plot})", ""]
    path.write_text("\n".join(lines) + "\n")
