"""The main job's numbers: a whole trajectory through the cycle models of DittoCore and
DenseCore, under a memory system (``memory``), with Defo and Ditto+, priced in cycles,
memory stalls, traffic and energy.

Schemes
-------
``dense``: DenseCore, every step from scratch. ``ditto``: DittoCore, ACT at step 0, DIFF
after. ``ditto_defo``: Defo (``defo``) probes ACT and DIFF and keeps the cheaper per layer.
``ditto_plus``: Ditto+, Defo probing SPATIAL (instead of ACT) and DIFF. Also priced, not
tabled: ``ditto_plus_three``, Defo probing ACT, DIFF and SPATIAL (``defo.PROBES``). Defo's
rule compares the probes' cycles *with* memory stalls (``rule="memory"``, what the hardware
measures) or compute cycles only (``rule="compute"``); both rules' choices are reported per
layer.

Memory stalls
-------------
A layer step that needs more off-chip bytes than the bandwidth delivers in its compute
cycles waits for them: it takes ``max(compute cycles, DRAM bytes / bytes per cycle)``, the
loads being overlapped with compute (double buffering). DittoCore counts these cycles in
``counters.cycles``, which runs from a command to its last output and so includes every
cycle the core waited for an input beat; that count is what the Defo unit records.

Energy
------
Per operation (pJ) from M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014, 45 nm, 0.9 V: 8-bit add 0.03, 32-bit add 0.1, 8-bit multiply 0.2; a 64-bit
SRAM read 10 (8 KB) / 20 (32 KB) / 100 (1 MB); DRAM 1.3-2.6 nJ per 64 bits. Derived
assumptions: a ``a x b``-bit multiplier costs ``0.2 a b / 64`` (an array multiplier's energy
grows with its partial products); the cores' own buffers (activation line, weight and
accumulation buffers) cost the 32 KB figure per byte (2.5 pJ); the shared on-chip buffer
costs ``memory.buffer_pj_per_byte(onchip_bytes)``; DRAM the middle of the range per byte
(1.95 nJ / 8); a register write an 8-bit add per byte (Horowitz lists no register figure: a
stand-in). An estimate of the datapath, buffers and DRAM, not of clocking, control or
leakage.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

from ditto.config import DittoConfig
from ditto.enums import Mode

from .defo import PROBES, cheapest_mode
from .memory import LayerMemory, Residency, allocate, buffer_pj_per_byte

__all__ = ["ENERGY_PJ", "ENERGY_SOURCE", "SCHEMES", "core_energy", "evaluate",
           "format_summary", "multiply_pj", "price", "write_markdown"]

ENERGY_SOURCE = ("M. Horowitz, \"Computing's energy problem (and what we can do about it)\", "
                 "ISSCC 2014, 45 nm")
ENERGY_PJ = {
    "add8": 0.03,
    "add32": 0.1,
    "mult8x8": 0.2,
    "sram_byte": 20.0 / 8,      # 64-bit read of a 32 KB SRAM: the cores' own buffers
    "dram_byte": 1950.0 / 8,    # middle of 1.3-2.6 nJ per 64-bit access
    "register_byte": 0.03,      # stand-in: one 8-bit add per register byte written
}
#: The schemes priced, with their names in reports.
SCHEMES = {"ditto": "DittoCore", "ditto_defo": "Ditto + Defo", "ditto_plus": "Ditto+",
           "dense": "DenseCore"}
#: Every scheme priced: the table's, and the Defo variants compared in the text.
PRICED = {**SCHEMES, "ditto_plus_three": "Ditto+ probing ACT, DIFF and SPATIAL"}
#: The Defo schemes and the modes they probe.
DEFO_SCHEMES = {"ditto_defo": PROBES["defo"], "ditto_plus": PROBES["ditto_plus"],
                "ditto_plus_three": PROBES["three"]}
CORE_PARTS = ("encode", "multiply", "add", "registers", "sram")
DEFO_RULES = ("memory", "compute")


def multiply_pj(a_bits: int, b_bits: int) -> float:
    """Energy of an ``a_bits x b_bits`` multiply, scaled from the 8 x 8 figure."""
    return ENERGY_PJ["mult8x8"] * a_bits * b_bits / 64


def core_energy(work: dict, core: str, config: DittoConfig) -> dict:
    """Energy in pJ, by part, of one core's work (``analysis`` work counts) inside the core:
    encoder, multipliers, adders, pipeline registers and the core's own buffers."""
    e = ENERGY_PJ
    word = config.acc_bits // 8
    scanned, scanned_diff = work.get("scanned", 0), work.get("scanned_diff", 0)
    beats, beats_diff = work.get("output_beats", 0), work.get("output_beats_diff", 0)
    if core == "ditto":
        mults = work.get("lane_mults", 0)
        return {
            # Encoder: a subtraction (DIFF, SPATIAL) and a range check per element scanned.
            "encode": (scanned + scanned_diff) * e["add8"],
            "multiply": mults * multiply_pj(config.lane_bits, config.weight_bits),
            "add": mults * e["add32"],
            # Pipeline registers per lane multiply: operand, weight, product (2 bytes).
            "registers": e["register_byte"] * mults * 4,
            # Activation line buffer: x_t, and the other input of a difference; one weight
            # byte per lane multiply; accumulation buffer: write each output, read it first
            # in DIFF.
            "sram": e["sram_byte"] * (scanned + scanned_diff + mults
                                      + word * config.pes * (beats + beats_diff)),
        }
    mults = work.get("int8_mults", 0)
    return {
        "encode": 0.0,
        "multiply": mults * multiply_pj(config.act_bits, config.weight_bits),
        "add": mults * e["add32"],
        "registers": e["register_byte"] * mults * 4,
        "sram": e["sram_byte"] * (scanned + mults + word * config.pes * beats),
    }


