"""Interoperability with the reference implementation, PyPI ``python-autojob`` 0.0.2.

A session fixture installs ``python-autojob==0.0.2`` into a throwaway virtualenv
(it is never a dependency of ours). Scripts run with that venv's interpreter, in
an environment where our package is not importable, so there ``import autojob``
is the reference implementation. The two directions checked:

* a tree written by python-autojob loads through our API;
* task directories we write load with python-autojob's ``Task.from_directory``.

Tasks here have no atoms: python-autojob's strict mode requires an atoms file,
so its loader runs with ``strict_mode=False``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.bases.task_base import TaskBase
from autojob.next import create_task_group_tree, create_task_tree
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata
from tests.interop_helpers import run_reference

pytestmark = pytest.mark.interop


def test_reference_is_not_our_dependency() -> None:
    requirements = metadata.requires("autojob") or []
    assert not [r for r in requirements if "python-autojob" in r.lower()]
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("python-autojob")


# -- a tree written by python-autojob loads through our API ------------------


def _assert_task_matches(task: TaskBase, written: dict[str, Any]) -> None:
    meta, inputs = written["metadata"], written["inputs"]
    assert type(task) is Task
    assert task.task_metadata.task_id == meta["task_id"]
    assert task.task_metadata.label == meta["label"]
    assert task.task_metadata.tags == meta["tags"]
    assert task.task_metadata.task_class == meta["task_class"] == "task"
    assert task.task_metadata.date_created == datetime.fromisoformat(meta["date_created"])
    for field in (
        "files_to_copy",
        "files_to_delete",
        "files_to_carry_over",
        "auto_restart",
        "task_script",
        "task_script_template",
    ):
        assert getattr(task.task_inputs, field) == inputs[field], field
    # a field we do not model (python-autojob's atoms file name) is kept
    assert task.task_inputs.model_extra == {"atoms_filename": inputs["atoms_filename"]}


@pytest.mark.parametrize("tree", ["plain", "templated"])
def test_reference_study_group_loads(reference_trees: dict[str, Any], tree: str) -> None:
    summary = reference_trees[tree]
    sg = StudyGroup.from_directory(summary["path"])

    assert sg.study_group_id == summary["study_group_id"]
    assert sg.name == summary["name"] == tree
    assert sg.notes == ["written by python-autojob"]
    assert [s.study_id for s in sg.studies] == [s["study_id"] for s in summary["studies"]]
    for study, written in zip(sg.studies, summary["studies"], strict=True):
        assert study.name == written["name"]
        assert study.study_group_id == sg.study_group_id
        loaded_groups = {
            g.task_group_id: [t.task_metadata.task_id for t in g.tasks] for g in study.task_groups
        }
        assert loaded_groups == written["task_groups"]
        assert len(study.tasks) == len(written["tasks"])
        for group in study.task_groups:
            # python-autojob labels a group with its first task's label
            first = written["tasks"][written["task_groups"][group.task_group_id][0]]
            assert group.label == first["metadata"]["label"]
            for task in group.tasks:
                _assert_task_matches(task, written["tasks"][task.task_metadata.task_id])
                # python-autojob gives each Task() its own study and study group
                # ids; loading links every task to the tree it sits in
                assert task.task_metadata.task_group_id == group.task_group_id
                assert task.task_metadata.study_id == study.study_id
                assert task.task_metadata.study_group_id == sg.study_group_id


@pytest.mark.parametrize("tree", ["plain", "templated"])
def test_reference_studies_and_task_groups_load(reference_trees: dict[str, Any], tree: str) -> None:
    summary = reference_trees[tree]
    root, dirs = Path(summary["path"]), summary["dirs"]
    for written in summary["studies"]:
        study = Study.from_directory(root / dirs[written["study_id"]])
        assert study.study_id == written["study_id"]
        assert study.name == written["name"]
        assert sorted(t.task_metadata.task_id for t in study.tasks) == sorted(written["tasks"])
        for group_id, task_ids in written["task_groups"].items():
            group = TaskGroup.from_directory(root / dirs[group_id])
            assert group.task_group_id == group_id
            assert [t.task_metadata.task_id for t in group.tasks] == task_ids


@pytest.mark.parametrize("tree", ["plain", "templated"])
def test_reference_tasks_load_by_magic(reference_trees: dict[str, Any], tree: str) -> None:
    summary = reference_trees[tree]
    root, dirs = Path(summary["path"]), summary["dirs"]
    written_tasks = {k: v for s in summary["studies"] for k, v in s["tasks"].items()}
    assert len(written_tasks) == 6
    for task_id, written in written_tasks.items():
        task = Task.from_directory(root / dirs[task_id], magic_mode=True)
        _assert_task_matches(task, written)
        # alone, a task keeps exactly the ids its task.json holds
        for field in ("task_group_id", "study_id", "study_group_id", "workflow_step_id"):
            assert getattr(task.task_metadata, field) == written["metadata"][field]


def test_reference_templates_named_the_directories(reference_trees: dict[str, Any]) -> None:
    dirs = reference_trees["templated"]["dirs"]
    assert Path(reference_trees["templated"]["path"]).name == "templated"
    names = sorted(dirs.values())
    assert "templated-study-a" in names
    assert "templated-study-b/tg-other-in/other-1" in names
    relax = [n for n in names if n.startswith("templated-study-a/tg-relax-in/")]
    assert sorted(relax) == [
        "templated-study-a/tg-relax-in/relax-1",
        "templated-study-a/tg-relax-in/relax-2",
        "templated-study-a/tg-relax-in/relax-3-1",
    ]


# -- what we write loads with python-autojob's loader ------------------------

READ_WITH_REFERENCE = """
import sys
from pathlib import Path

