"""``autojob restart``: a new attempt of one task, in its group, changed as asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.errors import InputError, UnsafePathError
from autojob.next.restart import parse_size, restart_task
from autojob.store.state import State, read_state
from autojob.study import Study
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .helpers import run, wait_until


def one_task(tmp_path: Path, **inputs: object) -> Path:
    task = Task(
        task_metadata=TaskMetadata(label="calc"),
        task_inputs=TaskInputs(command="echo done > result", auto_restart=False, **inputs),
        scheduler_inputs={"time": "00:10:00"},
    )
    study = Study(name="s", task_groups=[TaskGroup(label="calc", tasks=[task])]).to_directory(
        tmp_path, study_template="{name}", task_group_template="{label}"
    )
    return study / "calc" / task.task_metadata.task_id


def test_restart_makes_a_linked_attempt_with_changes_and_files(tmp_path: Path) -> None:
    old = one_task(
        tmp_path,
        files_to_carry_over=["CHGCAR", "big.dat"],
        files_to_copy=["POSCAR"],
        files_to_delete=["WAVECAR", "scratch"],
    )
    (old / "CHGCAR").write_text("density")
    (old / "POSCAR").write_text("positions")
    (old / "big.dat").write_bytes(b"x" * 4096)
    (old / "WAVECAR").write_text("huge")
    (old / "scratch").mkdir()
    (old / "scratch" / "tmp").write_text("t")
    result = run(
        "restart", old, "--set", "ecut=520", "--scheduler", "time=02:00:00",
        "--carry-over-limit", "1K", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (new,) = [p for p in old.parent.iterdir() if p.is_dir() and p != old]
    assert f"created task {new.name}" in result.stdout
    inputs = json.loads((new / SETTINGS.INPUTS_FILE).read_text())
    assert inputs["task_inputs"]["ecut"] == 520
    assert inputs["scheduler_inputs"]["time"] == "02:00:00"
    assert (new / "CHGCAR").read_text() == "density" and (new / "POSCAR").read_text() == "positions"
    assert not (new / "big.dat").exists()  # over the size limit
    assert not (old / "WAVECAR").exists() and not (old / "scratch").exists()
    assert (old / "CHGCAR").exists()
    meta = json.loads((new / SETTINGS.TASK_METADATA_FILE).read_text())
    assert meta["previous_attempt"] == old.name and f"restart-of:{old.name}" in meta["tags"]
    group = json.loads((old.parent / SETTINGS.TASK_GROUP_METADATA_FILE).read_text())
    assert group["tasks"] == [old.name, new.name]


def test_a_stop_file_refuses_restart_and_advance(tmp_path: Path) -> None:
    old = one_task(tmp_path)
    (old / SETTINGS.STOP_FILE).touch()
    with pytest.raises(InputError, match="not restarted"):
        restart_task(old)
    for command in ("restart", "advance"):
        result = run(command, old, cwd=tmp_path)
        assert result.returncode == 1, result.stdout
        assert SETTINGS.STOP_FILE in result.stderr and "Traceback" not in result.stderr
    assert [p for p in old.parent.iterdir() if p.is_dir()] == [old]


def test_restart_refuses_bad_changes_and_unsafe_deletes(tmp_path: Path) -> None:
    old = one_task(tmp_path)
    bad = run("restart", old, "--scheduler", "time=25:61:00", cwd=tmp_path)
    assert bad.returncode == 1 and "scheduler_inputs.time" in bad.stderr
    assert run("restart", old, "--carry-over-limit", "lots", cwd=tmp_path).returncode == 1
    assert [p for p in old.parent.iterdir() if p.is_dir()] == [old]
    (tmp_path / "other").mkdir()
    unsafe = one_task(tmp_path / "other", files_to_delete=["../../escape"])
    with pytest.raises(UnsafePathError, match="files_to_delete"):
        restart_task(unsafe)
    assert [p for p in unsafe.parent.iterdir() if p.is_dir()] == [unsafe]


def test_restart_submit_runs_the_new_attempt(tmp_path: Path) -> None:
    old = one_task(tmp_path)
    result = run("restart", old, "--submit", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "submitted 1 task(s)" in result.stdout
    (new,) = [p for p in old.parent.iterdir() if p.is_dir() and p != old]
    wait_until(
        lambda: read_state(new).state is State.SUCCESS,
        60,
        "the new attempt to succeed",
        details=lambda: read_state(new),
        interval=0.2,
    )
    assert (new / "result").read_text() == "done\n"
    assert read_state(old).state is State.IDLE


def test_sizes_parse() -> None:
    assert parse_size("500") == 500 and parse_size("10K") == 10240
    assert parse_size("2.5M") == int(2.5 * 1024**2) and parse_size("1GiB") == 1024**3
    with pytest.raises(InputError):
        parse_size("-1K")
