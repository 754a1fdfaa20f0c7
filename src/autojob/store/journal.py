"""Journals of changed tasks, read by ``autojob status`` to stay fast.

A directory on which ``autojob status`` keeps an index holds
``.autojob/journal``. Whoever changes a task's state (its task script, submit,
cancel, the tree writers) appends the task directory's path, NUL-terminated, to
the journal of every directory above it that has one; ``status`` then re-reads
only the tasks named since its last look.

A task script appends a copy of the record it has just written too (its
start, its end): ``PATH\x1fNAME\x1fRECORD\0``, the record's file name and its
JSON text after the path, each after an ASCII unit separator (the script's
values are restricted to characters that hold none). The entry holds no
newline, so the shell writes it in one ``write`` on a file opened for
appending, and entries of task scripts ending at once never interleave (bash
writes its standard output line by line: an entry with newlines would go out
in three writes). ``status`` may take a task's state from the copy of its end
rather than read the task's files again; the files stay the truth: an entry
naming the task later without a copy (submit, cancel, a repair) has it read
from its files, and so does a rescan.

Task scripts rendered before the separator was the unit separator wrote
``PATH\nNAME\nRECORD\0``; those entries are read too, and when several of
them interleaved, every task directory they name is read from its files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from autojob import SETTINGS

__all__ = [
    "Changed",
    "entry_with_record",
    "journal_path",
    "note_changed",
    "read_journal",
    "real_paths",
]

#: per task directory named: the last entry's copy of a record (name, JSON text), or
#: None (the entry had none)
Changed = dict[str, tuple[str, str] | None]


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


#: what separates the path, the record's name and its text in an entry with a copy
SEPARATOR = "\x1f"


def entry_with_record(folder: str, name: str, record: str) -> bytes:
    """The entry a task script appends after writing ``record`` to ``folder``/``name``."""
    return f"{folder}{SEPARATOR}{name}{SEPARATOR}{record}\0".encode("utf-8", "surrogateescape")


def _entries(text: str, records: frozenset[str]) -> Iterator[tuple[str, tuple[str, str] | None]]:
    """The task directories an entry names, each with the copy of a record it holds, if any."""
    for separator in (SEPARATOR, "\n"):
        if separator in text:
            break
    else:
        yield text, None
        return
    parts = text.rsplit(separator, 2)  # the record's name and text hold no separator
    whole = len(parts) == 3 and parts[1] in records and parts[2].startswith("{")
    if whole and (separator == SEPARATOR or "\n" not in parts[0]):
        yield parts[0], (parts[1], parts[2])
        return
    if separator == SEPARATOR:
        yield text, None  # a path holding a unit separator
        return
    # a path holding a newline, or entries of older task scripts written line by line
    # and interleaved: every absolute path among the lines is read from its files
    yield text, None
    for line in text.split("\n"):
        if line.startswith("/") and line != text:
            yield line, None


def read_journal(path: str, offset: int) -> tuple[Changed, int]:
    """Return the task directories named after ``offset``, and the new offset.

    Each directory maps to the copy of a record its last entry holds (None if
    none). A trailing entry not yet terminated is left for the next read.
    """
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            data = stream.read()
    except FileNotFoundError:
        return {}, offset
    end = data.rfind(b"\0")
    if end < 0:
        return {}, offset
    entries = data[:end].decode("utf-8", "surrogateescape").split("\0")
    records = frozenset({SETTINGS.STARTED_FILE, SETTINGS.ENDED_FILE})
    found: Changed = {}
    for entry in filter(None, entries):
        found.update(_entries(entry, records))
    return found, offset + end + 1
