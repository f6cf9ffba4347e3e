"""Whole-trajectory analysis: class statistics, lane accounting and cycles per layer.

A layer step becomes hardware products (``layers.step_products``); each product is cut into
tiles the core can hold (``max_rows`` rows, ``weight_depth`` reduction, ``pes`` output
channels) whose cycles come from ``cycles``. Weights are reloaded for every tile (see
docs/model.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import Mode

from .cycles import dense_tile_cycles, ditto_tiles_cycles
from .defo import DefoTable
from .encoding import ClassCounts, class_counts, lane_costs
from .layers import HwProduct, LayerSpec, exact_matmul, layer_operands, step_products

__all__ = ["LayerTrace", "ProductCost", "analyze", "product_cost", "format_summary"]


@dataclass(frozen=True)
class LayerTrace:
    """One layer over a trajectory: ``steps[t] = (x_t, w_t)`` int8, in native layout."""

    spec: LayerSpec
    steps: Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ProductCost:
    """Counts and cycles of one hardware product (all tiles, all output-channel blocks)."""

    counts: ClassCounts = field(default_factory=ClassCounts)
    cycles_ditto: int = 0
    cycles_dense: int = 0
    ideal_cycles: int = 0
    #: Operation and traffic counts of the product (see :data:`WORK_FIELDS`).
    work: dict = field(default_factory=dict)

    def __add__(self, other: ProductCost) -> ProductCost:
        return ProductCost(self.counts + other.counts, self.cycles_ditto + other.cycles_ditto,
                           self.cycles_dense + other.cycles_dense,
                           self.ideal_cycles + other.ideal_cycles,
                           add_work(self.work, other.work))


#: What ``product_cost`` counts besides cycles, per product (all integers):
#: ``scanned`` elements the front end reads (every output-channel block rescans its rows);
#: ``lane_mults`` lane multiplies (``lane_bits`` x int8) of DittoCore, all ``pes`` PEs;
#: ``int8_mults`` int8 x int8 multiplies of DenseCore, all PEs; ``output_beats`` rows of
#: ``pes`` results written to the accumulation buffer; ``value_bytes`` the encoded operand
#: (one byte per value), ``weight_bytes`` the weight operand, ``output_words`` the product's
#: results (``acc_bits`` words); for DIFF products also ``prev_value_bytes`` (the previous
#: operand, which a difference needs) and ``prev_output_words`` (the stored outputs the
#: differences are added to); ``scanned_diff``: the share of ``scanned`` encoded as a
#: difference of two inputs (DIFF and SPATIAL); ``output_beats_diff``: the DIFF share of
#: ``output_beats`` (read before they are written).
WORK_FIELDS = ("scanned", "scanned_diff", "lane_mults", "int8_mults", "output_beats",
               "output_beats_diff", "value_bytes", "prev_value_bytes", "weight_bytes",
               "output_words", "prev_output_words")


def add_work(a: dict, b: dict) -> dict:
    return {key: a.get(key, 0) + b.get(key, 0) for key in {*a, *b}}


def _row_tiles(rows: int, max_rows: int) -> list[tuple[int, int, int]]:
    """(start, tile rows, how many tiles) covering ``rows`` in runs of equal tiles."""
    full, rest = divmod(rows, max_rows)
    runs = [(0, max_rows, full)] if full else []
    if rest:
        runs.append((full * max_rows, rest, 1))
    return runs


def product_cost(product: HwProduct, config: DittoConfig) -> ProductCost:
    """Class counts over the encoded values, and cycles of the Ditto and Dense cores."""
    values = product.values
    groups, rows, k = values.shape
    n_blocks = math.ceil(product.weights.shape[-1] / config.pes)
    classify = product.classifies(config)
    counts = class_counts(values, config, classify=classify)
    costs = lane_costs(values, config, classify=classify)
    ditto = dense = 0
    for k0 in range(0, k, config.weight_depth):
        chunk = costs[:, :, k0:k0 + config.weight_depth]
        kc = chunk.shape[-1]
        for start, tile_rows, count in _row_tiles(rows, config.max_rows):
            tiles = chunk[:, start:start + tile_rows * count].reshape(groups * count,
                                                                      tile_rows, kc)
            ditto += int(ditto_tiles_cycles(tiles, config).sum())
            dense += groups * count * dense_tile_cycles(tile_rows, kc, config)
    ideal = math.ceil(counts.lane_slots / config.lanes)
    n = product.weights.shape[-1]
    diff = int(product.mode is Mode.DIFF)
    differences = int(product.mode is not Mode.ACT)  # DIFF and SPATIAL subtract two inputs
    scanned, beats = groups * rows * k * n_blocks, groups * rows * n_blocks
    work = {"scanned": scanned, "scanned_diff": differences * scanned,
            "lane_mults": counts.lane_slots * n_blocks * config.pes,
            "int8_mults": scanned * config.pes,
            "output_beats": beats, "output_beats_diff": diff * beats,
            "value_bytes": groups * rows * k, "prev_value_bytes": diff * groups * rows * k,
            "weight_bytes": groups * k * n,
            "output_words": groups * rows * n, "prev_output_words": diff * groups * rows * n}
    return ProductCost(counts, ditto * n_blocks, dense * n_blocks, ideal * n_blocks, work)


def _cost_of(products: Iterable[HwProduct], config: DittoConfig) -> ProductCost:
    total = ProductCost()
    for product in products:
        total = total + product_cost(product, config)
    return total


def analyze(layers: Iterable[LayerTrace], config: DittoConfig, *,
            sigmas: Sequence[float] | None = None,
            progress: Callable[[int, str], None] | None = None) -> dict:
    """Analyse a trajectory; returns the report dictionary (``config``, ``layers``,
    ``steps``, ``totals``) described in docs/model.md.

    Every step of every layer is costed in ACT and SPATIAL mode and, from step 1 on, in DIFF
    mode (``per_step``, with the step-independent work of each mode in ``work_modes``), so
    that any schedule of modes can be priced afterwards (``evaluate``). The report's own
    Defo columns use the compute-only rule on ACT and DIFF (``defo_mode``).
    """
    defo = DefoTable(entries=1 << 20)
    layer_rows: list[dict] = []
    per_step: dict[int, ClassCounts] = {}
    for index, layer in enumerate(layers):
        if progress:
            progress(index, layer.spec.name)
        steps = list(layer.steps)
        if len(steps) < 2:
            raise ValueError(f"layer {layer.spec.name}: a trajectory needs at least 2 steps, "
                             f"got {len(steps)}")
        costs: dict[Mode, list[ProductCost | None]] = {mode: [] for mode in Mode}
        diff_total, act_paper_slots = ProductCost(), 0
        spatial = ClassCounts()
        largest_output = 0
        prev = None
        for t, (x, w) in enumerate(steps):
            a, b = layer_operands(layer.spec, np.asarray(x), np.asarray(w))
            act = _cost_of(step_products(a, b, None, Mode.ACT, False), config)
            costs[Mode.ACT].append(act)
            sp = _cost_of(step_products(a, b, None, Mode.SPATIAL, False,
                                        max_rows=config.max_rows), config)
            costs[Mode.SPATIAL].append(sp)
            spatial = spatial + sp.counts
            if t:
                diff = _cost_of(step_products(a, b, prev, Mode.DIFF,
                                              layer.spec.weights_change), config)
                diff_total = diff_total + diff
                act_paper_slots += 2 * act.counts.elements
                per_step[t] = per_step.get(t, ClassCounts()) + diff.counts
            else:
                diff, (a0, b0), (x0, w0) = None, (a, b), (np.asarray(x), np.asarray(w))
            costs[Mode.DIFF].append(diff)
            largest_output = max(largest_output,
                                 int(np.abs(exact_matmul(a, b)).max(initial=0)))
            prev = (a, b)
        act_cycles = [c.cycles_ditto for c in costs[Mode.ACT]]
        diff_cycles = [None] + [c.cycles_ditto for c in costs[Mode.DIFF][1:]]
        act_costs, diff_costs = costs[Mode.ACT], costs[Mode.DIFF]
        defo.record(index, 0, act_cycles[0])
        defo.record(index, 1, diff_cycles[1])
        defo_mode = defo.mode_for(index, 2)
        later = diff_cycles[2:] if defo_mode is Mode.DIFF else act_cycles[2:]
        counts = diff_total.counts
        layer_rows.append({
            "name": layer.spec.name,
            "kind": str(layer.spec.kind),
            "group": layer.spec.group,
            "elements": counts.elements,
            **counts.fractions(),
            # Ditto+: the class mix of the activation side's spatial differences (every step).
            "spatial": spatial.fractions(),
            "lane_slots": counts.lane_slots,
            "ideal_speedup": act_paper_slots / max(counts.lane_slots, 1),
            "cycles_ditto": act_cycles[0] + sum(diff_cycles[1:]),
            "cycles_dense": sum(c.cycles_dense for c in act_costs),
            "cycles_ditto_defo": act_cycles[0] + diff_cycles[1] + sum(later),
            "cycles_act": sum(act_cycles),
            "cycles_spatial": sum(c.cycles_ditto for c in costs[Mode.SPATIAL]),
            "defo_mode": defo_mode.name,
            # Per step and mode: cycles and lane multiplies (None: DIFF at step 0); the rest
            # of a mode's work depends on the shapes only, the same every step.
            "per_step": {mode.name: {"cycles": [c and c.cycles_ditto for c in costs[mode]],
                                     "lane_mults": [c and c.work["lane_mults"]
                                                    for c in costs[mode]]}
                         for mode in Mode},
            "cycles_dense_step": act_costs[0].cycles_dense,
            "work_modes": {mode.name: {key: value for key, value
                                       in next(c for c in costs[mode] if c).work.items()
                                       if key != "lane_mults"} for mode in Mode},
            # What one step moves off chip (sim/memory.py): the tensors as traced.
            "memory": {"input_bytes": int(x0.size) + (int(w0.size) if layer.spec.weights_change
                                                      else 0),
                       "weight_bytes": 0 if layer.spec.weights_change else int(w0.size),
                       "output_elements": a0.shape[0] * a0.shape[1] * b0.shape[2],
                       "output_bits": largest_output.bit_length() + 1},
            "lane_slots_issued": sum(c.work["lane_mults"] for c in act_costs[:1] + diff_costs[1:])
            // config.pes,
            "_counts": counts,
            "_spatial": spatial,
            "_act_paper_slots": act_paper_slots,
        })
    if not layer_rows:
        raise ValueError("the trajectory has no layers")
    totals = _totals(layer_rows)
    totals["spatial"] = sum((row["_spatial"] for row in layer_rows), ClassCounts()).fractions()
    for row in layer_rows:
        del row["_counts"], row["_act_paper_slots"], row["_spatial"]
    steps = []
    for t in sorted(per_step):
        sigma = float(sigmas[t]) if sigmas is not None else None
        fractions = per_step[t].fractions()
        steps.append({"step": t, "sigma": sigma, "zero": fractions["zero"],
                      "low": fractions["low"], "full": fractions["full"]})
    return {"config": {**config.as_dict(), "slug": config.slug}, "layers": layer_rows,
            "steps": steps, "totals": totals}


def _totals(rows: list[dict]) -> dict:
    counts = sum((row["_counts"] for row in rows), ClassCounts())
    paper_slots = sum(row["_act_paper_slots"] for row in rows)
    totals = {"layers": len(rows), "elements": counts.elements, **counts.fractions(),
              "lane_slots": counts.lane_slots,
              "ideal_speedup": paper_slots / max(counts.lane_slots, 1)}
    for key in ("cycles_ditto", "cycles_dense", "cycles_ditto_defo", "cycles_act",
                "cycles_spatial"):
        totals[key] = sum(row[key] for row in rows)
    totals["layers_act_by_defo"] = sum(row["defo_mode"] == "ACT" for row in rows)
    totals["speedup_vs_dense"] = totals["cycles_dense"] / max(totals["cycles_ditto"], 1)
    totals["speedup_vs_dense_defo"] = (totals["cycles_dense"]
                                       / max(totals["cycles_ditto_defo"], 1))
    return totals


def format_summary(report: dict, *, max_layers: int = 40) -> str:
    """A plain-text table of the report, for the terminal."""
    header = (f"{'layer':<28} {'kind':<7} {'elements':>11} {'zero%':>6} {'low%':>6} "
              f"{'full%':>6} {'low4%':>6} {'ideal':>6} {'ditto cyc':>11} {'dense cyc':>11} "
              f"{'defo':>4}")
    lines = [f"config {report['config']['slug']}", header, "-" * len(header)]

    def row(name, kind, r):
        return (f"{name[:28]:<28} {kind:<7} {r['elements']:>11} {100 * r['zero']:>6.1f} "
                f"{100 * r['low']:>6.1f} {100 * r['full']:>6.1f} {100 * r['low4']:>6.1f} "
                f"{r['ideal_speedup']:>6.2f} {r['cycles_ditto']:>11} {r['cycles_dense']:>11} ")

    layers = report["layers"]
    for r in layers[:max_layers]:
        lines.append(row(r["name"], r["kind"], r) + f"{r['defo_mode']:>4}")
    if len(layers) > max_layers:
        lines.append(f"... {len(layers) - max_layers} more layers (see --json)")
    t = report["totals"]
    lines.append("-" * len(header))
    lines.append(row(f"TOTAL ({t['layers']} layers)", "", t)
                 + f"{t['layers_act_by_defo']:>3}A")
    lines.append(f"speedup over dense: {t['speedup_vs_dense']:.2f}x without Defo, "
                 f"{t['speedup_vs_dense_defo']:.2f}x with Defo "
                 f"(cycles with Defo {t['cycles_ditto_defo']}); "
                 f"ideal lane-bound speedup {t['ideal_speedup']:.2f}x")
    return "\n".join(lines)
