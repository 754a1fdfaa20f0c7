"""Helpers shared by the tests: run the installed command, snapshot trees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: the console script installed next to the running interpreter
AUTOJOB = Path(sys.executable).parent / "autojob"


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``autojob`` script in ``cwd`` (a wide terminal)."""
    return subprocess.run(
        [str(AUTOJOB), *(str(a) for a in args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="surrogateescape",  # paths that are not UTF-8 come back as they are
        env={**os.environ, "COLUMNS": "400", **(env or {})},
        timeout=120,
        check=False,
    )


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a bash snippet (``-euo pipefail``) with the installed commands first on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        check=False,
    )


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root`` (hidden ones too): file bytes, None for dirs."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def tree_listing(root: Path) -> list[str]:
    """Every path under ``root`` (hidden ones too), relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def study_of_commands(
    root: Path, commands: dict[str, str], *, auto_restart: bool = False
) -> tuple[Path, list[Path]]:
    """A study of one-task groups named by label; return it and its task directories.

    The tasks do not restart themselves unless asked to (auto restart has tests
    of its own).
    """
    from autojob.study import Study
    from autojob.task_group import TaskGroup
    from autojob.tasks.task import Task, TaskInputs, TaskMetadata

    root.mkdir(parents=True, exist_ok=True)
    groups = [
        TaskGroup(
            label=label,
            tasks=[
                Task(
                    task_metadata=TaskMetadata(label=label),
                    task_inputs=TaskInputs(command=command, auto_restart=auto_restart),
                )
            ],
        )
        for label, command in commands.items()
    ]
    study = Study(name="s", task_groups=groups).to_directory(
        root, study_template="{name}", task_group_template="{label}"
    )
    tasks = [next(p for p in (study / label).iterdir() if p.is_dir()) for label in commands]
    return study, tasks
