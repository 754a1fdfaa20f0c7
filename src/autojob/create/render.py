"""Render the task scripts of a tree again from their inputs (``autojob render``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autojob.errors import AutojobError
from autojob.execution.submit import find_tasks
from autojob.store.state import State, read_state
from autojob.store.task_script import ScriptReport, refresh_task_script

__all__ = ["Rendering", "render_scripts"]


@dataclass
class Rendering:
    """What :func:`render_scripts` did to each task under its paths."""

    reports: list[ScriptReport] = field(default_factory=list)
    #: live tasks left alone (their run reads the script as it is)
    live: list[Path] = field(default_factory=list)
    #: tasks whose script could not be rendered, with why
    errors: list[tuple[Path, str]] = field(default_factory=list)


def render_scripts(
    paths: Sequence[Path], *, force: bool = False, dry_run: bool = False
) -> Rendering:
    """Render the script of every task under ``paths`` again from its inputs.

    A script edited or written by hand is kept unless ``force``; a queued or
    running task is left alone. Loose task directories get their metadata
    first (unless ``dry_run``, which writes nothing).
    """
    done = Rendering()
    for task in find_tasks(paths, dry_run=dry_run):
        if read_state(task.path, task.names or None).state in (State.QUEUED, State.RUNNING):
            done.live.append(task.path)
            continue
        try:
            report = refresh_task_script(
                task.path, always=True, force=force, dry_run=dry_run, require_command=True
            )
        except AutojobError as exc:
            done.errors.append((task.path, str(exc)))
        else:
            done.reports.append(report)
    return done
