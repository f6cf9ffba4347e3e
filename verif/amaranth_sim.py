"""Stream helpers for fast unit tests in Amaranth's own simulator (the cocotb tier runs the
generated Verilog; these run the Amaranth design directly, in well under a second)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from amaranth.sim import Simulator

__all__ = ["run_stream", "run_testbench", "stream_get", "stream_put"]


def run_testbench(dut, *testbenches) -> None:
    """Simulate ``dut`` with a 1 MHz clock until every testbench (an ``async`` function of
    the simulator context) has returned."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    sim.run()


async def stream_put(ctx, stream, payload) -> None:
    """Offer one beat and hold it until it is transferred."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Accept one beat and return its payload."""
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def run_stream(dut, beats: Sequence, count: int, *, backpressure: float = 0.0,
               seed: int = 0, setup: Callable | None = None,
               convert: Callable | None = None) -> list:
    """Push ``beats`` into ``dut.i``, collect ``count`` beats from ``dut.o`` (``ready`` low
    with probability ``backpressure`` in each cycle) and return them (through
    ``convert`` if given, e.g. to turn payload constants into plain values).

    ``setup(ctx)`` sets static inputs before the first beat.
    """
    rng = random.Random(seed)
    received = []

    async def source(ctx):
        if setup is not None:
            setup(ctx)
        for beat in beats:
            await stream_put(ctx, dut.i, beat)

    async def sink(ctx):
        while len(received) < count:
            while backpressure and rng.random() < backpressure:
                await ctx.tick()
            payload = await stream_get(ctx, dut.o)
            received.append(convert(payload) if convert else payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run_until(1e-6 * (10 * (len(beats) + count) + 100))
    if len(received) != count:
        raise AssertionError(f"received {len(received)} of {count} output beats")
    return received
