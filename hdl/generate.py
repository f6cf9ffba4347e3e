"""Verilog generation: one file per component plus ``manifest.json``, which is what the
testbenches, lint and synthesis flows read (port map, payload layouts, config).

Nothing here runs when a component is constructed: files are written only by
:func:`generate` (``ditto generate``).
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from ditto.config import DittoConfig

from .accumulator import AccumulationBuffer
from .core import DenseCore, DittoCore
from .defo import DefoUnit
from .dispatch import ZeroSkipDispatcher
from .encoding import EncodingUnit
from .pe import ComputeUnit

__all__ = ["COMPONENTS", "ComponentInfo", "generate", "layout_fields", "port_map",
           "render_manifest", "verilog_text"]


@dataclass(frozen=True)
class ComponentInfo:
    """A generated component: its class, Verilog top module name and file name."""

    name: str
    cls: type
    top: str

    @property
    def file(self) -> str:
        # Named after the module, as Verilog tools expect (Verilator's DECLFILENAME).
        return f"{self.top}.v"


COMPONENTS: dict[str, ComponentInfo] = {info.name: info for info in (
    ComponentInfo("encoding_unit", EncodingUnit, "ditto_encoding_unit"),
    ComponentInfo("compute_unit", ComputeUnit, "ditto_compute_unit"),
    ComponentInfo("accumulation_buffer", AccumulationBuffer, "ditto_accumulation_buffer"),
    ComponentInfo("dispatcher", ZeroSkipDispatcher, "ditto_dispatcher"),
    ComponentInfo("defo_unit", DefoUnit, "ditto_defo_unit"),
    ComponentInfo("ditto_core", DittoCore, "ditto_core"),
    ComponentInfo("dense_core", DenseCore, "ditto_dense_core"),
)}


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


def render_manifest(config: DittoConfig, entries: dict[str, dict]) -> str:
    manifest = {
        "generator": "ditto.hdl.generate",
        "amaranth": amaranth.__version__,
        "slug": config.slug,
        "config": config.as_dict(),
        "components": entries,
        "files": sorted(entry["file"] for entry in entries.values()),
    }
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    # Unchanged files keep their mtime, so simulator builds stay incremental.
    if path.exists() and path.read_text() == text:
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate(config: DittoConfig, out_dir: str | os.PathLike, *,
             components: list[str | ComponentInfo] | None = None) -> dict:
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

    Returns
    -------
    dict
        The manifest, as written (``files`` relative to ``out_dir``).

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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for info in infos:
        component = info.cls(config=config)
        ports = port_map(component)
        _write_if_changed(out / info.file, verilog_text(component, info.top))
        entries[info.name] = {"file": info.file, "top": info.top, "class": info.cls.__name__,
                              "latency": info.cls.LATENCY, "ports": ports}
    text = render_manifest(config, entries)
    _write_if_changed(out / "manifest.json", text)
    return json.loads(text)
