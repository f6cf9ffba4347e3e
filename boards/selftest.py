"""Built-in self-test: DittoCore fed from on-chip ROMs, every output and cycle count checked.

The ROMs hold real-trace tile jobs (``ditto.verif.tiles``): the commands with the cycle
model's prediction of each, the weight beats, the activation beats and the expected output
rows from plain integer arithmetic. A sequencer streams them into the core with no idle
cycles, so the core's ``counters.cycles`` must equal the cycle model exactly; a checker
compares every output row and every cycle count and raises ``passed`` or ``failed``. The
same component runs in the Amaranth simulator (``simulate_selftest``, the test suite) and on
the boards (``ditto.boards.targets``): a green LED means what a passing test means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, wiring
from amaranth.lib.wiring import Out

from ditto.config import DittoConfig
from ditto.hdl import HasConfig, check_config, never_elaborated
from ditto.hdl.core import DittoCore, command_layout, weight_layout
from ditto.sim.fixtures import FIXTURE, load_fixture
from ditto.verif.amaranth_sim import run_testbench
from ditto.verif.simulate import activation_beats
from ditto.verif.tiles import TileJob, fixture_jobs

__all__ = ["ErrorKind", "SelfTest", "SelfTestResult", "checked_values", "rom_contents",
           "run_cycles", "selftest_jobs", "simulate_selftest"]


#: Cycles a tile may run past the cycle model's prediction before the watchdog calls it hung.
WATCHDOG_SLACK = 8


class ErrorKind(enum.Enum, shape=3):
    """The first check that failed."""

    NONE = 0
    ROW = 1       # an output beat for the wrong row, or one more than the tile has
    VALUE = 2     # an output value differs from plain integer arithmetic
    CYCLES = 3    # counters.cycles differs from the cycle model
    TIMEOUT = 4   # the tile ran WATCHDOG_SLACK cycles past its prediction without finishing


def selftest_jobs(config: DittoConfig, *, case: str = "conv1x1", rows: int = 16) -> list[TileJob]:
    """The jobs of the self-test: one output-channel block (``pes`` columns) of the fixture
    case ``case``, ``rows`` rows, over the fixture's four steps (ACT, then three DIFF steps
    accumulating onto the stored rows)."""
    cases = {c["name"]: c for c in load_fixture(FIXTURE)}
    if case not in cases:
        raise ValueError(f"case {case!r}: the fixture has {', '.join(sorted(cases))}")
    return fixture_jobs(cases[case], config, "ditto", max_rows=rows, max_cols=config.pes)


def _check_index(name, value, limit):
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer or None, not {value!r}")
    if not 0 <= value < limit:
        raise ValueError(f"{name}={value!r}: must be in 0..{limit - 1}")


def checked_values(jobs: list[TileJob], config: DittoConfig) -> int:
    """How many output values the checker compares (rows with ``expected`` x ``pes``)."""
    return sum(job.rows for job in jobs if job.expected is not None) * config.pes


def run_cycles(jobs: list[TileJob]) -> int:
    """Cycles of one self-test run: the tiles as the cycle model predicts them plus the
    sequencer's three per tile (command, last-row check, idle check) and one to restart."""
    return sum(job.cycles + 3 for job in jobs) + 1


def rom_contents(config: DittoConfig, jobs: list[TileJob], *,
                 corrupt_output: int | None = None,
                 corrupt_cycles: int | None = None) -> dict[str, list]:
    """The self-test ROMs' words as plain values: ``commands`` (command and predicted
    cycles per job), ``weights`` and ``activations`` (every job's beats in order),
    ``expected`` (row number, values and a check flag per output row). ``corrupt_*``: see
    :class:`SelfTest`."""
    low, high = config.acc_range
    commands, weights, activations, expected = [], [], [], []
    checked = 0
    for index, job in enumerate(jobs):
        commands.append({"cmd": job.command(), "cycles": job.cycles + (index == corrupt_cycles)})
        if job.weights is not None:
            weights += [row.tolist() for row in job.weights]
        activations += activation_beats(job, config.scan_width, dense=False)
        for r in range(job.rows):
            row = job.row_base + r
            if job.expected is None:
                expected.append({"row": row, "y": [0] * config.pes, "check": 0})
                continue
            values = [int(v) for v in np.asarray(job.expected[r], dtype=np.int64)]
            for pe in range(config.pes):
                if checked == corrupt_output:
                    values[pe] = values[pe] + 1 if values[pe] < high else low
                checked += 1
            expected.append({"row": row, "y": values, "check": 1})
    return {"commands": commands, "weights": weights, "activations": activations,
            "expected": expected}


