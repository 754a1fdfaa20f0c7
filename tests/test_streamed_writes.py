"""Studies written from a stream of tasks, and sweeps written combination by combination.

What is written is the same tree as from a study held in memory; what is
checked here is that the models are not kept (a weak reference to a task
written dies while later tasks are made) and that a stream failing half-way
leaves nothing behind.
"""

from __future__ import annotations

import gc
import json
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.create.sweep import load_spec, sweep_into
from autojob.errors import AutojobError
from autojob.store.write import groups_of
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata


def make(i: int, group: str | None = None) -> Task:
    meta = TaskMetadata(label=f"t{i}")
    if group is not None:
        meta.task_group_id = group
    return Task(task_inputs=TaskInputs(command=f"echo {i}"), task_metadata=meta)


def leftovers(dest: Path) -> list[str]:
    return sorted(os.listdir(dest))


def test_a_study_is_written_from_a_generator_without_keeping_its_tasks(tmp_path: Path) -> None:
    refs: list[weakref.ref[Task]] = []
    alive_while_making: list[int] = []

    def tasks() -> Iterator[Task]:
        for i in range(120):
            if i % 40 == 39:
                gc.collect()
                alive_while_making.append(sum(ref() is not None for ref in refs))
            task = make(i)
            refs.append(weakref.ref(task))
            yield task

    study = Study(name="big")
    path = study.to_directory(tmp_path, tasks=tasks())
    assert study.task_groups == []  # the study itself is left as it was
    # only the group being written (and the one just made) is alive at any time
    assert alive_while_making and max(alive_while_making) <= 2
    loaded = Study.from_directory(path, strict_mode=True)
    assert [t.task_inputs.command for t in loaded.tasks] == [f"echo {i}" for i in range(120)]
    listed = json.loads((path / SETTINGS.STUDY_METADATA_FILE).read_text())["task_groups"]
    assert listed == [g.task_group_id for g in loaded.task_groups]
    assert leftovers(tmp_path) == [path.name]


def test_streamed_tasks_follow_the_study_own_groups_into_one_study_file(tmp_path: Path) -> None:
    study = Study(name="mixed", tasks=[make(0), make(1)])
    path = study.to_directory(tmp_path, tasks=iter([make(2)]))
    loaded = Study.from_directory(path, strict_mode=True)
    assert [t.task_inputs.command for t in loaded.tasks] == ["echo 0", "echo 1", "echo 2"]
    assert {g.study_id for g in loaded.task_groups} == {study.study_id}
    assert len(study.task_groups) == 2 and path.parent == tmp_path


def test_tasks_that_follow_one_another_in_one_group_stay_one_group() -> None:
    stream = [make(0, "cAAAAAAAAA"), make(1, "cAAAAAAAAA"), make(2), make(3, "cAAAAAAAAA")]
    groups = list(groups_of(stream))
    assert [len(g.tasks) for g in groups] == [2, 1, 1]
    assert groups[0].task_group_id == "cAAAAAAAAA"


def test_a_stream_failing_half_way_leaves_nothing(tmp_path: Path) -> None:
    def tasks() -> Iterator[Task]:
        for i in range(40):
            if i == 30:
                raise RuntimeError("the generator broke")
            yield make(i)

    with pytest.raises(RuntimeError, match="the generator broke"):
        Study(name="broken").to_directory(tmp_path, tasks=tasks())
    assert leftovers(tmp_path) == []


def test_a_streamed_study_joins_its_study_group(tmp_path: Path) -> None:
    group_dir = StudyGroup(name="g").to_directory(tmp_path)
    path = Study(name="s").to_directory(group_dir, tasks=(make(i) for i in range(3)))
    loaded = StudyGroup.from_directory(group_dir, strict_mode=True)
    assert [len(s.tasks) for s in loaded.studies] == [3]
    assert loaded.studies[0].task_groups[0].study_group_id == loaded.study_group_id
    assert path.parent == group_dir


def test_duplicate_names_in_a_stream_are_refused_and_nothing_appears(tmp_path: Path) -> None:
    tasks = (make(i) for i in range(5))
    with pytest.raises(AutojobError, match="already exists"):
        Study(name="dup").to_directory(tmp_path, tasks=tasks, task_group_template="same")
    assert leftovers(tmp_path) == []


SPEC = """\
name = "stream"
command = "python3 calc.py {x}"
files = [{ src = "inputs/{x}.txt", dest = "input.txt" }]
[parameters]
x = [1, 2, 3, 4, 5, 6]
"""


def test_a_sweep_writes_each_combination_with_its_files_and_keeps_none(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    for x in range(1, 7):
        (tmp_path / "inputs" / f"{x}.txt").write_text(f"value {x}\n")
    (tmp_path / "spec.toml").write_text(SPEC)
    dest = tmp_path / "out"
    dest.mkdir()
    result = sweep_into(load_spec(tmp_path / "spec.toml"), dest)
    assert result.added == 6 and result.study.task_groups == []
    loaded = Study.from_directory(result.path, strict_mode=True)
    for x, group in zip(range(1, 7), loaded.task_groups, strict=True):
        task_dir = result.path / group.label / group.tasks[0].task_metadata.task_id
        assert (task_dir / "input.txt").read_text() == f"value {x}\n"
        assert group.tasks[0].task_inputs.files_to_copy == ["input.txt"]


def test_a_sweep_refused_at_a_later_combination_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    for x in range(1, 6):  # the file of x = 6 is missing
        (tmp_path / "inputs" / f"{x}.txt").write_text(f"value {x}\n")
    (tmp_path / "spec.toml").write_text(SPEC)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(AutojobError, match="combination 5"):
        sweep_into(load_spec(tmp_path / "spec.toml"), dest)
    assert leftovers(dest) == []
