"""Task classes registered through the ``autojob.task`` entry-point group."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from autojob.errors import MetadataError, PluginError
from autojob.next import create_task_tree
from autojob.plugins import available_task_classes, get_task_class, refresh_plugins
from autojob.tasks.task import Task, TaskMetadata


@pytest.fixture
def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real installed distribution (dist-info on sys.path) with a task class."""
    site = tmp_path / "site"
    (site / "mdtasks").mkdir(parents=True)
    (site / "mdtasks" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from pydantic import Field
            from autojob.tasks.task import Task, TaskInputs

            class MDInputs(TaskInputs):
                steps: int = 100

            class MolecularDynamics(Task):
                task_inputs: MDInputs = Field(default_factory=MDInputs)
            """
        )
    )
    dist = site / "mdtasks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mdtasks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[autojob.task]\nmoleculardynamics = mdtasks:MolecularDynamics\n"
    )
    monkeypatch.syspath_prepend(str(site))
    refresh_plugins()
    yield site
    sys.modules.pop("mdtasks", None)
    refresh_plugins()


def test_builtin_task_class_is_registered() -> None:
    assert get_task_class("task") is Task
    assert "task" in available_task_classes()


def test_magic_mode_loads_the_class_named_in_task_json(
    plugin_package: Path, tmp_path: Path
) -> None:
    md_class = get_task_class("moleculardynamics")
    task = md_class.model_validate({"task_inputs": {"steps": 5000, "command": "md"}})
    assert task.task_metadata.task_class == "moleculardynamics"
    path = create_task_tree(task, tmp_path / "site")
    loaded = Task.from_directory(path, magic_mode=True)
    assert type(loaded) is md_class
    assert loaded.task_inputs.steps == 5000  # type: ignore[attr-defined]
    plain = Task.from_directory(path)
    assert type(plain) is Task


def test_unknown_task_class_strict_and_relaxed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = create_task_tree(Task(task_metadata=TaskMetadata(task_class="nosuch")), tmp_path)
    with pytest.raises(PluginError, match="'nosuch' is not installed") as info:
        Task.from_directory(path, magic_mode=True, strict_mode=True)
    assert info.value.field == "task_class" and info.value.path == path / "task.json"
    loaded = Task.from_directory(path, magic_mode=True, strict_mode=False)
    assert type(loaded) is Task
    assert "nosuch" in caplog.text


def test_missing_task_class_in_magic_mode(tmp_path: Path) -> None:
    path = create_task_tree(Task(), tmp_path)
    text = (path / "task.json").read_text().replace('"task_class": "task"', '"task_class": null')
    (path / "task.json").write_text(text)
    with pytest.raises(MetadataError, match="no task class"):
        Task.from_directory(path, magic_mode=True, strict_mode=True)
    assert type(Task.from_directory(path, magic_mode=True, strict_mode=False)) is Task
