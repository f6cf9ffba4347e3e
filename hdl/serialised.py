"""Serialised, registered I/O around a component, for place-and-route timing.

nextpnr times register-to-register paths only, and a core has far more ports than an FPGA
package has pins. :class:`SerialisedIO` therefore feeds every input of the wrapped component
from a shift register (one pin in) and captures every output into a parallel-load shift
register (one pin out). Every core path then starts and ends at a flip-flop, nothing can be
optimised away (every output bit reaches the pin), and the design has four pins.
"""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SerialisedIO"]


class SerialisedIO(wiring.Component):
    """``inner`` with its inputs shifted in through ``shift_in`` and its outputs captured
    (when ``capture`` is high) and shifted out through ``shift_out``.

    Attributes
    ----------
    input_bits, output_bits : int
        Widths of the input and output shift registers (all of ``inner``'s port bits).
    """

    shift_in: In(1)
    capture: In(1)
    shift_out: Out(1)

    def __init__(self, inner: wiring.Component):
        self._inner = inner
        self._inputs, self._outputs = [], []
        for _path, member, value in inner.signature.flatten(inner):
            (self._inputs if member.flow == In else self._outputs).append(Value.cast(value))
        self.input_bits = sum(len(value) for value in self._inputs)
        self.output_bits = sum(len(value) for value in self._outputs)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self._inner
        # No reset on the shift registers: a pin's stream fills them.
        chain = Signal(self.input_bits, reset_less=True)
        m.d.sync += chain.eq(Cat(self.shift_in, chain[:-1]))
        offset = 0
        for value in self._inputs:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)
        captured = Signal(self.output_bits, reset_less=True)
        with m.If(self.capture):
            m.d.sync += captured.eq(Cat(*self._outputs))
        with m.Else():
            m.d.sync += captured.eq(captured >> 1)
        m.d.comb += self.shift_out.eq(captured[0])
        return m
