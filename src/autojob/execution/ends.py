"""Ends a scheduler tells of: written into the task's end record, under its lock.

The task script records its own end; what it cannot record (killed at its time
limit, out of memory, cancelled, its host lost) a scheduler executor learns from
its accounting and completes here. Callers hold the task's lock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.store.run_files import record
from autojob.store.state import State, TaskState, read_state

__all__ = ["cancelled_before_start", "complete_end", "jobs_to_ask", "lost"]


def jobs_to_ask(
    tasks: Sequence[tuple[Path, TaskState]],
) -> tuple[dict[str, Path], float | None]:
    """The jobs to ask a scheduler about, by job id, and the earliest time to ask from.

    A job is asked about while its task is queued or running, or until its
    accounting is written. The time is the earliest queue (or start) time of
    those tasks: None when one of them has neither, so the whole history is asked.
    """
    live = {
        s.job_id: p
        for p, s in tasks
        if s.job_id and (s.state in (State.QUEUED, State.RUNNING) or not s.accounted)
    }
    times = [s.queued_at or s.started_at for _, s in tasks if s.job_id in live]
    known = [t for t in times if t is not None]
    return live, min(known) if known and len(known) == len(times) else None


def complete_end(
    path: Path, changes: dict[str, Any], default: dict[str, Any] | None = None
) -> None:
    """Update the task's end record with ``changes`` (or write one from ``default``)."""
    try:
        ended = json.loads((path / SETTINGS.ENDED_FILE).read_bytes())
    except (OSError, ValueError):
        ended = dict(default or {"exit_code": None})
    record(path, "ENDED_FILE", {**ended, **changes})


def lost(path: Path) -> TaskState:
    """The task's state, unknown if its files call it queued or running.

    For a job the scheduler no longer knows that recorded no end.
    """
    state = read_state(path)
    if state.state in (State.QUEUED, State.RUNNING):
        state.state = State.UNKNOWN
        state.detail = "the scheduler no longer knows the job, and it recorded no end"
    return state


def cancelled_before_start(path: Path, state: TaskState) -> bool:
    """Whether the task was cancelled before its script started.

    Its job never ran, so a scheduler may keep no accounting of it (Grid
    Engine never does; SLURM may not list the pending elements of an array):
    there is nothing to wait for.
    """
    return state.state is State.CANCELLED and not (path / SETTINGS.STARTED_FILE).exists()
