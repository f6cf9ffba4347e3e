"""Markdown report with PNG plots for an analysis report dictionary (``analysis.analyze``)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ditto.files import write_atomically

__all__ = ["kind_summary", "write_markdown_report"]

PAPER = {"zero": 0.4448, "low4": 0.5152, "full4": 0.0399, "layers_act": 0.14,
         # Ditto+ spatial differences, the paper's average (about 26 / 48 / 26 %).
         "spatial_zero": 0.26, "spatial_low4": 0.48, "spatial_full4": 0.26}

#: Index keys of a trace description that are not conditions of the model.
TRACE_KEYS = ("model", "sampler", "steps", "batch", "seed", "act_bits", "layer_filter", "file")


def trace_title(trace: dict) -> str:
    """The traced model's name: its package, or its spec and file."""
    model = trace["model"]
    return model.get("package") or f"{model.get('spec', 'onnx')} ({model['file']})"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def kind_summary(report: dict) -> list[dict]:
    """Class fractions and cycles aggregated per layer kind (conv 3x3 and 1x1 apart)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for layer in report["layers"]:
        groups[layer.get("group", layer["kind"])].append(layer)
    rows = []
    for kind, layers in sorted(groups.items()):
        elements = sum(layer["elements"] for layer in layers)
        weighted = {key: sum(layer[key] * layer["elements"] for layer in layers)
                    / max(elements, 1) for key in ("zero", "low", "full", "low4")}
        rows.append({"kind": kind, "layers": len(layers), "elements": elements, **weighted,
                     "cycles_ditto": sum(layer["cycles_ditto"] for layer in layers),
                     "cycles_dense": sum(layer["cycles_dense"] for layer in layers),
                     "act_by_defo": sum(layer["defo_mode"] == "ACT" for layer in layers)})
    return rows


def _plot_layers(report: dict, path: Path) -> None:
    plt = _pyplot()
    layers = report["layers"]
    x = np.arange(len(layers))
    zero = np.array([layer["zero"] for layer in layers])
    low = np.array([layer["low"] for layer in layers])
    full = np.array([layer["full"] for layer in layers])
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.bar(x, zero, width=1.0, label="ZERO", color="#4c72b0")
    ax.bar(x, low, width=1.0, bottom=zero, label="LOW (one lane)", color="#55a868")
    ax.bar(x, full, width=1.0, bottom=zero + low, label="FULL (two lanes)", color="#c44e52")
    ax.set(xlabel="layer (graph order)", ylabel="fraction of encoded values",
           title="Difference classes per layer (DIFF steps)", xlim=(-0.5, len(layers) - 0.5),
           ylim=(0, 1))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_steps(report: dict, path: Path) -> None:
    plt = _pyplot()
    steps = report["steps"]
    t = [s["step"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("zero", "ZERO"), ("low", "LOW"), ("full", "FULL")):
        ax.plot(t, [s[key] for s in steps], marker="o", label=label)
    ax.set(xlabel="step (difference to the previous step)", ylabel="fraction",
           title="Difference classes per step", ylim=(0, 1))
    if steps and steps[0].get("sigma") is not None:
        top = ax.secondary_xaxis("top")
        top.set_xticks(t[:: max(1, len(t) // 6)])
        top.set_xticklabels([f"{s['sigma']:.3g}" for s in steps][:: max(1, len(t) // 6)])
        top.set_xlabel("sigma")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_cycles(report: dict, path: Path) -> None:
    plt = _pyplot()
    layers = report["layers"]
    dense = np.array([layer["cycles_dense"] for layer in layers], dtype=float)
    ditto = np.array([layer["cycles_ditto"] for layer in layers], dtype=float)
    act = np.array([layer["defo_mode"] == "ACT" for layer in layers])
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter(dense[~act], ditto[~act], s=12, label="Defo keeps DIFF")
    ax.scatter(dense[act], ditto[act], s=12, marker="x", color="#c44e52",
               label="Defo switches to ACT")
    lo, hi = max(1.0, min(dense.min(), ditto.min())), max(dense.max(), ditto.max())
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, label="equal cycles")
    ax.set(xscale="log", yscale="log", xlabel="DenseCore cycles (trajectory)",
           ylabel="DittoCore cycles (trajectory, no Defo)",
           title="Cycles per layer, cycle model")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def write_markdown_report(report: dict, path: str | os.PathLike) -> None:
    """Write ``path`` (Markdown) and three PNG plots beside it, named after it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    plots = {"layers": f"{stem}-classes-per-layer.png", "steps": f"{stem}-classes-per-step.png",
             "cycles": f"{stem}-cycles-per-layer.png"}
    _plot_layers(report, path.parent / plots["layers"])
    if report["steps"]:
        _plot_steps(report, path.parent / plots["steps"])
    _plot_cycles(report, path.parent / plots["cycles"])

    totals, config = report["totals"], report["config"]
    trace = report.get("trace")
    lines = [f"# Ditto analysis: {trace_title(trace) if trace else 'synthetic'} "
             f"trajectory, config `{config['slug']}`", ""]
    if trace:
        conditions = "".join(f", {key} {value}" for key, value in trace.items()
                             if key not in TRACE_KEYS)
        lines += [f"Trace: sampler `{trace['sampler']}`, {trace['steps']} steps, batch "
                  f"{trace['batch']}, seed {trace['seed']}{conditions}.", ""]
        if trace["model"].get("caveat"):
            lines += [f"> Caveat of the model: {trace['model']['caveat']}.", ""]
    layers_act = totals["layers_act_by_defo"] / max(totals["layers"], 1)
    lines += [
        "## Totals", "",
        "| | this run | paper (HPCA 2025) |", "|---|---|---|",
        f"| zero differences | {_pct(totals['zero'])} | {_pct(PAPER['zero'])} |",
        f"| nonzero within 4 bits (−8..7) | {_pct(totals['low4'])} | {_pct(PAPER['low4'])} |",
        f"| larger than 4 bits | {_pct(1 - totals['zero'] - totals['low4'])} | "
        f"{_pct(PAPER['full4'])} |",
        f"| LOW: one {config['lane_bits']}-bit lane | {_pct(totals['low'])} | |",
        f"| Ditto+ spatial differences: zero / within 4 bits / larger | "
        f"{_pct(totals['spatial']['zero'])} / {_pct(totals['spatial']['low4'])} / "
        f"{_pct(1 - totals['spatial']['zero'] - totals['spatial']['low4'])} | about "
        f"{_pct(PAPER['spatial_zero'])} / {_pct(PAPER['spatial_low4'])} / "
        f"{_pct(PAPER['spatial_full4'])} |",
        f"| FULL: two lanes | {_pct(totals['full'])} | |",
        f"| layers Defo leaves in ACT | {totals['layers_act_by_defo']} of {totals['layers']} "
        f"({_pct(layers_act)}) | about {_pct(PAPER['layers_act'])} |",
        f"| ideal lane-bound speedup over two lanes per element | "
        f"{totals['ideal_speedup']:.2f}x | |",
        f"| DittoCore vs DenseCore cycles (cycle model, same PE count) | "
        f"{totals['speedup_vs_dense']:.2f}x, {totals['speedup_vs_dense_defo']:.2f}x with Defo "
        "| up to 1.5x at equal area |",
        "",
        "Equal-area comparisons come with the synthesis issue; here both cores have "
        f"{config['pes']} PEs, Ditto scanning {config['scan_width']} elements a cycle with "
        f"{config['lanes']} lanes per PE, Dense {config['dense_macs']} int8 MACs per PE.", "",
        "## By layer type", "",
        "| type | layers | elements | zero | LOW | FULL | −8..7 | Ditto/Dense cycles | "
        "ACT by Defo |", "|---|---|---|---|---|---|---|---|---|"]
    for row in kind_summary(report):
        ratio = row["cycles_ditto"] / max(row["cycles_dense"], 1)
        lines.append(f"| {row['kind']} | {row['layers']} | {row['elements']} | "
                     f"{_pct(row['zero'])} | {_pct(row['low'])} | {_pct(row['full'])} | "
                     f"{_pct(row['low4'])} | {ratio:.3f} | {row['act_by_defo']} |")
    lines += ["", f"![classes per layer]({plots['layers']})", ""]
    if report["steps"]:
        lines += ["## By step", "", "| step | sigma | zero | LOW | FULL |", "|---|---|---|---|---|"]
        for s in report["steps"]:
            sigma = "" if s["sigma"] is None else f"{s['sigma']:.4g}"
            lines.append(f"| {s['step']} | {sigma} | {_pct(s['zero'])} | {_pct(s['low'])} | "
                         f"{_pct(s['full'])} |")
        lines += ["", f"![classes per step]({plots['steps']})", ""]
    lines += ["## Cycles per layer", "", f"![cycles per layer]({plots['cycles']})", "",
              "| layer | kind | elements | zero | LOW | FULL | Ditto cycles | Dense cycles | "
              "Defo |", "|---|---|---|---|---|---|---|---|---|"]
    for layer in report["layers"]:
        lines.append(f"| {layer['name']} | {layer.get('group', layer['kind'])} | "
                     f"{layer['elements']} | {_pct(layer['zero'])} | {_pct(layer['low'])} | "
                     f"{_pct(layer['full'])} | {layer['cycles_ditto']} | "
                     f"{layer['cycles_dense']} | {layer['defo_mode']} |")
    write_atomically(path, "\n".join(lines) + "\n")
