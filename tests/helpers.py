"""Helpers shared by the tests: run the installed command, snapshot trees, build
studies, wait for a condition."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

#: the console script installed next to the running interpreter
AUTOJOB = Path(sys.executable).parent / "autojob"

#: a task command prefix: each run of the task appends a line to runs.txt, so a
#: task run twice is seen (:func:`runs`)
COUNT = "echo run >> runs.txt; "

#: The fields DESIGN.md ("Files on disk") says each file holds.
DESIGN_FIELDS = {
    "study_group.json": {"date_created", "study_group_id", "name", "notes", "studies"},
    "study.json": {
        "date_created",
        "study_id",
        "study_group_id",
        "name",
        "notes",
        "task_groups",
    },
    "task_group.json": {
        "label",
        "study_group_id",
        "study_id",
        "task_group_id",
        "date_created",
        "tasks",
    },
    "task.json": {
        "label",
        "tags",
        "uri",
        "study_group_id",
        "study_id",
        "workflow_step_id",
        "task_id",
        "task_group_id",
        "date_created",
        "last_updated",
        "task_class",
    },
    "inputs.json": {
        "files_to_copy",
        "files_to_delete",
        "files_to_carry_over",
        "auto_restart",
        "task_script",
        "task_script_template",
    },
}

T = TypeVar("T")


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
    root: Path,
    commands: dict[str, str],
    *,
    auto_restart: bool = False,
    count_runs: bool = False,
    files_to_carry_over: list[str] | None = None,
    **scheduler_inputs: object,
) -> tuple[Path, list[Path]]:
    """A study of one-task groups named by label; return it and its task directories.

    The tasks do not restart themselves unless asked to (auto restart has tests
    of its own). ``count_runs`` puts :data:`COUNT` before every command; the
    keyword arguments left over are the tasks' scheduler inputs (``time``,
    ``partition``, ...).
    """
    from autojob.study import Study
    from autojob.task_group import TaskGroup
    from autojob.tasks.task import Task, TaskInputs, TaskMetadata

    root.mkdir(parents=True, exist_ok=True)
    prefix = COUNT if count_runs else ""
    groups = [
        TaskGroup(
            label=label,
            tasks=[
                Task(
                    task_metadata=TaskMetadata(label=label),
                    task_inputs=TaskInputs(
                        command=prefix + command,
                        auto_restart=auto_restart,
                        files_to_carry_over=files_to_carry_over or [],
                    ),
                    scheduler_inputs=scheduler_inputs,
                )
            ],
        )
        for label, command in commands.items()
    ]
    study = Study(name="s", task_groups=groups).to_directory(
        root, study_template="{name}", task_group_template="{label}"
    )
    tasks = [task_dir(study, label) for label in commands]
    return study, tasks


def run_sample_study(dest: Path, mixings: list[str], failing: int) -> Path:
    """The sample study (examples/scf_sweep.py, cutoff 400), run here with ``autojob submit``.

    ``failing``: how many of its tasks fail on purpose (too much mixing), so
    ``submit --wait`` exits 1 when there are any.
    """
    examples = Path(__file__).resolve().parents[1] / "examples"
    built = subprocess.run(
        [sys.executable, str(examples / "scf_sweep.py"), str(dest), "--mixing", *mixings,
         "--cutoff", "400"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    root = Path(built.stdout.strip().splitlines()[-1])
    submitted = run("submit", root, "--wait", cwd=dest)
    assert submitted.returncode == (1 if failing else 0), submitted.stderr
    return root


def task_dir(study: Path, label: str) -> Path:
    """The one task directory of the task group ``label`` of ``study``."""
    (path,) = [p for p in (study / label).iterdir() if p.is_dir()]
    return path


def runs(task: Path) -> int:
    """How many times a task whose command starts with :data:`COUNT` has run."""
    file = task / "runs.txt"
    return len(file.read_text().splitlines()) if file.exists() else 0


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody has reaped yet does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    details: Callable[[], object] | None = None,
    interval: float = 0.1,
) -> T:
    """Poll ``condition`` until it returns something true, and return that.

    After ``timeout`` seconds the test fails, naming ``what`` was awaited and
    showing what ``details`` returns then (e.g. the states seen).
    """
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() >= deadline:
            shown = f": {details()}" if details is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}{shown}")
        time.sleep(interval)
    return result
