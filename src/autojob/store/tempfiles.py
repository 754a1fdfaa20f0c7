"""Temporary files beside the files they become, and the leftovers of killed writers.

Every file autojob writes atomically is first written to a hidden temporary
file in the same directory, named after the target, this host and this
process (``.archive.csv.node7+4242.k3j9x0aa.tmp``). A writer that is stopped
by an exception, Ctrl-C or SIGTERM removes its own; one killed outright
(SIGKILL, a node crash) cannot. :func:`remove_leftovers` removes those: the
temporary files of a target whose writer was a process of this host that is
gone, and, for other hosts (whose processes cannot be checked) and for names
without a writer (written by earlier versions), those untouched for
:data:`LEFTOVER_AGE` seconds. The temporary file of a writer still running is
never removed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import time
from pathlib import Path

from autojob.store.state import process_alive, this_host

__all__ = [
    "LEFTOVER_AGE",
    "SUFFIXES",
    "discard",
    "discard_own",
    "make_temp",
    "remove_leftovers",
    "temp_prefix",
]

logger = logging.getLogger(__name__)
#: seconds after which a temporary file nobody can vouch for is a leftover
LEFTOVER_AGE = 24 * 3600.0
#: the suffixes of autojob's temporary files
SUFFIXES = (".tmp", ".spool")
#: what ``tempfile`` adds between prefix and suffix
_RANDOM = r"[a-z0-9_]{8}"


def temp_prefix(path: Path) -> str:
    """The prefix of this process's temporary files for ``path``."""
    return f".{path.name}.{this_host()}+{os.getpid()}."


def make_temp(path: Path, suffix: str = ".tmp", *, mode: int = 0o600) -> tuple[int, str]:
    """Create a temporary file for ``path`` beside it; return its fd and name.

    The file gets ``mode`` less the umask (as ``open`` gives a new file). Its
    name is :func:`temp_prefix`, 8 random characters and ``suffix``.
    Interrupted (Ctrl-C, SIGTERM) after the file was made but before its name
    is returned, it removes the file: this process's files for ``path`` with
    that suffix (a process writes one such file for a target at a time).

    Raises:
        OSError: the file cannot be created (the directory is missing, not
            writable or full).
    """
    prefix = temp_prefix(path)
    folder = os.path.dirname(os.fspath(path))
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        for _ in range(100):  # as tempfile.mkstemp: a taken name is tried again
            name = os.path.join(folder, prefix + os.urandom(4).hex() + suffix)
            try:
                return os.open(name, flags, mode), name
            except FileExistsError:
                continue
        raise FileExistsError(errno.EEXIST, "no temporary file name is free", folder)
    except BaseException as exc:
        if not isinstance(exc, OSError):
            discard_own(path, suffix)
        raise


def discard_own(path: str | Path, suffix: str = ".tmp") -> None:
    """Remove this process's temporary files for ``path`` (those with ``suffix``).

    For a writer interrupted (Ctrl-C, SIGTERM) between making its temporary
    file and holding its name: a process writes one such file for a target at
    a time, so its own are the ones to remove.
    """
    target = Path(path)
    folder = target.parent
    for own in _own(folder, temp_prefix(target), suffix):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / own)


def discard(name: str | Path) -> None:
    """Remove a temporary file, if it is still there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)


def _own(folder: Path, prefix: str, suffix: str) -> list[str]:
    try:
        return [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(suffix)]
    except OSError:
        return []


def _pattern(name: str) -> re.Pattern[str]:
    suffixes = "|".join(re.escape(s) for s in SUFFIXES)
    return re.compile(
        rf"\.{re.escape(name)}\.(?:(?P<host>[^+/]+)\+(?P<pid>\d+)\.)?{_RANDOM}(?:{suffixes})"
    )


def _is_leftover(match: re.Match[str], mtime: float, now: float) -> bool:
    host, pid = match.group("host"), match.group("pid")
    if host is not None and host == this_host():
        number = int(pid)
        return number != os.getpid() and not process_alive(number, started_before=mtime)
    return now - mtime > LEFTOVER_AGE


def remove_leftovers(path: Path) -> list[Path]:
    """Remove the temporary files for ``path`` that killed writers left; return them."""
    pattern = _pattern(path.name)
    folder = path.parent
    try:
        names = [n for n in os.listdir(folder) if n.startswith(f".{path.name}.")]
    except OSError:
        return []
    removed = []
    now = time.time()
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        leftover = folder / name
        try:
            mtime = os.lstat(leftover).st_mtime
        except OSError:
            continue
        if _is_leftover(match, mtime, now):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
                removed.append(leftover)
                logger.info("removed %s, left by a writer that was killed", leftover)
    return removed
