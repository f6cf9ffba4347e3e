"""Sweeps on Dask: a two-worker cluster writes the serial run's CSV, a killed worker costs
only the points it was measuring, and the CLI's Done-when command writes its outputs.

The points are the `tiny` preset over P and the dispatcher's groups, costed on a 2-step
trace of the committed DiT (a second, not minutes); their syntheses are shared through one
cache, so each test measures the sweep machinery, not Yosys.
"""

import csv
import os
import shutil
import signal

import dask
import pytest
from dask.distributed import Client, LocalCluster

from ditto.cli import main
from ditto.config import preset
from ditto.flow.sweep import TIMING_FIELDS, SweepOptions, run_sweep
from ditto.sim.capture import capture_trace
from ditto.sim.trace import write_trace

BASE = preset("tiny")
SWEEPS = {"pes": [2, 4], "dispatch_groups": [1, 2]}


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    """A real trace to cost on, and a synthesis cache filled once for every test."""
    folder = tmp_path_factory.mktemp("sweep")
    index, arrays, _ = capture_trace(BASE, spec="dit-digits", steps=2)
    trace = folder / "dit-2.npz"
    write_trace(trace, index, arrays)
    synth_cache = folder / "serial"
    rows = run_sweep(BASE, SWEEPS, SweepOptions(fmax_target=None, trace=str(trace),
                                                build_dir=str(synth_cache)),
                     workers=0, csv_path=folder / "serial.csv", plot_prefix=folder / "serial")
    assert all(row["error"] is None for row in rows), rows
    return trace, synth_cache, folder / "serial.csv"


def build_dir(tmp_path, workload):
    """A build directory with the shared synthesis cache and an empty point cache."""
    _, synth_cache, _ = workload
    build = tmp_path / "build"
    build.mkdir()
    (build / "cache").symlink_to(synth_cache / "cache")
    return build


def read_csv(path, drop=TIMING_FIELDS):
    with open(path, newline="") as file:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(file)]


def test_a_two_worker_cluster_writes_the_serial_csv(tmp_path, workload):
    trace, _, serial_csv = workload
    build = build_dir(tmp_path, workload)
    finished = []
    rows = run_sweep(BASE, SWEEPS, SweepOptions(fmax_target=None, trace=str(trace),
                                                build_dir=str(build)),
                     workers=2, csv_path=tmp_path / "parallel.csv",
                     plot_prefix=tmp_path / "parallel",
                     progress=lambda index, row: finished.append(index))
    assert sorted(finished) == [0, 1, 2, 3]
    assert not any(row["cached"] for row in rows)  # measured on the workers, not read back
    serial = read_csv(serial_csv)
    assert read_csv(tmp_path / "parallel.csv") == serial
    assert [row["slug"] for row in serial] == [BASE.replace(pes=p, dispatch_groups=g).slug
                                                for p in (2, 4) for g in (1, 2)]
    for name in ("parallel-area-time.png", "parallel-area-energy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_killed_worker_costs_only_what_it_was_measuring(tmp_path, workload):
    trace, _, serial_csv = workload
    build = build_dir(tmp_path, workload)
    options = SweepOptions(fmax_target=None, trace=str(trace), build_dir=str(build))
    # No retries: a task on a killed worker fails, as a whole run that dies halfway would.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        killed = []

        def kill_the_workers(index, row):
            if not killed:  # at the first finished point, with the other still running
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed.extend(pids)

        first = run_sweep(BASE, SWEEPS, options, scheduler=cluster.scheduler_address,
                          csv_path=tmp_path / "first.csv", plot_prefix=tmp_path / "first",
                          progress=kill_the_workers)
    assert len(killed) == 2
    failed = [row for row in first if row["error"]]
    print(f"{len(failed)} of {len(first)} points lost with the killed workers")
    for row in failed:
        assert "KilledWorker" in row["error"] or "died" in row["error"], row["error"]
    done_before = [row["error"] is None for row in first]
    assert any(done_before)

    second = run_sweep(BASE, SWEEPS, options, workers=2, csv_path=tmp_path / "second.csv",
                       plot_prefix=tmp_path / "second")
    assert all(row["error"] is None for row in second)
    # Exactly the points finished before the kill come from the cache; the rest were redone.
    assert [row["cached"] for row in second] == done_before
    assert read_csv(tmp_path / "second.csv") == read_csv(serial_csv)


def test_cli_sweep_writes_the_csv_and_both_plots_with_a_progress_bar(tmp_path, workload,
                                                                      capsys):
    trace, _, serial_csv = workload
    build = build_dir(tmp_path, workload)
    assert main(["sweep", "--config", "tiny", "--sweep", "pes=2,4", "--sweep",
                 "dispatch_groups=1,2", "--workers", "2", "--fmax-target", "none",
                 "--trace", str(trace), "--build-dir", str(build), "--csv",
                 str(tmp_path / "s.csv"), "--plots", str(tmp_path / "s")]) == 0
    captured = capsys.readouterr()
    assert "4/4" in captured.err and "point" in captured.err  # tqdm's bar
    assert read_csv(tmp_path / "s.csv") == read_csv(serial_csv)
    assert (tmp_path / "s-area-time.png").is_file()
    assert (tmp_path / "s-area-energy.png").is_file()


def test_an_invalid_point_is_a_row_and_bad_options_are_one_line_errors(tmp_path, workload,
                                                                       capsys):
    trace, _, _ = workload
    build = build_dir(tmp_path, workload)
    rows = run_sweep(BASE, {"dispatch_groups": [1, 9]},
                     SweepOptions(fmax_target=None, trace=str(trace), build_dir=str(build)),
                     workers=0, csv_path=tmp_path / "x.csv", plot_prefix=tmp_path / "x")
    assert rows[0]["error"] is None and rows[0]["pareto"]
    assert "dispatch_groups" in rows[1]["error"] and not rows[1]["pareto"]
    assert rows[1]["slug"] == ""
    for argv, match in ([["sweep", "--config", "tiny"], "give at least one --sweep"],
                        [["sweep", "--sweep", "pes=two"], "pes='two': must be an integer"],
                        [["sweep", "--sweep", "pes=2", "--workers", "-1"], "--workers -1"],
                        [["sweep", "--sweep", "pes=2", "--trace", str(tmp_path / "no.npz")],
                         "no such trace file"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    shutil.rmtree(build)
