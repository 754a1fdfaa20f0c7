"""List the tasks of a tree, creating missing task metadata on the way."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autojob.errors import AutojobError
from autojob.store.discovery import discover_tasks, ensure_task_metadata

__all__ = ["Listing", "TaskRow", "list_tree"]


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

    def as_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict."""
        return asdict(self)


@dataclass
class Listing:
    """The tasks found under a directory."""

    rows: list[TaskRow] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)

    @property
    def broken(self) -> int:
        """How many tasks failed to load."""
        return sum(1 for row in self.rows if row.error)


def list_tree(root: Path) -> Listing:
    """Discover and load every task under ``root``; errors become rows."""
    from autojob.tasks.task import Task  # noqa: PLC0415

    listing = Listing()
    for found in discover_tasks(root):
        rel = os.path.relpath(found.path, root)
        row = TaskRow(path=str(found.path), rel_path=rel)
        try:
            if not found.has_metadata and ensure_task_metadata(found.path):
                listing.created.append(found.path)
            task = Task.from_directory(found.path, magic_mode=True, strict_mode=False)
        except AutojobError as exc:
            row.error = str(exc).splitlines()[0]
        else:
            meta = task.task_metadata
            row.task_id, row.label = meta.task_id, meta.label
            row.task_group_id, row.task_class = meta.task_group_id, meta.task_class
            row.command = task.task_inputs.command
        listing.rows.append(row)
    return listing
