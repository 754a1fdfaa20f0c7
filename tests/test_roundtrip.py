"""Writing a tree and reading it back gives equal models (property tests)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autojob.next import create_task_tree
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
line = st.text(st.characters(codec="utf-8", min_codepoint=32), max_size=30)
names = st.lists(st.text(min_size=1, max_size=12), max_size=3)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def tasks(draw: st.DrawFn) -> Task:
    meta = TaskMetadata(label=draw(text), tags=draw(names))
    extras: dict[str, Any] = draw(
        st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), json_values, max_size=2)
    )
    inputs = TaskInputs(
        command=draw(st.none() | text),
        files_to_carry_over=draw(names),
        files_to_delete=draw(names),
        auto_restart=draw(st.booleans()),
        **extras,
    )
    sched = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "time": st.sampled_from(["10", "1:00:00", "2-12", "UNLIMITED"]),
                "mem": st.sampled_from(["4G", "4000M", "512M"]),
                "partition": st.lists(
                    st.from_regex(r"[a-z]{1,8}", fullmatch=True), min_size=1, max_size=3
                ),
                "nodes": st.integers(1, 64),
                "job-name": line,
                "gres": line,
            },
        )
    )
    return Task(task_metadata=meta, task_inputs=inputs, scheduler_inputs=sched)


@st.composite
def studies(draw: st.DrawFn) -> Study:
    groups = [
        TaskGroup(label=draw(text), tasks=draw(st.lists(tasks(), min_size=1, max_size=3)))
        for _ in range(draw(st.integers(0, 3)))
    ]
    return Study(name=draw(text), notes=draw(names), task_groups=groups)


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(task=tasks())
def test_task_round_trip(task: Task) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = create_task_tree(task, Path(tmp))
        assert Task.from_directory(path) == task
        assert Task.from_directory(path, magic_mode=True) == task


@FAST
@given(study=studies())
def test_study_round_trip(study: Study) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = study.to_directory(Path(tmp))
        loaded = Study.from_directory(path)
        assert loaded == study
        assert [g.task_group_id for g in loaded.task_groups] == [
            g.task_group_id for g in study.task_groups
        ]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=st.lists(studies(), max_size=3), name=text)
def test_study_group_round_trip_with_templates(groups: list[Study], name: str) -> None:
    sg = StudyGroup(name=name, studies=groups)
    with tempfile.TemporaryDirectory() as tmp:
        path = sg.to_directory(
            Path(tmp),
            study_group_template="sg",
            study_template="study-{i}",
            task_group_template="{task_group_id}-{i}",
            task_template="t{i:03d}",
        )
        assert StudyGroup.from_directory(path) == sg


def test_write_inputs_into_an_existing_directory(tmp_path: Path) -> None:
    task = Task(task_inputs=TaskInputs(command="true"))
    written = task.write_inputs(tmp_path)
    assert sorted(p.name for p in written) == ["inputs.json", "run.sh", "task.json"]
    assert Task.from_directory(tmp_path) == task
    task.task_inputs.command = "false"
    task.write_inputs(tmp_path)  # rewrites in place, atomically
    assert Task.from_directory(tmp_path).task_inputs.command == "false"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs.json", "run.sh", "task.json"]
