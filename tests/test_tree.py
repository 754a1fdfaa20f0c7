"""Directory trees: names from templates, refusals, registration, atomicity."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest

from autojob.errors import MetadataError, TemplateError, TreeError, UnsafePathError
from autojob.next import create_task_group_tree, create_task_tree
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .helpers import DESIGN_FIELDS, tree_listing


def labelled(label: str) -> Task:
    return Task(task_metadata=TaskMetadata(label=label))


def read(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())


def test_structured_tree_has_the_documented_files(tmp_path: Path) -> None:
    study = Study(name="relax", tasks=[labelled("a"), labelled("b")])
    sg_dir = StudyGroup(name="screen", studies=[study]).to_directory(tmp_path)
    assert read(sg_dir / "study_group.json")["studies"] == [study.study_id]
    study_dir = sg_dir / study.study_id
    assert read(study_dir / "study.json")["task_groups"] == [
        g.task_group_id for g in study.task_groups
    ]
    for group in study.task_groups:
        group_json = read(study_dir / group.task_group_id / "task_group.json")
        assert set(group_json) == {
            "label",
            "study_group_id",
            "study_id",
            "task_group_id",
            "date_created",
            "tasks",
        }
        task = group.tasks[0]
        task_dir = study_dir / group.task_group_id / task.task_metadata.task_id
        assert sorted(p.name for p in task_dir.iterdir()) == ["inputs.json", "run.sh", "task.json"]
        assert read(task_dir / "inputs.json")["task_inputs"]["command"] is None
        assert set(read(task_dir / "task.json")) >= DESIGN_FIELDS["task.json"]


def test_templates_name_directories_and_number_with_i(tmp_path: Path) -> None:
    study = Study(name="s", tasks=[labelled("x"), labelled("x"), labelled("y")])
    path = study.to_directory(tmp_path, study_template="{name}", task_group_template="{label}-{i}")
    assert path == tmp_path / "s"
    assert sorted(p.name for p in path.iterdir()) == ["study.json", "x-1", "x-2", "y-1"]


def test_i_continues_after_existing_directories(tmp_path: Path) -> None:
    (tmp_path / "run-1").mkdir()
    first = create_task_tree(labelled("a"), tmp_path, name_template="run-{i}")
    second = create_task_tree(labelled("a"), tmp_path, name_template="run-{i}")
    assert (first.name, second.name) == ("run-2", "run-3")


def test_collision_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    create_task_tree(labelled("same"), tmp_path, name_template="{label}")
    before = tree_listing(tmp_path)
    with pytest.raises(TreeError, match="already exists") as info:
        create_task_tree(labelled("same"), tmp_path, name_template="{label}")
    assert "{i}" in str(info.value)
    assert tree_listing(tmp_path) == before


@pytest.mark.parametrize(
    ("template", "label"),
    [
        ("../escape", "x"),
        ("{label}", "../../etc"),
        ("{label}", "a/b"),
        ("{label}", ".."),
        ("{label}", ""),
        ("/abs", "x"),
    ],
)
def test_templates_that_leave_the_destination_are_refused(
    tmp_path: Path, template: str, label: str
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafePathError):
        create_task_tree(labelled(label), dest, name_template=template)
    assert tree_listing(tmp_path) == ["dest"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{nope}", "unknown field"),
        ("{tags}", "no single value"),
        ("{label.upper}", "plain name"),
        ("{", "malformed"),
    ],
)
def test_bad_templates_name_the_problem(tmp_path: Path, template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        create_task_tree(labelled("a"), tmp_path, name_template=template)
    assert tree_listing(tmp_path) == []


def test_a_failure_midway_leaves_nothing_behind(tmp_path: Path) -> None:
    good = labelled("good")
    bad = Task(task_inputs=TaskInputs(value=float("nan")))
    study = Study(tasks=[good, bad])
    with pytest.raises(MetadataError, match="cannot be written as JSON"):
        study.to_directory(tmp_path)
    assert tree_listing(tmp_path) == []


def test_create_task_tree_in_a_group_joins_it(tmp_path: Path) -> None:
    study_dir = Study(name="s", tasks=[labelled("first")]).to_directory(tmp_path)
    group_dir = next(p for p in study_dir.iterdir() if p.is_dir())
    group_id = read(group_dir / "task_group.json")["task_group_id"]
    newcomer = labelled("second")
    path = create_task_tree(newcomer, group_dir)
    assert read(path / "task.json")["task_group_id"] == group_id
    listed = read(group_dir / "task_group.json")["tasks"]
    assert listed[-1] == newcomer.task_metadata.task_id and len(listed) == 2
    assert [t.task_metadata.label for t in Study.from_directory(study_dir).tasks] == [
        "first",
        "second",
    ]


def test_create_task_group_tree_in_a_study_joins_it(tmp_path: Path) -> None:
    study = Study(name="s")
    study_dir = study.to_directory(tmp_path)
    task = labelled("t")
    group_dir = create_task_group_tree(task, study_dir, name_template="{label}")
    assert read(group_dir / "task_group.json")["tasks"] == [task.task_metadata.task_id]
    create_task_tree(task, group_dir)
    assert read(study_dir / "study.json")["task_groups"] == [task.task_metadata.task_group_id]
    loaded = Study.from_directory(study_dir)
    assert loaded.tasks[0].task_metadata.study_id == study.study_id
    group = TaskGroup(label="whole", tasks=[labelled("u"), labelled("v")])
    whole = create_task_group_tree(group, study_dir, task_template="{label}")
    assert sorted(p.name for p in whole.iterdir()) == ["task_group.json", "u", "v"]
    assert len(Study.from_directory(study_dir).task_groups) == 2


def test_study_written_into_a_study_group_joins_it(tmp_path: Path) -> None:
    sg_dir = StudyGroup(name="g").to_directory(tmp_path)
    study = Study(name="late")
    study.to_directory(sg_dir)
    assert read(sg_dir / "study_group.json")["studies"] == [study.study_id]
    assert (
        StudyGroup.from_directory(sg_dir).studies[0].study_group_id
        == read(sg_dir / "study_group.json")["study_group_id"]
    )


def test_files_are_carried_over_from_a_source_task(tmp_path: Path) -> None:
    src = create_task_tree(labelled("src"), tmp_path)
    (src / "CHGCAR").write_text("density")
    (src / "wavecar").mkdir()
    (src / "wavecar" / "part").write_text("w")
    (src / "big.out").write_text("not carried")
    new = create_task_tree(
        labelled("next"), tmp_path, src=src, files_to_carry_over=["CHGCAR", "wavecar", "missing"]
    )
    assert (new / "CHGCAR").read_text() == "density"
    assert (new / "wavecar" / "part").read_text() == "w"
    assert not (new / "big.out").exists()
    with pytest.raises(UnsafePathError):
        create_task_tree(labelled("evil"), tmp_path, src=src, files_to_carry_over=["../outside"])


def test_destination_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(TreeError, match=r"not a directory"):
        Study().to_directory(tmp_path / "a-file")
    with pytest.raises(TreeError, match=r"a-file is a file"):
        Study().to_directory(tmp_path / "a-file" / "below")
    assert sorted(os.listdir(tmp_path)) == ["a-file"]


def test_task_script_name_cannot_leave_the_task(tmp_path: Path) -> None:
    task = Task(task_inputs=TaskInputs(task_script="../evil.sh"))
    with pytest.raises(UnsafePathError, match="task_script"):
        create_task_tree(task, tmp_path)
    assert tree_listing(tmp_path) == []


def test_file_modes_follow_the_umask(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o027)
    try:
        task_dir = create_task_tree(Task(task_inputs=TaskInputs(command="true")), tmp_path)
        Task.from_directory(task_dir).write_inputs(task_dir)  # atomic rewrite keeps modes
    finally:
        os.umask(old)
    assert stat.S_IMODE((task_dir / "run.sh").stat().st_mode) == 0o750
    assert stat.S_IMODE((task_dir / "task.json").stat().st_mode) == 0o640


def test_loading_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    study = Study(tasks=[Task(task_inputs=TaskInputs(command=f"echo {i}")) for i in range(3)])
    root = StudyGroup(studies=[study]).to_directory(tmp_path)
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    assert len(StudyGroup.from_directory(root).studies[0].tasks) == 3
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    gc.disable()
    try:
        assert len(Study.from_directory(root / study.study_id).tasks) == 3
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc.freeze()  # objects someone else keeps frozen stay frozen
    try:
        held = gc.get_freeze_count()
        StudyGroup.from_directory(root)
        assert gc.get_freeze_count() >= held and gc.isenabled()
    finally:
        gc.unfreeze()


def test_loading_gives_every_child_its_parents_ids(tmp_path: Path) -> None:
    # a group naming another study group, and a task another study: the
    # parents' ids win, however deep the mismatch
    study = Study(tasks=[Task(task_inputs=TaskInputs(command=f"echo {i}")) for i in range(3)])
    root = StudyGroup(studies=[study]).to_directory(tmp_path)
    first, second = study.task_groups[0], study.task_groups[1]
    group_file = root / study.study_id / first.task_group_id / "task_group.json"
    data = json.loads(group_file.read_text())
    data["study_group_id"] = "gOtherGrp1"
    group_file.write_text(json.dumps(data))
    task_id = second.tasks[0].task_metadata.task_id
    task_file = root / study.study_id / second.task_group_id / task_id / "task.json"
    data = json.loads(task_file.read_text())
    data["study_id"] = "sOtherStd1"
    task_file.write_text(json.dumps(data))
    for loaded in (
        StudyGroup.from_directory(root).studies[0],
        Study.from_directory(task_file.parents[2]),
    ):
        assert loaded.study_group_id == study.study_group_id
        for group in loaded.task_groups:
            assert (group.study_id, group.study_group_id) == (study.study_id, study.study_group_id)
            for task in group.tasks:
                meta = task.task_metadata
                assert (meta.study_id, meta.study_group_id, meta.task_group_id) == (
                    study.study_id,
                    study.study_group_id,
                    group.task_group_id,
                )