import autojob
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task

assert Path(autojob.__file__).is_relative_to(sys.prefix), autojob.__file__


def describe(task):
    meta = task.task_metadata
    return {
        "type": type(task).__name__,
        "task_id": str(meta.task_id),
        "label": meta.label,
        "task_group_id": None if meta.task_group_id is None else str(meta.task_group_id),
        "study_id": None if meta.study_id is None else str(meta.study_id),
        "study_group_id": None if meta.study_group_id is None else str(meta.study_group_id),
        "task_class": meta.task_class,
        "date_created": meta.date_created.isoformat(),
        "files_to_carry_over": task.task_inputs.files_to_carry_over,
        "files_to_delete": task.task_inputs.files_to_delete,
        "auto_restart": task.task_inputs.auto_restart,
        "inputs_extra": task.task_inputs.model_extra,
    }


def load(src, **kwargs):
    try:
        return {"ok": True, **describe(Task.from_directory(src, **kwargs))}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


study_group_dir, *task_dirs = sys.argv[1:]
result = {
    "tasks": {d: load(d, strict_mode=False) for d in task_dirs},
    "magic": {d: load(d, strict_mode=False, magic_mode=True) for d in task_dirs},
}
if study_group_dir != "-":
    sg = StudyGroup.from_directory(Path(study_group_dir).absolute(), strict_mode=False)
    result["study_group"] = {
        "study_group_id": str(sg.study_group_id),
        "name": sg.name,
        "studies": {
            str(s.study_id): sorted(str(t.task_metadata.task_id) for t in s.tasks)
            for s in sg.studies
        },
    }
