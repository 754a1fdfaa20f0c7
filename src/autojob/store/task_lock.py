"""The lock of one task directory, held while a run is claimed, launched or ended."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autojob.errors import AutojobError

__all__ = ["LOCK_FILE", "hold_task_lock", "task_lock"]

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
    fd = hold_task_lock(task_dir, timeout)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def hold_task_lock(task_dir: Path, timeout: float = 60.0) -> int:
    """Take the task's lock (as :func:`task_lock`) and return the descriptor holding it.

    The lock lasts until every copy of the descriptor is closed: a launcher
    can hand it to the task script it starts (which releases it once its
    start is recorded), so no one can claim the task in between.

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
    except BaseException:
        os.close(fd)
        raise
    return fd


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
