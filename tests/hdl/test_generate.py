"""``ditto generate``: deterministic Verilog, a manifest that matches the Verilog, and no
files written as a side effect of constructing components."""

import json
import re

import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ditto.cli import main
from ditto.config import preset
from ditto.enums import DiffClass, Mode
from ditto.hdl.compute_unit import PeShape, lane_group_layout
from ditto.hdl.generate import COMPONENTS, ComponentInfo, generate, layout_fields
from ditto.verif.amaranth_sim import run_testbench
from ditto.verif.vectors import REGISTER_STAGES, documented_latency

TINY = preset("tiny")


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_config_gives_byte_identical_files(tmp_path):
    generate(TINY, tmp_path / "a")
    generate(TINY, tmp_path / "b")
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(first) == sorted([info.file for info in COMPONENTS.values()]
                                   + ["manifest.json"])
    assert first == second


def test_different_configs_give_different_slugs_and_verilog(tmp_path):
    a = generate(TINY, tmp_path / "a", components=["compute_unit"])
    b = generate(TINY.replace(lane_bits=6), tmp_path / "b", components=["compute_unit"])
    assert a["slug"] != b["slug"]
    file = COMPONENTS["compute_unit"].file
    assert (tmp_path / "a" / file).read_bytes() != (tmp_path / "b" / file).read_bytes()


def _verilog_ports(text, top):
    header = re.search(rf"module {top}\((.*?)\);", text, re.S).group(1)
    names = [n.strip() for n in header.split(",")]
    ports = {}
    for direction, width, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?"
                                             r"(\w+);", text, re.M):
        ports[name] = (direction, int(width) + 1 if width else 1)
    return names, ports


#: Latency each component's contract gives (the register stages its docstring lists,
#: ``ditto.verif.vectors.REGISTER_STAGES``); the cores' depends on the data (None).
LATENCY_BY_CONTRACT = {**{name: documented_latency(name) for name in REGISTER_STAGES},
                       "ditto_core": None, "dense_core": None}

#: Per fixed-latency component: its input and output stream and the fields of one input
#: beat that must produce an output beat (a group or a beat that ends a row).
LATENCY_PROBES = {
    "encoding_unit": ("i", "o", {"last": 1}),
    "compute_unit": ("i", "o", {"first": 1, "last": 1}),
    "accumulation_buffer": ("i", "o", {}),
    "dispatcher": ("i", "o", {"last": 1}),
    "defo_unit": ("query", "answer", {"step": 2}),
}


def measured_latency(name, config):
    """Cycles from one beat's transfer into the idle component, with the output ready, to
    the first cycle its output is valid (the contract: a beat transferred in cycle ``t``
    is valid on the output in cycle ``t + latency``)."""
    dut = COMPONENTS[name].build(config)
    source, sink, fields = LATENCY_PROBES[name]
    i, o = getattr(dut, source), getattr(dut, sink)
    measured = []

    async def bench(ctx):
        ctx.set(o.ready, 1)
        for field, value in fields.items():
            ctx.set(getattr(i.payload, field), value)
        ctx.set(i.valid, 1)
        while not ctx.get(i.ready):
            await ctx.tick()
        await ctx.tick()  # the transfer, in cycle t
        ctx.set(i.valid, 0)
        cycles = 1
        while not ctx.get(o.valid) and cycles < 20:
            await ctx.tick()
            cycles += 1
        measured.append(cycles)

    run_testbench(dut, bench)
    return measured[0]


@pytest.mark.parametrize("name", sorted(LATENCY_PROBES))
def test_each_component_has_the_latency_its_contract_documents(name):
    assert COMPONENTS[name].cls.LATENCY is not None
    assert measured_latency(name, TINY) == LATENCY_BY_CONTRACT[name]


@pytest.mark.parametrize("config", [TINY, preset("default")], ids=lambda c: c.slug)
def test_manifest_port_map_matches_the_verilog(tmp_path, config):
    manifest = generate(config, tmp_path)
    assert manifest["config"] == config.as_dict()
    assert manifest["slug"] == config.slug
    assert manifest["files"] == sorted(e["file"] for e in manifest["components"].values())
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    for name, entry in manifest["components"].items():
        assert entry["latency"] == LATENCY_BY_CONTRACT[name], name
        names, ports = _verilog_ports((tmp_path / entry["file"]).read_text(), entry["top"])
        assert sorted(names) == sorted(p["name"] for p in entry["ports"])
        for port in entry["ports"]:
            assert ports[port["name"]] == (port["direction"], port["width"]), port["name"]
            fields = port.get("fields")
            if fields:  # fields tile the packed vector exactly, low bits first
                ends = [f["offset"] for f in fields[1:]] + [port["width"]]
                assert fields[0]["offset"] == 0
                assert all(f["offset"] + f["width"] == end
                           for f, end in zip(fields, ends, strict=True))


def test_field_names_paths_and_enums(tmp_path):
    fields = {f["name"]: f for f in layout_fields(lane_group_layout(PeShape.ditto(TINY)))}
    assert fields["lanes[1].shift"] == {"name": "lanes[1].shift", "path": ["lanes", 1, "shift"],
                                        "offset": 19, "width": 1, "signed": False}
    manifest_ports = generate(TINY, tmp_path, components=["encoding_unit"])
    ports = {p["name"]: p for p in manifest_ports["components"]["encoding_unit"]["ports"]}
    assert ports["mode"]["enum"] == {"ACT": 0, "DIFF": 1, "SPATIAL": 2}
    cls = [f for f in ports["o__payload"]["fields"] if f["name"].startswith("cls[")]
    assert len(cls) == TINY.scan_width
    assert cls[0]["enum"] == {"ZERO": 0, "LOW": 1, "FULL": 2}


class _Options(wiring.Component):
    """A component with options of every kind a manifest writes."""

    LATENCY = 0

    def __init__(self, *, config, mode, nested, depth, flag, label):
        self._mode = mode
        super().__init__({"o": Out(Mode)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(self._mode)
        return m


def test_options_are_json_with_enum_members_by_name(tmp_path):
    options = (("mode", Mode.DIFF), ("nested", ((Mode.ACT, 1), [DiffClass.FULL])),
               ("depth", 4), ("flag", True), ("label", "x"))
    manifest = generate(TINY, tmp_path, components=[
        ComponentInfo("options", _Options, "options", options=options), "defo_unit",
        "encoding_unit"])
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    entries = manifest["components"]
    assert entries["options"]["options"] == {"mode": "DIFF", "nested": [["ACT", 1], ["FULL"]],
                                             "depth": 4, "flag": True, "label": "x"}
    assert entries["defo_unit"]["options"] == {"probes": ["SPATIAL", "DIFF"]}
    assert entries["encoding_unit"]["options"] == {}


def test_constructing_and_elaborating_components_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for info in COMPONENTS.values():
        Fragment.get(info.build(TINY), None)
    assert list(tmp_path.iterdir()) == []


def test_unknown_component_is_rejected_by_name(tmp_path):
    with pytest.raises(ValueError, match="unknown component 'fpu'"):
        generate(TINY, tmp_path, components=["fpu"])


def test_cli_generate_writes_verilog_and_manifest(tmp_path, capsys):
    assert main(["generate", "--config", "tiny", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["slug"] == TINY.slug
    for file in manifest["files"]:
        assert (tmp_path / file).read_text().startswith("/* Generated by Amaranth")
    assert "manifest.json" in capsys.readouterr().out
