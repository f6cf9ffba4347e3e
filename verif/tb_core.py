"""cocotb testbench of DittoCore and DenseCore: runs the tile jobs of each case of the bench
manifest (``DITTO_BENCH``, written by :func:`ditto.verif.core_runner.run_core_bench`).

Per job: the command, the weight beats and the activation beats are driven (with random
idle cycles if the case asks), the output is drained (with random backpressure if the case
asks), every stream's valid/ready rules are checked, every output row is compared with the
golden row (plain integer arithmetic), and, in cases without idle cycles or backpressure,
the cycles from the command's transfer to the last output's transfer (inclusive) and the
core's ``counters.cycles`` must both equal the cycle model's prediction; so must every other
counter the job predicts (``stall_cycles`` only then, the class and group counts always;
every job must predict ``groups``, ``stall_cycles``, ``low`` and ``full``). Whatever the
traffic, ``counters.cycles`` must equal the cycles measured.

Each case writes ``summary-<case>.json``: the jobs, rows and cycles it checked, the sum of
the core's ``stall_cycles`` over its jobs, and ``act_waits``, the cycles in which the core
held an offered activation beat (``act.valid & ~act.ready``) between a job's first and last
activation transfer: the input stalls that a full dispatch FIFO causes.
"""

from __future__ import annotations

import json
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, with_timeout

from .payload import PayloadCodec
from .streams import CycleCounter, StreamDriver, StreamMonitor
from .testbench import CLOCK_NS, BenchManifest, stream_ports
from .tiles import activation_rows

_MANIFEST = BenchManifest()

#: The counters every job must predict: the cocotb tier compares each with the model.
PREDICTED = ("groups", "stall_cycles", "low", "full")


