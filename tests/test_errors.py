"""Bad input, through the library and the command line.

Every error is one of autojob's exception types, names the file and (where
there is one) the field, and gives a hint where the code has one. On the
command line an error is one message on stderr and a non-zero status; the
traceback appears only with ``-v``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autojob.errors import (
    AutojobError,
    InputError,
    MetadataError,
    MissingFileError,
    PluginError,
)
from autojob.next import create_task_group_tree, create_task_tree
from autojob.store.names import STAGING_PREFIX
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .helpers import run, snapshot

REPAIR_HINT = "repair the file by hand or restore it from a backup"
VALUE_HINT = "correct the value in the file"


# -- helpers -----------------------------------------------------------------


def make_task(parent: Path, name: str = "t", **inputs: Any) -> Path:
    task = Task(task_metadata=TaskMetadata(label=name), task_inputs=TaskInputs(**inputs))
    return create_task_tree(task, parent, name_template=name)


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.fixture(autouse=True)
def _autojob_logs_reach_caplog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI, run in-process elsewhere, may stop the autojob logger propagating."""
    monkeypatch.setattr(logging.getLogger("autojob"), "propagate", True)


# -- corrupt files: each way a JSON file can be broken ---------------------------

Corruption = Callable[[bytes], bytes]

CORRUPTIONS: dict[str, tuple[Corruption, str]] = {
    "corrupt": (lambda _: b'{"label": "x",, }', "not valid JSON"),
    "truncated": (lambda raw: raw[: len(raw) // 2], "not valid JSON"),
    "empty": (lambda _: b"", "the file is empty"),
    "whitespace": (lambda _: b"  \n\t\n", "the file is empty"),
    "not-utf8": (lambda _: b'{"label": "caf\xe9 \xff"}', "not UTF-8 text"),
    "array": (lambda _: b'[{"label": "x"}]', "must hold a JSON object, not list"),
    "string": (lambda _: b'"task"', "must hold a JSON object, not str"),
}


@pytest.mark.parametrize("file_name", ["task.json", "inputs.json"])
@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_task_file_through_the_library(tmp_path: Path, kind: str, file_name: str) -> None:
    task_dir = make_task(tmp_path, command="true")
    target = task_dir / file_name
    corrupt, message = CORRUPTIONS[kind]
    target.write_bytes(corrupt(target.read_bytes()))
    with pytest.raises(MetadataError) as info:
        Task.from_directory(task_dir)
    err = info.value
    assert err.path == target
    assert str(err).startswith(f"{target}: ")
    assert message in str(err)
    assert err.hint == REPAIR_HINT
    assert f"hint: {REPAIR_HINT}" in str(err)


def test_truncated_json_error_says_where(tmp_path: Path) -> None:
    task_dir = make_task(tmp_path)
    raw = (task_dir / "task.json").read_bytes()
    (task_dir / "task.json").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(MetadataError, match=r"at line \d+, column \d+"):
        Task.from_directory(task_dir)


@pytest.mark.parametrize(
    ("loader", "file_name"),
    [
        (TaskGroup.from_directory, "task_group.json"),
        (Study.from_directory, "study.json"),
        (StudyGroup.from_directory, "study_group.json"),
    ],
)
@pytest.mark.parametrize("kind", ["truncated", "not-utf8", "array"])
def test_corrupt_group_files(
    tmp_path: Path, loader: Callable[[Path], Any], file_name: str, kind: str
) -> None:
    study = Study(name="s", tasks=[Task(task_metadata=TaskMetadata(label="a"))])
    sg_dir = StudyGroup(name="g", studies=[study]).to_directory(tmp_path)
    study_dir = sg_dir / study.study_id
    directory = {
        "study_group.json": sg_dir,
        "study.json": study_dir,
        "task_group.json": study_dir / study.task_groups[0].task_group_id,
    }[file_name]
    target = directory / file_name
    corrupt, message = CORRUPTIONS[kind]
    target.write_bytes(corrupt(target.read_bytes()))
    with pytest.raises(MetadataError) as info:
        loader(directory)
    assert info.value.path == target
    assert str(info.value).startswith(f"{target}: ")
    assert message in str(info.value)
    # the whole tree fails to load, naming the same file
    with pytest.raises(MetadataError, match=re.escape(str(target))):
        StudyGroup.from_directory(sg_dir)


# -- missing files -----------------------------------------------------------------


def test_missing_task_json(tmp_path: Path) -> None:
    task_dir = make_task(tmp_path)
    (task_dir / "task.json").unlink()
    with pytest.raises(MissingFileError) as info:
        Task.from_directory(task_dir)
    err = info.value
    assert isinstance(err, MetadataError)
    assert err.path == task_dir / "task.json"
    assert "file not found" in str(err)
    assert err.hint is not None
    assert f"autojob list {task_dir}" in err.hint
    assert "hint:" in str(err)


def test_missing_inputs_json(tmp_path: Path) -> None:
    task_dir = make_task(tmp_path)
    (task_dir / "inputs.json").unlink()
    with pytest.raises(MissingFileError) as info:
        Task.from_directory(task_dir)
    assert info.value.path == task_dir / "inputs.json"
    assert str(info.value).startswith(f"{task_dir / 'inputs.json'}: file not found")


def test_missing_study_json(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as info:
        Study.from_directory(tmp_path)
    assert info.value.path == tmp_path / "study.json"
    assert "file not found" in str(info.value)


def test_missing_task_group_json_and_study_group_json(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"task_group\.json: file not found"):
        TaskGroup.from_directory(tmp_path)
    with pytest.raises(MissingFileError, match=r"study_group\.json: file not found"):
        StudyGroup.from_directory(tmp_path)


# -- valid JSON, invalid content -------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"tags": 5}, "tags", "valid list"),
        ({"tags": ["ok", 3]}, "tags.1", "valid string"),
        ({"task_id": "abc"}, "task_id", "'abc' is not an id"),
        ({"task_id": 12345}, "task_id", "an id must be a string"),
        ({"task_group_id": "cTooLongForAnId"}, "task_group_id", "is not an id"),
        ({"date_created": "yesterday"}, "date_created", "yesterday"),
        ({"label": None}, "label", "valid string"),
    ],
)
def test_wrong_field_in_task_json(
    tmp_path: Path, changes: dict[str, Any], field: str, message: str
) -> None:
    task_dir = make_task(tmp_path)
    edit_json(task_dir / "task.json", **changes)
    with pytest.raises(MetadataError) as info:
        Task.from_directory(task_dir)
    err = info.value
    assert err.path == task_dir / "task.json"
    assert err.field == field
    assert f"{task_dir / 'task.json'}: field '{field}': " in str(err)
    assert message in str(err)
    assert VALUE_HINT in str(err)


def test_uuid_ids_load(tmp_path: Path) -> None:
    task_dir = make_task(tmp_path)
    uuid = "0b6a4f8e-5f0c-4c1e-9a8a-2f8d2b1f4e3c"
    edit_json(task_dir / "task.json", task_id=uuid)
    assert Task.from_directory(task_dir).task_metadata.task_id == uuid


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"task_inputs": {"files_to_copy": 3}}, "task_inputs.files_to_copy"),
        ({"task_inputs": {"auto_restart": "sometimes"}}, "task_inputs.auto_restart"),
        ({"task_inputs": {}, "scheduler_inputs": ["time"]}, "scheduler_inputs"),
        ({"files_to_delete": "x"}, "task_inputs.files_to_delete"),  # the seed's flat form
    ],
)
def test_wrong_field_in_inputs_json(tmp_path: Path, inputs: dict[str, Any], field: str) -> None:
    task_dir = make_task(tmp_path)
    (task_dir / "inputs.json").write_text(json.dumps(inputs))
    with pytest.raises(MetadataError) as info:
        Task.from_directory(task_dir)
    assert info.value.path == task_dir / "inputs.json"
    assert info.value.field == field
    assert f"field '{field}'" in str(info.value)


