"""Verilog generation: one file per component plus ``manifest.json``, which is what the
testbenches, lint and synthesis flows read (port map, payload layouts, config).

Nothing here runs when a component is constructed: files are written only by
:func:`generate` (``ditto generate``).
"""

from __future__ import annotations

import enum
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import amaranth
from amaranth.back import rtlil, verilog
from amaranth.hdl import ClockDomain, Fragment, Instance, Shape, Value
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In

from ditto.config import DittoConfig
from ditto.enums import Mode
from ditto.files import write_atomically

from ._amaranth import PortDirection, never_elaborated
from .accumulator import AccumulationBuffer
from .compute_unit import ComputeUnit, PeShape
from .core import DenseCore, DittoCore
from .defo import DefoUnit
from .dispatch import ZeroSkipDispatcher
from .encoding import EncodingUnit
from .sram import Sram, SramSpec

__all__ = ["ASIC_YOSYS_SCRIPT", "COMPONENTS", "ComponentInfo", "asic_verilog_text", "generate",
           "layout_fields", "macro_model_text", "macro_port_map", "port_map", "render_manifest",
           "verilog_text"]


@dataclass(frozen=True)
class ComponentInfo:
    """A generated component: its class, Verilog top module name and file name.

    ``build(config, asic)`` makes an instance for a config; by default ``cls(config=...,
    **options)`` (and ``asic=`` where the class takes it). A leaf that takes its own shape
    instead of a config (the compute unit) says how with ``from_config``.
    """

    name: str
    cls: type
    top: str
    from_config: Callable[[DittoConfig], wiring.Component] | None = None
    #: Further keyword arguments of ``cls`` as ``(name, value)`` pairs (a tuple keeps the
    #: description hashable).
    options: tuple[tuple[str, object], ...] = ()

    @property
    def file(self) -> str:
        # Named after the module, as Verilog tools expect (Verilator's DECLFILENAME).
        return f"{self.top}.v"

    @property
    def takes_asic(self) -> bool:
        return "asic" in inspect.signature(self.cls).parameters

    def build(self, config: DittoConfig, *, asic: bool = False) -> wiring.Component:
        if self.from_config is not None:
            return self.from_config(config)
        if asic and self.takes_asic:
            return self.cls(config=config, asic=True, **dict(self.options))
        return self.cls(config=config, **dict(self.options))


COMPONENTS: dict[str, ComponentInfo] = {info.name: info for info in (
    ComponentInfo("encoding_unit", EncodingUnit, "ditto_encoding_unit"),
    ComponentInfo("compute_unit", ComputeUnit, "ditto_compute_unit",
                  lambda config: ComputeUnit(shape=PeShape.ditto(config))),
    ComponentInfo("accumulation_buffer", AccumulationBuffer, "ditto_accumulation_buffer"),
    ComponentInfo("dispatcher", ZeroSkipDispatcher, "ditto_dispatcher"),
    # Ditto+: DittoCore runs SPATIAL too, so its Defo unit probes SPATIAL instead of ACT
    # (faster on the real trace than probing all three modes, docs/evaluation.md).
    ComponentInfo("defo_unit", DefoUnit, "ditto_defo_unit",
                  options=(("probes", (Mode.SPATIAL, Mode.DIFF)),)),
    ComponentInfo("ditto_core", DittoCore, "ditto_core"),
    ComponentInfo("dense_core", DenseCore, "ditto_dense_core"),
)}


def _option_json(value):
    """A component option as JSON: enum members by name, tuples as lists."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (tuple, list)):
        return [_option_json(item) for item in value]
    return value


def _leaf(path: tuple, shape, offset: int) -> dict:
    name = ""
    for key in path:
        name += f"[{key}]" if isinstance(key, int) else (f".{key}" if name else key)
    cast = Shape.cast(shape)
    leaf = {"name": name, "path": list(path), "offset": offset, "width": cast.width,
            "signed": cast.signed}
    if isinstance(shape, type) and issubclass(shape, enum.Enum):
        leaf["enum"] = {member.name: member.value for member in shape}
    return leaf


def layout_fields(shape, path: tuple = (), offset: int = 0) -> list[dict]:
    """Leaf fields of a (nested) layout, low bits first: name (``lanes[1].operand``), path
    (``["lanes", 1, "operand"]``), bit offset in the packed vector, width, signedness and,
    for enum fields, the enum's values."""
    if isinstance(shape, data.Layout):
        fields = []
        for key, field in shape:
            fields += layout_fields(field.shape, (*path, key), offset + field.offset)
        return sorted(fields, key=lambda leaf: leaf["offset"])
    return [_leaf(path, shape, offset)]


