"""Claims: tasks marked as queued by one runner, so no task is run twice."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.store.journal import note_changed
from autojob.store.run_files import archive_run, record
from autojob.store.state import (
    State,
    TaskState,
    command_alive,
    process_start_ticks,
    read_state,
    this_host,
)
from autojob.store.task_lock import task_lock

__all__ = ["claim_tasks", "new_claim", "runner_identity"]

logger = logging.getLogger(__name__)


def runner_identity() -> dict[str, Any]:
    """Who claims tasks: this host and process (a dead claimer frees them)."""
    pid = os.getpid()
    return {"host": this_host(), "pid": pid, "start_ticks": process_start_ticks(pid)}


def new_claim() -> str:
    """A token naming one claim of tasks (passed to their scripts as AUTOJOB_CLAIM)."""
    return uuid.uuid4().hex


def claim_tasks(
    paths: Iterable[Path],
    allowed: frozenset[State],
    executor: str,
    *,
    extra: Mapping[Path, dict[str, Any]] | None = None,
    note: bool = True,
    claim: str | None = None,
    reclaim: Callable[[Path, TaskState], bool] | None = None,
) -> list[Path]:
    """Mark as queued by this process each task whose state is in ``allowed``.

    Under each task's lock, so two submits never claim one task; a task's
    earlier run moves to its history first. ``extra``: more fields for the
    queued record of a task (where the scheduler will run it). ``note``: note
    the claims in the status journals (else the caller does, once it is done).
    ``claim``: the token recorded with the claims (see :func:`new_claim`); a
    task script launched for it starts only while its task's queued record
    still holds it. ``reclaim``: asked, under the lock, about a task whose files
    say queued or running; True claims it anyway (its run is known lost: the
    pilot that claimed it has ended and nothing of the run is left).
    """
    claimed = []
    base = {"executor": executor, "runner": runner_identity(), "claim": claim or new_claim()}
    for path in paths:
        with task_lock(path):
            names = set(os.listdir(path))
            found = read_state(path, names)
            state = found.state
            live = state in (State.QUEUED, State.RUNNING)
            if live and not (reclaim is not None and reclaim(path, found)):
                continue  # a live run is never claimed again, whatever was asked
            if not live and state not in allowed:
                continue
            if SETTINGS.COMMAND_FILE in names and command_alive(path) is not None:
                logger.warning("%s: a command of its earlier run still runs; not claimed", path)
                continue
            archive_run(path, names)
            more = extra.get(path) if extra else None
            record(path, "QUEUED_FILE", {**base, **more} if more else base, note=False)
        claimed.append(path)
    if note:
        note_changed(claimed)
    return claimed
