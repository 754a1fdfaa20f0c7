"""Tasks that share one id: copies of a task directory, found while harvesting.

``cp -r TASK copy`` makes two tasks with one ``task_id``. A harvest notes the
id of every task it passes (those it reads and those the cache holds, whose
ids are taken from their records' text) in a Bloom filter of fixed size
(``FILTER_BITS`` bits, ``FILTER_PROBES`` bits an id): about a microsecond a
task, no file read, and the same 2 MB whether the tree holds a thousand tasks
or a million (a set of the ids' hashes took about 70 bytes a task). An id
whose bits are all set already may have been seen: it is kept as a suspect.
The first task of each suspect is found afterwards, by walking the tree once
more (reading ``task.json`` until it is found), only when there is one; that
walk also confirms the pair, so an id that only shares bits with others (about
one in 10^6 at 100,000 tasks, one in 500 at 1,000,000) reports nothing.
"""

from __future__ import annotations

import os
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.harvest.entries import Entry, Run, rel_of
from autojob.harvest.harvesters import read_json_file
from autojob.store.walk import walk_task_dirs

__all__ = ["FILTER_BITS", "FILTER_PROBES", "IdCheck", "id_in_text"]

FILTER_BITS = 1 << 24
FILTER_PROBES = 4

_ID_KEY = '"task_id":"'


def id_in_text(text: str) -> str | None:
    """The ``task_id`` of a record's compact JSON text, or None.

    The record begins with its path and metadata, so the first ``"task_id"``
    key is the metadata's (a record without one may give another's: the walk
    that names the first task of a pair confirms it).
    """
    found = text.find(_ID_KEY)
    if found < 0:
        return None
    begin = found + len(_ID_KEY)
    return text[begin : text.find('"', begin)]


class IdCheck:
    """Notes the task ids a harvest passes; tells which are shared, with both paths."""

    def __init__(self, root: str, *, bits: int = FILTER_BITS) -> None:
        """``bits``: the filter's size, a power of two of at least 8."""
        self.root = root
        self._bits = bytearray(bits // 8)
        self._mask = bits - 1
        #: (task id, path of a later task with it), in walk order
        self.repeats: list[tuple[str, str]] = []

    def note(self, task_id: str | None, rel: str | None, line: str = "") -> None:
        """Note one task's id; ``rel``: its path (else read from its cache ``line``)."""
        if not task_id:
            return
        if self._add(task_id):
            if rel is None:
                rel = rel_of(line[2 : line.index("\t", 2)])
            self.repeats.append((task_id, rel))

    def _add(self, task_id: str) -> bool:
        """Set the id's bits; whether they were all set already (seen, maybe)."""
        code = hash(task_id)
        step = (code >> 32) | 1
        bits = self._bits
        seen = True
        for probe in range(FILTER_PROBES):
            position = (code + probe * step) & self._mask
            byte, mask = position >> 3, 1 << (position & 7)
            if not bits[byte] & mask:
                seen = False
                bits[byte] |= mask
        return seen

    def entry(self, entry: Entry) -> None:
        """Note the task of an entry."""
        if entry.record is not None:
            meta = entry.record.get("metadata")
            task_id = meta.get("task_id") if isinstance(meta, dict) else None
            self.note(task_id if isinstance(task_id, str) else None, entry.rel)
        else:
            self.note(id_in_text(entry.full or entry.text()), entry.rel)

    def run(self, run: Run) -> None:
        """Note the tasks of a run (their ids read from their records' text)."""
        lines = (line for line in run.lines if line.startswith("T\t"))
        for line, full in zip(lines, run.fulls, strict=False):
            self.note(id_in_text(full), None, line)

    def problems(self) -> list[tuple[str, dict[str, Any]]]:
        """A problem for each task sharing its id with an earlier one, naming both."""
        if not self.repeats:
            return []
        wanted = {task_id for task_id, _ in self.repeats}
        first = _first_paths(self.root, wanted)
        found = []
        for task_id, rel in self.repeats:
            other = first.get(task_id)
            if other is None or other == rel:
                continue  # a hash shared by two ids, or the tree changed meanwhile
            found.append((rel, _problem(self.root, task_id, rel, other)))
        return found


def _problem(root: str, task_id: str, rel: str, other: str) -> dict[str, Any]:
    return {
        "path": os.path.join(root, rel, SETTINGS.TASK_METADATA_FILE),
        "field": "task_id",
        "message": f"task id {task_id} is also the id of {other} (a copied task directory?); "
        f"'autojob list {root} --repair' gives the copy a new id",
        "kind": "DuplicateIdError",
    }


def _first_paths(root: str, wanted: set[str]) -> dict[str, str]:
    """The path of the first task (in walk order) holding each id of ``wanted``."""
    first: dict[str, str] = {}
    for top, rel, *_ in walk_task_dirs(root):  # in the order a harvest walks them
        try:
            meta = read_json_file(os.path.join(top, SETTINGS.TASK_METADATA_FILE)) or {}
        except AutojobError:  # an unreadable task holds no id
            continue
        task_id = meta.get("task_id")
        if task_id in wanted and task_id not in first:
            first[task_id] = rel
            if len(first) == len(wanted):
                break
    return first
