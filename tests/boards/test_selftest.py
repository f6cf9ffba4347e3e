"""The boards' self-test top in the Amaranth simulator: the very component each board
builds (same config, same ROM contents, looping), so its pass LED means this test passed.
Mutations of the ROM's expected values and cycle predictions must light the fail LED."""

import dataclasses

import pytest

from ditto.boards.selftest import (
    WATCHDOG_SLACK,
    ErrorKind,
    SelfTest,
    rom_contents,
    run_cycles,
    selftest_jobs,
    simulate_selftest,
)
from ditto.boards.targets import BOARDS
from ditto.config import preset
from ditto.enums import Mode

#: One board per distinct configuration (the ULX3S variants share one).
BOARD_CONFIGS = {"icebreaker": BOARDS["icebreaker"], "ulx3s": BOARDS["ulx3s"]}
CONFIG = preset("tiny")


def check_passes(top, runs=2):
    result = simulate_selftest(top, runs=runs)
    assert result.error is ErrorKind.NONE, result
    assert result.passed and not result.failed, result
    assert result.runs == runs
    return result


def check_fails(top, kind, job):
    result = simulate_selftest(top, runs=1)
    assert result.failed and not result.passed, result
    assert (result.error, result.error_job) == (kind, job), result
    return result


@pytest.mark.parametrize("board", sorted(BOARD_CONFIGS))
def test_board_selftest_passes_and_reruns(board):
    top = BOARD_CONFIGS[board].selftest()
    assert top.config == BOARDS[board].config
    result = check_passes(top, runs=2)
    assert result.cycles <= 2 * top.run_cycles


def test_selftest_runs_real_tiles_act_then_diff():
    jobs = selftest_jobs(CONFIG)
    assert [job.mode for job in jobs] == [Mode.ACT, Mode.DIFF, Mode.DIFF, Mode.DIFF]
    assert all(job.expected is not None and job.rows == 16 for job in jobs)
    assert [job.accumulate for job in jobs] == [False, True, True, True]


def _checked_job(top, index):
    """The job holding checked value ``index`` (row-major over rows and PEs)."""
    per_job = [job.rows * top.config.pes for job in top.jobs]
    for job, count in enumerate(per_job):
        if index < count:
            return job
        index -= count
    raise AssertionError("index beyond the checked values")


@pytest.mark.parametrize("index", [0, 37, 16 * 2 * 4 - 1])
def test_corrupted_expected_value_lights_fail_led(index):
    top = SelfTest(config=CONFIG, corrupt_output=index)
    check_fails(top, ErrorKind.VALUE, _checked_job(top, index))


def test_corrupt_output_changes_exactly_one_rom_value():
    jobs = selftest_jobs(CONFIG)
    good = rom_contents(CONFIG, jobs)["expected"]
    bad = rom_contents(CONFIG, jobs, corrupt_output=5)["expected"]
    changed = [(r, pe) for r, (a, b) in enumerate(zip(good, bad, strict=True))
               for pe in range(CONFIG.pes) if a["y"][pe] != b["y"][pe]]
    assert changed == [(2, 1)]
    assert bad[2]["y"][1] == good[2]["y"][1] + 1


@pytest.mark.parametrize("job", [0, 2])
def test_corrupted_cycle_prediction_lights_fail_led(job):
    check_fails(SelfTest(config=CONFIG, corrupt_cycles=job), ErrorKind.CYCLES, job)


def test_core_built_unlike_the_modelled_config_fails():
    # Predictions for one lane group a cycle into a 1-group FIFO, hardware with tiny's
    # dispatcher: the values stay equal, so the first tile whose predicted cycle count
    # differs is the one the checker must stop at.
    jobs = selftest_jobs(CONFIG.replace(dispatch_groups=1, dispatch_depth=1))
    built = selftest_jobs(CONFIG)
    differs = [i for i, (a, b) in enumerate(zip(jobs, built, strict=True))
               if a.cycles != b.cycles]
    assert differs, "the two dispatchers should differ in some tile's cycles"
    check_fails(SelfTest(config=CONFIG, jobs=jobs), ErrorKind.CYCLES, differs[0])


def test_tile_running_past_its_prediction_is_a_timeout():
    jobs = selftest_jobs(CONFIG)
    jobs[1] = dataclasses.replace(jobs[1], cycles=jobs[1].cycles - WATCHDOG_SLACK - 10)
    check_fails(SelfTest(config=CONFIG, jobs=jobs), ErrorKind.TIMEOUT, 1)


def test_output_for_an_unexpected_row_is_a_row_error(monkeypatch):
    top = SelfTest(config=CONFIG)
    words = top.rom_contents()
    words["expected"][3]["row"] += 1
    monkeypatch.setattr(top, "rom_contents", lambda: words)
    check_fails(top, ErrorKind.ROW, 0)


def test_one_shot_selftest_stops_after_one_run():
    result = simulate_selftest(SelfTest(config=CONFIG, loop=False), runs=2,
                               max_cycles=3 * run_cycles(selftest_jobs(CONFIG)))
    assert result.passed and result.runs == 1


def test_init_wrong_config():
    with pytest.raises(TypeError, match="config must be a DittoConfig, not 'tiny'"):
        SelfTest(config="tiny")


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"corrupt_output": 128}, ValueError, r"corrupt_output=128: must be in 0\.\.127"),
    ({"corrupt_output": -1}, ValueError, r"corrupt_output=-1"),
    ({"corrupt_cycles": 4}, ValueError, r"corrupt_cycles=4: must be in 0\.\.3"),
    ({"corrupt_cycles": "1"}, TypeError, r"corrupt_cycles must be an integer or None, not '1'"),
    ({"loop": 1}, TypeError, r"loop must be True or False, not 1"),
    ({"jobs": []}, ValueError, r"jobs must not be empty"),
])
def test_init_wrong_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        SelfTest(config=CONFIG, **kwargs)


def test_selftest_jobs_wrong_case():
    with pytest.raises(ValueError, match="case 'conv9x9': the fixture has attention_qk"):
        selftest_jobs(CONFIG, case="conv9x9")
