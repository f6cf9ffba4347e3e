"""Functional coverage of the bulk tier (``ditto regress --coverage``): the suite hits every
bin on both cores, a missed bin fails the command, and the stimulus bins count what a
hand-made job holds (in SPATIAL mode: its rows' differences)."""

import numpy as np
import pytest

from ditto.cli import main
from ditto.config import preset
from ditto.enums import Mode
from ditto.verif import coverage as coverage_module
from ditto.verif.coverage import expected_bins, job_bins
from ditto.verif.regress import run_coverage
from ditto.verif.tiles import TileJob, previous_rows


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_the_suite_hits_every_bin(name):
    for coverage in run_coverage(preset(name)):
        assert not coverage.missed(), f"{coverage.core} [{name}] missed {coverage.missed()}"


def test_a_missed_bin_fails_the_command(monkeypatch, capsys):
    # Without the synthetic tiles the real tiles never store a bias.
    monkeypatch.setattr(coverage_module, "coverage_jobs", lambda config, core: [])
    assert main(["regress", "--coverage", "--config", "tiny"]) == 1
    out = capsys.readouterr().out
    assert "MISSED" in out
    bias = next(line for line in out.splitlines() if line.startswith("command    bias"))
    assert bias.split()[2:] == ["MISSED", "MISSED"]


def test_the_stimulus_bins_of_a_hand_made_job():
    config = preset("tiny")  # beats of 8 elements; LOW is -16..15
    lo, hi = config.lane_range
    diffs = np.array([
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],                  # all ZERO, then all ZERO
        [1, -3, hi, lo, 2, 2, 2, 2, 0, 5, hi + 1],          # all LOW, then ZERO+LOW+FULL
        [40, -40, 50, 60, 70, 80, 90, 100, 100, 100, 100],  # all FULL, then all FULL
    ])
    x_prev = np.full(diffs.shape, 10, np.int8)
    job = TileJob(Mode.DIFF, (x_prev + diffs).astype(np.int8), x_prev, None, accumulate=True,
                  bias=np.zeros(config.pes, np.int64), row_base=0, expected=None, cycles=0)
    hits = job_bins(job, config, "ditto_core")
    assert hits == {("class mix", "all ZERO"): 2, ("class mix", "all LOW"): 1,
                    ("class mix", "ZERO+LOW+FULL"): 1, ("class mix", "all FULL"): 2,
                    ("row end", "element 3"): 3,  # 11 elements: the last beat holds 3
                    ("command", "DIFF"): 1, ("command", "accumulate"): 1}
    assert set(hits) <= set(expected_bins(config, "ditto_core"))


def test_the_class_mix_of_a_spatial_job_is_that_of_its_row_differences():
    config = preset("tiny")
    # Rows of 11 elements, two beats each: the first row is encoded as itself (FULL), the
    # second repeats it (ZERO), the third differs from it by 0, 1, 2, 0, 1, 2, ... (ZERO
    # and LOW).
    x = np.full((3, 11), 40, np.int8)
    x[2] += np.arange(11, dtype=np.int8) % 3
    job = TileJob(Mode.SPATIAL, x, previous_rows(x), None, accumulate=False,
                  bias=np.ones(config.pes, np.int64), row_base=0, expected=None, cycles=0)
    hits = job_bins(job, config, "ditto_core")
    assert hits == {("class mix", "all FULL"): 2, ("class mix", "all ZERO"): 2,
                    ("class mix", "ZERO+LOW"): 2, ("row end", "element 3"): 3,
                    ("command", "SPATIAL"): 1, ("command", "bias"): 1}
    assert set(hits) <= set(expected_bins(config, "ditto_core"))
