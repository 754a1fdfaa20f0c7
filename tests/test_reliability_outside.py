"""Never outside, never twice: paths, names and ids that cannot be fooled.

Each case is built with real files in ``tmp_path``: symbolic links leaving a
task, settings and labels that take names autojob reserves, harvests killed
with SIGTERM, task directories copied or moved by hand. The counts go to the
reliability figures (paths escaped, temporary files left, duplicates found
against duplicates made).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.errors import ConfigError, UnsafePathError
from autojob.settings import STAGING_PREFIX, load_settings
from autojob.store.state import State
from autojob.tasks.task import Task, TaskInputs

from .helpers import AUTOJOB, run, snapshot

#: what the tests below tried and found, by family (reported last)
COUNTS: dict[str, dict[str, int]] = {}


def _count(family: str, key: str, n: int = 1) -> None:
    values = COUNTS.setdefault(family, {})
    values[key] = values.get(key, 0) + n


def _task(root: Path, **inputs: Any) -> Path:
    from autojob.next import create_task_tree

    task = Task(task_inputs=TaskInputs(auto_restart=False, **inputs))
    return create_task_tree(task, root)


# -- settings that collide -------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "fields"),
    [
        ({"AUTOJOB_STDOUT_FILE": "inputs.json"}, ("INPUTS_FILE", "STDOUT_FILE")),
        ({"AUTOJOB_STDERR_FILE": "autojob.out"}, ("STDOUT_FILE", "STDERR_FILE")),
        ({"AUTOJOB_HISTORY_DIR": ".autojob"}, ("HISTORY_DIR", "INDEX_DIR")),
        (
            {"AUTOJOB_TASK_METADATA_FILE": "meta.json", "AUTOJOB_INPUTS_FILE": "meta.json"},
            ("TASK_METADATA_FILE", "INPUTS_FILE"),
        ),
        ({"AUTOJOB_INPUTS_FILE": ".autojob-staging-x"}, ("INPUTS_FILE",)),
    ],
)
def test_colliding_file_name_settings_are_refused_and_nothing_is_written(
    tmp_path: Path, env: dict[str, str], fields: tuple[str, ...]
) -> None:
    task_dir = _task(tmp_path, command="echo ran")
    before = snapshot(tmp_path)
    for command in (
        ("submit", "--wait", "."),
        ("new", "--set", "command=true", "--type", "task"),
        ("status", "."),
    ):
        result = run(*command, cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        for field in fields:
            assert field in result.stderr
        assert any(f"AUTOJOB_{f}" in result.stderr for f in fields)
        assert "hint: give" in result.stderr
        _count("settings and names", "refused")
    assert snapshot(tmp_path) == before
    assert (task_dir / SETTINGS.INPUTS_FILE).is_file()


def test_a_collision_from_the_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[autojob]\nSTDERR_FILE = "task.json"\n')
    result = run(
        "new",
        "--set",
        "command=true",
        "--type",
        "task",
        cwd=tmp_path,
        env={"AUTOJOB_CONFIG_FILE": str(config)},
    )
    assert result.returncode == 2
    assert "TASK_METADATA_FILE and STDERR_FILE" in result.stderr
    assert "configuration file" in result.stderr and str(config) in result.stderr
    assert os.listdir(tmp_path) == ["config.toml"]
    _count("settings and names", "refused")


def test_a_colliding_assignment_is_refused_and_leaves_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match=r"INPUTS_FILE and STDOUT_FILE are both 'inputs\.json'"):
        SETTINGS.STDOUT_FILE = "inputs.json"
    assert SETTINGS.STDOUT_FILE == "autojob.out"
    monkeypatch.setenv("AUTOJOB_ENDED_FILE", "autojob.started")
    with pytest.raises(ConfigError, match="STARTED_FILE and ENDED_FILE") as info:
        load_settings()
    assert info.value.field == "ENDED_FILE"
    assert "AUTOJOB_ENDED_FILE" in str(info.value)


def test_the_legacy_spelling_may_be_the_parameterization_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTOJOB_PARAMETERIZATION_FILE", "parametrizations.json")
    assert load_settings().PARAMETERIZATION_FILE == "parametrizations.json"


# -- files_to_delete, files_to_carry_over, files_to_copy: never outside ----------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every task, as a scratch file system would be."""
    folder = tmp_path / "scratch-fs" / "run42"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious").write_text("keep me")
    (folder / "sub" / "data").write_bytes(b"x" * 3000)
    return folder


