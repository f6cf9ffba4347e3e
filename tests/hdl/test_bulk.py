"""The Verilator bulk tier (``ditto.verif.bulk``): the committed real tiles (ACT, DIFF and
SPATIAL steps) through both cores' compiled models, and every kind of difference from the
model reported by the job and the field. (Its speed is a benchmark: ``make bench-sim``.)"""

import copy
import functools
import re
import subprocess

import numpy as np
import pytest

from ditto.config import preset
from ditto.sim.fixtures import committed_cases
from ditto.verif.bulk import _stimulus_header, build_bulk_model, run_bulk
from ditto.verif.core_runner import CoreTraffic
from ditto.verif.tiles import fixture_jobs

CONFIG = preset("tiny")
EXACT = CoreTraffic("exact_timing")
TRAFFIC = CoreTraffic("backpressure", backpressure=0.4, idle=0.3, seed=5)
CORES = ("ditto_core", "dense_core")


@functools.cache
def bulk(core):
    """The core's bulk model and the committed fixture's jobs for it."""
    jobs = []
    for case in committed_cases():
        jobs += fixture_jobs(case, CONFIG, core.removesuffix("_core"), spatial=True)
    return build_bulk_model(core, CONFIG), jobs


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("traffic", [EXACT, TRAFFIC], ids=lambda t: t.name)
def test_real_tiles_equal_the_model(core, traffic):
    model, jobs = bulk(core)
    run = run_bulk(model, jobs, traffic)
    assert run.jobs == len(jobs)
    assert run.rows == sum(job.rows for job in jobs)
    if traffic is EXACT:
        # Every job's cycles were checked against the model's; so is their sum.
        assert run.cycles == sum(job.cycles for job in jobs)
    else:
        assert run.cycles > sum(job.cycles for job in jobs)  # the traffic slowed it down


def _checked(jobs):
    return next(i for i, job in enumerate(jobs) if job.expected is not None and job.rows > 2)


def _wrong_value(jobs):
    jobs[_checked(jobs)].expected[2, 1] += 1
    return "output beat 2: y[1]: the model says"


def _wrong_cycles(jobs):
    jobs[3].cycles += 1
    return "the cycle model predicts"


def _wrong_groups(jobs):
    jobs[3].counters["groups"] += 1
    return "groups: the model says"


def _wrong_class_count(jobs):
    jobs[3].counters["low"] += 1
    return "low: the model says"


def _wrong_stalls(jobs):
    jobs[3].counters["stall_cycles"] += 1
    return "stall_cycles: the model says"


def _wrong_row(jobs):
    job = jobs[_checked(jobs)]
    job.expected = job.expected[::-1].copy()  # rows out of order
    return "y[0]: the model says"


# DenseCore's groups (MAC beats) and class counts follow from the tile's shape, and it
# never stalls; DittoCore's depend on the data.
MUTANTS = [(core, mutate) for core in CORES
           for mutate in (_wrong_value, _wrong_cycles, _wrong_row,
                          *((_wrong_groups, _wrong_class_count, _wrong_stalls)
                            if core == "ditto_core" else ()))]


@pytest.mark.parametrize(("core", "mutate"), MUTANTS,
                         ids=[f"{core}-{mutate.__name__}" for core, mutate in MUTANTS])
def test_a_difference_from_the_model_fails_naming_job_and_field(core, mutate):
    model, jobs = bulk(core)
    jobs = copy.deepcopy(jobs)
    message = mutate(jobs)
    with pytest.raises(AssertionError, match=re.escape(message)) as failure:
        run_bulk(model, jobs, EXACT)
    assert "job " in str(failure.value)


@pytest.mark.parametrize("core", CORES)
def test_under_traffic_values_are_checked_and_stalls_are_not(core):
    model, jobs = bulk(core)
    changed = copy.deepcopy(jobs)
    changed[3].counters["stall_cycles"] += 7  # traffic changes the stalls: not compared
    changed[3].cycles += 7                    # nor the cycles
    run_bulk(model, changed, TRAFFIC)
    _wrong_value(changed)
    with pytest.raises(AssertionError, match=re.escape("y[1]: the model says")):
        run_bulk(model, changed, TRAFFIC)


@pytest.mark.parametrize("core", CORES)
def test_a_malformed_stimulus_is_reported(core, tmp_path):
    model, _ = bulk(core)

    def run(stimulus: bytes) -> str:
        path = tmp_path / "stimulus.bin"
        path.write_bytes(stimulus)
        done = subprocess.run([str(model.executable), str(path)], capture_output=True,
                              text=True)
        assert done.returncode == 1
        return done.stderr

    assert "not a ditto bulk stimulus" in run(b"\x00" * 6)
    header = np.frombuffer(_stimulus_header(model), np.uint32).copy()
    assert "ends inside a job header" in run(header.tobytes())
    header[4] += 1  # the act port's words: a stimulus for another configuration
    assert "written for another configuration or core" in run(header.tobytes())


def test_an_error_while_making_the_stimulus_stops_the_harness():
    model, jobs = bulk("ditto_core")

    def failing():
        yield jobs[0]
        raise ValueError("a job could not be made")

    # The harness sees its input end and exits; the error reaches the caller (no hang).
    with pytest.raises(ValueError, match="could not be made"):
        run_bulk(model, failing(), EXACT)