def port_map(component: wiring.Component, *, clocked: bool = True) -> list[dict]:
    """The Verilog ports of a component as Amaranth names them (``i__payload``...).

    Each entry: ``name``, ``direction`` (``input``/``output``), ``width``, ``signed``;
    members of a stream also ``stream`` (the stream's name) and ``role`` (``valid``,
    ``ready`` or ``payload``); layout-shaped ports ``fields`` (see :func:`layout_fields`);
    enum-shaped ports ``enum``. A ``clocked`` component (one using the ``sync`` domain)
    also has ``clk`` and ``rst`` (synchronous, active high), listed first.
    """
    ports = [
        {"name": "clk", "direction": "input", "width": 1, "signed": False, "role": "clock"},
        {"name": "rst", "direction": "input", "width": 1, "signed": False, "role": "reset"},
    ] if clocked else []
    for path, member, _ in component.signature.flatten(component):
        shape = member.shape
        cast = Shape.cast(shape)
        entry = {"name": "__".join(str(key) for key in path),
                 "direction": "input" if member.flow == In else "output",
                 "width": cast.width, "signed": cast.signed}
        if len(path) == 2 and path[1] in ("valid", "ready", "payload"):
            entry["stream"], entry["role"] = path[0], path[1]
        if isinstance(shape, data.Layout):
            entry["fields"] = layout_fields(shape)
        elif isinstance(shape, type) and issubclass(shape, enum.Enum):
            entry["enum"] = {m.name: m.value for m in shape}
        ports.append(entry)
    return ports


def verilog_text(component: wiring.Component, top: str) -> str:
    """Verilog of ``component`` with module name ``top``; no source paths embedded, so the
    text depends on the config only."""
    return verilog.convert(component, name=top, emit_src=False)


#: Yosys passes (of the Yosys Amaranth bundles) from Amaranth's RTLIL to the synthesisable
#: Verilog of ASIC output; ``{rtlil}`` is the design. Differences from Amaranth's own script
#: (docs/asic.md has the reasons): a full ``proc`` instead of ``proc -nomux``, so no
#: ``always @*`` remains and Yosys declares no ``reg ... = 0`` to wake simulators;
#: ``attrmap -remove init`` drops the power-on values of registers (``reg x = 0;``), every
#: register being reset synchronously by ``rst``; ``select -assert-none`` fails on latches,
#: memories and simulation-only cells (``$print``, ``$check``); ``write_verilog
#: -noparallelcase`` without ``-norename`` writes no ``parallel_case`` pragmas and no escaped
#: ``\$``-names (Icarus takes a function named ``\$procmux$1`` for a system function).
ASIC_YOSYS_SCRIPT = """\
read_rtlil <<rtlil
{rtlil}
rtlil
proc -norom
attrmap -remove init -remove full_case
select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$sr t:$mem* t:$print t:$check
write_verilog -noparallelcase
"""


def _instances(fragment: Fragment, path: tuple[str, ...] = ()):
    """``(path, fragment)`` of every fragment below ``fragment`` (``path`` relative to it;
    unnamed submodules are named as Amaranth names them, ``U$<index>``)."""
    for index, (sub, name, _) in enumerate(fragment.subfragments):
        sub_path = (*path, name if name is not None else f"U${index}")
        yield sub_path, sub
        yield from _instances(sub, sub_path)


def asic_verilog_text(component: wiring.Component, top: str) -> tuple[str, dict[str, SramSpec]]:
    """Synthesisable Verilog of ``component`` (built with ``asic=True``) for ASIC flows,
    through :data:`ASIC_YOSYS_SCRIPT`, and its SRAM macro instances: ``{instance path
    ("accumulator.memory.macro"): SramSpec}``.

    Raises
    ------
    ValueError
        If the component still builds an ``amaranth.lib.memory.Memory``.
    """
    fragment = Fragment.get(component, None)
    macros = {}
    for path, sub in _instances(fragment):
        name = ".".join(path)
        if any(isinstance(origin, memory.Memory) for origin in sub.origins or ()):
            raise ValueError(f"{top}: memory {name!r} is an amaranth Memory in ASIC output; "
                             "build it with ditto.hdl.sram.add_memory(..., asic=asic)")
        sram = next((o for o in sub.origins or () if isinstance(o, Sram)), None)
        if sram is not None:
            # The instance itself, or the one inside a wrapper with forwarding logic.
            for inner, instance in [((), sub), *_instances(sub)]:
                if isinstance(instance, Instance) and instance.type == sram.spec.name:
                    macros[".".join((*path, *inner))] = sram.spec
    ports = {}
    for path, member, value in component.signature.flatten(component):
        ports["__".join(map(str, path))] = (
            Value.cast(value),
            PortDirection.Input if member.flow == In else PortDirection.Output)
    text, _ = rtlil.convert_fragment(fragment, ports, top, emit_src=False)
    script = ASIC_YOSYS_SCRIPT.format(rtlil=text)
    yosys = verilog.find_yosys(lambda version: version >= (0, 40))
    return yosys.run(["-q", "-"], script), macros


