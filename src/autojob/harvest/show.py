"""Everything known about one task: what ``autojob show TASK`` prints.

The task is harvested as a harvest of its task group would harvest it (its
metadata, inputs, outputs, state, accounting, earlier runs and its place among
the attempts of its group), and the state of each attempt and the last lines
of its output are added. Nothing is written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import InputError
from autojob.harvest.harvesting import harvest
from autojob.harvest.models import HarvestedTask
from autojob.store.discovery import discover_tasks
from autojob.store.run_files import tail
from autojob.store.state import TaskState, read_state
from autojob.store.walk import is_task_dir

__all__ = ["TaskView", "find_task", "show_task"]


@dataclass
class TaskView:
    """One task as ``show`` tells it."""

    path: Path
    record: HarvestedTask
    state: TaskState
    #: each attempt of its task group, oldest first: (path, its state)
    attempts: list[tuple[Path, TaskState]] = field(default_factory=list)
    #: the last lines of its standard output and error
    stdout: str = ""
    stderr: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the harvest record, with the attempts' states and the tails."""
        data = self.record.model_dump(mode="json")
        data["directory"] = str(self.path)
        data["state"]["run_seconds"] = self.state.run_seconds()
        data["attempts"]["states"] = [
            {"path": str(path), **state.as_dict(), "run_seconds": state.run_seconds()}
            for path, state in self.attempts
        ]
        data["output"] = {"stdout": self.stdout, "stderr": self.stderr}
        return data


def find_task(name: str, root: Path) -> Path:
    """The task directory ``name`` names: a path, else a task id (or directory name) under root.

    Raises:
        InputError: no task, or several, go by that name.
    """
    given = Path(name)
    if given.is_dir():
        if not is_task_dir(os.listdir(given)):
            raise InputError(
                f"{given} is not a task directory (it holds neither "
                f"{SETTINGS.TASK_METADATA_FILE} nor {SETTINGS.INPUTS_FILE})",
                path=given,
                hint="give a task's directory or its task id; 'autojob list' lists them",
            )
        return given
    tasks = [t.path for t in discover_tasks(root)]
    # directories are named by their task id by default: try names first, then ids
    found = [p for p in tasks if p.name == name] or [p for p in tasks if _has_id(p, name)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(
            f"no task directory or task id {name!r} under {root}",
            hint="give a task's directory or its task id; 'autojob list' lists them",
        )
    shown = ", ".join(os.path.relpath(p, root) for p in found[:5])
    raise InputError(
        f"{len(found)} tasks are named {name!r} under {root}: {shown}",
        hint="give the task's directory instead",
    )


def _has_id(path: Path, name: str) -> bool:
    try:
        data = json.loads((path / SETTINGS.TASK_METADATA_FILE).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("task_id") == name


def show_task(task_dir: Path, *, lines: int = 10) -> TaskView:
    """Everything known about the task in ``task_dir``; ``lines`` of its output."""
    task_dir = Path(os.path.realpath(task_dir))
    parent = task_dir.parent
    in_group = (parent / SETTINGS.TASK_GROUP_METADATA_FILE).is_file()
    root = parent if in_group else task_dir
    want = task_dir.name if in_group else "."
    found = harvest(root, strict=False)
    try:
        record = next(t for t in found if t.path == want)
    finally:
        found.close()
    attempts = [(root / rel, read_state(root / rel)) for rel in record.attempts.tasks if in_group]
    return TaskView(
        task_dir,
        record,
        read_state(task_dir),
        attempts,
        tail(task_dir / SETTINGS.STDOUT_FILE, lines),
        tail(task_dir / SETTINGS.STDERR_FILE, lines),
    )
