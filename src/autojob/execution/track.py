"""Bring a status report up to date with the scheduler (at most once an interval)."""

from __future__ import annotations

import json
import logging
import os
import time
from itertools import compress
from pathlib import Path

from autojob import SETTINGS
from autojob.errors import SchedulerError
from autojob.execution.executor import Executor, by_executor
from autojob.store.state import State, TaskState
from autojob.store.status_index import StatusReport
from autojob.store.walk import is_task_path

__all__ = ["refresh_from_scheduler"]

logger = logging.getLogger(__name__)
LIVE = (State.QUEUED.value, State.RUNNING.value)


def _due(root: Path, force: bool) -> bool:
    """True if the last scheduler query for ``root`` is older than the interval."""
    if is_task_path(root):  # one task, which holds no index: asked every time
        return True
    stamp = root / SETTINGS.INDEX_DIR / "scheduler-poll.json"
    now = time.time()
    try:
        last = float(json.loads(stamp.read_bytes())["time"])
    except (OSError, ValueError, KeyError, TypeError):
        last = 0.0
    if not force and now - last < SETTINGS.SLURM_POLL_INTERVAL:
        return False
    try:
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(json.dumps({"time": now}))
    except OSError:
        pass  # a read-only tree: poll every time
    return True


def refresh_from_scheduler(report: StatusReport, *, force: bool = False) -> str | None:
    """Update the report's scheduler tasks; return a note when a scheduler failed.

    Each task is asked of the executor recorded with it (one batched query per
    executor). Tasks finished on a scheduler get their end and accounting
    written (so the next status sees them from the files alone).
    """
    col = report.columns
    candidates: list[tuple[Path, TaskState]] = []
    for r in compress(range(len(report)), col["job_id"]):  # rows with a job id, found in C
        if col["state"][r] in LIVE or not col["accounted"][r]:
            candidates.append((report.root / col["path"][r], report.state_of(r)))
    groups = {
        name: (executor, [t for t in tasks if _worth_asking(executor, t[1])])
        for name, (executor, tasks) in by_executor(candidates).items()
        if executor.asks_scheduler
    }
    groups = {name: group for name, group in groups.items() if group[1]}
    if not groups or not _due(report.root, force):
        return None
    notes = []
    for executor, tasks in groups.values():
        try:
            changed = executor.reconcile(tasks)
        except SchedulerError as exc:
            logger.warning("%s", exc)
            notes.append(exc.message)
            continue
        for path, state in changed.items():
            rel = os.path.relpath(path, report.root)
            if report.find(rel) is not None:
                report.set_state(rel, state)
    if notes:
        return "scheduler not reachable, showing what the task files say: " + "; ".join(notes)
    return None


def _worth_asking(executor: Executor, state: TaskState) -> bool:
    """Queued and running tasks; ended ones too while their accounting is missing."""
    return state.state.value in LIVE or (executor.accounts and not state.accounted)