@dataclass(frozen=True)
class _Layer:
    """One analysed layer, as the pricing reads it."""

    row: dict
    memory: LayerMemory

    @property
    def steps(self) -> int:
        return len(self.row["per_step"]["ACT"]["cycles"])

    def cycles(self, mode: Mode, t: int, core: str) -> int:
        if core == "dense":
            return self.row["cycles_dense_step"]
        cycles = self.row["per_step"][mode.name]["cycles"][t]
        if cycles is None:
            raise ValueError(f"layer {self.row['name']}: no {mode.name} cycles at step {t}")
        return cycles

    def work(self, mode: Mode, t: int) -> dict:
        return {**self.row["work_modes"][mode.name],
                "lane_mults": self.row["per_step"][mode.name]["lane_mults"][t]}


@dataclass
class _Tally:
    """Running sums of one scheme (or one layer of it)."""

    cycles: int = 0
    memory_cycles: float = 0.0   # sum over steps of max(compute, DRAM bytes / bandwidth)
    transfer_cycles: float = 0.0  # sum over steps of DRAM bytes / bandwidth
    dram_bytes: int = 0
    buffer_bytes: int = 0
    core_pj: dict | None = None

    def add(self, cycles: int, dram: int, buffer: int, bytes_per_cycle: float,
            core_pj: dict) -> None:
        """Count one layer step."""
        transfer = dram / bytes_per_cycle
        self.absorb(_Tally(cycles, max(cycles, transfer), transfer, dram, buffer, core_pj))

    def absorb(self, other: _Tally) -> None:
        """Add ``other``'s sums to these."""
        self.cycles += other.cycles
        self.memory_cycles += other.memory_cycles
        self.transfer_cycles += other.transfer_cycles
        self.dram_bytes += other.dram_bytes
        self.buffer_bytes += other.buffer_bytes
        if other.core_pj is not None:
            self.core_pj = other.core_pj if self.core_pj is None else {
                part: self.core_pj[part] + other.core_pj[part] for part in CORE_PARTS}

    def energy(self, buffer_pj: float) -> dict:
        parts = dict(self.core_pj or dict.fromkeys(CORE_PARTS, 0.0))
        parts["on_chip"] = sum(parts.values())
        parts["buffer"] = self.buffer_bytes * buffer_pj
        parts["dram"] = self.dram_bytes * ENERGY_PJ["dram_byte"]
        parts["total"] = parts["on_chip"] + parts["buffer"] + parts["dram"]
        return parts