def _attempt(tmp_path: Path, **inputs: Any) -> Path:
    from autojob.study import Study
    from autojob.task_group import TaskGroup

    task = Task(task_inputs=TaskInputs(command="true", auto_restart=False, **inputs))
    study = Study(name="s", task_groups=[TaskGroup(label="g", tasks=[task])]).to_directory(
        tmp_path, study_template="{name}", task_group_template="{label}"
    )
    return study / "g" / task.task_metadata.task_id


def _unchanged(outside: Path, before: dict[str, bytes | None], entries: int) -> None:
    """The outside directory is as it was; count the entries tried and escapes."""
    escaped = int(snapshot(outside) != before)
    _count("paths", "entries tried", entries)
    _count("paths", "paths escaped", escaped)
    assert escaped == 0


def _new_attempt(old: Path) -> Path:
    (new,) = [p for p in old.parent.iterdir() if p.is_dir() and p != old]
    return new


@pytest.mark.parametrize("entry", ["scratch/precious", "scratch/sub", "scratch/sub/data"])
def test_restart_never_deletes_through_a_link_out_of_the_task(
    tmp_path: Path, outside: Path, entry: str
) -> None:
    old = _attempt(tmp_path, files_to_delete=[entry, "local.txt"])
    (old / "scratch").symlink_to(outside)
    (old / "local.txt").write_text("temporary")
    before = snapshot(outside)
    result = run("restart", old, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    _unchanged(outside, before, 1)
    assert f"{entry!r} not deleted" in result.stderr
    assert "'scratch' is a link to" in result.stderr and "outside the task" in result.stderr
    assert not (old / "local.txt").exists()  # the rest is deleted as asked
    assert (old / "scratch").is_symlink()


def test_a_link_named_by_files_to_delete_is_removed_not_its_target(
    tmp_path: Path, outside: Path
) -> None:
    from autojob.next.restart import restart_task

    old = _attempt(tmp_path, files_to_delete=["scratch", "."])
    (old / "scratch").symlink_to(outside)
    before = snapshot(outside)
    made = restart_task(old)
    _unchanged(outside, before, 2)
    assert not os.path.lexists(old / "scratch")
    assert made.deleted == [old / "scratch"]
    assert len(made.refused) == 1 and "the task directory itself" in made.refused[0]
    assert (old / SETTINGS.TASK_METADATA_FILE).is_file()


def test_restart_never_carries_a_directory_from_outside(tmp_path: Path, outside: Path) -> None:
    old = _attempt(tmp_path, files_to_carry_over=["scratch", "scratch/precious", "out.txt"])
    (old / "scratch").symlink_to(outside)
    (old / "out.txt").write_text("result")
    before = snapshot(outside)
    result = run("restart", old, "--carry-over-limit", "1K", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    _unchanged(outside, before, 2)
    new = _new_attempt(old)
    assert not os.path.lexists(new / "scratch")
    assert (new / "out.txt").read_text() == "result"
    assert "scratch not carried over" in result.stderr and "outside the task" in result.stderr


def test_links_inside_the_task_are_carried_as_links_and_links_out_stay_behind(
    tmp_path: Path, outside: Path
) -> None:
    from autojob.next.restart import restart_task

    old = _attempt(tmp_path, files_to_carry_over=["calc", "latest"])
    (old / "calc").mkdir()
    (old / "calc" / "CHGCAR").write_text("density")
    (old / "calc" / "scratch").symlink_to(outside)  # inside a carried directory
    (old / "calc" / "prev").symlink_to("CHGCAR")
    (old / "latest").symlink_to("calc/CHGCAR")
    before = snapshot(outside)
    new = restart_task(old).new
    _unchanged(outside, before, 2)
    assert (new / "calc" / "CHGCAR").read_text() == "density"
    assert os.readlink(new / "calc" / "prev") == "CHGCAR"
    assert os.readlink(new / "latest") == "calc/CHGCAR"
    assert not os.path.lexists(new / "calc" / "scratch")


def test_the_carry_over_limit_applies_to_directories_by_their_size(tmp_path: Path) -> None:
    old = _attempt(tmp_path, files_to_carry_over=["big", "small"])
    (old / "big").mkdir()
    for k in range(4):
        (old / "big" / f"part{k}").write_bytes(b"x" * 400)  # 1,600 bytes in all
    (old / "small").mkdir()
    (old / "small" / "a").write_bytes(b"x" * 400)
    result = run("restart", old, "--carry-over-limit", "1K", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    new = _new_attempt(old)
    assert not (new / "big").exists() and (new / "small" / "a").is_file()
    assert "big not carried over: over the size limit" in result.stderr


def test_overlapping_entries_are_carried_once(tmp_path: Path) -> None:
    old = _attempt(
        tmp_path,
        files_to_carry_over=["scratch/big", "scratch", "./scratch/", "inputs.json"],
        files_to_copy=["scratch/sub/x"],
    )
    (old / "scratch" / "sub").mkdir(parents=True)
    (old / "scratch" / "big").write_text("b")
    (old / "scratch" / "sub" / "x").write_text("x")
    result = run("restart", old, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "File exists" not in result.stderr and STAGING_PREFIX not in result.stderr
    new = _new_attempt(old)
    assert (new / "scratch" / "big").read_text() == "b"
    assert (new / "scratch" / "sub" / "x").read_text() == "x"
    assert "inputs.json not carried over: it is one of autojob's own files" in result.stderr


def test_clone_resubmit_and_next_steps_never_copy_from_outside(
    tmp_path: Path, outside: Path
) -> None:
    from autojob.create.new import clone_task
    from autojob.next import create_task_tree
    from autojob.next.resubmit import Attempt, resubmit

    old = _attempt(tmp_path, files_to_carry_over=["scratch", "scratch/sub/data"])
    (old / "scratch").symlink_to(outside)
    before = snapshot(outside)
    _, clone = clone_task(old)
    assert not os.path.lexists(clone / "scratch")
    cli = run("new", "--from", old, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    (again,) = resubmit([Attempt(old, State.FAILED, None)])
    assert again.new is not None and not os.path.lexists(again.new / "scratch")
    step = Task(task_inputs=TaskInputs(command="true", files_to_copy=["scratch/precious"]))
    after_step = create_task_tree(
        step, tmp_path, src=old, files_to_carry_over=step.task_inputs.files_to_copy
    )
    assert not os.path.lexists(after_step / "scratch")
    _unchanged(outside, before, 4)
    for task_dir in old.parent.iterdir():
        if task_dir != old and task_dir.is_dir():
            assert not os.path.lexists(task_dir / "scratch")


# -- reserved names as labels ------------------------------------------------------


RESERVED_LABELS = [
    ".autojob",
    ".autojob-old",
    "autojob.history",
    "autojob.history-2",
    ".autojob-staging-x",
    "task.json",
    "inputs.json",
    "task_group.json",
    "study.json",
    "autojob.ended",
    ".study.json.lock",
]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    result = run("new", "--type", "study", "--name-template", "s", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "s"


@pytest.mark.parametrize("label", RESERVED_LABELS)
def test_a_reserved_name_from_a_label_is_refused_before_anything_is_written(
    study: Path, label: str
) -> None:
    before = snapshot(study.parent)
    for kind, dest in (("task_group", study), ("study", study.parent), ("task", study.parent)):
        result = run(
            *("new", "--type", kind, "--dest", dest, "--label", label),
            *("--name-template", "{label}"),
            *(() if kind == "study" else ("--set", "command=true")),
            cwd=study.parent,
        )
        assert result.returncode == 1, result.stdout
        assert "a name autojob reserves" in result.stderr
        assert "field 'label'" in result.stderr and "hint: choose another label" in result.stderr
        assert "Traceback" not in result.stderr
        assert snapshot(study.parent) == before
        _count("settings and names", "refused")


def test_a_reserved_group_name_cannot_hide_tasks_from_status(study: Path) -> None:
    ok = run(
        *("new", "--set", "command=true", "--type", "task_group", "--dest", study, "--label", "g"),
        cwd=study.parent,
    )
    assert ok.returncode == 0, ok.stderr
    refused = run(
        *(
            "new",
            "--set",
            "command=true",
            "--type",
            "task_group",
            "--dest",
            study,
            "--label",
            ".autojob",
        ),
        *("--name-template", "{label}"),
        cwd=study.parent,
    )
    assert refused.returncode == 1
    status = run("status", "--json", study, cwd=study.parent)
    assert status.returncode == 0, status.stderr
    assert len(json.loads(status.stdout)["tasks"]) == 1
    study_file = json.loads((study / SETTINGS.STUDY_METADATA_FILE).read_text())
    assert len(study_file["task_groups"]) == 1


def test_reserved_names_from_python_templates_are_refused(tmp_path: Path) -> None:
    from autojob.study import Study
    from autojob.study_group import StudyGroup

    for name in ("autojob.history", "record.txt"):
        group = StudyGroup(name=name, studies=[Study(name="s", tasks=[Task()])])
        with pytest.raises(UnsafePathError, match="a name autojob reserves") as info:
            group.to_directory(tmp_path, study_group_template="{name}")
        assert info.value.field == "name"
        with pytest.raises(UnsafePathError, match="a name autojob reserves"):
            StudyGroup(name="sg", studies=[Study(name=name, tasks=[Task()])]).to_directory(
                tmp_path, study_group_template="sg", study_template="{name}"
            )
        _count("settings and names", "refused", 2)
    assert os.listdir(tmp_path) == []


def test_a_destination_inside_a_reserved_directory_is_refused(study: Path) -> None:
    index = study / SETTINGS.INDEX_DIR
    index.mkdir()
    result = run(
        "new", "--set", "command=true", "--type", "task", "--dest", index, cwd=study.parent
    )
    assert result.returncode == 1
    assert "field '--dest'" in result.stderr and "skip" in result.stderr
    assert os.listdir(index) == []
    _count("settings and names", "refused")


def test_a_task_script_named_like_autojobs_files_is_refused(tmp_path: Path) -> None:
    result = run(
        "new",
        "--set",
        "command=true",
        "--type",
        "task",
        "--set",
        "task_script=inputs.json",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "task_inputs.task_script 'inputs.json' is a name autojob reserves" in result.stderr
    assert STAGING_PREFIX not in result.stderr
    assert os.listdir(tmp_path) == []
    _count("settings and names", "refused")


# -- SIGTERM and the temporary files of killed writers ---------------------------

TEMP_SUFFIXES = (".tmp", ".spool")
SIGTERM_TRIALS = int(os.environ.get("AUTOJOB_SIGTERM_TRIALS", "4"))


@pytest.fixture(scope="module")
def wide_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study of 3,000 one-task groups: a harvest of it takes a few tenths of a second."""
    from autojob.study import Study
    from autojob.task_group import TaskGroup

    root = tmp_path_factory.mktemp("wide")
    groups = [
        TaskGroup(label=f"g{i}", tasks=[Task(task_inputs=TaskInputs(command="true"))])
        for i in range(3000)
    ]
    study = Study(name="s", task_groups=groups)
    return study.to_directory(root, study_template="{name}", task_group_template="{label}")


def _temporaries(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(TEMP_SUFFIXES))


def _terminate_when_writing(command: list[str], cwd: Path, watch: Path, delay: float) -> Any:
    """Start ``autojob COMMAND``; once a temporary file appears in ``watch``, SIGTERM it."""
    process = subprocess.Popen(
        [str(AUTOJOB), *command], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not _temporaries(watch) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_sigterm_to_harvest_leaves_no_temporary_file(
    tmp_path: Path, wide_study: Path, fmt: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / f"archive.{fmt}"
    rng = random.Random(fmt)
    for trial in range(SIGTERM_TRIALS):
        before = target.read_bytes() if target.exists() else None
        command = ["harvest", str(wide_study), "-o", str(target)]
        if trial % 2:
            command.append("--full")
        delay = 0.0 if trial % 3 == 0 else rng.uniform(0, 0.1)  # at once, or while writing
        code, err = _terminate_when_writing(command, tmp_path, out, delay)
        assert "Traceback" not in err
        left = _temporaries(out)
        _count("temporary files", "harvests sent SIGTERM")
        _count("temporary files", "temporary files left", len(left))
        assert left == []
        if code == 0:
            continue  # the harvest had finished
        assert code == 143 and "terminated" in err
        _count("temporary files", "harvests stopped mid-work")
        after = target.read_bytes() if target.exists() else None
        assert after == before  # the archive is the old one, whole


def test_sigterm_to_a_sweep_leaves_no_staging_directory(tmp_path: Path) -> None:
    spec = tmp_path / "big.toml"
    xs, ys = ", ".join(map(str, range(60))), ", ".join(map(str, range(50)))
    spec.write_text(
        f'name = "big"\ncommand = "true"\nlabel = "x{{x}}-y{{y}}"\n'
        f"[parameters]\nx = [{xs}]\ny = [{ys}]\n"
    )
    code, err = _terminate_when_writing_tree(["sweep", str(spec)], tmp_path)
    assert "Traceback" not in err
    left = [n for n in os.listdir(tmp_path) if n.startswith(STAGING_PREFIX)]
    _count("temporary files", "sweeps sent SIGTERM")
    _count("temporary files", "temporary files left", len(left))
    assert left == []
    assert code in (0, 143)
    if code == 143:
        assert not (tmp_path / "big").exists()  # nothing half made
        _count("temporary files", "sweeps stopped mid-work")


def _terminate_when_writing_tree(command: list[str], cwd: Path) -> Any:
    process = subprocess.Popen(
        [str(AUTOJOB), *command], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if any(n.startswith(STAGING_PREFIX) for n in os.listdir(cwd)):
            time.sleep(0.05)
            break
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def test_a_harvest_removes_what_killed_harvests_left_and_nothing_else(
    tmp_path: Path, wide_study: Path
) -> None:
    from autojob.store.state import this_host

    out = tmp_path / "out"
    out.mkdir()
    gone = _dead_pid()
    alive = subprocess.Popen(["sleep", "60"])  # a concurrent harvest, still writing
    host = this_host()
    old = time.time() - 3 * 24 * 3600
    cache = ".archive.csv.harvest-cache.jsonl"
    files = {
        f".archive.csv.{host}+{gone}.abcd1234.tmp": False,
        f".archive.csv.{host}+{gone}.abcd1234.spool": False,
        f".{cache}.{host}+{gone}.zz99zz99.tmp": False,
        f".archive.csv.{host}+{alive.pid}.abcd1234.spool": True,
        ".archive.csv.oldstyle.tmp": False,  # an earlier version's, three days old
        ".archive.csv.newstyl.tmp": True,  # not ours: not the pattern
        ".archive.csv.newstyle.tmp": True,  # an earlier version's, fresh: maybe alive
        f".archive.csv.othernode+{gone}.abcd1234.tmp": True,  # another host's, fresh
        ".archive.csv.othernode+1.oldoldol.tmp": False,  # another host's, three days old
        "notes.tmp": True,
    }
    try:
        for name in files:
            (out / name).write_text("partial")
        for name in (".archive.csv.oldstyle.tmp", ".archive.csv.othernode+1.oldoldol.tmp"):
            os.utime(out / name, (old, old))
        result = run("harvest", wide_study, "-o", out / "archive.csv", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    finally:
        alive.kill()
        alive.wait()
    kept = {name for name, keep in files.items() if keep}
    assert set(_temporaries(out)) == kept
    _count("temporary files", "leftovers planted", len(files) - len(kept))
    _count("temporary files", "leftovers removed", len(files) - len(kept))
    _count("temporary files", "live writers' files kept", len(kept))


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# -- task directories copied or moved by hand ---------------------------------------


def _copied_and_moved(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A study with copies and a move; the paths involved, by what was done."""
    from autojob.study import Study
    from autojob.task_group import TaskGroup

    def tasks(label: str, n: int) -> list[Task]:
        return [Task(task_inputs=TaskInputs(command="true", auto_restart=False)) for _ in range(n)]

    groups = [
        TaskGroup(label=label, tasks=tasks(label, n))
        for label, n in (("a", 2), ("b", 2), ("c", 1), ("d", 1))
    ]
    study = Study(name="s", task_groups=groups).to_directory(
        tmp_path, study_template="{name}", task_group_template="{label}"
    )
    for task_dir in study.glob("*/j*"):  # finished: a harvest caches finished tasks
        ended = {"time": 1.0, "exit_code": 0}
        (task_dir / SETTINGS.ENDED_FILE).write_text(json.dumps(ended))
    a1, a2 = sorted((study / "a").glob("j*"))
    b1 = sorted((study / "b").glob("j*"))[0]
    done = {
        "copy in its group": study / "a" / "copy",
        "copy into another group": study / "c" / "copy",
        "copy of a whole group": study / "d-copy",
        "moved": study / "b" / a2.name,
    }
    shutil.copytree(a1, done["copy in its group"], symlinks=True)
    shutil.copytree(b1, done["copy into another group"], symlinks=True)
    shutil.copytree(study / "d", done["copy of a whole group"], symlinks=True)
    shutil.move(a2, done["moved"])
    return study, done


def _age(root: Path, seconds: float = 60.0) -> None:
    """Date every file and directory under ``root`` back, as a settled tree is."""
    then = time.time() - seconds
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.utime(os.path.join(folder, name), (then, then), follow_symlinks=False)
    os.utime(root, (then, then))


def _kinds(problems: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return sorted((rel, p["kind"]) for rel, p in problems)


def test_copies_and_moves_are_harvest_problems_naming_both_paths(tmp_path: Path) -> None:
    from autojob.harvest import archive

    study, done = _copied_and_moved(tmp_path)
    _age(study)
    out = tmp_path / "archive.json"
    for run_number in (1, 2):  # the second harvest takes the tasks from its cache
        summary = archive(study, out)
        kinds = _kinds(summary.problems)
        duplicates = [rel for rel, kind in kinds if kind == "DuplicateIdError"]
        moved = [rel for rel, kind in kinds if kind == "MovedTaskError"]
        assert len(duplicates) == 3, kinds
        assert sorted(moved) == ["b/" + done["moved"].name, "c/copy"]
        for rel, problem in summary.problems:
            if problem["kind"] == "DuplicateIdError":
                other = problem["message"].split("is also the id of ")[1].split(" ")[0]
                assert other != rel and (study / other).is_dir()
                assert "--repair" in problem["message"]
        if run_number == 2:
            assert summary.cached > 0
    _count("duplicates", "copies made", 3)
    _count("duplicates", "found by harvest", len(duplicates))
    _count("duplicates", "tasks put in another group (1 moved, 1 copied)", 2)
    _count("duplicates", "of those found by harvest", len(moved))
    result = run("harvest", study, "-o", out, cwd=tmp_path)
    assert "5 problem(s)" in result.stdout and "DuplicateIdError" not in result.stderr


def test_copies_and_moves_among_attempts_are_status_problems(tmp_path: Path) -> None:
    from autojob.store.status_index import collect

    study, done = _copied_and_moved(tmp_path)
    report = collect(study, rescan=True)
    found = sorted(report.problems)
    duplicates = [(p, t) for p, t in found if "is also the id of" in t]
    moved = sorted(p for p, t in found if "moved here?" in t)
    # the copies among attempts (a task group of one task reads no ids)
    assert len(duplicates) == 2
    assert {p for p, _ in duplicates} <= {"a/copy", "c/copy"} | {
        str(t.relative_to(study)) for t in study.glob("[ab]/j*")
    }
    assert moved == sorted(["b/" + done["moved"].name, "c/copy"])
    warm = collect(study)
    assert warm.source == "index" and sorted(warm.problems) == found
    shown = run("status", study, cwd=tmp_path)
    assert "problem(s) with task ids" in shown.stdout and "--repair" in shown.stdout
    as_json = json.loads(run("status", "--json", study, cwd=tmp_path).stdout)
    assert len(as_json["problems"]) == len(found)
    _count("duplicates", "found by status (copies among attempts)", len(duplicates))


def test_list_repair_gives_copies_new_ids_and_relinks_moved_tasks(tmp_path: Path) -> None:
    from autojob.harvest import archive
    from autojob.store.status_index import collect

    study, done = _copied_and_moved(tmp_path)
    collect(study)  # an index exists: the repair must reach it through the journal
    result = run("list", study, "--repair", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("new task id") == 3
    assert result.stderr.count("relinked") == 2
    ids = []
    for meta_file in study.glob("*/*/" + SETTINGS.TASK_METADATA_FILE):
        meta = json.loads(meta_file.read_text())
        group = json.loads(
            (meta_file.parent.parent / SETTINGS.TASK_GROUP_METADATA_FILE).read_text()
        )
        assert meta["task_group_id"] == group["task_group_id"]
        assert meta["task_id"] in group["tasks"]
        ids.append(meta["task_id"])
    assert len(ids) == len(set(ids)) == 9
    moved_meta = json.loads((done["moved"] / SETTINGS.TASK_METADATA_FILE).read_text())
    left = json.loads((study / "a" / SETTINGS.TASK_GROUP_METADATA_FILE).read_text())
    assert moved_meta["task_id"] not in left["tasks"]
    assert archive(study, tmp_path / "archive.json").problems == []
    assert collect(study).problems == []
    assert run("list", study, "--repair", cwd=tmp_path).stderr.count("repaired") == 0
    _count("duplicates", "repaired", 3)


# -- figures ---------------------------------------------------------------------


def test_report_figures(figures: dict[str, Any]) -> None:
    for family, values in sorted(COUNTS.items()):
        figures[f"outside: {family}"] = dict(values)