def macro_model_text(spec: SramSpec) -> str:
    """Behavioural Verilog model of the SRAM macro ``spec.name``: Amaranth's Verilog of an
    :class:`~ditto.hdl.sram.Sram` with plain vectors (an ``amaranth.lib.memory.Memory``,
    zero-initialised), ports ``clk`` and the macro's, no reset. Simulation only: an ASIC
    flow replaces it with a wrapper of a real macro."""
    sram = Sram(shape=spec.width, depth=spec.depth, read_ports=spec.read_ports)
    return verilog.convert(sram, name=spec.name, emit_src=False,
                           missing_domain=lambda name: ClockDomain(name, reset_less=True))


def macro_port_map(spec: SramSpec) -> list[dict]:
    """Ports of the macro ``spec.name``: ``clk``, then as :func:`port_map`."""
    sram = Sram(shape=spec.width, depth=spec.depth, read_ports=spec.read_ports)
    never_elaborated(sram)  # only its ports are read
    clock = {"name": "clk", "direction": "input", "width": 1, "signed": False,
             "role": "clock"}
    return [clock, *port_map(sram, clocked=False)]


def render_manifest(config: DittoConfig, entries: dict[str, dict],
                    macros: dict[str, dict] | None = None) -> str:
    manifest = {
        "generator": "ditto.hdl.generate",
        "amaranth": amaranth.__version__,
        "slug": config.slug,
        "config": config.as_dict(),
        "components": entries,
        "files": sorted(entry["file"] for entry in entries.values()),
    }
    if macros is not None:
        manifest["asic"] = True
        manifest["macros"] = macros
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def generate(config: DittoConfig, out_dir: str | os.PathLike, *,
             components: list[str | ComponentInfo] | None = None, asic: bool = False) -> dict:
    """Write the Verilog of the components and ``manifest.json`` into ``out_dir``.

    Parameters
    ----------
    config : DittoConfig
        The configuration of every component.
    out_dir : path
        Created if missing. Files whose content would not change are left untouched.
    components : list of str or ComponentInfo, optional
        Names from :data:`COMPONENTS` (default: all), or descriptions of other components
        (the test suite uses this for deliberately broken designs).
    asic : bool
        Output for ASIC flows (docs/asic.md): components with memories are built with
        ``asic=True`` (SRAM macro instances), every component file is made by
        :func:`asic_verilog_text` (no ``initial``, no register initialisers, no memory
        arrays), and the behavioural model of each macro is written to
        ``macros/<module>.v``. The manifest gains ``asic``, ``macros`` (per module: depth,
        width, ports, model file) and, per component, ``macros`` (instance path -> module)
        and ``macro_models`` (the model files a simulation of it needs).

    Returns
    -------
    dict
        The manifest, as written (``files`` relative to ``out_dir``). Per component:
        ``file``, ``top``, ``class``, ``options`` (the keyword arguments it was built with
        besides ``config`` and ``asic``, :attr:`ComponentInfo.options`; enum members by
        name, tuples as lists), ``latency`` and
        ``ports``.

    The output is a function of the config (and the Amaranth version) only: the same
    config gives byte-identical files.
    """
    if not isinstance(config, DittoConfig):
        raise TypeError(f"config must be a DittoConfig, not {config!r}")
    infos = []
    for item in COMPONENTS if components is None else components:
        if isinstance(item, ComponentInfo):
            infos.append(item)
        elif item in COMPONENTS:
            infos.append(COMPONENTS[item])
        else:
            raise ValueError(f"unknown component {item!r}; choose from {', '.join(COMPONENTS)}")
    if not isinstance(asic, bool):
        raise TypeError(f"asic must be a bool, not {asic!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    specs: dict[str, SramSpec] = {}
    for info in infos:
        component = info.build(config, asic=asic)
        ports = port_map(component)
        entry = {"file": info.file, "top": info.top, "class": info.cls.__name__,
                 "options": {name: _option_json(value) for name, value in info.options},
                 "latency": info.cls.LATENCY, "ports": ports}
        if asic:
            text, instances = asic_verilog_text(component, info.top)
            entry["macros"] = {path: spec.name for path, spec in instances.items()}
            entry["macro_models"] = sorted({f"macros/{spec.name}.v"
                                            for spec in instances.values()})
            specs |= {spec.name: spec for spec in instances.values()}
        else:
            text = verilog_text(component, info.top)
        write_atomically(out / info.file, text, if_changed=True)
        entries[info.name] = entry
    macros = None
    if asic:
        macros = {}
        if specs:
            (out / "macros").mkdir(exist_ok=True)
        for name, spec in sorted(specs.items()):
            write_atomically(out / "macros" / f"{name}.v", macro_model_text(spec),
                             if_changed=True)
            macros[name] = {**spec.as_dict(), "model": f"macros/{name}.v",
                            "model_is_simulation_only": True, "read_latency": 1,
                            "collision": "read-first", "ports": macro_port_map(spec)}
    text = render_manifest(config, entries, macros)
    write_atomically(out / "manifest.json", text, if_changed=True)
    return json.loads(text)
