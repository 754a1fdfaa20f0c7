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
from autojob.store.task_lock import hold_task_lock, task_lock

__all__ = ["claim_and_hold", "claim_tasks", "new_claim", "runner_identity"]

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
            more = extra.get(path) if extra else None
            if not _claim_locked(path, allowed, {**base, **more} if more else base, reclaim):
                continue
        claimed.append(path)
    if note:
        note_changed(claimed)
    return claimed


def claim_and_hold(
    path: Path,
    allowed: frozenset[State],
    executor: str,
    *,
    extra: dict[str, Any],
    claim: str,
    reclaim: Callable[[Path, TaskState], bool] | None = None,
) -> int | None:
    """Claim one task as :func:`claim_tasks` does, keeping its lock: the descriptor, or None.

    The caller hands the descriptor to the task script it launches (which
    releases the lock once its start is recorded) and closes its own copy, so
    the claim stands, unseen by anyone else, until the run has started. The
    claim is not noted in the status journals (the caller notes its claims
    together; the script notes its start).
    """
    fd = hold_task_lock(path)
    try:
        base = {"executor": executor, "runner": runner_identity(), "claim": claim, **extra}
        if _claim_locked(path, allowed, base, reclaim):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def _claim_locked(
    path: Path,
    allowed: frozenset[State],
    queued: dict[str, Any],
    reclaim: Callable[[Path, TaskState], bool] | None,
) -> bool:
    """Under the task's lock: claim it (its queued record ``queued``) if it may be."""
    names = set(os.listdir(path))
    found = read_state(path, names)
    state = found.state
    live = state in (State.QUEUED, State.RUNNING)
    if live and not (reclaim is not None and reclaim(path, found)):
        return False  # a live run is never claimed again, whatever was asked
    if not live and state not in allowed:
        return False
    if SETTINGS.COMMAND_FILE in names and command_alive(path) is not None:
        logger.warning("%s: a command of its earlier run still runs; not claimed", path)
        return False
    archive_run(path, names)
    record(path, "QUEUED_FILE", queued, note=False)
    return True
