"""Repair task ids after task directories were copied or moved by hand.

``cp -r TASK copy`` leaves two tasks with one ``task_id``; ``mv TASK
other_group/`` leaves a task whose ``task_group_id`` names the group it left.
Harvest and status report both; :func:`repair_ids` (``autojob list PATH
--repair``) fixes them:

- of the tasks sharing an id, the one in the task group its metadata names
  (then the one whose ``task.json`` is oldest, then the first by path) keeps
  it; each other gets a new id, written to its ``task.json`` and added to its
  task group's ``tasks``;
- a task in a task group other than the one it names is relinked to where it
  is: it takes the group's ``task_group_id``, ``study_id`` and
  ``study_group_id``, joins the group's ``tasks``, and leaves the ``tasks`` of
  the group it names, when that group is in the tree and holds no task of that
  id any more.

Every file is written atomically, and the tasks changed are noted in the
status journals, so the next ``autojob status`` sees the repair.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.ids import new_id, now
from autojob.store.atomic import dump_json, read_json_object, update_json_object, write_atomic
from autojob.store.discovery import discover_tasks
from autojob.store.journal import note_changed

__all__ = ["IdRepair", "repair_ids"]

_LINKS = ("task_group_id", "study_id", "study_group_id")


@dataclass
class IdRepair:
    """What :func:`repair_ids` changed, one line each."""

    renamed: list[str] = field(default_factory=list)
    relinked: list[str] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        """Every change, as a line to print."""
        return [*self.renamed, *self.relinked]


@dataclass
class _Task:
    path: Path
    meta: dict[str, Any]
    group: dict[str, Any] | None  # the metadata of the task group it sits in

    @property
    def meta_file(self) -> Path:
        return self.path / SETTINGS.TASK_METADATA_FILE

    @property
    def group_file(self) -> Path:
        return self.path.parent / SETTINGS.TASK_GROUP_METADATA_FILE

    def at_home(self) -> bool:
        """Whether it sits in the task group its metadata names (or in none)."""
        return self.group is None or self.group.get("task_group_id") == self.meta.get(
            "task_group_id"
        )


def _read_tasks(root: Path) -> list[_Task]:
    groups: dict[Path, dict[str, Any] | None] = {}
    tasks = []
    for found in discover_tasks(root):
        try:
            meta = read_json_object(found.path / SETTINGS.TASK_METADATA_FILE)
        except AutojobError:
            continue  # no metadata, or broken: 'autojob list' reports it
        parent = found.path.parent
        if parent not in groups:
            group_file = parent / SETTINGS.TASK_GROUP_METADATA_FILE
            try:
                groups[parent] = read_json_object(group_file) if group_file.is_file() else None
            except AutojobError:
                groups[parent] = None
        tasks.append(_Task(found.path, meta, groups[parent]))
    return tasks


def _age_key(task: _Task) -> tuple[bool, float, str]:
    try:
        mtime = os.stat(task.meta_file).st_mtime
    except OSError:
        mtime = float("inf")
    return (not task.at_home(), mtime, str(task.path))


def _write(task: _Task) -> None:
    task.meta["last_updated"] = now().isoformat()
    write_atomic(task.meta_file, dump_json(task.meta, task.meta_file))


def _list_in(group_file: Path, task_id: str, *, add: bool) -> None:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        ids = data.get("tasks")
        if not isinstance(ids, list):
            ids = data["tasks"] = []
        if add and task_id not in ids:
            ids.append(task_id)
        elif not add and task_id in ids:
            ids.remove(task_id)
        return data

    update_json_object(group_file, change)


def _renew_copies(tasks: list[_Task], result: IdRepair) -> None:
    by_id: dict[str, list[_Task]] = {}
    for task in tasks:
        task_id = task.meta.get("task_id")
        if isinstance(task_id, str):
            by_id.setdefault(task_id, []).append(task)
    for task_id, sharing in by_id.items():
        if len(sharing) < 2:
            continue
        keeper, *copies = sorted(sharing, key=_age_key)
        for copy in copies:
            fresh = new_id("j")
            copy.meta["task_id"] = fresh
            _write(copy)
            if copy.group is not None:
                _list_in(copy.group_file, fresh, add=True)
            result.changed.append(copy.path)
            result.renamed.append(
                f"{copy.path}: new task id {fresh} ({task_id} stays with {keeper.path})"
            )


def _relink_moved(tasks: list[_Task], result: IdRepair) -> None:
    homes: dict[str, Path] = {}
    for task in tasks:
        if task.group is not None and isinstance(task.group.get("task_group_id"), str):
            homes.setdefault(task.group["task_group_id"], task.group_file)
    for task in tasks:
        if task.at_home() or task.group is None:
            continue
        named = task.meta.get("task_group_id")
        for key in _LINKS:
            if key in task.group:
                task.meta[key] = task.group[key]
        _write(task)
        task_id = str(task.meta.get("task_id"))
        _list_in(task.group_file, task_id, add=True)
        left = homes.get(named) if isinstance(named, str) else None
        if left is not None and not any(
            t.meta.get("task_id") == task_id and t.group_file == left for t in tasks
        ):
            _list_in(left, task_id, add=False)
        result.changed.append(task.path)
        result.relinked.append(
            f"{task.path}: relinked to its task group {task.path.parent} "
            f"({task.group.get('task_group_id')}, was {named})"
        )


def repair_ids(root: Path) -> IdRepair:
    """Give copied tasks new ids and relink moved tasks to their task group.

    Raises:
        AutojobError: ``root`` is not a directory, or a file cannot be written.
    """
    tasks = _read_tasks(root)
    result = IdRepair()
    _renew_copies(tasks, result)
    _relink_moved(tasks, result)
    if result.changed:
        note_changed(result.changed)
    return result
