"""Unstructured mode: loose task directories are found and completed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autojob.create.listing import list_tree
from autojob.errors import AutojobError
from autojob.next import create_task_tree
from autojob.store.discovery import Kind, discover_tasks, ensure_task_metadata, kind_of
from autojob.study import Study
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata


def loose_task(directory: Path, command: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "inputs.json").write_text(json.dumps({"task_inputs": {"command": command}}))
    return directory


def test_loose_directories_get_task_metadata_once(tmp_path: Path) -> None:
    a = loose_task(tmp_path / "runs" / "a", "echo a")
    b = loose_task(tmp_path / "runs" / "deeper" / "b", "echo b")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "inputs.json").write_text(json.dumps({"command": "echo flat", "auto_restart": False}))
    (tmp_path / "notes").mkdir()
    found = list(discover_tasks(tmp_path))
    assert [f.path for f in found] == [flat, a, b]
    assert not any(f.has_metadata for f in found)
    listing = list_tree(tmp_path)
    assert sorted(listing.created) == sorted([a, b, flat])
    assert [row.command for row in listing.rows] == ["echo flat", "echo a", "echo b"]
    assert [row.label for row in listing.rows] == ["flat", "a", "b"]
    first = (a / "task.json").read_bytes()
    assert list_tree(tmp_path).created == []
    assert (a / "task.json").read_bytes() == first
    task = Task.from_directory(flat)
    assert task.task_inputs.auto_restart is False and task.task_inputs.command == "echo flat"


def test_existing_metadata_is_never_overwritten(tmp_path: Path) -> None:
    task_dir = create_task_tree(Task(task_metadata=TaskMetadata(label="mine")), tmp_path)
    before = (task_dir / "task.json").read_bytes()
    assert ensure_task_metadata(task_dir) is False
    assert (task_dir / "task.json").read_bytes() == before


def test_created_metadata_takes_the_group_ids(tmp_path: Path) -> None:
    study_dir = Study(task_groups=[TaskGroup(tasks=[Task()])]).to_directory(tmp_path)
    group_dir = next(p for p in study_dir.iterdir() if p.is_dir())
    copied = loose_task(group_dir / "by-hand", "echo hand")
    assert ensure_task_metadata(copied) is True
    group = json.loads((group_dir / "task_group.json").read_text())
    meta = json.loads((copied / "task.json").read_text())
    assert meta["task_group_id"] == group["task_group_id"]
    assert meta["study_id"] == group["study_id"]


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    loose_task(root / "t", "true")
    outside = loose_task(tmp_path / "outside" / "o", "true")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "escape").symlink_to(outside.parent, target_is_directory=True)
    assert [f.path for f in discover_tasks(root)] == [root / "t"]


def test_kinds_and_missing_roots(tmp_path: Path) -> None:
    study_dir = Study(tasks=[Task(task_inputs=TaskInputs(command="x"))]).to_directory(tmp_path)
    group_dir = next(p for p in study_dir.iterdir() if p.is_dir())
    task_dir = next(p for p in group_dir.iterdir() if p.is_dir())
    assert [kind_of(p) for p in (study_dir, group_dir, task_dir, tmp_path)] == [
        Kind.STUDY,
        Kind.TASK_GROUP,
        Kind.TASK,
        Kind.PLAIN,
    ]
    with pytest.raises(AutojobError, match="no such directory"):
        list(discover_tasks(tmp_path / "nope"))


def test_staging_directories_are_invisible(tmp_path: Path) -> None:
    loose_task(tmp_path / ".autojob-staging-abc" / "t", "true")
    assert list(discover_tasks(tmp_path)) == []
