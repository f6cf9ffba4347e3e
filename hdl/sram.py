"""On-chip memories: an Amaranth memory for simulation and FPGAs, an SRAM macro instance for
ASIC flows (docs/asic.md).

Every memory of the design is made by :func:`add_memory`. By default it is an
``amaranth.lib.memory.Memory``, exactly as if the component had built it itself. With
``asic=True`` it is an :class:`Sram` in macro mode: an instance of a separate module named
by :class:`SramSpec` (``ditto_sram_<depth>x<width>_<n>r1w``), which ``ditto generate
--asic`` writes as a behavioural model for an ASIC flow to replace with an SRAM macro.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

from amaranth.hdl import ClockSignal, Instance, Module, Mux, Shape, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._amaranth import never_elaborated

__all__ = ["Sram", "SramSpec", "add_memory"]


@dataclass(frozen=True)
class SramSpec:
    """The module a memory becomes in ASIC output: ``depth`` words of ``width`` bits, one
    write port and ``read_ports`` synchronous read ports, none of them transparent (a
    transparent read port is built around the macro, see :class:`Sram`).

    Attributes
    ----------
    name : str
        ``ditto_sram_<depth>x<width>_<read_ports>r1w``: the Verilog module name; memories of
        one spec share the module.
    addr_bits : int
        Width of the address ports.
    """

    depth: int
    width: int
    read_ports: int

    @property
    def name(self) -> str:
        return f"ditto_sram_{self.depth}x{self.width}_{self.read_ports}r1w"

    @property
    def addr_bits(self) -> int:
        return Shape.cast(range(self.depth)).width

    def as_dict(self) -> dict:
        return {"depth": self.depth, "width": self.width, "read_ports": self.read_ports,
                "write_ports": 1, "addr_bits": self.addr_bits}


def _fail(owner, error):
    never_elaborated(owner)  # half built: it raises here
    raise error


class Sram(wiring.Component):
    """A memory of ``depth`` words of ``shape`` with one write port and ``read_ports`` read
    ports, all in the ``sync`` domain.

    Function and timing (the contract of the SRAM macros, docs/asic.md)
    -------------------------------------------------------------------
    - Write: at a rising edge of ``clk`` with ``w_en`` high, ``mem[w_addr] := w_data``.
    - Read port ``n``: at a rising edge with ``r<n>_en`` high, ``r<n>_data`` becomes
      ``mem[r<n>_addr]`` (one cycle of latency); with ``r<n>_en`` low it holds its value.
    - Collision (a read and a write of the same address at one edge): a transparent port
      returns the word being written (write-first), any other port the old word
      (read-first).
    - Content after power-up: zero in this model (as FPGA block RAM); no reset clears it.

    Parameters
    ----------
    shape : shape-castable
        The word; ``w_data`` and ``r<n>_data`` have this shape (layouts give views).
    depth : int
        Number of words, at least 2.
    read_ports : int
        Number of read ports, at least 1.
    transparent : bool or sequence of bool
        Per read port (one bool: every port) whether it is transparent to the write port.
    macro : bool
        False: an ``amaranth.lib.memory.Memory``. True: an instance of the module
        ``self.spec.name`` (ports ``clk``, ``w_addr``, ``w_data``, ``w_en``, ``r<n>_addr``,
        ``r<n>_en``, ``r<n>_data``, all plain vectors), whose ports are never transparent:
        a transparent port gets its write-first result from a forwarding register beside
        the macro, so the macro itself may return anything on a collision at that port.

    Members
    -------
    w_addr : In(range(depth))
    w_data : In(shape)
    w_en : In(1)
    r<n>_addr : In(range(depth))
    r<n>_en : In(1)
    r<n>_data : Out(shape)
    """

    def __init__(self, *, shape, depth: int, read_ports: int = 1,
                 transparent: bool | Sequence[bool] = False, macro: bool = False):
        try:
            width = Shape.cast(shape).width
        except TypeError:
            _fail(self, TypeError(f"shape must be shape-castable, not {shape!r}"))
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
            _fail(self, ValueError(f"depth must be an integer >= 2, not {depth!r}"))
        if not isinstance(read_ports, int) or isinstance(read_ports, bool) or read_ports < 1:
            _fail(self, ValueError(f"read_ports must be an integer >= 1, not {read_ports!r}"))
        if isinstance(transparent, bool):
            transparent = (transparent,) * read_ports
        elif (not isinstance(transparent, Sequence) or len(transparent) != read_ports
              or not all(isinstance(t, bool) for t in transparent)):
            _fail(self, TypeError(f"transparent must be a bool or {read_ports} bools, not "
                                  f"{transparent!r}"))
        if not isinstance(macro, bool):
            _fail(self, TypeError(f"macro must be a bool, not {macro!r}"))
        self._shape = shape
        self._spec = SramSpec(depth=depth, width=width, read_ports=read_ports)
        self._transparent = tuple(transparent)
        self._macro = macro
        members = {"w_addr": In(range(depth)), "w_data": In(shape), "w_en": In(1)}
        for n in range(read_ports):
            members |= {f"r{n}_addr": In(range(depth)), f"r{n}_en": In(1),
                        f"r{n}_data": Out(shape)}
        super().__init__(members)

    @property
    def spec(self) -> SramSpec:
        return self._spec

    @property
    def transparent(self) -> tuple[bool, ...]:
        return self._transparent

    @property
    def macro(self) -> bool:
        return self._macro

    @property
    def write(self) -> SimpleNamespace:
        """The write port as ``addr``, ``data``, ``en`` (the names of Amaranth's ports)."""
        return SimpleNamespace(addr=self.w_addr, data=self.w_data, en=self.w_en)

    @property
    def reads(self) -> list[SimpleNamespace]:
        """The read ports as ``addr``, ``data``, ``en``."""
        return [SimpleNamespace(addr=getattr(self, f"r{n}_addr"),
                                data=getattr(self, f"r{n}_data"),
                                en=getattr(self, f"r{n}_en"))
                for n in range(self._spec.read_ports)]

    def elaborate(self, platform):
        spec = self._spec
        if not self._macro:
            m = Module()
            m.submodules.memory = mem = memory.Memory(shape=self._shape, depth=spec.depth,
                                                      init=[])
            write = mem.write_port()
            m.d.comb += [write.addr.eq(self.w_addr), write.data.eq(self.w_data),
                         write.en.eq(self.w_en)]
            for port, transparent in zip(self.reads, self._transparent, strict=True):
                read = mem.read_port(transparent_for=(write,) if transparent else ())
                m.d.comb += [read.addr.eq(port.addr), read.en.eq(port.en),
                             port.data.eq(read.data)]
            return m

        m = Module() if any(self._transparent) else None
        ports = {"i_clk": ClockSignal("sync"), "i_w_addr": self.w_addr,
                 "i_w_data": Value.cast(self.w_data), "i_w_en": self.w_en}
        for n, (port, transparent) in enumerate(zip(self.reads, self._transparent,
                                                    strict=True)):
            ports |= {f"i_r{n}_addr": port.addr, f"i_r{n}_en": port.en}
            data = Value.cast(port.data)
            if not transparent:
                ports[f"o_r{n}_data"] = data
                continue
            # Write-first outside the macro: a read that meets a write of its address takes
            # the written word from a register. Like the read port's own register these
            # change only when the port is enabled and are not reset.
            raw = Signal(spec.width, name=f"r{n}_macro_data")
            hit = Signal(name=f"r{n}_forward", reset_less=True)
            word = Signal(spec.width, name=f"r{n}_forward_data", reset_less=True)
            ports[f"o_r{n}_data"] = raw
            with m.If(port.en):
                m.d.sync += [hit.eq(self.w_en & (self.w_addr == port.addr)),
                             word.eq(Value.cast(self.w_data))]
            m.d.comb += data.eq(Mux(hit, word, raw))
        instance = Instance(spec.name, **ports)
        if m is None:
            return instance
        m.submodules.macro = instance
        return m


def add_memory(m: Module, name: str, *, shape, depth: int, read_ports: int = 1,
               transparent: bool = False, asic: bool = False):
    """Add a memory as ``m.submodules[name]``; return ``(write_port, read_ports)``, each
    port with ``addr``, ``data`` and ``en``.

    ``asic=False``: an ``amaranth.lib.memory.Memory`` and its ports (signals
    ``<name>_write__addr``, ``<name>_read<n>__data``...), as the components built it
    before ASIC output existed. ``asic=True``: an :class:`Sram` in macro mode with the same
    behaviour.
    """
    if asic:
        m.submodules[name] = sram = Sram(shape=shape, depth=depth, read_ports=read_ports,
                                         transparent=transparent, macro=True)
        return sram.write, sram.reads
    m.submodules[name] = mem = memory.Memory(shape=shape, depth=depth, init=[])
    # As Memory.write_port() and read_port(), with names that say which memory they serve.
    addr_width = ceil_log2(depth)
    write = memory.WritePort(memory.WritePort.Signature(shape=shape, addr_width=addr_width),
                             memory=mem, domain="sync", path=(f"{name}_write",))
    reads = [memory.ReadPort(memory.ReadPort.Signature(shape=shape, addr_width=addr_width),
                             memory=mem, domain="sync",
                             transparent_for=(write,) if transparent else (),
                             path=(f"{name}_read{n}",))
             for n in range(read_ports)]
    return write, reads

