"""The files of one run of a task: its state records, and the history of earlier runs.

Each record (queued, ended, cancel) is a small JSON file written atomically in
the task directory; every write is noted in the status journals above the
task. When a task runs again, the files of its previous run move to a
numbered directory of its history.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.store.atomic import replace_atomically
from autojob.store.journal import note_changed

__all__ = ["RUN_FILES", "archive_run", "record", "remove_record", "tail"]

#: the files of one run, moved to the history when the task runs again
RUN_FILES = (
    "QUEUED_FILE",
    "COMMAND_FILE",
    "STARTED_FILE",
    "ENDED_FILE",
    "CANCEL_FILE",
    "STDOUT_FILE",
    "STDERR_FILE",
)


def record(task_dir: Path, file_setting: str, data: dict[str, Any], *, note: bool = True) -> None:
    """Write one record (``file_setting`` names a SETTINGS field) atomically.

    ``note``: note the change in the status journals now (callers writing many
    records note them together afterwards).
    """
    data = {"time": time.time(), **data}
    name = getattr(SETTINGS, file_setting)
    target = os.path.join(task_dir, name)
    try:
        replace_atomically(target, (json.dumps(data) + "\n").encode(), keep_mode=False)
    except OSError as exc:
        raise AutojobError(
            f"cannot record the task's state: {exc.strerror or exc}",
            path=target,
            hint="check that the task directory is writable and the disk not full",
        ) from exc
    if note:
        note_changed([task_dir])


def remove_record(task_dir: Path, file_setting: str) -> None:
    """Remove a record if present, noting the change."""
    try:
        os.unlink(os.path.join(task_dir, getattr(SETTINGS, file_setting)))
    except FileNotFoundError:
        return
    note_changed([task_dir])


def archive_run(task_dir: Path, names: set[str] | None = None) -> Path | None:
    """Move the files of the previous run into the history; return where.

    ``names``: the directory's entries, when the caller has listed them.
    """
    if names is None:
        names = set(os.listdir(task_dir))
    present = [getattr(SETTINGS, f) for f in RUN_FILES if getattr(SETTINGS, f) in names]
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


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file, such as a run's standard error.

    Only the end of the file is read (4 KiB for every 20 lines asked); bytes
    that are not UTF-8 are replaced. "" when the file is missing, unreadable
    or empty, or ``lines`` is not positive.
    """
    if lines <= 0:
        return ""
    size = 4096 * max(1, lines // 20 + 1)
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - size))
            text = stream.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
