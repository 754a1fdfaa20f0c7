"""Tasks that share one id: copies of a task directory, found while harvesting.

``cp -r TASK copy`` makes two tasks with one ``task_id``. A harvest notes the
hash of the id of every task it passes (those it reads and those the cache
holds, whose ids are taken from their records' text) in a set: a fraction of a
microsecond and about 70 bytes a task, and no file read. The first task of a
pair is found afterwards, by walking the tree once more (reading ``task.json``
until it is found), only when there is a pair; that walk also confirms the pair.
"""

from __future__ import annotations

import os
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.harvest.entries import Entry, Run, rel_of
from autojob.harvest.harvesters import read_json_file
from autojob.store.walk import walk_task_dirs

__all__ = ["IdCheck", "id_in_text"]

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

    def __init__(self, root: str) -> None:
        self.root = root
        self._seen: set[int] = set()
        #: (task id, path of a later task with it), in walk order
        self.repeats: list[tuple[str, str]] = []

    def _note(self, task_id: str | None, rel: str | None, line: str = "") -> None:
        if not task_id:
            return
        seen = self._seen
        size = len(seen)
        seen.add(hash(task_id))
        if len(seen) == size:
            if rel is None:
                rel = rel_of(line[2 : line.index("\t", 2)])
            self.repeats.append((task_id, rel))

    def entry(self, entry: Entry) -> None:
        """Note the task of an entry."""
        if entry.record is not None:
            meta = entry.record.get("metadata")
            task_id = meta.get("task_id") if isinstance(meta, dict) else None
            self._note(task_id if isinstance(task_id, str) else None, entry.rel)
        else:
            self._note(id_in_text(entry.full or entry.text()), entry.rel)

    def run(self, run: Run) -> None:
        """Note the tasks of a run (their ids read from their records' text)."""
        lines = (line for line in run.lines if line.startswith("T\t"))
        for line, full in zip(lines, run.fulls, strict=False):
            self._note(id_in_text(full), None, line)

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