def _step_bytes(layer: _Layer, index: int, t: int, mode: Mode,
                residency: Residency) -> tuple[int, int]:
    """DRAM and on-chip buffer bytes of one layer step (the policy of ``memory``)."""
    m = layer.memory
    dram, buffer = m.input_bytes + m.output_bytes, 0
    if index in residency.weights:
        buffer += m.weight_bytes          # step 0 writes them, later steps read them
        dram += m.weight_bytes if t == 0 else 0
    else:
        dram += m.weight_bytes
    if mode is Mode.DIFF:
        if index in residency.state:
            buffer += 2 * m.state_bytes   # written at the step before, read now
        else:
            dram += m.state_bytes
    return dram, buffer


def _defo_choice(layer: _Layer, index: int, probes: tuple[Mode, ...], residency: Residency,
                 bytes_per_cycle: float) -> dict:
    """Both rules' choices for one layer from its probe steps (step ``t`` runs
    ``probes[t]``), and the cycles each rule compared."""
    compute, with_memory = {}, {}
    for t, mode in enumerate(probes[:layer.steps]):
        cycles = layer.cycles(mode, t, "ditto")
        dram, _ = _step_bytes(layer, index, t, mode, residency)
        compute[mode] = cycles
        with_memory[mode] = max(cycles, math.ceil(dram / bytes_per_cycle))
    return {"compute": cheapest_mode(compute), "memory": cheapest_mode(with_memory),
            "compute_cycles": compute, "memory_cycles": with_memory}


def _reason(choice: Mode, cycles: dict[Mode, int], rule: str) -> str:
    what = "with memory stalls" if rule == "memory" else "compute only"
    others = ", ".join(f"{mode.name} {value:,}" for mode, value in cycles.items()
                       if mode is not choice)
    tie = any(value == cycles[choice] for mode, value in cycles.items() if mode is not choice)
    return (f"{choice.name} {cycles[choice]:,} cycles against {others} ({what}"
            + ("; a tie goes to the mode needing less memory" if tie else "") + ")")


def price(report: dict, config: DittoConfig, *, defo_rule: str = "memory") -> dict:
    """Every scheme (``PRICED``) of an ``analysis.analyze`` report under ``config``'s
    memory system: per scheme and per layer cycles, cycles with memory stalls, DRAM and
    buffer bytes and energy, and the Defo decisions (``defo``)."""
    if defo_rule not in DEFO_RULES:
        raise ValueError(f"defo_rule={defo_rule!r}: choose one of {', '.join(DEFO_RULES)}")
    layers = [_Layer(row, LayerMemory.from_dict(row["memory"])) for row in report["layers"]]
    memories = [layer.memory for layer in layers]
    capacity, bytes_per_cycle = config.onchip_bytes, config.dram_bytes_per_cycle
    everyone = frozenset(range(len(layers)))
    residencies: dict[frozenset, Residency] = {}

    def residency(needs_state: frozenset) -> Residency:
        if needs_state not in residencies:
            residencies[needs_state] = allocate(capacity, memories, needs_state)
        return residencies[needs_state]

    # Each scheme's mode per layer and step.
    schedules: dict[str, list[list[Mode]]] = {
        "dense": [[Mode.ACT] * layer.steps for layer in layers],
        "ditto": [[Mode.ACT] + [Mode.DIFF] * (layer.steps - 1) for layer in layers]}
    decisions: dict[str, list[dict]] = {}
    for scheme, probes in DEFO_SCHEMES.items():
        # At the probe steps every layer runs DIFF once (step 1): all keep their state.
        probing = residency(everyone)
        decisions[scheme] = [_defo_choice(layer, index, probes, probing, bytes_per_cycle)
                             for index, layer in enumerate(layers)]
        schedules[scheme] = [list((probes + (choice[defo_rule],) * layer.steps)[:layer.steps])
                             for layer, choice in zip(layers, decisions[scheme], strict=True)]

    tallies = {scheme: _Tally() for scheme in PRICED}
    layer_tallies = {scheme: [] for scheme in PRICED}
    for scheme, schedule in schedules.items():
        core = "dense" if scheme == "dense" else "ditto"
        steps = max(layer.steps for layer in layers)
        # The layers needing their state at each step, and where it lives then.
        at_step = [residency(frozenset(i for i, modes in enumerate(schedule)
                                       if t < len(modes) and modes[t] is Mode.DIFF))
                   for t in range(steps)]
        for index, (layer, modes) in enumerate(zip(layers, schedule, strict=True)):
            mine = _Tally()
            for t, mode in enumerate(modes):
                dram, buffer = _step_bytes(layer, index, t, mode, at_step[t])
                mine.add(layer.cycles(mode, t, core), dram, buffer, bytes_per_cycle,
                         core_energy(layer.work(mode, t), core, config))
            layer_tallies[scheme].append(mine)
            tallies[scheme].absorb(mine)

    buffer_pj = buffer_pj_per_byte(capacity)
    steady = {scheme: residency(frozenset(i for i, modes in enumerate(schedule)
                                          if modes[-1] is Mode.DIFF))
              for scheme, schedule in schedules.items()}
    return {
        "buffer_pj_per_byte": buffer_pj,
        "schemes": {scheme: {"cycles": t.cycles, "cycles_with_memory": t.memory_cycles,
                             "dram_bytes": t.dram_bytes, "buffer_bytes": t.buffer_bytes,
                             "energy_pj": t.energy(buffer_pj),
                             "resident_weights": len(steady[scheme].weights),
                             "resident_state": len(steady[scheme].state),
                             "memory_bound_layers": sum(m.transfer_cycles > m.cycles
                                                        for m in layer_tallies[scheme])}
                    for scheme, t in tallies.items()},
        "layer_tallies": layer_tallies,
        "decisions": decisions,
        "schedules": schedules,
        "weights_bytes": sum(m.weight_bytes for m in memories),
        "state_bytes": sum(m.state_bytes for m in memories),
    }


