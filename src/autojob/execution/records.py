"""Write the state records of a run (queued, ended, cancel) and keep history.

Each record is a small JSON file written atomically in the task directory;
every write is noted in the status journals above the task.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.store.journal import note_changed

if TYPE_CHECKING:
    from autojob.store.state import State

__all__ = [
    "LOCK_FILE",
    "archive_run",
    "claim_tasks",
    "new_claim",
    "record",
    "remove_record",
    "runner_identity",
    "task_lock",
]

logger = logging.getLogger(__name__)

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


#: what the task lock is taken on where directories cannot be locked
LOCK_FILE = ".autojob.lock"


@contextmanager
def task_lock(task_dir: Path, timeout: float = 60.0) -> Iterator[None]:
    """Hold the task's lock (claiming, launching and ending a run).

    A ``flock`` on the task directory itself, released by the kernel if its
    holder dies, and cheap enough to take for every task (no file to create).
    Where a file system refuses locks on directories (NFS emulates ``flock``
    with byte-range locks, which need a file open for writing), the lock is
    taken on :data:`LOCK_FILE` in the task directory instead; every process
    on that file system does the same, so they still exclude each other.

    Raises:
        AutojobError: the lock is still held by another process after ``timeout``.
    """
    path = os.fspath(task_dir)
    fd, locked = _open_lockable(path)
    try:
        deadline = time.monotonic() + timeout
        while not locked:
            if time.monotonic() > deadline:
                raise AutojobError(
                    f"the task is locked by another autojob process for over {timeout:g} s",
                    path=path,
                    hint="wait for it to finish, or find it with 'fuser' and stop it",
                )
            time.sleep(0.01)
            locked = _try_lock(fd)
        yield
    finally:
        os.close(fd)  # releases the lock


def _open_lockable(folder: str) -> tuple[int, bool]:
    """Open what the task lock is taken on and try it once: (fd, locked)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return fd, _try_lock(fd)
    except OSError:  # no locks on directories here: lock a file in it
        os.close(fd)
    lock_file = os.path.join(folder, LOCK_FILE)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        return fd, _try_lock(fd)
    except BaseException:
        os.close(fd)
        raise


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock if free; False when another holder has it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def record(task_dir: Path, file_setting: str, data: dict[str, Any], *, note: bool = True) -> None:
    """Write one record (``file_setting`` names a SETTINGS field) atomically.

    ``note``: note the change in the status journals now (callers writing many
    records note them together afterwards).
    """
    data = {"time": time.time(), **data}
    name = getattr(SETTINGS, file_setting)
    folder = os.fspath(task_dir)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    text = (json.dumps(data) + "\n").encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            os.write(fd, text)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(folder, name))
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AutojobError(
            f"cannot record the task's state: {exc.strerror or exc}",
            path=os.path.join(folder, name),
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


def runner_identity() -> dict[str, Any]:
    """Who claims tasks: this host and process (a dead claimer frees them)."""
    from autojob.store.state import process_start_ticks, this_host  # noqa: PLC0415

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
) -> list[Path]:
    """Mark as queued by this process each task whose state is in ``allowed``.

    Under each task's lock, so two submits never claim one task; a task's
    earlier run moves to its history first. ``extra``: more fields for the
    queued record of a task (where the scheduler will run it). ``note``: note
    the claims in the status journals (else the caller does, once it is done).
    ``claim``: the token recorded with the claims (see :func:`new_claim`); a
    task script launched for it starts only while its task's queued record
    still holds it.
    """
    from autojob.store.state import State, command_alive, read_state  # noqa: PLC0415

    claimed = []
    base = {"executor": executor, "runner": runner_identity(), "claim": claim or new_claim()}
    for path in paths:
        with task_lock(path):
            names = set(os.listdir(path))
            state = read_state(path, names).state
            if state not in allowed or state in (State.QUEUED, State.RUNNING):
                continue  # a live run is never claimed again, whatever was asked
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
