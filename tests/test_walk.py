"""One definition of a task directory, and one policy for unreadable ones."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.harvest import harvest
from autojob.store.discovery import discover_tasks
from autojob.store.names import STAGING_PREFIX
from autojob.store.status_index import collect
from autojob.store.walk import is_task_dir, walk_task_dirs


def _task(folder: Path, name: str = SETTINGS.INPUTS_FILE) -> Path:
    folder.mkdir(parents=True)
    (folder / name).write_text('{"task_inputs": {}}')
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A study with a task group of two tasks, a loose task, and what is skipped."""
    study = tmp_path / "study"
    study.mkdir()
    (study / SETTINGS.STUDY_METADATA_FILE).write_text("{}")
    group = study / "group"
    group.mkdir()
    (group / SETTINGS.TASK_GROUP_METADATA_FILE).write_text("{}")
    _task(group / "b", SETTINGS.TASK_METADATA_FILE)
    _task(group / "a")
    _task(group / "a" / "inner")  # a task's subdirectory is its own file
    _task(tmp_path / "loose")
    _task(tmp_path / f"{STAGING_PREFIX}x" / "t")
    _task(tmp_path / SETTINGS.INDEX_DIR / "t")
    _task(tmp_path / "loose2" / SETTINGS.HISTORY_DIR / "1")
    (tmp_path / "link").symlink_to(tmp_path / "loose")
    (tmp_path / "dir-named-like-inputs" / SETTINGS.INPUTS_FILE).mkdir(parents=True)
    return tmp_path


def test_the_walk_finds_tasks_in_path_order_with_their_group_and_study(tree: Path) -> None:
    found = [(rel, group, study) for _, rel, _, group, study in walk_task_dirs(str(tree))]
    assert found == [
        ("loose", None, None),
        ("study/group/a", "study/group", "study"),
        ("study/group/b", "study/group", "study"),
    ]


def test_discovery_status_and_harvest_find_the_same_tasks(tree: Path) -> None:
    walked = {rel for _, rel, _, _, _ in walk_task_dirs(str(tree))}
    assert {str(t.path.relative_to(tree)) for t in discover_tasks(tree)} == walked
    assert set(collect(tree, use_index=False).rows) == walked
    assert {t.path for t in harvest(tree, strict=False)} == walked


def test_a_task_is_a_directory_holding_metadata_or_inputs_files() -> None:
    assert is_task_dir({SETTINGS.TASK_METADATA_FILE})
    assert is_task_dir({SETTINGS.INPUTS_FILE, "run.sh"})
    assert not is_task_dir({SETTINGS.TASK_GROUP_METADATA_FILE, "notes.txt"})


def _refusing(monkeypatch: pytest.MonkeyPatch, refused: Path) -> None:
    real: Callable[..., Any] = os.scandir

    def scandir(path: Any) -> Any:
        if os.fspath(path) == str(refused):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_directory_is_skipped_with_a_warning_by_status_and_discovery(
    tree: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    refused = tree / "study" / "group"
    _refusing(monkeypatch, refused)
    with caplog.at_level(logging.WARNING):
        assert [t.path for t in discover_tasks(tree)] == [tree / "loose"]
        assert set(collect(tree, use_index=False).rows) == {"loose"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(str(refused) in w and "cannot list the directory" in w for w in warnings)


def test_an_unreadable_directory_stops_a_harvest_naming_it(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = tree / "study" / "group"
    _refusing(monkeypatch, refused)
    with pytest.raises(AutojobError, match="cannot list the directory") as caught:
        list(harvest(tree, strict=False))
    assert caught.value.path == refused
