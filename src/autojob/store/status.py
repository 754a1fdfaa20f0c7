"""The state of every task under a directory, kept fast by an index.

``collect(root)`` walks the tree once, derives each task's state from its files
and saves an index (``<root>/.autojob/status.json``) with a journal beside it.
Later calls read the index, re-read only the tasks named in the journal since
(and those queued or running, whose processes must be checked), and save the
index again. The index is rebuilt when missing, unreadable, older than
``SETTINGS.INDEX_MAX_AGE`` seconds, or when asked (``rescan=True``): hand edits
that bypass autojob are seen then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.store.atomic import write_atomic
from autojob.store.journal import journal_path, read_journal
from autojob.store.names import STAGING_PREFIX
from autojob.store.state import State, TaskState, read_state

__all__ = ["INDEX_VERSION", "StatusReport", "TaskEntry", "collect", "newest_attempts"]

logger = logging.getLogger(__name__)
INDEX_VERSION = 1
LIVE = (State.QUEUED, State.RUNNING)


@dataclass
class TaskEntry:
    """One task in a status report."""

    path: str  # relative to the root
    state: TaskState
    group: str | None = None  # relative path of its task group, if any
    study: str | None = None  # relative path of its study, if any
    created: str | None = None  # date_created, read only to order attempts

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "path": self.path,
            "group": self.group,
            "study": self.study,
            "created": self.created,
            **self.state.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskEntry:
        """Rebuild from :meth:`as_dict`."""
        values = dict(data)
        head = {k: values.pop(k) for k in ("path", "group", "study", "created")}
        return cls(state=TaskState.from_dict(values), **head)


@dataclass
class StatusReport:
    """Every task under ``root`` and how the report was made."""

    root: Path
    tasks: dict[str, TaskEntry] = field(default_factory=dict)
    source: str = "scan"  # "scan" (full walk) or "index" (index + journal)
    reread: int = 0  # tasks read from disk this time


# -- walking -----------------------------------------------------------------


def _walk(
    root: str, top: str, group: str | None, study: str | None, out: dict[str, TaskEntry]
) -> None:
    """Add every task under ``top`` to ``out`` (symbolic links are not followed)."""
    try:
        with os.scandir(top) as it:
            entries = list(it)
    except OSError as exc:
        logger.warning("%s: cannot be read (%s); skipped", top, exc.strerror)
        return
    names = {e.name for e in entries}
    rel = os.path.relpath(top, root)
    if SETTINGS.STUDY_METADATA_FILE in names:
        study = rel
    if SETTINGS.TASK_GROUP_METADATA_FILE in names:
        group = rel
    elif SETTINGS.TASK_METADATA_FILE in names or SETTINGS.INPUTS_FILE in names:
        out[rel] = TaskEntry(rel, read_state(top, names), group, study)
        return  # tasks do not nest
    skip = (STAGING_PREFIX, SETTINGS.INDEX_DIR, SETTINGS.HISTORY_DIR)
    for entry in entries:
        if entry.name.startswith(skip) or not entry.is_dir(follow_symlinks=False):
            continue
        _walk(root, entry.path, group, study, out)


def _context(root: str, folder: str) -> tuple[str | None, str | None]:
    """The task group and study above a task directory, by their files."""
    parent = os.path.dirname(folder)
    group = study = None
    if os.path.isfile(os.path.join(parent, SETTINGS.TASK_GROUP_METADATA_FILE)):
        group = os.path.relpath(parent, root)
        parent = os.path.dirname(parent)
    if os.path.isfile(os.path.join(parent, SETTINGS.STUDY_METADATA_FILE)):
        study = os.path.relpath(parent, root)
    return group, study


def _order_attempts(root: str, tasks: dict[str, TaskEntry]) -> None:
    """Read ``date_created`` of tasks that share a group (to order attempts)."""
    per_group: dict[str, list[TaskEntry]] = {}
    for entry in tasks.values():
        if entry.group is not None:
            per_group.setdefault(entry.group, []).append(entry)
    for members in per_group.values():
        if len(members) < 2:
            continue
        for entry in members:
            if entry.created is None:
                entry.created = _date_created(os.path.join(root, entry.path))


def _date_created(folder: str) -> str:
    try:
        with open(os.path.join(folder, SETTINGS.TASK_METADATA_FILE), "rb") as stream:
            value = json.loads(stream.read()).get("date_created")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


# -- the index -----------------------------------------------------------


def _index_path(root: str) -> str:
    return os.path.join(root, SETTINGS.INDEX_DIR, "status.json")


def _load_index(root: str) -> dict[str, Any] | None:
    try:
        with open(_index_path(root), "rb") as stream:
            data = json.loads(stream.read())
    except (OSError, ValueError):
        return None
    fresh = time.time() - float(data.get("built_at", 0)) <= SETTINGS.INDEX_MAX_AGE
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION or not fresh:
        return None
    if data.get("root") != root:  # the tree moved: paths in the journal differ
        return None
    return data


def _save_index(root: str, report: StatusReport, built_at: float, offset: int) -> None:
    data = {
        "version": INDEX_VERSION,
        "root": root,
        "built_at": built_at,
        "journal_offset": offset,
        "tasks": [entry.as_dict() for entry in report.tasks.values()],
    }
    try:
        write_atomic(Path(_index_path(root)), json.dumps(data, separators=(",", ":")))
    except AutojobError as exc:
        logger.warning("status index not saved: %s", exc)


def _start_journal(root: str) -> bool:
    """Create (or empty) the journal; False where the tree is not writable."""
    try:
        os.makedirs(os.path.join(root, SETTINGS.INDEX_DIR), exist_ok=True)
        write_atomic(Path(journal_path(root)), "")
    except (OSError, AutojobError) as exc:
        logger.info("no status index in %s: %s", root, exc)
        return False
    return True


# -- collecting ------------------------------------------------------------


def _full_scan(root: str) -> StatusReport:
    indexed = _start_journal(root)
    built_at = time.time()
    report = StatusReport(Path(root))
    _walk(root, root, None, None, report.tasks)
    _order_attempts(root, report.tasks)
    report.reread = len(report.tasks)
    if indexed:
        _save_index(root, report, built_at, 0)
    return report


def _refresh(root: str, index: dict[str, Any]) -> StatusReport:
    report = StatusReport(Path(root), source="index")
    for item in index.get("tasks", []):
        entry = TaskEntry.from_dict(item)
        report.tasks[entry.path] = entry
    changed, offset = read_journal(journal_path(root), int(index.get("journal_offset", 0)))
    todo = {os.path.relpath(p, root) for p in changed if _inside(p, root)}
    todo.update(rel for rel, e in report.tasks.items() if e.state.state in LIVE)
    for rel in sorted(todo):
        _reread(root, rel, report)
    if todo:
        _order_attempts(root, report.tasks)
        _save_index(root, report, float(index["built_at"]), offset)
    return report


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _reread(root: str, rel: str, report: StatusReport) -> None:
    """Re-read one journalled path: a task, or a new subtree, or a removal."""
    folder = os.path.normpath(os.path.join(root, rel))
    rel = os.path.relpath(folder, root)
    report.reread += 1
    if not os.path.isdir(folder):
        for key in [k for k in report.tasks if k == rel or k.startswith(rel + os.sep)]:
            del report.tasks[key]
        return
    names = set(os.listdir(folder))
    if SETTINGS.TASK_METADATA_FILE in names or SETTINGS.INPUTS_FILE in names:
        group, study = _context(root, folder)
        old = report.tasks.get(rel)
        entry = TaskEntry(rel, read_state(folder, names), group, study)
        entry.created = old.created if old else None
        report.tasks[rel] = entry
    else:  # a new directory of tasks (a study, a task group) was written
        group, study = _context(root, os.path.join(folder, "x"))
        _walk(root, folder, group, study, report.tasks)


def collect(root: Path, *, rescan: bool = False, use_index: bool = True) -> StatusReport:
    """Return the state of every task under ``root``.

    Raises:
        AutojobError: ``root`` is not a directory.
    """
    if not root.is_dir():
        raise AutojobError(
            "no such directory" if not root.exists() else "not a directory",
            path=root,
            hint="give the directory of a task, task group, study or study group",
        )
    top = os.path.realpath(root)
    index = None if rescan or not use_index else _load_index(top)
    if index is not None:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return _refresh(top, index)
    if not use_index:
        report = StatusReport(Path(top))
        _walk(top, top, None, None, report.tasks)
        _order_attempts(top, report.tasks)
        report.reread = len(report.tasks)
        return report
    return _full_scan(top)


def newest_attempts(report: StatusReport) -> list[TaskEntry]:
    """The newest attempt of each task group, and every task outside groups.

    Attempts are ordered by ``date_created`` (then by when they were queued).
    """
    groups: dict[str, list[TaskEntry]] = {}
    loose = []
    for entry in report.tasks.values():
        if entry.group is None:
            loose.append(entry)
        else:
            groups.setdefault(entry.group, []).append(entry)
    newest = [
        max(members, key=lambda e: (e.created or "", e.state.queued_at or 0, e.path))
        for members in groups.values()
    ]
    return sorted(newest + loose, key=lambda e: e.path)
