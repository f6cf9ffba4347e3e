"""The testbench of a component with one input stream ``i`` and one output stream ``o``.

Everything it needs comes from the *bench manifest* (``bench.json``, path in the
``DITTO_BENCH`` environment variable) written by the pytest side
(:func:`ditto.verif.runner.run_bench`): the component's port map and config as recorded by
``ditto generate``, and per case the golden vector file (from the reference model), the
values of the static ports, the random seed and the traffic knobs.

A case drives every input beat (random idle cycles), drives ``o.ready`` randomly
(backpressure), checks both streams' protocol, compares every output beat with the golden
one, and optionally checks the exact latency and full throughput.
"""

from __future__ import annotations

import json
import os
import random
from functools import cached_property
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, with_timeout

from .payload import PayloadCodec
from .streams import CycleCounter, Scoreboard, StreamDriver, StreamMonitor, StreamPorts

__all__ = ["CLOCK_NS", "BenchManifest", "run_case", "stream_ports"]

CLOCK_NS = 10


class BenchManifest:
    """The bench manifest: ``component``, ``top``, ``config``, ``ports`` and ``cases``."""

    def __init__(self, path: str | os.PathLike | None = None):
        path = path or os.environ.get("DITTO_BENCH")
        if not path:
            raise RuntimeError("DITTO_BENCH is not set: run the bench through "
                               "ditto.verif.runner.run_bench")
        self.path = Path(path)
        self.data = json.loads(self.path.read_text())

    @property
    def cases(self) -> dict[str, dict]:
        return self.data["cases"]

    @cached_property
    def ports(self) -> dict[str, dict]:
        return {port["name"]: port for port in self.data["ports"]}

    def stream_port(self, stream: str, role: str) -> dict:
        for port in self.data["ports"]:
            if port.get("stream") == stream and port.get("role") == role:
                return port
        raise KeyError(f"{self.data['top']}: no {role} port for stream {stream!r}")

    def vectors(self, case: str) -> dict[str, np.ndarray]:
        with np.load(self.path.parent / self.cases[case]["vectors"]) as npz:
            return {key: npz[key] for key in npz.files}


def stream_ports(dut, manifest: BenchManifest, name: str) -> StreamPorts:
    """The ``valid``, ``ready`` and ``payload`` ports of stream ``name`` of ``dut``."""
    ports = {role: manifest.stream_port(name, role) for role in ("valid", "ready", "payload")}
    return StreamPorts(valid=getattr(dut, ports["valid"]["name"]),
                       ready=getattr(dut, ports["ready"]["name"]),
                       payload=getattr(dut, ports["payload"]["name"]),
                       codec=PayloadCodec(ports["payload"]), name=name)


def _split(vectors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {key[len(prefix):]: value for key, value in vectors.items()
            if key.startswith(prefix)}


async def run_case(dut, name: str, manifest: BenchManifest | None = None) -> None:
    """Run case ``name`` of the bench manifest on ``dut``; raises AssertionError on any
    mismatch, protocol violation, latency or throughput deviation, or timeout."""
    manifest = manifest or BenchManifest()
    case = manifest.cases[name]
    vectors = manifest.vectors(name)
    rng = random.Random(case["seed"])

    source_in = stream_ports(dut, manifest, "i")
    sink_out = stream_ports(dut, manifest, "o")
    beats = source_in.codec.pack_all(_split(vectors, "in:"))
    expected = sink_out.codec.pack_all(_split(vectors, "out:"))
    source = vectors["source"].tolist()
    first = vectors["source_first"].tolist() if "source_first" in vectors else source

    def describe_inputs(k: int) -> str:
        lo, hi = first[k], source[k]
        shown = range(max(lo, hi - 3), hi + 1)
        lines = [f"in beat {j}: {source_in.codec.describe(beats[j])}" for j in shown]
        if shown.start > lo:
            lines.insert(0, f"(in beats {lo}..{shown.start - 1} not shown)")
        return "\n            ".join(lines)

    for port_name, value in case.get("static", {}).items():
        getattr(dut, port_name).value = PayloadCodec(manifest.ports[port_name]).pack(value)

    clk, rst = dut.clk, dut.rst
    Clock(clk, CLOCK_NS, unit="ns").start()
    counter = CycleCounter(clk)
    source_in.valid.value = 0
    sink_out.ready.value = 0
    rst.value = 1
    await ClockCycles(clk, 3, rising=False)
    await FallingEdge(clk)
    rst.value = 0

    cocotb.start_soon(counter.run())
    scoreboard = Scoreboard(sink_out.codec, expected, describe_inputs)
    input_monitor = StreamMonitor(source_in, clk, counter, rst)
    output_monitor = StreamMonitor(sink_out, clk, counter, rst,
                                   backpressure=case["backpressure"],
                                   rng=random.Random(rng.random()),
                                   on_transfer=scoreboard.check)
    cocotb.start_soon(input_monitor.run())
    cocotb.start_soon(output_monitor.run())
    driver = StreamDriver(source_in, clk, counter, idle=case["idle"],
                          rng=random.Random(rng.random()))
    sending = cocotb.start_soon(driver.send(beats))

    async def finish() -> None:
        await sending
        while not scoreboard.done:
            await FallingEdge(clk)
        # A few more cycles: an extra output beat would be reported by the scoreboard.
        await ClockCycles(clk, case.get("latency") or 4, rising=False)
        await ReadOnly()

    slack = 1.0 / max(1e-3, 1.0 - case["backpressure"]) / max(1e-3, 1.0 - case["idle"])
    limit = int((len(beats) + len(expected)) * 2 * slack) + 200
    try:
        await with_timeout(finish(), limit * CLOCK_NS, "ns")
    except TimeoutError:
        pass  # the scoreboard reports the missing beats below

    failure = scoreboard.result()
    if failure:
        raise AssertionError(f"case {name} ({manifest.data['slug']}): {failure}")
    if case.get("latency") is not None and case["backpressure"] == 0:
        sent = {transfer_index: t.cycle for transfer_index, t in enumerate(driver.transfers)}
        for k, out in enumerate(output_monitor.transfers):
            want = sent[source[k]] + case["latency"]
            assert out.cycle == want, (
                f"case {name}: output beat {k} valid in cycle {out.cycle}, expected "
                f"{want} = input beat {source[k]} transferred in cycle {sent[source[k]]} "
                f"+ latency {case['latency']}")
    if case.get("full_throughput"):
        cycles = [t.cycle for t in driver.transfers]
        gaps = [(j, b - a) for j, (a, b) in enumerate(zip(cycles, cycles[1:], strict=False))
                if b - a != 1]
        assert not gaps, (f"case {name}: input not accepted every cycle; first gaps "
                          f"(beat, cycles): {gaps[:5]}")