def test_wrong_tasks_list_in_task_group_json(tmp_path: Path) -> None:
    group_dir = create_task_group_tree(TaskGroup(tasks=[Task()]), tmp_path)
    edit_json(group_dir / "task_group.json", tasks="all of them")
    with pytest.raises(MetadataError) as info:
        TaskGroup.from_directory(group_dir)
    assert info.value.path == group_dir / "task_group.json"
    assert info.value.field == "tasks"
    assert "must be a list of id strings" in str(info.value)
    assert "hint:" in str(info.value)


# -- magic mode and unknown task classes ------------------------------------------


def test_unknown_task_class_strict(tmp_path: Path) -> None:
    task_dir = make_task(tmp_path)
    edit_json(task_dir / "task.json", task_class="vasp_relax")
    with pytest.raises(PluginError) as info:
        Task.from_directory(task_dir, magic_mode=True, strict_mode=True)
    err = info.value
    assert err.path == task_dir / "task.json"
    assert err.field == "task_class"
    assert f"{task_dir / 'task.json'}: field 'task_class': " in str(err)
    assert "'vasp_relax' is not installed" in str(err)
    assert "(installed: " in str(err)
    assert "autojob.task" in (err.hint or "")


def test_unknown_task_class_strict_is_the_default(tmp_path: Path) -> None:
    task_dir = make_task(tmp_path)
    edit_json(task_dir / "task.json", task_class="vasp_relax")
    with pytest.raises(PluginError):
        Task.from_directory(task_dir, magic_mode=True)


