"""Trees and ends shared by the tests of the status index and its delta."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.store.journal import note_changed
from autojob.store.state import this_host
from autojob.store.status_index import collect
from autojob.study import Study
from autojob.tasks.task import Task, TaskInputs, TaskMetadata


def make_study(tmp_path: Path, n: int) -> tuple[Path, list[Path]]:
    tasks = [
        Task(task_inputs=TaskInputs(command="true"), task_metadata=TaskMetadata(label=f"t{i}"))
        for i in range(n)
    ]
    study = Study(name="s", tasks=tasks).to_directory(tmp_path)
    dirs = sorted(p.parent for p in study.glob(f"*/*/{SETTINGS.TASK_METADATA_FILE}"))
    return study, dirs


def end(folders: list[Path], exit_code: int) -> None:
    """Record an end in each task as its script does (a new file renamed in), and journal it."""
    when = time.time()
    for folder in folders:
        record = {
            "time": when,
            "exit_code": exit_code,
            "job_id": "",
            "executor": "",
            "started_at": when - 1,
            "host": this_host(),
        }
        tmp = folder / ".ended.tmp"
        tmp.write_text(json.dumps(record) + "\n")
        os.replace(tmp, folder / SETTINGS.ENDED_FILE)
    note_changed(folders)


def states(study: Path, **options: Any) -> dict[str, str]:
    report = collect(study, **options)
    return {path: task.state.state.value for path, task in report.tasks.items()}