def _ratios(priced: dict) -> dict:
    s = priced["schemes"]
    dense = s["dense"]
    out = {}
    for scheme, suffix in (("ditto", ""), ("ditto_defo", "_defo"), ("ditto_plus", "_ditto_plus"),
                           ("ditto_plus_three", "_ditto_plus_three")):
        out[f"energy_ratio{suffix}"] = s[scheme]["energy_pj"]["total"] / dense["energy_pj"]["total"]
        out[f"traffic_ratio{suffix}"] = s[scheme]["dram_bytes"] / dense["dram_bytes"]
        # Every access, on chip and off: what the paper's "memory accesses" count.
        out[f"access_ratio{suffix}"] = ((s[scheme]["dram_bytes"] + s[scheme]["buffer_bytes"])
                                        / (dense["dram_bytes"] + dense["buffer_bytes"]))
    return out


#: Capacities of the sweep behind the energy-against-capacity plot: 64 KiB to 1 GiB.
SWEEP_CAPACITIES = tuple(2**k for k in range(16, 31))


def capacity_sweep(report: dict, config: DittoConfig, *, defo_rule: str = "memory") -> dict:
    """Energy and traffic ratios at each capacity of :data:`SWEEP_CAPACITIES` (and none),
    and per scheme the crossover: the smallest capacity found at which the scheme's energy
    is below DenseCore's (bisected to 1/8 octave between sweep points), or None."""
    def at(capacity):
        return _ratios(price(report, config.replace(onchip_bytes=capacity),
                             defo_rule=defo_rule))

    points = [{"capacity": c, **at(c)} for c in (0, *SWEEP_CAPACITIES)]
    crossover = {}
    for key in ("energy_ratio", "energy_ratio_defo", "energy_ratio_ditto_plus"):
        below = next((i for i, p in enumerate(points) if p[key] < 1.0), None)
        if below is None:
            crossover[key] = None
            continue
        if below <= 1:
            crossover[key] = points[below]["capacity"]
            continue
        low, high = math.log2(points[below - 1]["capacity"]), math.log2(points[below]["capacity"])
        for _ in range(3):
            middle = (low + high) / 2
            if at(round(2**middle))[key] < 1.0:
                high = middle
            else:
                low = middle
        crossover[key] = round(2**high)
    return {"points": points, "crossover_bytes": crossover}


