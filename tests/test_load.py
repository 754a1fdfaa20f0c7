"""Loading a tree: files read from their opened directories, errors naming full paths."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.errors import MetadataError, MissingFileError
from autojob.store.atomic import read_bytes_if_file, read_bytes_if_file_at, read_json_object
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata


def write_tree(parent: Path, n: int = 3) -> Path:
    """A study group of one study of ``n`` one-task groups; return its directory."""
    tasks = [
        Task(
            task_inputs=TaskInputs(command=f"echo {i}"),
            task_metadata=TaskMetadata(label=f"task-{i}"),
        )
        for i in range(n)
    ]
    return StudyGroup(studies=[Study(name="s", tasks=tasks)]).to_directory(parent)


def task_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob(f"*/*/*/{SETTINGS.TASK_METADATA_FILE}"))


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_loaded_tree_holds_every_task_with_its_inputs(tmp_path: Path) -> None:
    root = write_tree(tmp_path, 4)
    group = StudyGroup.from_directory(root, strict_mode=True)
    tasks = [task for study in group.studies for task in study.tasks]
    assert sorted(t.task_inputs.command or "" for t in tasks) == [f"echo {i}" for i in range(4)]
    assert all(t.task_outputs is None for t in tasks)


def test_outputs_longer_than_one_read_are_read_whole(tmp_path: Path) -> None:
    root = write_tree(tmp_path, 1)
    (task,) = task_dirs(root)
    values = list(range(60_000))  # about 400 KB of JSON: several reads of 64 KB
    (task / SETTINGS.OUTPUTS_FILE).write_text(json.dumps({"values": values}))
    loaded = StudyGroup.from_directory(root, strict_mode=True).studies[0].tasks[0]
    assert loaded.task_outputs is not None
    assert loaded.task_outputs.model_extra == {"values": values}


def test_an_outputs_directory_is_no_outputs_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path, 1)
    (task,) = task_dirs(root)
    (task / SETTINGS.OUTPUTS_FILE).mkdir()
    loaded = StudyGroup.from_directory(root, strict_mode=True).studies[0].tasks[0]
    assert loaded.task_outputs is None


@pytest.mark.parametrize(
    ("file_name", "content", "field", "message"),
    [
        ("OUTPUTS_FILE", b"{not json", None, "not valid JSON"),
        ("OUTPUTS_FILE", b"[1, 2]", None, "must hold a JSON object"),
        (
            "INPUTS_FILE",
            b'{"task_inputs": {"max_attempts": 0}}',
            "task_inputs.max_attempts",
            "greater than or equal to 1",
        ),
        ("INPUTS_FILE", b'{"task_inputs": []}', "task_inputs", "must be an object"),
        (
            "TASK_METADATA_FILE",
            b'{"task_id": "abc", "task_class": "task"}',
            "task_id",
            "is not an id",
        ),
        ("TASK_METADATA_FILE", b"\xff\xfe", None, "not UTF-8"),
    ],
)
def test_a_broken_file_deep_in_the_tree_is_named_by_its_full_path(
    tmp_path: Path, file_name: str, content: bytes, field: str | None, message: str
) -> None:
    root = write_tree(tmp_path)
    broken = task_dirs(root)[1] / getattr(SETTINGS, file_name)
    broken.write_bytes(content)
    before = open_descriptors()
    with pytest.raises(MetadataError, match=message) as info:
        StudyGroup.from_directory(root, strict_mode=True)
    assert info.value.path == broken
    assert info.value.field == field
    assert open_descriptors() == before  # the opened directories were closed


def test_a_task_without_inputs_is_a_missing_file_named_by_its_path(tmp_path: Path) -> None:
    root = write_tree(tmp_path)
    missing = task_dirs(root)[2] / SETTINGS.INPUTS_FILE
    missing.unlink()
    with pytest.raises(MissingFileError) as info:
        StudyGroup.from_directory(root, strict_mode=True)
    assert info.value.path == missing


def test_a_broken_task_group_file_is_named_by_its_full_path(tmp_path: Path) -> None:
    root = write_tree(tmp_path)
    group_file = task_dirs(root)[0].parent / SETTINGS.TASK_GROUP_METADATA_FILE
    edit_json(group_file, study_id=7)
    with pytest.raises(MetadataError) as info:
        StudyGroup.from_directory(root, strict_mode=True)
    assert info.value.path == group_file
    assert info.value.field == "study_id"


def test_children_keep_the_listed_order_found_in_any_order(tmp_path: Path) -> None:
    root = write_tree(tmp_path, 5)
    (study_dir,) = (p.parent for p in root.glob(f"*/{SETTINGS.STUDY_METADATA_FILE}"))
    study_file = study_dir / SETTINGS.STUDY_METADATA_FILE
    listed = json.loads(study_file.read_text())["task_groups"]
    shuffled = [*listed[3:], *listed[:3]]
    edit_json(study_file, task_groups=shuffled)
    study = StudyGroup.from_directory(root, strict_mode=True).studies[0]
    assert [g.task_group_id for g in study.task_groups] == shuffled


def test_directories_without_metadata_and_symlinks_are_not_children(tmp_path: Path) -> None:
    root = write_tree(tmp_path, 2)
    (study_dir,) = (p.parent for p in root.glob(f"*/{SETTINGS.STUDY_METADATA_FILE}"))
    (study_dir / "notes").mkdir()  # no task_group.json: not a task group
    group_dir = task_dirs(root)[0].parent
    (study_dir / "cLinkToGrp").symlink_to(group_dir, target_is_directory=True)
    (group_dir / "scratch").mkdir()  # no task.json: not a task
    study = StudyGroup.from_directory(root, strict_mode=True).studies[0]
    assert len(study.task_groups) == 2
    assert all(len(group.tasks) == 1 for group in study.task_groups)


def test_reading_a_file_relative_to_an_open_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.json").write_bytes(b'{"a": 1}')
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_bytes_if_file_at("sub/a.json", dir_fd, tmp_path / "sub/a.json") == b'{"a": 1}'
        assert read_bytes_if_file_at("sub/none.json", dir_fd, tmp_path / "sub/none.json") is None
        assert read_bytes_if_file_at("sub", dir_fd, tmp_path / "sub") is None  # a directory
    finally:
        os.close(dir_fd)
    assert read_bytes_if_file(tmp_path / "sub") is None
    with pytest.raises(MetadataError, match="cannot read the file") as info:
        read_json_object(tmp_path / "sub")
    assert info.value.path == tmp_path / "sub"
    with pytest.raises(MissingFileError):
        read_json_object(tmp_path / "none.json")


def test_an_id_listed_twice_is_refused_in_strict_mode_and_loaded_once_otherwise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_tree(tmp_path, 2)
    group_file = task_dirs(root)[0].parent / SETTINGS.TASK_GROUP_METADATA_FILE
    (task_id,) = json.loads(group_file.read_text())["tasks"]
    edit_json(group_file, tasks=[task_id, task_id])
    with pytest.raises(MetadataError, match="listed more than once") as info:
        StudyGroup.from_directory(root, strict_mode=True)
    assert info.value.path == group_file
    assert info.value.field == "tasks"
    assert task_id in str(info.value)
    loaded = StudyGroup.from_directory(root, strict_mode=False)
    groups = loaded.studies[0].task_groups
    assert sorted(len(g.tasks) for g in groups) == [1, 1]  # not two copies of the task
    assert "listed more than once" in caplog.text
