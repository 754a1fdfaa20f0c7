"""Helpers shared by the tests that run tasks on an executor: the local cores, or
the SLURM and Grid Engine clusters that ``scripts/slurm-up.sh`` and
``scripts/sge-up.sh`` start.

:data:`TARGETS` describes each executor as the conformance suite
(``tests/test_conformance.py``) needs it: the shortest time limit it enforces,
how to ask its queue, how to restart its controller, what it cannot do.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autojob.execution.executor import by_executor
from autojob.execution.slurm import ArrayJob, slurm_arrays
from autojob.execution.submit import DEFAULT_ONLY, select_tasks
from autojob.store.state import FINAL_STATES, State, TaskState, read_state

from .helpers import wait_until

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"

#: states of a SLURM job that has not finished yet ("" while sacct has no record)
ACTIVE = {"", "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING"}


def cluster_command(*args: str, cwd: Path | None = None) -> str:
    """Run a scheduler's command (``sinfo``, ``qstat``, ...); its stdout, stripped."""
    result = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def wait_final(paths: list[Path], timeout: float = 240, interval: float = 0.5) -> dict[Path, State]:
    """The final states of the tasks, once every one is final and accounted for.

    Each task is asked of the executor recorded with it, as ``autojob status``
    does; a task of an executor that keeps no accounting (``local``) is final
    once its files say so.
    """
    seen: dict[Path, TaskState] = {}

    def final() -> dict[Path, State] | None:
        seen.update({p: read_state(p) for p in paths})
        for executor, tasks in by_executor(list(seen.items())).values():
            if executor.asks_scheduler:
                seen.update(executor.reconcile(tasks))
        if all(s.state in FINAL_STATES and _settled(s) for s in seen.values()):
            return {p: s.state for p, s in seen.items()}
        return None

    return wait_until(
        final,
        timeout,
        "every task to end, accounted for",
        details=lambda: {p.name: (s.state, s.executor, s.accounted) for p, s in seen.items()},
        interval=interval,
    )


def _settled(state: TaskState) -> bool:
    """Accounted for, where the executor keeps accounting."""
    return state.accounted or state.executor in (None, "local")


def processes_under(folder: Path) -> list[int]:
    """Pids of the processes whose working directory lies under ``folder``."""
    found = []
    prefix = os.path.realpath(folder) + os.sep
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if (cwd + os.sep).startswith(prefix):
                found.append(int(entry))
    return found


# --- SLURM ----------------------------------------------------------------------


def slurm_submit(study: Path, max_parallel: int | None = None) -> list[ArrayJob]:
    """Submit the study's tasks as ``autojob submit --executor slurm`` does."""
    selected = select_tasks([study], DEFAULT_ONLY)
    return slurm_arrays(
        selected,
        allowed=DEFAULT_ONLY,
        max_parallel=max_parallel,
        batch_root=study / ".autojob" / "slurm",
        dry_run=False,
    )


def slurm_listed(job_ids: set[str]) -> set[str]:
    """Those of ``job_ids`` (``ARRAY_INDEX``) that squeue lists as pending or running."""
    out = cluster_command("squeue", "--noheader", "--array", "-u", "root", "--format=%i|%T")
    listed = {
        line.split("|")[0] for line in out.splitlines() if line.endswith(("|PENDING", "|RUNNING"))
    }
    return listed & job_ids


def slurm_task_plugin() -> str:
    """The cluster's TaskPlugin (task/cgroup enforces memory limits)."""
    config = cluster_command("scontrol", "show", "config")
    line = next((ln for ln in config.splitlines() if ln.startswith("TaskPlugin ")), "")
    return line.split("=", 1)[-1].strip()


def slurm_memory() -> str | None:
    """Why this SLURM cluster cannot end a task as out of memory, or None."""
    plugin = slurm_task_plugin()
    if "cgroup" in plugin:
        return None
    return f"this SLURM cluster's TaskPlugin={plugin} does not enforce memory (needs task/cgroup)"