def evaluate(report: dict, config: DittoConfig, *, areas: dict | None = None,
             defo_rule: str = "memory", sweep: bool = True) -> dict:
    """Evaluation of an ``analysis.analyze`` report under ``config`` (its memory system
    included); see the module docstring.

    ``areas``: ``{"ditto_core": a, "dense_core": b}`` in the same unit (``ditto.flow.area``),
    for the equal-area speedups. ``sweep``: also price the capacities of
    :data:`SWEEP_CAPACITIES` and find the energy crossover.
    """
    priced = price(report, config, defo_rule=defo_rule)
    s = priced["schemes"]
    dense_cycles = s["dense"]["cycles"]
    no_residency = price(report, config.replace(onchip_bytes=0), defo_rule=defo_rule)
    result = {
        "config": {**config.as_dict(), "slug": config.slug},
        "workload": report.get("workload", {}),
        "trace": report.get("trace"),
        "layers_total": len(report["layers"]),
        "defo_rule": defo_rule,
        **{f"cycles_{scheme}": s[scheme]["cycles"] for scheme in SCHEMES},
        "speedup": dense_cycles / s["ditto"]["cycles"],
        "speedup_defo": dense_cycles / s["ditto_defo"]["cycles"],
        "speedup_ditto_plus": dense_cycles / s["ditto_plus"]["cycles"],
        "speedup_ditto_plus_three": dense_cycles / s["ditto_plus_three"]["cycles"],
        "speedup_ideal": report["totals"]["ideal_speedup"],
        "lane_utilisation": (sum(row["lane_slots_issued"] for row in report["layers"])
                             / (config.lanes * s["ditto"]["cycles"])),
        "layers_act_by_defo": sum(d[defo_rule] is Mode.ACT for d in priced["decisions"]
                                  ["ditto_defo"]),
        "memory": {"onchip_bytes": config.onchip_bytes, "dram_mbps": config.dram_mbps,
                   "clock_mhz": config.clock_mhz,
                   "bytes_per_cycle": config.dram_bytes_per_cycle,
                   "buffer_pj_per_byte": priced["buffer_pj_per_byte"],
                   "weights_bytes": priced["weights_bytes"],
                   "state_bytes": priced["state_bytes"]},
        "schemes": s,
        **_ratios(priced),
        "energy_ratio_on_chip": (s["ditto"]["energy_pj"]["on_chip"]
                                 / max(s["dense"]["energy_pj"]["on_chip"], 1e-12)),
        **_no_residency_ratios(no_residency),
        "speedup_with_memory": {scheme: s["dense"]["cycles_with_memory"]
                                / s[scheme]["cycles_with_memory"] for scheme in PRICED},
        "energy_source": ENERGY_SOURCE,
        "energy_assumptions": ENERGY_PJ,
    }
    result["defo"] = _defo_rows(report, priced, defo_rule)
    result["defo_rules_disagree"] = sum(row["compute_rule"] != row["memory_rule"]
                                        for row in result["defo"])
    result["ditto_plus_modes"] = {mode.name: sum(row["ditto_plus"] == mode.name
                                                 for row in result["defo"]) for mode in Mode}
    if areas:
        area_ratio = areas["ditto_core"] / areas["dense_core"]
        result["area"] = {**areas, "ratio": area_ratio}
        for key in ("", "_defo", "_ditto_plus"):
            result[f"speedup_equal_area{key}"] = result[f"speedup{key}"] / area_ratio
    if sweep:
        result["capacity_sweep"] = capacity_sweep(report, config, defo_rule=defo_rule)
    result["layers"] = _layer_rows(report, priced, config)
    return result


def _no_residency_ratios(priced: dict) -> dict:
    ratios = _ratios(priced)
    return {f"energy_ratio{suffix}_no_residency": ratios[f"energy_ratio{suffix}"]
            for suffix in ("", "_defo", "_ditto_plus")} | {
            f"traffic_ratio{suffix}_no_residency": ratios[f"traffic_ratio{suffix}"]
            for suffix in ("", "_defo", "_ditto_plus")}


