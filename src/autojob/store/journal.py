"""Journals of changed tasks, read by ``autojob status`` to stay fast.

A directory on which ``autojob status`` keeps an index holds
``.autojob/journal``. Whoever changes a task's state (its task script, submit,
cancel, the tree writers) appends the task directory's path, NUL-terminated, to
the journal of every directory above it that has one; ``status`` then re-reads
only the tasks named since its last look.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from autojob import SETTINGS

__all__ = ["journal_path", "note_changed", "read_journal", "real_paths"]


def journal_path(root: str | Path) -> str:
    """Return the journal file of ``root`` (it may not exist)."""
    return os.path.join(os.fspath(root), SETTINGS.INDEX_DIR, "journal")


def _journals_above(folder: str, cache: dict[str, str | None]) -> list[str]:
    found = []
    current = folder
    while True:
        if current not in cache:
            candidate = journal_path(current)
            cache[current] = candidate if os.path.isfile(candidate) else None
        if cache[current] is not None:
            found.append(cache[current])
        parent = os.path.dirname(current)
        if parent == current:
            return [j for j in found if j is not None]
        current = parent


def real_paths(paths: Iterable[str | Path]) -> Iterator[str]:
    """The canonical (``realpath``) form of each path, resolving shared ancestors once.

    Resolving a path walks every component; task directories share their
    ancestors, so each directory is resolved once: a directory that is not
    a symbolic link is its resolved parent joined with its name.
    """
    known: dict[str, str] = {}

    def resolve(text: str) -> str:
        found = known.get(text)
        if found is not None:
            return found
        head, name = os.path.split(text)
        if not name or head == text or os.path.islink(text):
            found = os.path.realpath(text)
        else:
            found = os.path.join(resolve(head), name)
        known[text] = found
        return found

    for path in paths:
        text = os.fspath(path)
        if ".." in text.split(os.sep):  # '..' after a link is not lexical
            yield os.path.realpath(text)
        else:
            yield resolve(os.path.abspath(text))


def note_changed(task_dirs: Iterable[str | Path]) -> None:
    """Append each task directory to the journals of the directories above it."""
    cache: dict[str, str | None] = {}
    lines: dict[str, list[str]] = {}
    for folder in real_paths(task_dirs):
        for journal in _journals_above(folder, cache):
            lines.setdefault(journal, []).append(folder)
    for journal, folders in lines.items():
        data = "".join(f"{f}\0" for f in folders).encode("utf-8", "surrogateescape")
        try:
            fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
        except OSError:
            continue  # removed meanwhile: its index will be rebuilt
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def read_journal(path: str, offset: int) -> tuple[set[str], int]:
    """Return the task directories named after ``offset``, and the new offset.

    A trailing entry not yet terminated is left for the next read.
    """
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            data = stream.read()
    except FileNotFoundError:
        return set(), offset
    end = data.rfind(b"\0")
    if end < 0:
        return set(), offset
    entries = data[:end].split(b"\0")
    return {e.decode("utf-8", "surrogateescape") for e in entries if e}, offset + end + 1