emit(result)
"""


def _our_tree(root: Path) -> tuple[Path, list[Path]]:
    """Write a tree with every writer we have; return it and its task dirs."""
    sg_dir = StudyGroup(name="interop", notes=["ours"]).to_directory(root)

    swept = [
        Task(
            task_metadata=TaskMetadata(label=f"sweep {i}", tags=["sweep"]),
            task_inputs=TaskInputs(
                command=f"python run.py --x {i} > out.txt",
                files_to_carry_over=["out.txt"],
            ),
            scheduler_inputs={"time": "00:05:00", "ntasks": 1},
        )
        for i in range(2)
    ]
    Study(name="swept", tasks=swept).to_directory(sg_dir)

    study_dir = Study(name="by hand").to_directory(sg_dir)
    first = Task(
        task_metadata=TaskMetadata(label="relax; rm -rf / 'quoted'"),
        task_inputs=TaskInputs(
            command="echo hi > out.txt",
            files_to_carry_over=["out.txt", "CHGCAR"],
            files_to_delete=["WAVECAR"],
            auto_restart=False,
        ),
        scheduler_inputs={"time": "00:10:00", "mem": "1G", "nodes": 1},
    )
    group_dir = create_task_group_tree(first, study_dir)
    create_task_tree(first, group_dir)
    restart = Task(
        task_metadata=TaskMetadata(label="relax, attempt 2"),
        task_inputs=TaskInputs(command="echo again", files_to_carry_over=["CHGCAR"]),
        scheduler_inputs={"time": "00:20:00"},
    )
    create_task_tree(restart, group_dir, src=group_dir / first.task_metadata.task_id)
    assert restart.task_metadata.task_group_id == first.task_metadata.task_group_id

    loose = Task(
        task_metadata=TaskMetadata(label="loose"),
        task_inputs=TaskInputs(command="true", files_to_carry_over=["a", "b/c"]),
        scheduler_inputs={"partition": "debug"},
    )
    loose_dir = root / "loose"
    loose_dir.mkdir()
    loose.write_inputs(loose_dir)

    task_dirs = sorted(p.parent for p in sg_dir.rglob(SETTINGS.TASK_METADATA_FILE))
    assert len(task_dirs) == 4
    return sg_dir, [*task_dirs, loose_dir]


def _assert_reference_agrees(report: dict[str, Any], ours: Task) -> None:
    assert report["ok"], report["error"]
    meta = ours.task_metadata
    assert report["type"] == "Task"
    assert report["task_id"] == meta.task_id
    assert report["label"] == meta.label
    assert report["task_group_id"] == meta.task_group_id
    assert report["study_id"] == meta.study_id
    assert report["study_group_id"] == meta.study_group_id
    assert report["task_class"] == meta.task_class == "task"
    assert datetime.fromisoformat(report["date_created"]) == meta.date_created
    assert report["files_to_carry_over"] == ours.task_inputs.files_to_carry_over
    assert report["files_to_delete"] == ours.task_inputs.files_to_delete
    assert report["auto_restart"] == ours.task_inputs.auto_restart
    # python-autojob keeps what it does not model: our command, and the other
    # sections of inputs.json, land in its task inputs as extras
    assert report["inputs_extra"]["command"] == ours.task_inputs.command
    assert report["inputs_extra"]["scheduler_inputs"] == ours.scheduler_inputs.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-ids", "uuid-ids"])
def test_reference_loads_our_tasks(
    reference_python: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    legacy: bool,
) -> None:
    monkeypatch.setattr(SETTINGS, "LEGACY_MODE", legacy)
    root = tmp_path / "ours"
    root.mkdir()
    sg_dir, task_dirs = _our_tree(root)
    ours = {str(d): Task.from_directory(d) for d in task_dirs}
    for task in ours.values():
        assert task.scheduler_inputs
        assert task.task_inputs.command
        assert (len(task.task_metadata.task_id) == 10) is legacy

    report = run_reference(reference_python, READ_WITH_REFERENCE, str(sg_dir), *ours, cwd=tmp_path)

    for directory, task in ours.items():
        _assert_reference_agrees(report["tasks"][directory], task)
        _assert_reference_agrees(report["magic"][directory], task)

    sg = StudyGroup.from_directory(sg_dir)
    assert report["study_group"] == {
        "study_group_id": sg.study_group_id,
        "name": "interop",
        "studies": {
            s.study_id: sorted(t.task_metadata.task_id for t in s.tasks) for s in sg.studies
        },
    }


def test_reference_loads_task_with_our_workflow_step_id(
    reference_python: Path, tmp_path: Path
) -> None:
    task = Task(
        task_metadata=TaskMetadata(label="from a step", workflow_step_id=str(uuid.uuid4())),
        task_inputs=TaskInputs(command="true"),
    )
    task_dir = tmp_path / "step_task"
    task_dir.mkdir()
    task.write_inputs(task_dir)
    report = run_reference(reference_python, READ_WITH_REFERENCE, "-", str(task_dir), cwd=tmp_path)
    _assert_reference_agrees(report["tasks"][str(task_dir)], task)