def _activation_arrays(x_cur: np.ndarray, x_prev: np.ndarray, width: int, dense: bool,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A job's activation beats by payload field (``tiles.activation_rows``)."""
    cur, prev = activation_rows(x_cur, x_prev, width, rng)
    return {"x": cur} if dense else {"x_cur": cur, "x_prev": prev}


async def _run(dut, name: str) -> None:
    manifest = _MANIFEST
    case = manifest.cases[name]
    config = manifest.data["config"]
    dense = manifest.data["component"] == "dense_core"
    width = config["dense_macs"] if dense else config["scan_width"]
    rng = random.Random(case["seed"])
    garbage = np.random.default_rng(case["seed"])
    jobs = case["jobs"]
    arrays = np.load(manifest.path.parent / case["vectors"])
    exact_timing = case["backpressure"] == 0 and case["idle"] == 0

    streams = {s: stream_ports(dut, manifest, s) for s in ("cmd", "weights", "act", "out")}
    counters = PayloadCodec(manifest.ports["counters"])
    clk, rst = dut.clk, dut.rst
    Clock(clk, CLOCK_NS, unit="ns").start()
    counter = CycleCounter(clk)
    for s in ("cmd", "weights", "act"):
        streams[s].valid.value = 0
    streams["out"].ready.value = 0
    rst.value = 1
    await ClockCycles(clk, 3, rising=False)
    await FallingEdge(clk)
    rst.value = 0
    cocotb.start_soon(counter.run())

    received: list = []
    out_monitor = StreamMonitor(streams["out"], clk, counter, rst,
                                backpressure=case["backpressure"],
                                rng=random.Random(rng.random()), on_transfer=received.append)
    cocotb.start_soon(out_monitor.run())
    for s in ("cmd", "weights", "act"):
        cocotb.start_soon(StreamMonitor(streams[s], clk, counter, rst).run())
    act_waits: list[int] = []  # cycles with act.valid high and act.ready low
    cocotb.start_soon(_watch_waits(streams["act"], clk, counter, act_waits))
    drivers = {s: StreamDriver(streams[s], clk, counter,
                               idle=case["idle"] if s != "cmd" else 0.0,
                               rng=random.Random(rng.random()))
               for s in ("cmd", "weights", "act")}

    summary = {"jobs": 0, "rows": 0, "cycles": 0, "stall_cycles": 0, "act_waits": 0}
    for index, job in enumerate(jobs):
        x_cur, x_prev = arrays[f"{index}/x_cur"], arrays[f"{index}/x_prev"]
        command = streams["cmd"].codec.pack(job["command"])
        first_out = len(received)
        first_act = len(drivers["act"].transfers)
        missing = [name for name in PREDICTED if name not in job.get("counters", {})]
        assert not missing, f"job {index} ({job['label']}): no prediction of {missing}"
        # Weights and activations are offered before the command: the core takes them only
        # once the command is running, from the first cycle it can (as the model assumes).
        if job["command"]["load_weights"]:
            weights = streams["weights"].codec.pack_all({"": arrays[f"{index}/weights"]})
            cocotb.start_soon(drivers["weights"].send(weights))
        beats = streams["act"].codec.pack_all(
            _activation_arrays(x_cur, x_prev, width, dense, garbage))
        cocotb.start_soon(drivers["act"].send(beats))
        cmd_transfers = await drivers["cmd"].send([command])
        start = cmd_transfers[-1].cycle

        async def outputs_done(expect=first_out + job["rows"]):
            while len(received) < expect:
                await FallingEdge(clk)

        budget = 50 * (job["cycles"] + 100)
        await with_timeout(outputs_done(), budget * CLOCK_NS, "ns")
        rows = [streams["out"].codec.unpack(t.raw) for t in received[first_out:]]
        label = f"job {index} ({job['label']})"
        got_rows = [r["row"] for r in rows]
        want_rows = list(range(job["command"]["row_base"],
                               job["command"]["row_base"] + job["rows"]))
        assert got_rows == want_rows, f"{label}: rows {got_rows}, expected {want_rows}"
        if f"{index}/expected" in arrays.files:
            expected = arrays[f"{index}/expected"]
            got = np.array([r["y"] for r in rows], dtype=np.int64)
            bad = np.argwhere(got != expected)
            if bad.size:
                r, c = bad[0]
                raise AssertionError(
                    f"{label}: {len(bad)} outputs differ; first at row {r}, channel {c}: "
                    f"expected {expected[r, c]}, got {got[r, c]} (output cycle "
                    f"{received[first_out + r].cycle}); inputs x_cur[{r}] = "
                    f"{x_cur[r].tolist()[:16]}..., x_prev[{r}] = {x_prev[r].tolist()[:16]}...")
        end = received[-1].cycle
        measured = end - start + 1
        await ReadOnly()
        values = counters.unpack(dut.counters.value.to_unsigned())
        reported = values["cycles"]
        for counter, want in job.get("counters", {}).items():
            # Stalls depend on the traffic; the class and group counts do not.
            if exact_timing or counter != "stall_cycles":
                assert values[counter] == want, (f"{label}: counters.{counter} = "
                                                 f"{values[counter]}, the model says {want}")
        assert reported == measured, (f"{label}: counters.cycles = {reported}, measured "
                                      f"{measured}")
        if exact_timing:
            assert measured == job["cycles"], (
                f"{label}: {measured} cycles from command to last output, the cycle model "
                f"predicts {job['cycles']}")
        acts = drivers["act"].transfers[first_act:]
        summary["jobs"] += 1
        summary["rows"] += job["rows"]
        summary["cycles"] += measured
        summary["stall_cycles"] += values["stall_cycles"]
        summary["act_waits"] += sum(acts[0].cycle <= c <= acts[-1].cycle for c in act_waits)
        await FallingEdge(clk)
    (manifest.path.parent / f"summary-{name}.json").write_text(json.dumps(summary))


async def _watch_waits(ports, clk, counter: CycleCounter, waits: list[int]) -> None:
    """Append each cycle in which ``ports`` offer a beat the core does not take."""
    while True:
        await FallingEdge(clk)
        await ReadOnly()
        if ports.valid.value == 1 and ports.ready.value == 0:
            waits.append(counter.cycle)


@cocotb.test
@cocotb.parametrize(case=[cocotb.Param(name, name=name) for name in _MANIFEST.cases])
async def run_jobs(dut, case: str) -> None:
    await _run(dut, case)