def _defo_rows(report: dict, priced: dict, rule: str) -> list[dict]:
    """Per layer: the choice of each Defo scheme under ``rule``, why, and both rules'
    choices; the cycles of every probe (from the three-probe scheme, which runs them all)."""
    rows = []
    decisions = priced["decisions"]
    for row, defo, plus, three in zip(report["layers"], decisions["ditto_defo"],
                                      decisions["ditto_plus"], decisions["ditto_plus_three"],
                                      strict=True):
        rows.append({
            "layer": row["name"], "group": row["group"],
            "mode": defo[rule].name, "reason": _reason(defo[rule], defo[f"{rule}_cycles"], rule),
            "compute_rule": defo["compute"].name, "memory_rule": defo["memory"].name,
            "ditto_plus": plus[rule].name,
            "ditto_plus_reason": _reason(plus[rule], plus[f"{rule}_cycles"], rule),
            "ditto_plus_compute_rule": plus["compute"].name,
            "ditto_plus_memory_rule": plus["memory"].name,
            "ditto_plus_three": three[rule].name,
            "probe_cycles": {m.name: c for m, c in three["compute_cycles"].items()},
            "probe_cycles_with_memory": {m.name: c for m, c in three["memory_cycles"].items()},
        })
    return rows


def _layer_rows(report: dict, priced: dict, config: DittoConfig) -> list[dict]:
    buffer_pj = priced["buffer_pj_per_byte"]
    rows = []
    for index, layer in enumerate(report["layers"]):
        row = {key: layer[key] for key in ("name", "group", "elements", "zero", "low", "full",
                                           "ideal_speedup")}
        row["output_bits"] = layer["memory"]["output_bits"]
        for scheme in SCHEMES:
            tally = priced["layer_tallies"][scheme][index]
            row[f"cycles_{scheme}"] = tally.cycles
            row[f"cycles_with_memory_{scheme}"] = tally.memory_cycles
            row[f"bytes_{scheme}"] = tally.dram_bytes
            row[f"bound_{scheme}"] = ("memory" if tally.transfer_cycles > tally.cycles
                                      else "compute")
            row[f"energy_pj_{scheme}"] = tally.energy(buffer_pj)["total"]
        row["speedup"] = row["cycles_dense"] / max(row["cycles_ditto"], 1)
        row["lane_utilisation"] = layer["lane_slots_issued"] / max(
            config.lanes * row["cycles_ditto"], 1)
        rows.append(row)
    return rows


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 1024:,.0f} KiB"


def _crossover_text(capacity: int | None) -> str:
    if capacity is None:
        return f"none up to {_mib(SWEEP_CAPACITIES[-1])}"
    if capacity == 0:
        return "0 (it saves without a buffer)"
    if capacity == SWEEP_CAPACITIES[0]:
        return f"at most {_mib(capacity)}"
    return _mib(capacity)


