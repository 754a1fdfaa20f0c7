"""List the tasks of a tree, creating missing task metadata on the way.

Each row carries the task's state from the status index (``store.status_index``:
no file of a task is read for its state where the index has it), so a listing
can be filtered by state (``states``), label (a glob) and trouble (``failed``:
task groups whose newest attempt needs attention) before any task is loaded.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autojob.errors import AutojobError
from autojob.store.discovery import discover_tasks, ensure_task_metadata
from autojob.store.state import STATE_FIELDS, State, TaskState, read_state
from autojob.store.status_index import StatusReport, collect, newest_attempts

__all__ = ["TROUBLE", "Listing", "TaskRow", "iter_rows", "list_tree"]

#: the states of a task that needs attention (``--failed``), as ``status`` lists them
TROUBLE = frozenset({State.FAILED, State.TIMEOUT, State.OOM, State.UNKNOWN})


@dataclass
class TaskRow:
    """One task of a listing (or the error that kept it from loading)."""

    path: str
    rel_path: str
    task_id: str | None = None
    label: str = ""
    task_group_id: str | None = None
    task_class: str | None = None
    command: str | None = None
    error: str | None = None
    state: str | None = None
    exit_code: int | None = None
    #: why it ended so (timeout, cancelled, a scheduler's cause), or what is odd about it
    cause: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    run_seconds: float | None = None
    host: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict."""
        return asdict(self)

    def set_state(self, state: TaskState) -> None:
        """Fill in the state's columns."""
        self.state = state.state.value
        self.exit_code = state.exit_code
        self.cause = state.detail or state.reason
        self.started_at, self.ended_at = state.started_at, state.ended_at
        self.run_seconds = state.run_seconds()
        self.host = state.host


@dataclass
class Listing:
    """The tasks found under a directory."""

    rows: list[TaskRow] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)

    @property
    def broken(self) -> int:
        """How many tasks failed to load."""
        return sum(1 for row in self.rows if row.error)


def list_tree(
    root: Path,
    *,
    states: Collection[State] = (),
    label: str | None = None,
    failed: bool = False,
) -> Listing:
    """Discover and load every task under ``root``; errors become rows.

    ``states``: only tasks in these states; ``label``: only tasks whose label
    matches this glob (``relax-*``); ``failed``: only task groups (and loose
    tasks) whose newest attempt is failed, timeout, oom or unknown.
    """
    listing = Listing()
    listing.rows.extend(
        iter_rows(root, states=states, label=label, failed=failed, created=listing.created)
    )
    return listing


def iter_rows(
    root: Path,
    *,
    states: Collection[State] = (),
    label: str | None = None,
    failed: bool = False,
    created: list[Path] | None = None,
) -> Iterator[TaskRow]:
    """The rows of :func:`list_tree`, one task at a time (none kept in memory).

    The task directories given task metadata on the way are appended to ``created``.
    """
    from autojob.tasks.task import Task  # noqa: PLC0415

    report = collect(root, create_index=False)
    report.decode(STATE_FIELDS)  # every row's state is read: whole columns, not value by value
    wanted = _wanted(report, states, failed)
    for found in discover_tasks(root):
        rel = os.path.relpath(found.path, root)
        row = TaskRow(path=str(found.path), rel_path=rel)
        known = report.rows.get(os.path.normpath(rel))
        if known is None:  # not in the index yet: its own files tell
            state = read_state(found.path, found.names)
            if wanted is not None and not _keeps(state, states, failed):
                continue
        elif wanted is not None and known not in wanted:
            continue
        else:
            state = report.state_of(known)
        row.set_state(state)
        try:
            if not found.has_metadata and ensure_task_metadata(found.path) and created is not None:
                created.append(found.path)
            task = Task.from_directory(found.path, magic_mode=True, strict_mode=False)
        except AutojobError as exc:
            row.error = str(exc).splitlines()[0]
        else:
            meta = task.task_metadata
            row.task_id, row.label = meta.task_id, meta.label
            row.task_group_id, row.task_class = meta.task_group_id, meta.task_class
            row.command = task.task_inputs.command
        if label is None or fnmatch.fnmatchcase(row.label or "", label):
            yield row


def _keeps(state: TaskState, states: Collection[State], failed: bool) -> bool:
    return (not states or state.state in states) and (not failed or state.state in TROUBLE)


def _wanted(report: StatusReport, states: Collection[State], failed: bool) -> set[int] | None:
    """The rows of the report the state filters keep (None: no filter)."""
    if not states and not failed:
        return None
    rows = set(range(len(report)))
    if states:
        names = {State(s).value for s in states}
        rows = {r for r in rows if report.columns["state"][r] in names}
    if failed:
        newest = {report.rows[e.path] for e in newest_attempts(report) if e.state.state in TROUBLE}
        rows &= newest
    return rows
