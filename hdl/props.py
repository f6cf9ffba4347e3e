"""What the formal properties of the components share: the record of one property and the
environment pieces every harness uses.

A property is an Amaranth harness (``amaranth.hdl.Assert`` and ``Assume`` around the
component, free inputs from ``AnySeq`` and ``AnyConst``) beside the component it describes
(``ditto.hdl.dispatch_props``, ``ditto.hdl.accumulator_props``). ``ditto.verif.formal``
turns each into RTLIL and a SymbiYosys job; ``ditto prove`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Elaboratable, Module, ResetSignal, Signal, Value

from ditto.config import DittoConfig

__all__ = ["FormalProperty", "assert_stream_rules", "drive_free", "free_stream_inputs",
           "method_text", "no_reset"]


@dataclass(frozen=True)
class FormalProperty:
    """One property of one component and how it is proven.

    Attributes
    ----------
    name : str
        Short name (``ditto prove`` prints it; ``-k`` selects by it).
    component : str
        The component's class name.
    statement : str
        What the property says, in a sentence.
    method : str
        ``"prove"``: k-induction (SymbiYosys ``mode prove``), which closes for every
        length of run; ``"bmc"``: bounded model checking from reset, every run of at most
        ``depth`` cycles.
    depth : int
        The induction length k, or the BMC depth, in cycles.
    config : DittoConfig
        The configuration the component is built with (a small one: the proofs' time grows
        steeply with the component's size and the depth).
    harness : Callable[..., Elaboratable]
        ``harness(config=..., **component)`` builds the harness; the tests pass a mutant
        of the component as ``dispatcher=`` or ``buffer=`` (the harness's own keyword).
    """

    name: str
    component: str
    statement: str
    method: str
    depth: int
    config: DittoConfig
    harness: Callable[..., Elaboratable]

    def __post_init__(self):
        if self.method not in ("prove", "bmc"):
            raise ValueError(f"method={self.method!r}: must be 'prove' or 'bmc'")
        if self.depth < 1:
            raise ValueError(f"depth={self.depth!r}: must be a positive number of cycles")

    def build(self, **component) -> Elaboratable:
        """The harness, for :attr:`config`, of the component (or of ``component``)."""
        return self.harness(config=self.config, **component)


def method_text(method: str, depth: int) -> str:
    """``k-induction k=N`` or ``bmc depth N``: how a property is proven, in words."""
    return f"k-induction k={depth}" if method == "prove" else f"bmc depth {depth}"


def drive_free(m: Module, signal) -> None:
    """Drive ``signal`` (a signal or a layout view) with a new arbitrary value each cycle."""
    value = Value.cast(signal)
    m.d.comb += value.eq(AnySeq(len(value)))


def no_reset(m: Module) -> None:
    """The harness runs from the initial state (every register at its reset value) without
    a reset later: the properties are about runs, not about reset in mid-run."""
    m.d.comb += Assume(~ResetSignal())


def assert_stream_rules(m: Module, stream, name: str) -> None:
    """Assert the ``amaranth.lib.stream`` rules of a transmitter on ``stream`` (an interface
    with ``valid``, ``ready``, ``payload``): once ``valid`` is high without ``ready``, it
    stays high and ``payload`` stays the same in the next cycle."""
    waiting = Signal(name=f"{name}_waiting")
    held = Signal.like(stream.payload, name=f"{name}_held")
    m.d.sync += [waiting.eq(stream.valid & ~stream.ready), held.eq(stream.payload)]
    with m.If(waiting):
        m.d.comb += Assert(stream.valid, "valid retracted before the transfer")
        m.d.comb += Assert(Value.cast(stream.payload) == Value.cast(held),
                           "payload changed while waiting for ready")


def free_stream_inputs(m: Module, dut, layout) -> tuple[Signal, Signal, Signal]:
    """Connect the input beat, ``i.valid`` and ``o.ready`` of ``dut`` (a component with one
    input stream ``i`` and one output stream ``o``) to signals free in every cycle; returns
    them (the harness adds its assumptions about the beat)."""
    beat = Signal(layout, name="beat")
    valid, ready = Signal(name="in_valid"), Signal(name="out_ready")
    for signal in (beat, valid, ready):
        drive_free(m, signal)
    m.d.comb += [dut.i.payload.eq(beat), dut.i.valid.eq(valid), dut.o.ready.eq(ready)]
    return beat, valid, ready