def format_summary(result: dict) -> str:
    """The evaluation as a plain-text table."""
    s = result["schemes"]
    dense = s["dense"]

    def row(label, value):
        """A row of ``value(scheme figures)`` for every scheme."""
        return (label, *(value(s[k]) for k in SCHEMES))

    rows = [("", *SCHEMES.values()),
            row("cycles (cycle model)", lambda x: f"{x['cycles']:,}"),
            row("speedup over Dense", lambda x: f"{dense['cycles'] / x['cycles']:.2f}")]
    if "area" in result:
        area = {k: result["area"]["dense_core" if k == "dense" else "ditto_core"]
                for k in SCHEMES}
        rows.append(("area, M transistors (est.)", *(f"{area[k] / 1e6:.2f}" for k in SCHEMES)))
        rows.append(("speedup at equal area",
                     *(f"{dense['cycles'] / s[k]['cycles'] * area['dense'] / area[k]:.2f}"
                       for k in SCHEMES)))
    rows += [
        row("cycles with memory stalls", lambda x: f"{x['cycles_with_memory']:,.0f}"),
        row("off-chip MB", lambda x: f"{x['dram_bytes'] / 1e6:,.1f}"),
        row("traffic against Dense", lambda x: f"{x['dram_bytes'] / dense['dram_bytes']:.2f}"),
        row("on-chip buffer MB", lambda x: f"{x['buffer_bytes'] / 1e6:,.1f}"),
        row("energy in the core, uJ", lambda x: f"{x['energy_pj']['on_chip'] / 1e6:,.1f}"),
        row("energy of the buffer, uJ", lambda x: f"{x['energy_pj']['buffer'] / 1e6:,.1f}"),
        row("energy with DRAM, uJ", lambda x: f"{x['energy_pj']['total'] / 1e6:,.1f}"),
        row("energy against Dense",
            lambda x: f"{x['energy_pj']['total'] / dense['energy_pj']['total']:.3f}"),
    ]
    width = max(len(r[0]) for r in rows)
    table = ["  ".join([f"{r[0]:<{width}}", *(f"{v:>14}" for v in r[1:])]) for r in rows]
    lines = []
    memory = result["memory"]
    lines.append(
        f"memory: {_mib(memory['onchip_bytes'])} on chip ({memory['buffer_pj_per_byte']:.2f} "
        f"pJ/byte), {memory['dram_mbps'] / 1000:g} GB/s at {memory['clock_mhz']} MHz "
        f"({memory['bytes_per_cycle']:.1f} bytes/cycle); weights {_mib(memory['weights_bytes'])},"
        f" DIFF state {_mib(memory['state_bytes'])}; without residency Ditto/Dense energy "
        f"{result['energy_ratio_no_residency']:.3f}, traffic "
        f"{result['traffic_ratio_no_residency']:.2f}")
    lines.append(
        f"Defo ({result['defo_rule']} rule) leaves {result['layers_act_by_defo']}/"
        f"{result['layers_total']} layers in ACT; the memory and compute rules disagree on "
        f"{result['defo_rules_disagree']}; Ditto+ modes: "
        + ", ".join(f"{mode} {n}" for mode, n in result["ditto_plus_modes"].items())
        + "; memory-bound layers: "
        + ", ".join(f"{SCHEMES[k]} {s[k]['memory_bound_layers']}" for k in SCHEMES))
    if "capacity_sweep" in result:
        cross = result["capacity_sweep"]["crossover_bytes"]
        lines.append("Ditto saves energy from an on-chip capacity of: " + ", ".join(
            f"{SCHEMES[k]} {_crossover_text(cross[key])}"
            for k, key in (("ditto", "energy_ratio"), ("ditto_defo", "energy_ratio_defo"),
                           ("ditto_plus", "energy_ratio_ditto_plus"))))
    three = s["ditto_plus_three"]
    lines.append(f"{PRICED['ditto_plus_three']} (one probe step more): "
                 f"{dense['cycles'] / three['cycles']:.2f}x Dense's speed, energy "
                 f"{three['energy_pj']['total'] / dense['energy_pj']['total']:.3f} of Dense's")
    lines.append(f"ideal lane-bound speedup {result['speedup_ideal']:.2f}; lane utilisation "
                 f"{result['lane_utilisation']:.3f}")
    notes = [textwrap.fill(line, width=len(table[0]), subsequent_indent="  ") for line in lines]
    return "\n".join(table + notes)


def _group_rows(result: dict) -> list[dict]:
    groups: dict[str, dict] = {}
    for layer in result["layers"]:
        g = groups.setdefault(layer["group"], {"group": layer["group"], "layers": 0,
                                               **{f"cycles_{k}": 0 for k in SCHEMES},
                                               **{f"memory_bound_{k}": 0 for k in SCHEMES}})
        g["layers"] += 1
        for scheme in SCHEMES:
            g[f"cycles_{scheme}"] += layer[f"cycles_{scheme}"]
            g[f"memory_bound_{scheme}"] += layer[f"bound_{scheme}"] == "memory"
    return sorted(groups.values(), key=lambda g: g["group"])