def test_unknown_task_class_without_magic_mode_loads(tmp_path: Path) -> None:
    task_dir = make_task(tmp_path)
    edit_json(task_dir / "task.json", task_class="vasp_relax")
    task = Task.from_directory(task_dir, strict_mode=True)
    assert type(task) is Task
    assert task.task_metadata.task_class == "vasp_relax"


def test_unknown_task_class_relaxed_loads_as_task_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    task_dir = make_task(tmp_path, command="echo hi")
    edit_json(task_dir / "task.json", task_class="vasp_relax")
    with caplog.at_level(logging.WARNING, logger="autojob"):
        task = Task.from_directory(task_dir, magic_mode=True, strict_mode=False)
    assert type(task) is Task
    assert task.task_inputs.command == "echo hi"
    assert task.task_metadata.task_class == "vasp_relax"  # kept, not rewritten
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'vasp_relax' is not installed" in warnings[0].getMessage()
    assert "loading as Task" in warnings[0].getMessage()


def test_unknown_task_class_relaxed_warning_names_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    task_dir = make_task(tmp_path)
    edit_json(task_dir / "task.json", task_class="vasp_relax")
    with caplog.at_level(logging.WARNING, logger="autojob"):
        Task.from_directory(task_dir, magic_mode=True, strict_mode=False)
    assert str(task_dir / "task.json") in caplog.text


