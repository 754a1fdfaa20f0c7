"""Helpers shared by the harvest tests: a small study group of real tasks, run for
real, and the ways to look at what harvest found."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from autojob import SETTINGS
from autojob.harvest import HarvestedTask
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

WRITE_OUTPUTS = (
    "python3 -c \"import json; json.dump({{'energy': {e}, 'converged': True, "
    "'bands': [1, 2]}}, open('outputs.json', 'w'))\""
)


# -- trees -----------------------------------------------------------------------


def run_task(task_dir: Path) -> None:
    """Run the task's script as the local executor does (a real process)."""
    subprocess.run(
        ["bash", str(task_dir / SETTINGS.DEFAULT_TASK_SCRIPT_FILE)],
        cwd=task_dir,
        env={**os.environ, "AUTOJOB_TASK_DIR": str(task_dir)},
        capture_output=True,
        check=False,
        timeout=60,
    )


def sweep(root: Path, commands: list[str]) -> tuple[Path, list[Path]]:
    """A study group with one study of one task per command; return it and the tasks."""
    tasks = [
        Task(
            task_metadata=TaskMetadata(label=f"t{i}", tags=["sweep"]),
            task_inputs=TaskInputs(command=command),
            scheduler_inputs={"time": "00:05:00"},
        )
        for i, command in enumerate(commands)
    ]
    root.mkdir(parents=True, exist_ok=True)
    sg_dir = StudyGroup(name="sg", studies=[Study(name="sweep", tasks=tasks)]).to_directory(root)
    by_id = {p.name: p for p in sg_dir.rglob("*") if (p / SETTINGS.TASK_METADATA_FILE).is_file()}
    return sg_dir, [by_id[t.task_metadata.task_id] for t in tasks]


def finished_sweep(root: Path) -> tuple[Path, list[Path]]:
    """Three tasks: one succeeds with outputs, one fails, one never runs."""
    sg_dir, dirs = sweep(root, [WRITE_OUTPUTS.format(e=-1.5), "exit 3", "true"])
    run_task(dirs[0])
    run_task(dirs[1])
    return sg_dir, dirs


def age(root: Path, seconds: float = 120.0) -> None:
    """Make every file and directory under ``root`` look ``seconds`` old."""
    when = time.time() - seconds
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(top, name), (when, when), follow_symlinks=False)
    os.utime(root, (when, when))


def by_label(tasks: list[HarvestedTask]) -> dict[str, HarvestedTask]:
    return {t.metadata["label"]: t for t in tasks}