def write_markdown(result: dict, path) -> None:
    """Markdown report with the summary, per-type table and PNG plots beside it."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_suffix("").name
    groups = _group_rows(result)
    ditto_schemes = [k for k in SCHEMES if k != "dense"]

    fig, ax = plt.subplots(figsize=(8, 4))
    x = range(len(groups))
    width = 0.8 / len(ditto_schemes)
    for n, scheme in enumerate(ditto_schemes):
        ax.bar([i + (n - 1) * width for i in x],
               [g["cycles_dense"] / max(g[f"cycles_{scheme}"], 1) for g in groups],
               width=width, label=SCHEMES[scheme])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(x), [g["group"] for g in groups], rotation=20)
    ax.set(ylabel="speedup over DenseCore (cycles)", title="Speedup per layer type")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path.parent / f"{stem}-speedup.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    parts = (*CORE_PARTS, "buffer", "dram")
    bottom = [0.0] * len(SCHEMES)
    for part in parts:
        values = [result["schemes"][k]["energy_pj"][part] / 1e6 for k in SCHEMES]
        ax.bar(list(SCHEMES.values()), values, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set(ylabel="energy, uJ (first-order estimate)",
           title=f"Energy by part, {_mib(result['memory']['onchip_bytes'])} on chip")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path.parent / f"{stem}-energy.png", dpi=110)
    plt.close(fig)

    sweep = result.get("capacity_sweep")
    if sweep:
        fig, ax = plt.subplots(figsize=(8, 4))
        points = [p for p in sweep["points"] if p["capacity"]]
        for scheme, key in (("ditto", "energy_ratio"), ("ditto_defo", "energy_ratio_defo"),
                            ("ditto_plus", "energy_ratio_ditto_plus")):
            line, = ax.plot([p["capacity"] / 2**20 for p in points], [p[key] for p in points],
                            marker="o", markersize=3, label=SCHEMES[scheme])
            cross = sweep["crossover_bytes"][key]
            if cross is not None:
                ax.axvline(cross / 2**20, color=line.get_color(), linestyle=":", linewidth=1)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axvline(result["memory"]["onchip_bytes"] / 2**20, color="grey", linewidth=0.8,
                   linestyle="--", label="configured capacity")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="on-chip buffer, MiB", ylabel="energy, Ditto / Dense",
               title="Energy against on-chip capacity (dotted: where Ditto starts to save)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path.parent / f"{stem}-capacity.png", dpi=110)
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
              "| type | layers | " + " | ".join(f"{SCHEMES[k]} cycles" for k in SCHEMES)
              + " | memory-bound (" + " / ".join(SCHEMES.values()) + ") |",
              "|---|---|" + "---|" * (len(SCHEMES) + 1)]
    for g in groups:
        lines.append(f"| {g['group']} | {g['layers']} | "
                     + " | ".join(f"{g[f'cycles_{k}']:,}" for k in SCHEMES) + " | "
                     + " / ".join(str(g[f"memory_bound_{k}"]) for k in SCHEMES) + " |")
    lines += ["", f"![speedup]({stem}-speedup.png)", "", f"![energy]({stem}-energy.png)", ""]
    if sweep:
        lines += [f"![energy against capacity]({stem}-capacity.png)", ""]
    lines += ["## Assumptions", "",
              f"- Energy: {result['energy_source']}; per operation (pJ): "
              + ", ".join(f"{k} {v:g}" for k, v in result["energy_assumptions"].items())
              + f"; the on-chip buffer {result['memory']['buffer_pj_per_byte']:.2f} pJ per byte"
              " at its capacity. A first-order estimate of datapath, buffers and DRAM "
              "(module docstrings of `sim/evaluate.py` and `sim/memory.py`), not of clocking, "
              "control or leakage.",
              "- Memory: every step reads each layer's input and weights and writes its "
              "outputs at the width the trace needs; a DIFF step also reads the previous "
              "input and outputs. The on-chip buffer keeps weights first, then DIFF state, "
              "first-fit in layer order, for both cores alike (`sim/memory.py`).",
              f"- Memory stalls: a layer step takes max(compute cycles, DRAM bytes / "
              f"{result['memory']['bytes_per_cycle']:.1f} bytes per cycle).",
              "- Area: logic transistors (Yosys CMOS estimate) + 6 transistors per memory bit "
              "(`docs/synthesis.md`)."]
    path.write_text("\n".join(lines) + "\n")
