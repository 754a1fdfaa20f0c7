"""Cancel queued and running tasks, each through the executor that runs it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from autojob import SETTINGS
from autojob.execution.executor import by_executor
from autojob.execution.records import record, task_lock
from autojob.store.state import State, read_state

__all__ = ["GRACE_SECONDS", "cancel_tasks"]

GRACE_SECONDS = 10.0


def cancel_tasks(
    task_dirs: Sequence[Path], *, grace: float = GRACE_SECONDS
) -> list[tuple[Path, State]]:
    """Cancel each queued or running task; return those cancelled, with their state before.

    Every target is marked first (under its lock, so no runner launches it
    afterwards); then each executor recorded with the targets stops its own
    (one batched call per executor: a scheduler's cancel command, or the
    process groups of tasks running here), and each target gets an end
    recorded as cancelled.
    """
    targets: list[tuple[Path, State]] = []
    for path in task_dirs:
        with task_lock(path):
            before = read_state(path).state
            if before not in (State.QUEUED, State.RUNNING):
                continue
            record(path, "CANCEL_FILE", {"by": f"autojob cancel (pid {os.getpid()})"})
        targets.append((path, before))
    now = [(path, read_state(path)) for path, _ in targets]
    for executor, tasks in by_executor(now).values():
        executor.cancel(tasks, grace=grace)
    for path, _ in targets:
        with task_lock(path):
            if not (path / SETTINGS.ENDED_FILE).exists():
                job = read_state(path).job_id
                record(
                    path, "ENDED_FILE", {"exit_code": None, "reason": "cancelled", "job_id": job}
                )
    return targets
