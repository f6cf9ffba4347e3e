"""cocotb stream components for ``amaranth.lib.stream`` interfaces: driver, monitor (with
protocol checks and random backpressure) and scoreboard.

Timing convention (all components): inputs are written just after the falling edge and
sampled in the ``ReadOnly`` phase that follows, i.e. with the values the DUT sees at the
next rising edge. ``CycleCounter.cycle`` counts rising edges; a transfer recorded with
cycle ``c`` happens at rising edge ``c + 1``. Latencies are differences of these numbers.

Stream rules checked by :class:`StreamMonitor` (those of ``amaranth.lib.stream``):

- ``valid`` is never X/Z outside reset, ``payload`` is fully defined while ``valid``;
- once ``valid`` is asserted it stays asserted, with the payload unchanged, until the
  cycle in which ``ready`` is also asserted (the transfer).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from .payload import PayloadCodec

__all__ = ["CycleCounter", "Scoreboard", "StreamDriver", "StreamMonitor",
           "StreamProtocolError", "Transfer"]


class StreamProtocolError(AssertionError):
    """A stream broke the valid/ready rules."""


class CycleCounter:
    """Counts rising edges of ``clk``; start it once per test with :meth:`run`."""

    def __init__(self, clk):
        self.clk = clk
        self.cycle = 0

    async def run(self) -> None:
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1


@dataclass(frozen=True)
class Transfer:
    cycle: int
    raw: int


def _resolve(handle, what: str, cycle: int) -> int:
    """The port's value as an int; X/Z bits are a protocol error.

    (Converting directly and catching the error is much faster than asking
    ``is_resolvable`` of a wide LogicArray, which builds one object per bit.)
    """
    value = handle.value
    try:
        # One-bit ports read as Logic, wider ones as LogicArray.
        return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)
    except ValueError:
        raise StreamProtocolError(f"cycle {cycle}: {what} has X or Z bits: {value}") from None


@dataclass
class StreamPorts:
    """The three ports of one stream and the codec of its payload."""

    valid: object
    ready: object
    payload: object
    codec: PayloadCodec
    name: str


class StreamDriver:
    """Drives a stream's ``valid`` and ``payload`` from a list of packed beats.

    ``idle`` is the probability of an idle cycle before each beat (never in the middle of a
    handshake: once ``valid`` is up it stays up until the transfer).
    """

    def __init__(self, ports: StreamPorts, clk, counter: CycleCounter, *,
                 idle: float = 0.0, rng: random.Random | None = None):
        self.ports, self.clk, self.counter = ports, clk, counter
        self.idle = idle
        self.rng = rng or random.Random(0)
        self.transfers: list[Transfer] = []

    async def send(self, beats: Sequence[int]) -> list[Transfer]:
        ports = self.ports
        n = 0
        offered = False
        while n < len(beats):
            await FallingEdge(self.clk)
            if not offered:
                if self.idle and self.rng.random() < self.idle:
                    ports.valid.value = 0
                    continue
                ports.payload.value = beats[n]
                ports.valid.value = 1
                offered = True
            await ReadOnly()
            if _resolve(ports.ready, f"{ports.name}.ready", self.counter.cycle):
                self.transfers.append(Transfer(self.counter.cycle, beats[n]))
                n += 1
                offered = False
        await FallingEdge(self.clk)
        ports.valid.value = 0
        return self.transfers


class StreamMonitor:
    """Watches a stream, checks the valid/ready rules and records every transfer.

    With ``backpressure`` not None the monitor also drives ``ready``: low with that
    probability in each cycle (seeded ``rng``), otherwise high. Without it the monitor is
    passive (the DUT or a driver owns ``ready``).
    """

    def __init__(self, ports: StreamPorts, clk, counter: CycleCounter, reset=None, *,
                 backpressure: float | None = None, rng: random.Random | None = None,
                 on_transfer: Callable[[Transfer], None] | None = None):
        self.ports, self.clk, self.counter, self.reset = ports, clk, counter, reset
        self.backpressure = backpressure
        self.rng = rng or random.Random(0)
        self.on_transfer = on_transfer
        self.transfers: list[Transfer] = []
        self.waits = 0  # cycles with valid high and ready low

    def _fail(self, message: str) -> None:
        raise StreamProtocolError(f"stream {self.ports.name}: {message}")

    async def run(self) -> None:
        ports = self.ports
        pending: tuple[int, int] | None = None  # (cycle, raw) offered but not taken
        while True:
            await FallingEdge(self.clk)
            if self.backpressure is not None:
                ports.ready.value = int(self.rng.random() >= self.backpressure)
            await ReadOnly()
            cycle = self.counter.cycle
            if self.reset is not None and _resolve(self.reset, "reset", cycle):
                pending = None
                continue
            valid = _resolve(ports.valid, f"{ports.name}.valid", cycle)
            if pending is not None and not valid:
                self._fail(f"valid dropped in cycle {cycle} before the beat offered in cycle "
                           f"{pending[0]} was transferred ({ports.codec.describe(pending[1])})")
            if not valid:
                continue
            raw = _resolve(ports.payload, f"{ports.name}.payload (while valid)", cycle)
            if pending is not None and raw != pending[1]:
                changes = "; ".join(ports.codec.differences(pending[1], raw,
                                                            labels=("was", "now")))
                self._fail(f"payload changed in cycle {cycle} while waiting for ready "
                           f"(offered in cycle {pending[0]}): {changes}")
            ready = _resolve(ports.ready, f"{ports.name}.ready", cycle)
            if ready:
                transfer = Transfer(cycle, raw)
                self.transfers.append(transfer)
                if self.on_transfer is not None:
                    self.on_transfer(transfer)
                pending = None
            else:
                self.waits += 1
                if pending is None:
                    pending = (cycle, raw)


@dataclass
class Scoreboard:
    """Compares the beats of an output stream, in order, with the expected ones.

    Parameters
    ----------
    codec : PayloadCodec
        The output payload's codec (for readable differences).
    expected : list of int
        Packed expected beats.
    describe_inputs : callable(int) -> str
        The input beat(s) that produced expected beat ``k``, for the mismatch message.
    max_reports : int
        Mismatches spelled out in the failure message (all are counted).
    """

    codec: PayloadCodec
    expected: Sequence[int]
    describe_inputs: Callable[[int], str] = lambda k: ""
    max_reports: int = 5
    received: int = 0
    mismatches: int = 0
    reports: list[str] = field(default_factory=list)

    def check(self, transfer: Transfer) -> None:
        k = self.received
        self.received += 1
        if k >= len(self.expected):
            self._report(f"unexpected extra beat {k} in cycle {transfer.cycle}: "
                         f"{self.codec.describe(transfer.raw)}")
            return
        want = self.expected[k]
        if transfer.raw == want:
            return
        diffs = "\n    ".join(self.codec.differences(want, transfer.raw))
        self._report(f"beat {k}, cycle {transfer.cycle}: mismatch\n    {diffs}\n"
                     f"  expected: {self.codec.describe(want)}\n"
                     f"  got:      {self.codec.describe(transfer.raw)}\n"
                     f"  inputs:   {self.describe_inputs(k)}")

    def _report(self, text: str) -> None:
        self.mismatches += 1
        if len(self.reports) < self.max_reports:
            self.reports.append(text)

    @property
    def done(self) -> bool:
        return self.received >= len(self.expected)

    def result(self) -> str | None:
        """None when every expected beat arrived and matched, else the failure text."""
        problems = list(self.reports)
        if self.received < len(self.expected):
            problems.append(f"received {self.received} of {len(self.expected)} expected beats")
        if not problems:
            return None
        head = (f"{self.mismatches} mismatching beat(s) of {len(self.expected)} on port "
                f"{self.codec.name}" if self.mismatches else f"port {self.codec.name}")
        return head + ":\n" + "\n".join(problems)