def test_missing_task_class_in_magic_mode(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    task_dir = make_task(tmp_path)
    edit_json(task_dir / "task.json", task_class=None)
    with pytest.raises(MetadataError) as info:
        Task.from_directory(task_dir, magic_mode=True, strict_mode=True)
    assert info.value.field == "task_class"
    assert info.value.path == task_dir / "task.json"
    with caplog.at_level(logging.WARNING, logger="autojob"):
        task = Task.from_directory(task_dir, magic_mode=True, strict_mode=False)
    assert type(task) is Task
    assert str(task_dir / "task.json") in caplog.text


# -- task groups that disagree with the disk ---------------------------------------


def two_task_group(tmp_path: Path) -> tuple[Path, list[str]]:
    group = TaskGroup(tasks=[Task(task_metadata=TaskMetadata(label=label)) for label in ("a", "b")])
    group_dir = create_task_group_tree(group, tmp_path)
    return group_dir, [t.task_metadata.task_id for t in group.tasks]


def test_listed_task_missing_on_disk_strict(tmp_path: Path) -> None:
    group_dir, ids = two_task_group(tmp_path)
    edit_json(group_dir / "task_group.json", tasks=[*ids, "jGoneAway9"])
    with pytest.raises(MetadataError) as info:
        TaskGroup.from_directory(group_dir, strict_mode=True)
    err = info.value
    assert err.path == group_dir / "task_group.json"
    assert err.field == "tasks"
    assert f"{group_dir / 'task_group.json'}: field 'tasks': " in str(err)
    assert "listed but not found on disk: jGoneAway9" in str(err)
    assert "strict_mode=False" in (err.hint or "")


def test_listed_task_missing_on_disk_relaxed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    group_dir, ids = two_task_group(tmp_path)
    edit_json(group_dir / "task_group.json", tasks=[*ids, "jGoneAway9"])
    with caplog.at_level(logging.WARNING, logger="autojob"):
        group = TaskGroup.from_directory(group_dir, strict_mode=False)
    assert [t.task_metadata.task_id for t in group.tasks] == ids
    assert [t.task_metadata.label for t in group.tasks] == ["a", "b"]
    assert "jGoneAway9" in caplog.text
    assert str(group_dir / "task_group.json") in caplog.text


def test_task_on_disk_not_listed_strict_and_relaxed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    group_dir, ids = two_task_group(tmp_path)
    edit_json(group_dir / "task_group.json", tasks=ids[:1])
    # a task naming another group, copied in by hand, is refused in strict mode
    edit_json(group_dir / ids[1] / "task.json", task_group_id="cOtherGrp1")
    with pytest.raises(MetadataError, match=f"found on disk but not listed: {ids[1]}") as info:
        TaskGroup.from_directory(group_dir, strict_mode=True)
    assert info.value.field == "tasks"
    with caplog.at_level(logging.WARNING, logger="autojob"):
        group = TaskGroup.from_directory(group_dir, strict_mode=False)
    assert [t.task_metadata.task_id for t in group.tasks] == ids


def test_an_unlisted_task_naming_its_group_loads_in_strict_mode(tmp_path: Path) -> None:
    # what a writer killed between publishing a task and listing it leaves
    group_dir, ids = two_task_group(tmp_path)
    edit_json(group_dir / "task_group.json", tasks=ids[1:])
    group = TaskGroup.from_directory(group_dir, strict_mode=True)
    assert [t.task_metadata.task_id for t in group.tasks] == [ids[1], ids[0]]


def test_study_listing_a_missing_task_group(tmp_path: Path) -> None:
    study = Study(tasks=[Task()])
    study_dir = study.to_directory(tmp_path)
    edit_json(
        study_dir / "study.json", task_groups=[study.task_groups[0].task_group_id, "cGoneAway9"]
    )
    with pytest.raises(MetadataError) as info:
        Study.from_directory(study_dir, strict_mode=True)
    assert info.value.field == "task_groups"
    assert info.value.path == study_dir / "study.json"
    assert len(Study.from_directory(study_dir, strict_mode=False).tasks) == 1


# -- writes that cannot be serialised leave nothing behind --------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Task(task_inputs=TaskInputs(x=float("nan"))),
        lambda: Task(task_inputs=TaskInputs(x=[1.0, float("inf")])),
        lambda: Task(scheduler_inputs={"comment": float("-inf")}),
    ],
    ids=["nan", "inf-in-list", "scheduler-inf"],
)
def test_unserialisable_task_is_refused_and_leaves_no_trace(
    tmp_path: Path, make: Callable[[], Task]
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "other").mkdir()
    (dest / "other" / "keep.txt").write_text("untouched")
    before = snapshot(dest)
    with pytest.raises(MetadataError) as info:
        create_task_tree(make(), dest)
    err = info.value
    assert "cannot be written as JSON" in str(err)
    assert err.path is not None
    assert err.path.name == "inputs.json"
    assert "hint: use JSON values only" in str(err)
    assert snapshot(dest) == before
    assert not any(p.name.startswith(STAGING_PREFIX) for p in dest.rglob("*"))


