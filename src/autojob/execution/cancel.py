"""Cancel queued and running tasks."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from autojob import SETTINGS
from autojob.store.run_files import record
from autojob.store.state import State, process_alive, read_state, this_host
from autojob.store.task_lock import task_lock

__all__ = ["cancel_tasks"]

GRACE_SECONDS = 10.0


def _stop_group(pid: int, started: float | None, grace: float) -> None:
    """TERM the task's process group, then KILL it if it outlives ``grace``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not process_alive(pid, started):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return


def cancel_tasks(
    task_dirs: Sequence[Path], *, grace: float = GRACE_SECONDS
) -> list[tuple[Path, State]]:
    """Cancel each queued or running task; return those cancelled, with their state before.

    Every target is marked first (under its lock, so no runner launches it
    afterwards); then SLURM jobs are cancelled with one scancel call (and the
    result checked), running local tasks have their process groups stopped, and
    each target gets an end recorded as cancelled.
    """
    targets: list[tuple[Path, State]] = []
    for path in task_dirs:
        with task_lock(path):
            before = read_state(path).state
            if before not in (State.QUEUED, State.RUNNING):
                continue
            record(path, "CANCEL_FILE", {"by": f"autojob cancel (pid {os.getpid()})"})
        targets.append((path, before))
    jobs = []
    for path, _ in targets:
        now = read_state(path)
        if now.job_id:
            jobs.append(now.job_id)
        elif now.state is State.RUNNING and now.pid and now.host in (None, this_host()):
            _stop_group(now.pid, now.started_at, grace)
    if jobs:
        from autojob.execution.slurm import scancel  # noqa: PLC0415

        scancel(jobs)
    for path, _ in targets:
        with task_lock(path):
            if not (path / SETTINGS.ENDED_FILE).exists():
                job = read_state(path).job_id
                record(
                    path, "ENDED_FILE", {"exit_code": None, "reason": "cancelled", "job_id": job}
                )
    return targets