class SelfTest(HasConfig, wiring.Component):
    """DittoCore, ROMs of tile jobs, a sequencer and a checker.

    Function, timing and reset
    --------------------------
    After reset the jobs run one after the other: a command, its weight beats and activation
    beats are offered from the ROMs in every cycle (synchronous ROM reads with the next
    address computed ahead, so there are no bubbles) and the output is always ready; this is
    the condition under which ``counters.cycles`` equals the cycle model. Every output beat
    is compared with the expected row number and values; when a tile's last row is out and
    the core is idle again, ``counters.cycles`` is compared with the prediction. A tile still
    running ``WATCHDOG_SLACK`` cycles after its prediction is a ``TIMEOUT``. After the last
    job, ``runs`` counts up and (``loop``) the whole sequence starts again. The first
    failed check stops everything; ``error`` keeps what failed until reset.

    Parameters
    ----------
    config : DittoConfig
    jobs : list of TileJob
        Default ``selftest_jobs(config)``. Every job's rows must have ``expected`` values or
        ``None`` (then only the row numbers are checked).
    loop : bool
        Re-run forever (the boards); False stops after one run.
    corrupt_output : int or None
        Add 1 to this expected value (index into the checked values, row-major over the
        jobs' rows and ``pes`` channels) in the ROM: the self-test must then fail.
    corrupt_cycles : int or None
        Add 1 to this job's predicted cycle count in the ROM: the self-test must then fail.

    Members
    -------
    passed : Out(1)
        At least one run is complete and no check has failed.
    failed : Out(1)
        A check has failed (sticky until reset).
    runs : Out(24)
        Complete runs (wraps).
    error : Out(StructLayout({kind: ErrorKind, job: unsigned}))
        The first failed check and the job it was in.
    """

    def __init__(self, *, config: DittoConfig, jobs: list[TileJob] | None = None,
                 loop: bool = True, corrupt_output: int | None = None,
                 corrupt_cycles: int | None = None):
        self._config = check_config(self, config)
        try:
            jobs = selftest_jobs(config) if jobs is None else list(jobs)
            if not jobs:
                raise ValueError("jobs must not be empty")
            if not isinstance(loop, bool):
                raise TypeError(f"loop must be True or False, not {loop!r}")
            _check_index("corrupt_output", corrupt_output, checked_values(jobs, config))
            _check_index("corrupt_cycles", corrupt_cycles, len(jobs))
        except (TypeError, ValueError):
            never_elaborated(self)  # half built: it raises here
            raise
        self._jobs = jobs
        self._loop = loop
        self._corrupt_output = corrupt_output
        self._corrupt_cycles = corrupt_cycles
        self._cycle_bits = max(job.cycles for job in jobs).bit_length() + 1
        self._error_layout = data.StructLayout({"kind": ErrorKind,
                                                "job": unsigned(len(jobs).bit_length())})
        super().__init__({
            "passed": Out(1),
            "failed": Out(1),
            "runs": Out(24),
            "error": Out(self._error_layout),
        })

    @property
    def jobs(self) -> list[TileJob]:
        return list(self._jobs)

    @property
    def run_cycles(self) -> int:
        """Cycles of one run (``run_cycles(jobs)``)."""
        return run_cycles(self._jobs)

    def _command_layout(self):
        return data.StructLayout({"cmd": command_layout(self._config),
                                  "cycles": unsigned(self._cycle_bits)})

    def _expected_layout(self):
        config = self._config
        return data.StructLayout({"row": unsigned(config.row_addr_bits),
                                  "y": data.ArrayLayout(signed(config.acc_bits), config.pes),
                                  "check": unsigned(1)})

    def rom_contents(self) -> dict[str, list]:
        """The words this self-test's ROMs hold (``rom_contents(...)``)."""
        return rom_contents(self._config, self._jobs, corrupt_output=self._corrupt_output,
                            corrupt_cycles=self._corrupt_cycles)

    # ---- gateware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        config = self._config
        m = Module()
        m.submodules.core = core = DittoCore(config=config)
        contents = self.rom_contents()
        act_layout = core.act.payload.shape()
        shapes = {"commands": self._command_layout(), "weights": weight_layout(config),
                  "activations": act_layout, "expected": self._expected_layout()}
        ports = {}
        for name, words in contents.items():
            # Block RAM even where Yosys would build a shallow ROM from logic (the expected
            # rows: ~350 iCE40 LUTs otherwise); the few commands stay in logic.
            attrs = {} if name == "commands" else {"ram_style": "block"}
            rom = memory.Memory(shape=shapes[name], depth=max(1, len(words)),
                                init=words or [shapes[name].const(None)], attrs=attrs)
            m.submodules[f"rom_{name}"] = rom
            ports[name] = rom.read_port()

        restart = Signal()   # this cycle sets every ROM address to 0
        running = Signal()   # streams may transfer
        checking = Signal()  # the tile's outputs are being checked

        # A ROM-backed stream: the next address is computed this cycle, so the read data
        # is the beat at `pointer` in every cycle after a restart.
        def rom_pointer(name, take):
            depth = len(contents[name])
            pointer = Signal(range(depth + 1), name=f"{name}_pointer")
            following = Mux(restart, 0, Mux(take, pointer + 1, pointer))
            m.d.comb += ports[name].addr.eq(following)
            m.d.sync += pointer.eq(following)
            return pointer, depth

        w_take = core.weights.valid & core.weights.ready
        w_pointer, w_depth = rom_pointer("weights", w_take)
        m.d.comb += [core.weights.valid.eq(running & (w_pointer < w_depth)),
                     core.weights.payload.eq(ports["weights"].data)]
        a_take = core.act.valid & core.act.ready
        a_pointer, a_depth = rom_pointer("activations", a_take)
        m.d.comb += [core.act.valid.eq(running & (a_pointer < a_depth)),
                     core.act.payload.eq(ports["activations"].data)]

        out_take = core.out.valid & core.out.ready
        m.d.comb += core.out.ready.eq(1)
        rom_pointer("expected", out_take & checking)
        expected = ports["expected"].data

        cmd_take = core.cmd.valid & core.cmd.ready
        job, n_jobs = rom_pointer("commands", cmd_take)
        command = ports["commands"].data

        rows_left = Signal(range(config.max_rows + 1))
        predicted = Signal(self._cycle_bits)
        watchdog = Signal(self._cycle_bits + 1)
        error = Signal(self._error_layout)
        runs = Signal(24)
        m.d.comb += [self.error.eq(error), self.runs.eq(runs),
                     self.failed.eq(error.kind != ErrorKind.NONE),
                     self.passed.eq((runs != 0) & (error.kind == ErrorKind.NONE))]

        def fail(kind, job_index):
            m.d.sync += [error.kind.eq(kind), error.job.eq(job_index)]
            m.next = "HALT"

        with m.FSM():
            with m.State("START"):
                m.d.comb += restart.eq(1)
                m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += [running.eq(1), core.cmd.valid.eq(1),
                             core.cmd.payload.eq(command.cmd)]
                with m.If(cmd_take):
                    m.d.sync += [rows_left.eq(command.cmd.rows), predicted.eq(command.cycles),
                                 watchdog.eq(1)]
                    m.next = "OUTPUT"
            with m.State("OUTPUT"):
                m.d.comb += [running.eq(1), checking.eq(1)]
                m.d.sync += watchdog.eq(watchdog + 1)
                with m.If(out_take):
                    m.d.sync += rows_left.eq(rows_left - 1)
                    with m.If(core.out.payload.row != expected.row):
                        fail(ErrorKind.ROW, job - 1)
                    with m.Elif(expected.check
                                & (core.out.payload.y.as_value() != expected.y.as_value())):
                        fail(ErrorKind.VALUE, job - 1)
                    with m.Elif(rows_left == 1):
                        m.next = "CYCLES"
                with m.Elif(watchdog > predicted + WATCHDOG_SLACK):
                    fail(ErrorKind.TIMEOUT, job - 1)
            with m.State("CYCLES"):
                m.d.comb += running.eq(1)
                m.d.sync += watchdog.eq(watchdog + 1)
                with m.If(core.out.valid):
                    fail(ErrorKind.ROW, job - 1)
                with m.Elif(core.cmd.ready):
                    with m.If(core.counters.cycles != predicted):
                        fail(ErrorKind.CYCLES, job - 1)
                    with m.Elif(job == n_jobs):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "ISSUE"
                with m.Elif(watchdog > predicted + WATCHDOG_SLACK):
                    fail(ErrorKind.TIMEOUT, job - 1)
            with m.State("DONE"):
                m.d.sync += runs.eq(runs + 1)
                m.next = "START" if self._loop else "HALT"
            with m.State("HALT"):
                pass
        return m


@dataclass
class SelfTestResult:
    """What the simulated self-test showed at the end: the LED signals and the error."""

    passed: bool
    failed: bool
    runs: int
    error: ErrorKind
    error_job: int
    cycles: int


def simulate_selftest(top: SelfTest, *, runs: int = 1,
                      max_cycles: int | None = None) -> SelfTestResult:
    """Run ``top`` in the Amaranth simulator until it has completed ``runs`` runs or failed
    (or ``max_cycles``, default twice the expected cycles of those runs, have passed)."""
    limit = max_cycles or 2 * runs * top.run_cycles + 100
    state = {}

    async def bench(ctx):
        cycle = 0
        while cycle < limit:
            await ctx.tick()
            cycle += 1
            if ctx.get(top.failed) or ctx.get(top.runs) >= runs:
                break
        error = ctx.get(top.error)
        state.update(passed=bool(ctx.get(top.passed)), failed=bool(ctx.get(top.failed)),
                     runs=int(ctx.get(top.runs)), error=ErrorKind(error.kind),
                     error_job=int(error.job), cycles=cycle)

    run_testbench(top, bench)
    return SelfTestResult(**state)