def test_unserialisable_task_in_a_task_group_changes_nothing(tmp_path: Path) -> None:
    group_dir, _ = two_task_group(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(MetadataError):
        create_task_tree(Task(task_inputs=TaskInputs(x=float("nan"))), group_dir)
    assert snapshot(tmp_path) == before


def test_unserialisable_task_group_changes_nothing(tmp_path: Path) -> None:
    study_dir = Study().to_directory(tmp_path)
    before = snapshot(tmp_path)
    group = TaskGroup(tasks=[Task(), Task(task_inputs=TaskInputs(x=float("nan")))])
    with pytest.raises(MetadataError):
        create_task_group_tree(group, study_dir)
    assert snapshot(tmp_path) == before
    assert json.loads((study_dir / "study.json").read_text())["task_groups"] == []


@pytest.mark.parametrize(
    "write",
    [
        lambda dest: create_task_group_tree(TaskGroup(tasks=[Task()], x=float("nan")), dest),
        lambda dest: Study(x=float("inf")).to_directory(dest),
        lambda dest: StudyGroup(x=float("nan")).to_directory(dest),
    ],
    ids=["task-group", "study", "study-group"],
)
def test_unserialisable_group_metadata_is_refused(
    tmp_path: Path, write: Callable[[Path], Path]
) -> None:
    before = snapshot(tmp_path)
    try:
        written = write(tmp_path)
    except MetadataError:
        assert snapshot(tmp_path) == before
        return
    pytest.fail(f"wrote {sorted(p.name for p in written.iterdir())} with NaN turned into null")


# -- through the command line ------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_cli_list_reports_a_broken_task(tmp_path: Path, kind: str) -> None:
    good = make_task(tmp_path, "good", command="true")
    bad = make_task(tmp_path, "bad")
    corrupt, message = CORRUPTIONS[kind]
    (bad / "task.json").write_bytes(corrupt((bad / "task.json").read_bytes()))
    before = snapshot(tmp_path)

    result = run("list", "--json", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert "1 broken task(s)" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    rows = {r["rel_path"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["good"]["error"] is None
    assert rows["good"]["task_id"] == json.loads((good / "task.json").read_text())["task_id"]
    assert rows["bad"]["task_id"] is None
    assert rows["bad"]["error"].startswith("bad/task.json: ")
    assert message in rows["bad"]["error"]
    assert snapshot(tmp_path) == before  # listing never rewrites a broken file

    table = run("list", cwd=tmp_path)
    assert table.returncode == 1
    assert "1 broken task(s)" in table.stderr
    assert "bad/task.json: " in table.stdout
    assert message in table.stdout
    assert "Traceback" not in table.stdout + table.stderr

    verbose = run("-v", "list", "--json", cwd=tmp_path)
    assert verbose.returncode == 1
    assert "1 broken task(s)" in verbose.stderr


def test_cli_list_reports_wrong_field(tmp_path: Path) -> None:
    bad = make_task(tmp_path, "bad")
    edit_json(bad / "task.json", tags=5)
    result = run("list", "--json", cwd=tmp_path)
    assert result.returncode == 1
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["error"].startswith("bad/task.json: field 'tags': ")


@pytest.mark.parametrize(
    ("kind", "file_name"),
    [
        ("truncated", "task.json"),
        ("not-utf8", "task.json"),
        ("array", "inputs.json"),
        ("empty", "inputs.json"),
    ],
)
def test_cli_clone_from_a_broken_task(tmp_path: Path, kind: str, file_name: str) -> None:
    bad = make_task(tmp_path, "bad")
    target = bad / file_name
    corrupt, message = CORRUPTIONS[kind]
    target.write_bytes(corrupt(target.read_bytes()))
    before = snapshot(tmp_path)

    result = run("new", "--from", "bad", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: bad/{file_name}: ")
    assert message in result.stderr
    assert f"hint: {REPAIR_HINT}" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before

    verbose = run("-v", "new", "--from", "bad", cwd=tmp_path)
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "autojob.errors.MetadataError" in verbose.stderr
    assert f"error: bad/{file_name}: " in verbose.stderr
    assert snapshot(tmp_path) == before


def test_cli_option_value_dash_v_does_not_turn_on_tracebacks(tmp_path: Path) -> None:
    bad = make_task(tmp_path, "bad")
    (bad / "inputs.json").write_bytes(b"[1]")
    result = run("new", "--from", "bad", "--label", "-v", cwd=tmp_path)
    assert result.returncode == 1
    assert "must hold a JSON object" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_clone_from_a_task_with_a_wrong_field(tmp_path: Path) -> None:
    bad = make_task(tmp_path, "bad")
    edit_json(bad / "task.json", task_id="abc")
    before = snapshot(tmp_path)
    result = run("new", "--from", "bad", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: bad/task.json: field 'task_id': ")
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_cli_clone_from_an_unknown_task_class(tmp_path: Path) -> None:
    bad = make_task(tmp_path, "bad")
    edit_json(bad / "task.json", task_class="vasp_relax")
    before = snapshot(tmp_path)
    result = run("new", "--from", "bad", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: bad/task.json: field 'task_class': ")
    assert "'vasp_relax' is not installed" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_cli_clone_from_a_task_missing_its_inputs(tmp_path: Path) -> None:
    bad = make_task(tmp_path, "bad")
    (bad / "inputs.json").unlink()
    before = snapshot(tmp_path)
    result = run("new", "--from", "bad", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: bad/inputs.json: file not found")
    assert snapshot(tmp_path) == before


def test_cli_clone_from_a_plain_directory(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    before = snapshot(tmp_path)
    result = run("new", "--from", "plain", cwd=tmp_path)
    assert result.returncode == 1
    assert "is not a task directory" in result.stderr
    assert "--from" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_cli_clone_from_a_plain_directory_names_it(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    result = run("new", "--from", "plain", cwd=tmp_path)
    assert result.stderr.startswith("error: plain: ")


def test_input_error_type_for_a_plain_directory(tmp_path: Path) -> None:
    from autojob.create.new import clone_task

    with pytest.raises(InputError) as info:
        clone_task(tmp_path)
    assert info.value.field == "--from"
    assert isinstance(info.value, AutojobError)


def test_cli_list_survives_a_non_utf8_directory_name(tmp_path: Path) -> None:
    """Whatever it reports, ``list`` must not crash or leave temporary files."""
    task_dir = tmp_path / os.fsdecode(b"caf\xe9")
    task_dir.mkdir()
    (task_dir / "inputs.json").write_text('{"task_inputs": {"command": "true"}}')
    result = run("list", "--json", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    assert "this is a bug" not in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in task_dir.iterdir()) in (
        ["inputs.json"],
        ["inputs.json", "task.json"],
    )
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (row["error"] is None) == (result.returncode == 0)


def test_cli_list_under_a_non_utf8_parent_directory(tmp_path: Path) -> None:
    parent = tmp_path / os.fsdecode(b"runs\xff")
    parent.mkdir()
    task_id = make_task(parent, "t", command="true")
    result = run("list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["task_id"] == json.loads((task_id / "task.json").read_text())["task_id"]
    assert row["error"] is None


def test_cli_list_creates_metadata_for_a_non_utf8_directory_name(tmp_path: Path) -> None:
    task_dir = tmp_path / os.fsdecode(b"caf\xe9")
    task_dir.mkdir()
    (task_dir / "inputs.json").write_text('{"task_inputs": {"command": "true"}}')
    result = run("list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert (task_dir / "task.json").is_file()
