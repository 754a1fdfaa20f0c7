"""The pydantic models: ids, defaults, linking and their dumps."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from autojob import SETTINGS
from autojob.bases.task_base import TASK_GROUP_FIELDS
from autojob.ids import ID_ALPHABET, check_id, new_id
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata


def test_legacy_ids_have_kind_prefix_and_ten_characters() -> None:
    meta = TaskMetadata()
    for value, prefix in (
        (meta.task_id, "j"),
        (meta.task_group_id, "c"),
        (meta.study_id, "s"),
        (meta.study_group_id, "g"),
    ):
        assert value is not None
        assert len(value) == 10
        assert value[0] == prefix
        assert set(value[1:]) <= set(ID_ALPHABET)


def test_uuid_ids_when_legacy_mode_is_off() -> None:
    SETTINGS.LEGACY_MODE = False
    task_id = TaskMetadata().task_id
    assert str(uuid.UUID(task_id)) == task_id
    assert uuid.UUID(task_id).version == 4


def test_ids_of_both_forms_load_and_others_are_refused() -> None:
    assert check_id("jYKn9PKaBj") == "jYKn9PKaBj"
    u = uuid.uuid4()
    assert check_id(u) == str(u)
    assert check_id(str(u).upper()) == str(u)
    for bad in ("abc", "jYKn9PKaB!", "", "j" * 11):
        with pytest.raises(ValueError, match="is not an id"):
            check_id(bad)
    with pytest.raises(ValidationError, match="task_id"):
        TaskMetadata(task_id="short")


def test_new_ids_do_not_repeat() -> None:
    ids = {new_id("j") for _ in range(10_000)}
    assert len(ids) == 10_000


def test_model_dump_is_json_ready_as_the_seed_uses_it() -> None:
    # json.dump(model.model_dump()) is how the seed writes files: no datetime objects
    for model in (StudyGroup(), Study(), TaskMetadata(), TaskInputs()):
        json.dumps(model.model_dump())
    dumped = TaskMetadata().model_dump(include=set(TASK_GROUP_FIELDS))
    assert set(dumped) == set(TASK_GROUP_FIELDS)


def test_naive_timestamps_are_taken_as_utc() -> None:
    meta = TaskMetadata(date_created=datetime(2024, 1, 2, 3, 4, 5))
    assert meta.date_created == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert meta.model_dump()["date_created"] == "2024-01-02T03:04:05+00:00"


def test_task_class_defaults_to_the_class_name() -> None:
    assert Task().task_metadata.task_class == "task"


def test_building_a_tree_links_ids_downwards() -> None:
    tasks = [Task(), Task()]
    group = TaskGroup(label="g", tasks=tasks)
    study = Study(name="s", task_groups=[group])
    sg = StudyGroup(studies=[study])
    for task in tasks:
        meta = task.task_metadata
        assert meta.task_group_id == group.task_group_id
        assert meta.study_id == study.study_id
        assert meta.study_group_id == sg.study_group_id
    assert group.study_group_id == sg.study_group_id


def test_study_from_tasks_groups_them_by_task_group_id() -> None:
    a1 = Task(task_metadata=TaskMetadata(task_group_id="cAAAAAAAAA", label="a"))
    a2 = Task(task_metadata=TaskMetadata(task_group_id="cAAAAAAAAA"))
    b = Task(task_metadata=TaskMetadata(label="b"))
    study = Study(tasks=[a1, b, a2])
    assert [len(g.tasks) for g in study.task_groups] == [2, 1]
    assert study.task_groups[0].task_group_id == "cAAAAAAAAA"
    assert study.task_groups[0].label == "a"
    assert study.tasks == [a1, a2, b]


def test_dumps_are_the_on_disk_forms() -> None:
    task = Task()
    study = Study(name="s", tasks=[task])
    group = study.task_groups[0]
    assert study.model_dump()["task_groups"] == [group.task_group_id]
    assert group.model_dump()["tasks"] == [task.task_metadata.task_id]
    assert StudyGroup(studies=[study]).model_dump()["studies"] == [study.study_id]


def test_unknown_input_sections_are_kept() -> None:
    task = Task.model_validate({"task_inputs": {"command": "x"}, "calculator": {"ecut": 400}})
    assert task.input_sections()["calculator"] == {"ecut": 400}
    assert task.input_sections()["task_inputs"]["command"] == "x"


def test_workflow_step_ids_are_uuids() -> None:
    step = uuid.uuid4()
    assert TaskMetadata(workflow_step_id=step).workflow_step_id == str(step)
    with pytest.raises(ValidationError, match="workflow step ids are UUIDs"):
        TaskMetadata(workflow_step_id="wAAAAAAAAA")
