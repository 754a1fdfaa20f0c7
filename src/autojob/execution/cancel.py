"""Cancel queued and running tasks, each through the executor that runs it."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from autojob import SETTINGS
from autojob.execution.executor import by_executor
from autojob.store.run_files import record
from autojob.store.state import State, read_state
from autojob.store.task_lock import task_lock

__all__ = ["GRACE_SECONDS", "cancel_tasks"]

GRACE_SECONDS = 10.0
logger = logging.getLogger(__name__)


def cancel_tasks(
    task_dirs: Sequence[Path], *, grace: float = GRACE_SECONDS
) -> list[tuple[Path, State]]:
    """Cancel each queued or running task; return those cancelled, with their state before.

    Every target is marked first (under its lock, so no runner launches it
    afterwards); then each executor recorded with the targets stops its own
    (one batched call per executor: a scheduler's cancel command, or every
    process of the runs here), and each target gets an end recorded as
    cancelled once nothing of its run is left. A task of which a process
    survives SIGKILL is logged and left running (and not returned).
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
    left: set[Path] = set()
    for executor, tasks in by_executor(now).values():
        left.update(executor.cancel(tasks, grace=grace))
    for path in sorted(left):
        logger.error("%s: processes of its run are still alive after SIGKILL", path)
    targets = [(path, before) for path, before in targets if path not in left]
    for path, _ in targets:
        with task_lock(path):
            if not (path / SETTINGS.ENDED_FILE).exists():
                job = read_state(path).job_id
                record(
                    path, "ENDED_FILE", {"exit_code": None, "reason": "cancelled", "job_id": job}
                )
    return targets