# --- Grid Engine ----------------------------------------------------------------


def sge_listed(job_ids: set[str] | None = None) -> set[str]:
    """The array elements qstat lists as queued or running (not being deleted).

    ``job_ids``: only those of them (``JOB.TASK``); None: every one listed.
    """
    out = cluster_command("qstat", "-u", "*", "-g", "d")
    elements = set()
    for line in out.splitlines()[2:]:
        words = line.split()
        if len(words) >= 8 and "d" not in words[4]:
            elements.add(f"{words[0]}.{words[-1]}")
    return elements if job_ids is None else elements & job_ids


# --- the executors of the conformance suite -------------------------------------


def restart_daemon(up: str, down: str, daemon: str) -> Callable[[], Callable[[], None]]:
    """A restart of a controller: stops it as ``down`` does; the callable it returns
    starts it again as ``up`` does (and leaves it running)."""

    def stop() -> Callable[[], None]:
        subprocess.run([str(SCRIPTS / down), daemon], check=True, timeout=60)

        def start() -> None:
            subprocess.run([str(SCRIPTS / up)], check=True, capture_output=True, timeout=300)

        return start

    return stop


@dataclass(frozen=True)
class Target:
    """An executor as the conformance suite runs it."""

    name: str
    marks: tuple[pytest.MarkDecorator, ...]
    #: the shortest time limit it enforces well (SLURM counts minutes)
    limit: str
    #: twice ``limit``, as ``resubmit --time-factor 2`` writes it
    doubled: str
    #: the limit of the workflow's sweep tasks, and what their automatic restart asks
    workflow_limit: tuple[str, str]
    #: seconds to wait for tasks of ``limit`` to end and be accounted
    patience: float
    #: job ids (of ``job_ids``) the scheduler still lists as queued or running
    listed: Callable[[set[str]], set[str]] = lambda _ids: set()
    #: stops the controller; what it returns starts it again. None: there is none
    controller: Callable[[], Callable[[], None]] | None = None
    #: a dependency on the job of a task (its job id), in the scheduler's words
    #: (None: it has no job ids to wait for)
    dependency: Callable[[str], str] | None = None
    #: why it cannot end a task as out of memory (None: it can; asked when needed)
    no_memory_limit: Callable[[], str | None] = lambda: None
    #: what its job ids look like (None: it has none)
    job_id: re.Pattern[str] | None = None

    def param(self) -> Any:
        """This executor as a ``pytest.param`` with its cluster's mark."""
        return pytest.param(self, id=self.name, marks=self.marks)


TARGETS = (
    Target(
        "local",
        (),
        limit="00:00:04",
        doubled="00:00:08",
        workflow_limit=("0:10", "00:00:15"),
        patience=120,
        no_memory_limit=lambda: (
            "the local executor runs tasks on this machine's cores "
            "with no memory limit (scheduler_inputs.mem is a scheduler's)"
        ),
    ),
    Target(
        "slurm",
        (pytest.mark.slurm,),
        limit="00:01:00",
        doubled="00:02:00",
        workflow_limit=("00:01:00", "00:01:30"),
        patience=400,
        listed=slurm_listed,
        controller=restart_daemon("slurm-up.sh", "slurm-down.sh", "slurmctld"),
        dependency=lambda job: f"afterok:{job}",  # the element, 12_0
        no_memory_limit=slurm_memory,
        job_id=re.compile(r"\d+_\d+"),
    ),
    Target(
        "sge",
        (pytest.mark.sge,),
        limit="00:00:04",
        doubled="00:00:08",
        workflow_limit=("00:00:20", "00:00:30"),
        patience=240,
        listed=sge_listed,
        controller=restart_daemon("sge-up.sh", "sge-down.sh", "sge_qmaster"),
        dependency=lambda job: f"afterany:{job.split('.')[0]}",  # -hold_jid takes the array
        job_id=re.compile(r"\d+\.\d+"),
    ),
)
