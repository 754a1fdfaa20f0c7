"""``Study.tasks`` as python-autojob users write it: assigned, appended, never lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.study import Study
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata


def task(label: str, group: str | None = None) -> Task:
    meta = TaskMetadata(label=label)
    if group is not None:
        meta.task_group_id = group
    return Task(task_metadata=meta, task_inputs=TaskInputs(command=f"echo {label}"))


def written_labels(study_dir: Path) -> list[str]:
    return sorted(
        json.loads(p.read_text())["label"] for p in study_dir.rglob(SETTINGS.TASK_METADATA_FILE)
    )


def test_appended_and_assigned_tasks_reach_the_written_tree(tmp_path: Path) -> None:
    study = Study(name="s")
    study.tasks.append(task("a"))
    study.tasks.extend([task("b")])
    study.tasks += [task("c")]
    assert [t.task_metadata.label for t in study.tasks] == ["a", "b", "c"]
    assert written_labels(study.to_directory(tmp_path)) == ["a", "b", "c"]
    study.tasks = [task("d"), task("e")]
    del study.tasks[0]
    study.study_id = "s2nd000000"
    assert written_labels(study.to_directory(tmp_path)) == ["e"]


def test_a_task_joins_the_group_it_names_which_keeps_its_label(tmp_path: Path) -> None:
    first = task("relax")
    group = TaskGroup(label="Cu-relax", tasks=[first])
    study = Study(name="s", task_groups=[group])
    study.tasks.append(task("relax-2", group=group.task_group_id))
    (kept,) = study.task_groups
    assert kept is group and kept.label == "Cu-relax" and len(kept.tasks) == 2
    assert all(t.task_metadata.study_id == study.study_id for t in study.tasks)


def test_anything_but_tasks_is_refused() -> None:
    study = Study(name="s", tasks=[task("a")])
    with pytest.raises(TypeError, match="must be Task objects, not str"):
        study.tasks.append("not a task")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be Task objects"):
        study.tasks = [task("b"), 3]  # type: ignore[list-item]
    assert [t.task_metadata.label for t in study.tasks] == ["a"]
