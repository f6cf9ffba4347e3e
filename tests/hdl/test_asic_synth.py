"""The ASIC target (``ditto synth --target asic``): the tiny PE and encoder mapped to the OSU
0.18 µm cells are equivalent to their RTL, OpenSTA finds a constrained path, and the areas
add up."""

import re
import shutil

import pytest

from ditto.config import preset
from ditto.flow import asic
from ditto.flow.synth import synthesise

CONFIG = preset("tiny")


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    build = tmp_path_factory.mktemp("asic")
    result = synthesise(CONFIG, targets=("asic",),
                        components=["compute_unit", "encoding_unit", "defo_unit"],
                        build_dir=build)
    return build / CONFIG.slug, result


@pytest.mark.parametrize("component,top", [("compute_unit", "ditto_compute_unit"),
                                           ("encoding_unit", "ditto_encoding_unit")])
def test_the_mapped_netlist_is_equivalent_to_the_rtl(mapped, component, top, tmp_path):
    root, _ = mapped
    proven, log = asic.prove_mapped_equivalent(root / component, f"{top}.asic.v", top)
    assert proven, log[-2000:]
    # The proof can fail: one XOR made an XNOR in a copy of the netlist is found.
    work = tmp_path / component
    shutil.copytree(root / component, work)
    netlist = (work / "asic.equiv.v").read_text()
    broken, count = re.subn(r"^(\s*)XOR2X1(\s)", r"\1XNOR2X1\2", netlist, count=1,
                            flags=re.MULTILINE)
    assert count == 1
    (work / "asic.equiv.v").write_text(broken)
    assert not asic.prove_mapped_equivalent(work, f"{top}.asic.v", top)[0]


def test_opensta_times_a_constrained_path(mapped):
    _, result = mapped
    for name, entry in result["components"].items():
        timing = entry["asic"]["timing"]
        assert timing["arrival_ns"] > 0 and timing["critical_path_ns"] > timing["arrival_ns"]
        assert timing["fmax_mhz"] == pytest.approx(1000 / timing["critical_path_ns"], rel=1e-3)
        # Named after registers or ports, not after Yosys' generated cell names.
        for end in (timing["startpoint"], timing["endpoint"]):
            assert "DFFPOSX1" not in end, (name, end)


def test_areas_add_up_from_the_library(mapped):
    root, result = mapped
    cells = asic.liberty_cells(asic.default_liberty())
    for name, entry in result["components"].items():
        figures = entry["asic"]
        by_type = figures["cells_by_type"]
        assert figures["area_um2"] == pytest.approx(
            sum(cells[c]["area"] * n for c, n in by_type.items() if c in cells), abs=0.1)
        assert 0 < figures["flip_flop_area_um2"] < figures["area_um2"], name
        assert figures["fmax_mhz"] == figures["timing"]["fmax_mhz"] > 0
        assert figures["critical_path"]["endpoint"] == figures["timing"]["endpoint"]
    # The Defo unit's two 512 x 33 tables are SRAM macros (over the flip-flop limit), each
    # at 146 F² per bit over the array efficiency; the tiny PE has none.
    defo = result["components"]["defo_unit"]["asic"]
    per_table = 512 * 33 * 146 * 0.18**2 / 0.7  # the documented 70 % array efficiency
    assert defo["memory_um2"] == pytest.approx(2 * per_table, rel=1e-6)
    assert {m["as"] for m in defo["memories"].values()} == {"sram"}
    assert defo["timing"]["untimed"] == sorted(defo["memories"])
    assert result["components"]["compute_unit"]["asic"]["memory_um2"] == 0


def test_each_component_is_smaller_than_its_core(tmp_path):
    result = synthesise(CONFIG, targets=("asic",), build_dir=tmp_path)
    core = result["components"]["ditto_core"]["asic"]
    for name in ("encoding_unit", "compute_unit", "accumulation_buffer", "dispatcher"):
        assert 0 < result["components"][name]["asic"]["area_um2"] <= core["area_um2"], name
    # tiny's memories (at most 1,024 bits each) are flip-flops inside the logic.
    assert core["memory_um2"] == 0
    assert {m["as"] for m in core["memories"].values()} == {"flip-flops"}


def test_a_missing_library_is_named_with_its_fix(tmp_path):
    with pytest.raises(asic.LibertyError, match="no Liberty library at .*give --liberty"):
        asic.resolve_liberty(tmp_path / "none.lib")


def test_sram_area_counts_a_copy_per_read_port():
    one = asic.memory_area_um2({"depth": 1024, "width": 64, "read_ports": 1})
    assert asic.memory_area_um2({"depth": 1024, "width": 64, "read_ports": 4}) == 4 * one
    assert one == pytest.approx(65536 * 4.7304 / 0.7, rel=1e-4)


def test_the_equal_area_comparison_in_um2_by_hand():
    """DittoCore 3 + 1 mm² (logic + SRAM) at 50 MHz, DenseCore 1 + 1 mm² at 100 MHz;
    300 against 1200 cycles (240 with Defo): area ratio 4 / 2 = 2, speedups 4 and 5, at
    equal area 2 and 2.5, in time 2 x 50 / 100 = 1; the transistor basis said 2.5 at equal
    area, so the µm² basis differs by 2 / 2.5 - 1 = -20 %."""
    from ditto.flow import area

    def core(logic, memory, fmax):
        return {"asic": {"area_um2": logic, "memory_um2": memory, "flip_flop_area_um2": 1.0,
                         "timing": {"fmax_mhz": fmax, "startpoint": "a", "endpoint": "b",
                                    "critical_path_ns": 1000 / fmax}}}

    synth_result = {"components": {"ditto_core": core(3e6, 1e6, 50.0),
                                    "dense_core": core(1e6, 1e6, 100.0)}}
    workload = {"totals": {"cycles_ditto": 300, "cycles_ditto_defo": 240,
                           "cycles_dense": 1200}}
    comparison = area.equal_area_asic(synth_result, workload,
                                      {"ratios": {"speedup_equal_area": 2.5}})
    assert comparison["cores"]["ditto_core"]["total_um2"] == 4e6
    assert comparison["ratios"] == pytest.approx({
        "area": 2.0, "logic_area": 3.0, "speedup": 4.0, "speedup_defo": 5.0,
        "speedup_equal_area": 2.0, "speedup_equal_area_defo": 2.5, "fmax": 0.5,
        "speedup_equal_area_time": 1.0, "speedup_equal_area_transistors": 2.5,
        "bases_differ_by": -0.2})
    assert "differs by -20.0 %" in area.format_asic_summary(comparison)


def test_synth_rejects_a_missing_library_before_any_work(capsys, tmp_path):
    from ditto.cli import main

    assert main(["synth", "--config", "tiny", "--target", "asic", "--liberty",
                 "no/such.lib", "--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no Liberty library at no/such.lib" in err
    assert not any(tmp_path.iterdir())
