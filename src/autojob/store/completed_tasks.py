"""``record.txt``: the ids of a study's tasks that finished successfully.

Each finished task appends its id as one line. Many tasks may finish at the
same moment, on one machine or on many nodes sharing a file system, so a line
is added with one ``write()`` on a file opened with ``O_APPEND``, while holding
an exclusive ``flock`` on it: no line is lost, none is torn. Readers take
whole lines only (a line being written has no newline yet).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from autojob import SETTINGS
from autojob.errors import AutojobError, InputError
from autojob.store import record_index

__all__ = ["append_lines", "append_record", "in_record", "read_record", "record_path"]


def record_path(study_dir: Path) -> Path:
    """The record file of a study."""
    return study_dir / SETTINGS.RECORD_FILE


def append_record(study_dir: Path, task_id: str) -> Path:
    """Append ``task_id`` as one line to the study's record file; return the file.

    Raises:
        InputError: ``task_id`` is empty or holds a line break.
        AutojobError: the file cannot be written.
    """
    if not task_id or any(c in task_id for c in "\r\n\0"):
        raise InputError(f"{task_id!r} is not a task id", field="task_id")
    path = record_path(study_dir)
    append_lines(path, [task_id], what="the record")
    return path


def append_lines(path: Path, lines: Sequence[str], *, what: str) -> None:
    """Append ``lines`` to ``path`` with one ``write`` under ``flock`` (``O_APPEND``).

    ``what``: the file as messages name it.

    Raises:
        AutojobError: the file cannot be written.
    """
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            written = os.write(fd, data)
        finally:
            os.close(fd)  # closing releases the lock
    except OSError as exc:
        raise AutojobError(
            f"cannot append to {what}: {exc.strerror}",
            path=path,
            hint="check that the study directory is writable",
        ) from exc
    if written != len(data):  # pragma: no cover - a full disk
        raise AutojobError(f"the lines appended to {what} were cut short (disk full?)", path=path)


def read_record(study_dir: Path) -> list[str]:
    """The task ids in the study's record, in order (empty when there is none)."""
    try:
        raw = record_path(study_dir).read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AutojobError(
            f"cannot read the record: {exc.strerror}", path=record_path(study_dir)
        ) from exc
    complete = raw[: raw.rfind(b"\n") + 1].decode("utf-8", "replace")
    return [line.strip() for line in complete.splitlines() if line.strip()]


def in_record(study_dir: Path, task_id: str) -> bool:
    """Whether ``task_id`` is a line of the study's record.

    A search of the file's bytes, building no list: advancing from each task
    of a large study asks this once per task. A record of
    :data:`~autojob.store.record_index.INDEX_FROM` bytes or more is asked of
    its index instead, which reads a 256th of it
    (:mod:`autojob.store.record_index`).
    """
    path = record_path(study_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise AutojobError(f"cannot read the record: {exc.strerror}", path=path) from exc
    try:
        status = os.fstat(fd)
        if status.st_size >= record_index.INDEX_FROM:
            found = record_index.search_indexed(study_dir, task_id, fd, status)
            if found is not None:
                return found
        raw = record_index.read_range(fd, 0, status.st_size)
    except OSError as exc:
        raise AutojobError(f"cannot read the record: {exc.strerror}", path=path) from exc
    finally:
        os.close(fd)
    complete = raw[: raw.rfind(b"\n") + 1]
    line = task_id.encode("utf-8") + b"\n"
    if complete.startswith(line) or complete.find(b"\n" + line) >= 0:
        return True
    # a line with spaces around the id (written by hand) counts too
    return task_id.encode("utf-8") in complete and task_id in read_record(study_dir)
