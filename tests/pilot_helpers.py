"""Helpers shared by the pilot tests (local, SLURM, Grid Engine)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.execution.pilots.pool import Pool, pools_under
from autojob.store.state import FINAL_STATES, State, read_state

from .helpers import alive, run, wait_until

#: a task's command that counts its completed runs and any run overlapping another
#: (a run holds flock on inflight.lock; the kernel drops it when the run dies); a
#: run stopped by a signal exits as its command did
COUNTED = (
    "flock -n -E 75 inflight.lock -c 'sleep {sleep}; echo done >> runs.txt'; "
    "code=$?; if [ $code = 75 ]; then echo overlap >> overlaps.txt; exit 1; fi; exit $code"
)


#: the file of a study that says how long each :func:`counted_paced` task of it sleeps
PACE = "pace"


def counted(sleep: float = 0) -> str:
    """The command of a task that counts its runs (see :data:`COUNTED`)."""
    return COUNTED.format(sleep=sleep)


def counted_paced() -> str:
    """A :func:`counted` task sleeping what its study's :data:`PACE` file says, when it starts."""
    return COUNTED.format(sleep=f'"$(cat ../../{PACE})"')


def submit_pilots(study: Path, *args: str) -> str:
    """``autojob submit STUDY --pilots ...``; its output."""
    result = run("submit", study, *args, cwd=study.parent)
    assert result.returncode == 0, result.stderr
    assert "pilot(s)" in result.stdout, result.stdout
    return result.stdout


def running_pilots(pool: Pool) -> list[dict[str, Any]]:
    """The records of the pool's pilots whose worker runs (on this machine)."""
    return [r for r in pool.pilots() if r.get("ended") is None and alive(int(r["pid"]))]


def revived_by_status(study: Path) -> int:
    """Run ``autojob status``; the pilots it submitted (to a pool with work and no pilot)."""
    status = run("status", study, "--json", cwd=study.parent)
    assert status.returncode == 0, status.stderr
    return sum(len(pool["revived"]) for pool in json.loads(status.stdout)["pilots"])


def the_pool(study: Path) -> Pool:
    """The one pool of ``study``."""
    (pool,) = pools_under(study)
    return pool


def wait_all_final(paths: list[Path], timeout: float) -> dict[Path, State]:
    """Each task's state, once all are final."""
    seen: dict[Path, State] = {}

    def final() -> dict[Path, State] | None:
        seen.update({p: read_state(p).state for p in paths if seen.get(p) not in FINAL_STATES})
        return dict(seen) if all(s in FINAL_STATES for s in seen.values()) else None

    return wait_until(
        final,
        timeout,
        "every task to end",
        details=lambda: {s: list(seen.values()).count(s) for s in set(seen.values())},
        interval=0.5,
    )


def wait_pilots_ended(pool: Pool, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The pool's pilot records once ``count`` of them recorded their end."""

    def ended() -> list[dict[str, Any]] | None:
        records = list(pool.pilots())
        done = [r for r in records if r.get("ended") is not None]
        return records if len(done) >= count else None

    return wait_until(
        ended, timeout, f"{count} pilot(s) to end", details=lambda: list(pool.pilots())
    )


def completed_runs(task: Path) -> int:
    """How many runs of a :func:`counted` task completed."""
    file = task / "runs.txt"
    return len(file.read_text().splitlines()) if file.exists() else 0


def successful_ends(task: Path) -> int:
    """How many runs of the task recorded a successful end (its history included)."""
    ends = [
        task / SETTINGS.ENDED_FILE,
        *task.glob(f"{SETTINGS.HISTORY_DIR}/*/{SETTINGS.ENDED_FILE}"),
    ]
    return sum(1 for end in ends if end.exists() and json.loads(end.read_text())["exit_code"] == 0)


def check_deaths(paths: list[Path]) -> dict[str, int]:
    """Every task ended ``success`` exactly once, none lost, no run overlapping another.

    A run killed after its command finished but before its end was recorded
    is, to autojob, a run that did not end: it is run again (its command then
    completes twice), as it would be alone. Those are counted, not failed.
    """
    ends = [successful_ends(p) for p in paths]
    lost, twice = sum(1 for e in ends if e == 0), sum(1 for e in ends if e > 1)
    assert (lost, twice) == (0, 0), f"{lost} task(s) lost, {twice} ended success twice"
    assert sum(overlaps(p) for p in paths) == 0  # none concurrent
    runs = [completed_runs(p) for p in paths]
    assert min(runs) >= 1
    return {
        "lost": lost,
        "successful ends twice": twice,
        "commands completed, killed before recording their end, run again": sum(
            1 for r in runs if r > 1
        ),
    }


def overlaps(task: Path) -> int:
    """How many runs of a :func:`counted` task found another run of it going on."""
    file = task / "overlaps.txt"
    return len(file.read_text().splitlines()) if file.exists() else 0


def stats(task: Path) -> dict[str, Any]:
    """The accounting the pilot wrote for the task."""
    data: dict[str, Any] = json.loads((task / SETTINGS.SCHEDULER_STATS_FILE).read_text())
    return data


def kill_pilot(record: dict[str, object], with_tasks: bool) -> None:
    """SIGKILL a pilot's worker, then (if asked) the task scripts it ran, as a node loss would.

    The worker goes first: alive, it would see its tasks killed and record them failed.
    """
    pid = int(str(record["pid"]))
    children = []
    for task in Path("/proc").glob("[0-9]*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid):  # a child of the worker: a task script, its session leader
            children.append(int(task.name))
    os.kill(pid, signal.SIGKILL)
    for child in children if with_tasks else []:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child, signal.SIGKILL)
