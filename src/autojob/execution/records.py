"""Write the state records of a run (queued, ended, cancel) and keep history.

Each record is a small JSON file written atomically in the task directory;
every write is noted in the status journals above the task.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from autojob import SETTINGS
from autojob.store.atomic import write_atomic
from autojob.store.journal import note_changed

if TYPE_CHECKING:
    from autojob.store.state import State

__all__ = ["archive_run", "claim_tasks", "record", "remove_record", "runner_identity", "task_lock"]

#: the files of one run, moved to the history when the task runs again
RUN_FILES = (
    "QUEUED_FILE",
    "STARTED_FILE",
    "ENDED_FILE",
    "CANCEL_FILE",
    "STDOUT_FILE",
    "STDERR_FILE",
)


@contextmanager
def task_lock(task_dir: Path, timeout: float = 60.0) -> Iterator[None]:
    """Hold the task's lock (claiming, launching and ending a run)."""
    with FileLock(os.path.join(task_dir, ".autojob.lock"), timeout=timeout):
        yield


def record(task_dir: Path, file_setting: str, data: dict[str, Any]) -> None:
    """Write one record (``file_setting`` names a SETTINGS field) atomically."""
    data = {"time": time.time(), **data}
    path = Path(task_dir, getattr(SETTINGS, file_setting))
    write_atomic(path, json.dumps(data) + "\n")
    note_changed([task_dir])


def remove_record(task_dir: Path, file_setting: str) -> None:
    """Remove a record if present, noting the change."""
    try:
        os.unlink(os.path.join(task_dir, getattr(SETTINGS, file_setting)))
    except FileNotFoundError:
        return
    note_changed([task_dir])


def archive_run(task_dir: Path) -> Path | None:
    """Move the files of the previous run into the history; return where."""
    present = [
        getattr(SETTINGS, name)
        for name in RUN_FILES
        if os.path.exists(os.path.join(task_dir, getattr(SETTINGS, name)))
    ]
    if not present:
        return None
    history = Path(task_dir, SETTINGS.HISTORY_DIR)
    history.mkdir(exist_ok=True)
    number = 1 + max((int(p.name) for p in history.iterdir() if p.name.isdigit()), default=0)
    target = history / str(number)
    target.mkdir()
    for name in present:
        shutil.move(os.path.join(task_dir, name), target / name)
    return target


def runner_identity() -> dict[str, Any]:
    """Who claims tasks: this host and process (a dead claimer frees them)."""
    from autojob.store.state import this_host  # noqa: PLC0415

    return {"host": this_host(), "pid": os.getpid()}


def claim_tasks(paths: Iterable[Path], allowed: frozenset[State], executor: str) -> list[Path]:
    """Mark as queued by this process each task whose state is in ``allowed``.

    Under each task's lock, so two submits never claim one task; a task's
    earlier run moves to its history first.
    """
    from autojob.store.state import read_state  # noqa: PLC0415

    claimed = []
    identity = runner_identity()
    for path in paths:
        with task_lock(path):
            if read_state(path).state not in allowed:
                continue
            archive_run(path)
            record(path, "QUEUED_FILE", {"executor": executor, "runner": identity})
        claimed.append(path)
    return claimed
