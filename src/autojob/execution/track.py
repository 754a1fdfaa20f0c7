"""Bring a status report up to date with the scheduler (at most once an interval)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from autojob import SETTINGS
from autojob.errors import SchedulerError
from autojob.store.state import State
from autojob.store.status_index import StatusReport

__all__ = ["refresh_from_scheduler"]

logger = logging.getLogger(__name__)
LIVE = (State.QUEUED.value, State.RUNNING.value)


def _due(root: Path, force: bool) -> bool:
    """True if the last scheduler query for ``root`` is older than the interval."""
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
    """Update the report's scheduler tasks; return a note when the scheduler failed.

    Tasks finished on the scheduler get their end and accounting written (so the
    next status sees them from the files alone).
    """
    from autojob.execution.slurm import reconcile  # noqa: PLC0415

    col = report.columns
    rows = [
        r
        for r, job in enumerate(col["job_id"])
        if job and (col["state"][r] in LIVE or not col["accounted"][r])
    ]
    candidates = [(report.root / col["path"][r], report.state_of(r)) for r in rows]
    if not candidates or not _due(report.root, force):
        return None
    try:
        changed = reconcile(candidates)
    except SchedulerError as exc:
        logger.warning("%s", exc)
        return f"scheduler not reachable, showing what the task files say: {exc.message}"
    for path, state in changed.items():
        rel = os.path.relpath(path, report.root)
        if rel in report.rows:
            report.set_state(rel, state)
    return None
