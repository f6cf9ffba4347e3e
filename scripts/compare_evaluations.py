"""Markdown tables comparing workloads side by side, from the JSON of 'ditto evaluate'.

    python scripts/compare_evaluations.py NAME=EVAL.json [NAME=EVAL.json ...]

Prints the totals (class mix of the DIFF steps, Defo's choices, speedups at equal PEs and at
equal area, energy) and, per workload, the same per layer type. docs/results-dit.md is made
with it. Class fractions are over the encoded values of the DIFF steps, weighted by each
layer's element count, as in 'ditto analyze'.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

SCHEMES = (("ditto", "DittoCore"), ("ditto_defo", "Ditto + Defo"), ("ditto_plus", "Ditto+"))
#: The suffix of each scheme's keys in the JSON of 'ditto evaluate' (speedup, energy_ratio...).
SUFFIX = {"ditto": "", "ditto_defo": "_defo", "ditto_plus": "_ditto_plus"}


def load(argument: str) -> tuple[str, dict]:
    name, sep, path = argument.partition("=")
    if not sep or not Path(path).is_file():
        sys.exit(f"compare_evaluations: {argument!r}: expected NAME=EVAL.json of an existing "
                 "file written by 'ditto evaluate --json'")
    result = json.loads(Path(path).read_text())
    if "layers" not in result or "speedup" not in result:
        sys.exit(f"compare_evaluations: {path}: not the JSON of 'ditto evaluate'")
    return name, result


def mix(layers: list[dict]) -> tuple[float, float, float]:
    """(zero, LOW, FULL) fractions weighted by element count."""
    total = sum(layer["elements"] for layer in layers) or 1
    return tuple(sum(layer[key] * layer["elements"] for layer in layers) / total
                 for key in ("zero", "low", "full"))


def pct(value: float) -> str:
    """A percentage with two significant decimals below 1 %."""
    return f"{100 * value:.2f} %" if value < 0.01 else f"{100 * value:.1f} %"


def cycles_ratio(layers: list[dict], scheme: str) -> float:
    return (sum(layer[f"cycles_{scheme}"] for layer in layers)
            / sum(layer["cycles_dense"] for layer in layers))


def totals_table(results: list[tuple[str, dict]]) -> list[str]:
    def model(r: dict) -> str:
        if not r.get("trace"):
            return r["workload"]["source"]
        return r["trace"]["model"].get("package") or r["trace"]["model"]["file"]

    rows = [("model", model),
            ("layers; steps; batch", lambda r: f"{r['layers_total']}; "
             f"{r['trace']['steps']}; {r['trace']['batch']}" if r.get("trace") else "")]
    rows += [("zero / LOW / FULL differences",
              lambda r: " / ".join(pct(v) for v in mix(r["layers"]))),
             ("layers Defo leaves in ACT", lambda r: f"{r['layers_act_by_defo']} of "
              f"{r['layers_total']}")]
    for scheme, label in SCHEMES:
        rows.append((f"{label}: speedup over Dense (cycles)",
                     lambda r, s=SUFFIX[scheme]: f"{r['speedup' + s]:.2f}"))
    for scheme, label in SCHEMES:
        rows.append((f"{label}: speedup at equal area",
                     lambda r, s=SUFFIX[scheme]: f"{r['speedup_equal_area' + s]:.2f}"
                     if r.get("speedup_equal_area" + s) is not None else "n/a"))
    for scheme, label in SCHEMES:
        rows.append((f"{label}: energy against Dense (with residency / without)",
                     lambda r, s=SUFFIX[scheme]: f"{r['energy_ratio' + s]:.3f} / "
                     f"{r['energy_ratio' + s + '_no_residency']:.3f}"))
    rows.append(("RTL sample", lambda r: (
        f"{len(r['rtl_sample']['cases'])} tiles, equal to the model"
        if r.get("rtl_sample", {}).get("passed") else "not run")))
    lines = ["| | " + " | ".join(name for name, _ in results) + " |",
             "|---|" + "---|" * len(results)]
    for label, value in rows:
        lines.append(f"| {label} | " + " | ".join(value(r) for _, r in results) + " |")
    return lines


def per_type_table(result: dict) -> list[str]:
    by_group = defaultdict(list)
    for layer in result["layers"]:
        by_group[layer["group"]].append(layer)
    act = defaultdict(int)
    for choice in result["defo"]:
        act[choice["group"]] += choice["mode"] == "ACT"
    lines = ["| type | layers | zero / LOW / FULL | cycles against Dense: DittoCore / Ditto + "
             "Defo / Ditto+ | ACT by Defo |", "|---|---|---|---|---|"]
    for group in sorted(by_group, key=lambda g: cycles_ratio(by_group[g], "ditto")):
        layers = by_group[group]
        ratios = " / ".join(f"{cycles_ratio(layers, scheme):.3f}" for scheme, _ in SCHEMES)
        lines.append(f"| {group} | {len(layers)} | "
                     f"{' / '.join(pct(v) for v in mix(layers))} | {ratios} | {act[group]} |")
    return lines


def main(argv: list[str]) -> int:
    if not argv:
        sys.exit(__doc__)
    results = [load(argument) for argument in argv]
    print("\n".join(totals_table(results)))
    for name, result in results:
        print(f"\n{name}, per layer type (fewest cycles against Dense first):\n")
        print("\n".join(per_type_table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
