"""The ``autojob`` command line, driven as users drive it: the installed script.

Most tests run the console script in a subprocess (its own settings, its own
error handling in ``autojob.cli.main``); help texts are also checked in-process
through click's ``CliRunner`` so that every registered command is covered.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import autojob
from autojob.cli.app import COMMANDS, cli
from autojob.report import write_report
from autojob.store.state import STATE_ORDER, State

from .helpers import run, snapshot
from .status_helpers import end, make_study

CREATED = re.compile(r"^created (task group|task|study group|study) (\S+) at (.+)$")


# -- helpers -----------------------------------------------------------------


def ok(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``autojob`` and require success."""
    result = run(*args, cwd=cwd)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def created(result: subprocess.CompletedProcess[str], cwd: Path) -> list[tuple[str, str, Path]]:
    """Parse the ``created <kind> <id> at <path>`` lines; every line must be one."""
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    found = []
    for line in lines:
        match = CREATED.match(line)
        assert match, f"unexpected output line {line!r}"
        kind, item_id, where = match.groups()
        found.append((kind, item_id, cwd / where))
    return found


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def new_study(cwd: Path, name: str = "st") -> Path:
    """A study made as users make one: ``autojob new --type study``."""
    ok("new", "--type", "study", "--name-template", name, cwd=cwd)
    return cwd / name


def make_task_group(cwd: Path, *extra: str) -> tuple[Path, Path]:
    """A study holding a task group (named tg); return (group dir, its task dir)."""
    study = new_study(cwd)
    result = ok(
        "new",
        "--set",
        "command=true",
        "--type",
        "task_group",
        "--dest",
        study,
        "--name-template",
        "tg",
        *extra,
        cwd=cwd,
    )
    (_, _, group_dir), (_, _, task_dir) = created(result, cwd)
    return group_dir, task_dir


@pytest.fixture
def restore_autojob_logger() -> Iterator[None]:
    """``cli`` replaces the autojob logger's handlers in-process: undo that."""
    logger = logging.getLogger("autojob")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


# -- version and help ----------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(tmp_path: Path, flag: str) -> None:
    result = ok(flag, cwd=tmp_path)
    assert result.stdout.strip() == f"autojob, version {autojob.__version__}"
    assert list(tmp_path.iterdir()) == []


IMPORTED_BY = """
import sys
from autojob.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = ("pydantic", "pydantic_settings", "rich", "jinja2", "autojob.settings", "autojob.store")
print(" ".join(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--version"], ["status", "--help"], ["new", "--help"]])
def test_starting_imports_only_what_the_command_needs(tmp_path: Path, args: list[str]) -> None:
    # no timing here (benchmarks/bench_startup.py times it): the imports that
    # made start-up slow stay out of --version and a command's help
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.stderr.strip().splitlines()[-1:] in ([], [""]), done.stderr
    bare = subprocess.run(
        [sys.executable, "-c", "import sys, autojob; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "pydantic" not in bare.stdout and "autojob.settings" not in bare.stdout


def test_commands_load_when_looked_up() -> None:
    assert sorted(cli.commands) == sorted(COMMANDS)
    for name in cli.commands:
        command = cli.commands[name]
        assert command.name == name
        assert cli.get_command(click.Context(cli), name) is command
    assert cli.get_command(click.Context(cli), "nosuch") is None


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_group_help_lists_every_command(tmp_path: Path, flag: str) -> None:
    result = ok(flag, cwd=tmp_path)
    assert result.stdout.startswith("Usage: autojob [OPTIONS] COMMAND [ARGS]...")
    for name in cli.commands:
        assert re.search(rf"^\s+{name}\s", result.stdout, re.MULTILINE), name
    for option in ("--version", "--verbose", "--quiet"):
        assert option in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(name: str, restore_autojob_logger: None) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], prog_name="autojob")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: autojob {name} [OPTIONS]")
    assert "-h, --help" in result.output


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "new",
            [
                "--type [task|task_group|study|study_group]",
                "--dest",
                "--from",
                "--name-template",
                "--set KEY=VALUE",
                "--label",
            ],
        ),
        ("list", ["Usage: autojob list [OPTIONS] [PATH]", "--json"]),
    ],
)
def test_command_help_through_the_script(tmp_path: Path, name: str, expected: list[str]) -> None:
    result = ok(name, "-h", cwd=tmp_path)
    assert result.stdout.startswith(f"Usage: autojob {name} [OPTIONS]")
    for text in expected:
        assert text in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run("bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'bogus'" in result.stderr
    assert "Traceback" not in result.stderr


# -- autojob new: every --type -------------------------------------------------


def test_new_study_group(tmp_path: Path) -> None:
    result = ok("new", "--type", "study_group", "--label", "screening", cwd=tmp_path)
    [(kind, sg_id, path)] = created(result, tmp_path)
    assert kind == "study group"
    assert path == tmp_path / "screening"  # default name: the label
    data = read(path / "study_group.json")
    assert data["study_group_id"] == sg_id
    assert data["name"] == "screening"
    assert data["studies"] == []
    assert sorted(os.listdir(tmp_path)) == ["screening"]


def test_new_study_standalone(tmp_path: Path) -> None:
    result = ok("new", "--type", "study", "--label", "relax", cwd=tmp_path)
    [(kind, study_id, path)] = created(result, tmp_path)
    assert kind == "study"
    data = read(path / "study.json")
    assert data["study_id"] == study_id
    assert data["name"] == "relax"
    assert data["task_groups"] == []
    assert sorted(os.listdir(path)) == ["study.json"]


def test_new_study_inside_a_study_group(tmp_path: Path) -> None:
    [(_, sg_id, sg_dir)] = created(ok("new", "--type", "study_group", cwd=tmp_path), tmp_path)
    first = created(ok("new", "--type", "study", "--dest", sg_dir, cwd=tmp_path), tmp_path)
    second = created(ok("new", "--type", "study", "-d", sg_dir, cwd=tmp_path), tmp_path)
    ids = []
    for [(kind, study_id, path)] in (first, second):
        assert kind == "study"
        assert path.parent == sg_dir
        data = read(path / "study.json")
        assert data["study_id"] == study_id
        assert data["study_group_id"] == sg_id
        ids.append(study_id)
    assert read(sg_dir / "study_group.json")["studies"] == ids


def test_new_task_group_inside_a_study(tmp_path: Path) -> None:
    study = new_study(tmp_path)
    study_id = read(study / "study.json")["study_id"]
    result = ok(
        "new",
        "--set",
        "command=true",
        "--type",
        "task_group",
        "--dest",
        study,
        "--label",
        "relax-1",
        cwd=tmp_path,
    )
    [(k1, group_id, group_dir), (k2, task_id, task_dir)] = created(result, tmp_path)
    assert (k1, k2) == ("task group", "task")
    assert group_dir.parent == study
    assert task_dir.parent == group_dir
    group = read(group_dir / "task_group.json")
    assert group["task_group_id"] == group_id
    assert group["study_id"] == study_id
    assert group["tasks"] == [task_id]
    assert group["label"] == "relax-1"
    meta = read(task_dir / "task.json")
    assert meta["task_id"] == task_id
    assert meta["task_group_id"] == group_id
    assert meta["study_id"] == study_id
    assert meta["label"] == "relax-1"
    assert read(study / "study.json")["task_groups"] == [group_id]
    assert sorted(os.listdir(task_dir)) == ["inputs.json", "run.sh", "task.json"]


def test_new_task_group_outside_a_study_is_refused(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    result = run("new", "--type", "task_group", "--dest", tmp_path, cwd=tmp_path)
    assert result.returncode == 1
    assert "is not a study" in result.stderr
    assert "'--dest'" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_new_task_standalone(tmp_path: Path) -> None:
    result = ok("new", "--set", "command=true", cwd=tmp_path)  # --type task is the default
    [(kind, task_id, path)] = created(result, tmp_path)
    assert kind == "task"
    assert path == tmp_path / task_id
    assert read(path / "task.json")["task_id"] == task_id
    assert read(path / "task.json")["task_class"] == "task"
    inputs = read(path / "inputs.json")
    assert inputs["task_inputs"]["command"] == "true"
    assert os.access(path / "run.sh", os.X_OK)


def test_new_task_joins_a_task_group(tmp_path: Path) -> None:
    group_dir, first_dir = make_task_group(tmp_path)
    first_id = read(first_dir / "task.json")["task_id"]
    result = ok(
        "new",
        "--set",
        "command=true",
        "--type",
        "task",
        "--dest",
        group_dir,
        "--label",
        "second",
        cwd=tmp_path,
    )
    [(_, task_id, path)] = created(result, tmp_path)
    assert path.parent == group_dir
    group = read(group_dir / "task_group.json")
    assert group["tasks"] == [first_id, task_id]
    meta = read(path / "task.json")
    for key in ("task_group_id", "study_id", "study_group_id"):
        assert meta[key] == group[key]
    assert meta["label"] == "second"


# -- --set ---------------------------------------------------------------------


def test_set_bare_key_is_a_task_input_kept_as_written(tmp_path: Path) -> None:
    result = ok("new", "--set", "command=python calc.py --ecut 400", cwd=tmp_path)
    [(_, _, path)] = created(result, tmp_path)
    assert read(path / "inputs.json")["task_inputs"]["command"] == "python calc.py --ecut 400"
    assert "'python calc.py --ecut 400'" in (path / "run.sh").read_text()


def test_set_value_that_parses_as_json_stays_a_string_for_a_string_field(tmp_path: Path) -> None:
    result = ok("new", "--set", "command=400", cwd=tmp_path)
    [(_, _, path)] = created(result, tmp_path)
    assert read(path / "inputs.json")["task_inputs"]["command"] == "400"


def test_set_dotted_key_is_a_scheduler_input_and_an_sbatch_line(tmp_path: Path) -> None:
    result = ok(
        "new", "--set", "command=true", "--set", "scheduler_inputs.time=01:00:00", cwd=tmp_path
    )
    [(_, _, path)] = created(result, tmp_path)
    assert read(path / "inputs.json")["scheduler_inputs"] == {"time": "01:00:00"}
    lines = (path / "run.sh").read_text().splitlines()
    assert "#SBATCH --time=01:00:00" in lines
    assert lines[0] == "#!/usr/bin/env bash"


def test_set_json_values(tmp_path: Path) -> None:
    result = ok(
        "new",
        "--set",
        "command=true",
        "--set",
        'files_to_carry_over=["a.txt"]',
        "--set",
        "auto_restart=false",
        "--set",
        "ecut=400",
        cwd=tmp_path,
    )
    [(_, _, path)] = created(result, tmp_path)
    inputs = read(path / "inputs.json")["task_inputs"]
    assert inputs["files_to_carry_over"] == ["a.txt"]
    assert inputs["auto_restart"] is False
    assert inputs["ecut"] == 400


def test_set_wrong_type_is_refused_naming_the_field(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    result = run("new", "--set", "files_to_copy=3", cwd=tmp_path)
    assert result.returncode == 1
    assert "task_inputs.files_to_copy" in result.stderr
    assert "files_to_copy=3" in result.stderr
    assert "valid list" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("assignment", "message"),
    [("noequals", "is not KEY=VALUE"), ("task_metadata.label=x", "not a section of inputs.json")],
)
def test_set_malformed_is_refused(tmp_path: Path, assignment: str, message: str) -> None:
    before = snapshot(tmp_path)
    result = run("new", "--set", assignment, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert "hint:" in result.stderr
    assert snapshot(tmp_path) == before


def test_set_and_from_are_refused_for_a_study(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    result = run("new", "--type", "study", "--set", "command=x", cwd=tmp_path)
    assert result.returncode == 1
    assert "--from and --set apply to tasks" in result.stderr
    assert snapshot(tmp_path) == before


# -- --label and --name-template ----------------------------------------------


def test_label(tmp_path: Path) -> None:
    result = ok("new", "--set", "command=true", "--label", "relax Cu(111)", cwd=tmp_path)
    [(_, _, path)] = created(result, tmp_path)
    assert read(path / "task.json")["label"] == "relax Cu(111)"


def test_name_template_numbers_tasks(tmp_path: Path) -> None:
    paths = []
    for _ in range(2):
        result = ok(
            "new",
            "--set",
            "command=true",
            "--label",
            "relax",
            "--name-template",
            "{label}-{i}",
            cwd=tmp_path,
        )
        [(_, task_id, path)] = created(result, tmp_path)
        assert read(path / "task.json")["task_id"] == task_id
        paths.append(path)
    assert paths == [tmp_path / "relax-1", tmp_path / "relax-2"]
    assert sorted(os.listdir(tmp_path)) == ["relax-1", "relax-2"]


def test_name_template_from_an_id_field(tmp_path: Path) -> None:
    result = ok("new", "--set", "command=true", "--name-template", "calc-{task_id}", cwd=tmp_path)
    [(_, task_id, path)] = created(result, tmp_path)
    assert path.name == f"calc-{task_id}"


@pytest.mark.parametrize("structured", [False, True], ids=["loose", "task-group"])
@pytest.mark.parametrize(
    ("template", "messages"),
    [
        ("{label}-1", ["'relax-1' already exists", "add {i}"]),
        ("../x", ["'../x'", "would leave"]),
        ("{nope}", ["unknown field {nope}", "available fields:", "label", "task_id", "i"]),
    ],
    ids=["collision", "dotdot", "unknown-field"],
)
def test_bad_name_template_is_refused_and_changes_nothing(
    tmp_path: Path, structured: bool, template: str, messages: list[str]
) -> None:
    if structured:
        dest, _ = make_task_group(tmp_path)
    else:
        dest = tmp_path / "loose"
        dest.mkdir()
    ok(
        "new",
        "--set",
        "command=true",
        "--dest",
        dest,
        "--label",
        "relax",
        "--name-template",
        "{label}-{i}",
        cwd=tmp_path,
    )
    assert (dest / "relax-1" / "task.json").is_file()
    before = snapshot(tmp_path)
    result = run(
        "new",
        "--set",
        "command=true",
        "--dest",
        dest,
        "--label",
        "relax",
        "--name-template",
        template,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    for message in messages:
        assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "x").exists()


# -- --from --------------------------------------------------------------------


def test_clone_in_a_structured_tree(tmp_path: Path) -> None:
    group_dir, src = make_task_group(
        tmp_path,
        "--set",
        "command=python calc.py",
        "--set",
        'files_to_carry_over=["WAVECAR", "sub/CHGCAR"]',
        "--set",
        "scheduler_inputs.time=01:00:00",
        "--set",
        "scheduler_inputs.mem=4000M",
    )
    (src / "WAVECAR").write_bytes(b"\x00wave\xff")
    (src / "sub").mkdir()
    (src / "sub" / "CHGCAR").write_text("charge")
    (src / "OUTCAR").write_text("not carried over")
    src_meta = read(src / "task.json")
    src_before = snapshot(src)

    result = ok("new", "--from", src, cwd=tmp_path)
    [(kind, task_id, clone)] = created(result, tmp_path)
    assert kind == "task"
    assert clone.parent == group_dir
    assert task_id != src_meta["task_id"]
    meta = read(clone / "task.json")
    assert meta["task_id"] == task_id
    for key in ("task_group_id", "study_id", "study_group_id", "label", "task_class"):
        assert meta[key] == src_meta[key], key
    assert read(group_dir / "task_group.json")["tasks"] == [src_meta["task_id"], task_id]
    assert read(clone / "inputs.json") == read(src / "inputs.json")
    assert read(clone / "inputs.json")["scheduler_inputs"] == {"time": "01:00:00", "mem": "4000M"}
    assert "#SBATCH --time=01:00:00" in (clone / "run.sh").read_text().splitlines()
    assert (clone / "WAVECAR").read_bytes() == b"\x00wave\xff"
    assert (clone / "sub" / "CHGCAR").read_text() == "charge"
    assert not (clone / "OUTCAR").exists()
    assert sorted(p.name for p in clone.iterdir()) == [
        "WAVECAR",
        "inputs.json",
        "run.sh",
        "sub",
        "task.json",
    ]
    assert snapshot(src) == src_before  # the source is untouched


def test_clone_with_set_and_label_changes_only_the_clone(tmp_path: Path) -> None:
    _, src = make_task_group(tmp_path, "--set", "command=python calc.py", "--label", "first")
    src_before = snapshot(src)
    result = ok(
        "new",
        "--from",
        src,
        "--label",
        "retry",
        "--set",
        "scheduler_inputs.time=02:00:00",
        cwd=tmp_path,
    )
    [(_, _, clone)] = created(result, tmp_path)
    assert read(clone / "task.json")["label"] == "retry"
    inputs = read(clone / "inputs.json")
    assert inputs["scheduler_inputs"] == {"time": "02:00:00"}
    assert inputs["task_inputs"]["command"] == "python calc.py"
    assert snapshot(src) == src_before


def test_clone_in_an_unstructured_tree_goes_beside_the_source(tmp_path: Path) -> None:
    loose = tmp_path / "runs"
    loose.mkdir()
    ok(
        "new",
        "--dest",
        loose,
        "--name-template",
        "a",
        "--set",
        "command=echo hi",
        "--set",
        'files_to_carry_over=["keep.txt"]',
        cwd=tmp_path,
    )
    src = loose / "a"
    (src / "keep.txt").write_text("kept")
    (src / "drop.txt").write_text("dropped")
    src_before = snapshot(src)
    result = ok("new", "--from", src, cwd=tmp_path)
    [(_, task_id, clone)] = created(result, tmp_path)
    assert clone == loose / task_id
    assert sorted(os.listdir(loose)) == sorted(["a", task_id])
    assert read(clone / "task.json")["task_id"] == task_id
    assert read(clone / "inputs.json") == read(src / "inputs.json")
    assert (clone / "keep.txt").read_text() == "kept"
    assert not (clone / "drop.txt").exists()
    assert snapshot(src) == src_before


def test_clone_name_template_collision_changes_nothing(tmp_path: Path) -> None:
    group_dir, src = make_task_group(tmp_path)
    before = snapshot(tmp_path)
    result = run("new", "--from", src, "--name-template", src.name, cwd=tmp_path)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert snapshot(tmp_path) == before
    assert len(read(group_dir / "task_group.json")["tasks"]) == 1


# -- global options ----------------------------------------------------------


@pytest.mark.parametrize("flags", [["-v"], ["--verbose"], ["-vv"], ["-q"], ["--quiet"]])
def test_verbosity_flags_are_accepted(tmp_path: Path, flags: list[str]) -> None:
    result = ok(*flags, "new", "--set", "command=true", "--name-template", "t", cwd=tmp_path)
    [(_, task_id, path)] = created(result, tmp_path)
    assert read(path / "task.json")["task_id"] == task_id


def test_quiet_hides_warnings_and_verbose_shows_info(tmp_path: Path) -> None:
    ok(
        "new",
        "--set",
        "command=true",
        "--name-template",
        "src",
        "--set",
        'files_to_carry_over=["missing.txt"]',
        cwd=tmp_path,
    )
    loud = ok("new", "--from", "src", cwd=tmp_path)
    assert "missing.txt" in loud.stdout + loud.stderr
    quiet = ok("-q", "new", "--from", "src", cwd=tmp_path)
    assert "missing.txt" not in quiet.stdout + quiet.stderr
    (tmp_path / "hand").mkdir()
    (tmp_path / "hand" / "inputs.json").write_text("{}")
    verbose = ok("-v", "list", "hand", cwd=tmp_path)
    assert "created task metadata" in verbose.stdout + verbose.stderr


def test_cli_in_process_with_cli_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_autojob_logger: None
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["-q", "new", "--set", "command=true", "--name-template", "x", "--label", "lab"]
    )
    assert result.exit_code == 0, result.output
    task_id = read(tmp_path / "x" / "task.json")["task_id"]
    assert result.output == f"created task {task_id} at x\n"
    assert read(tmp_path / "x" / "task.json")["label"] == "lab"


# -- autojob list ----------------------------------------------------------------


def list_json(cwd: Path, *args: str | Path) -> list[dict[str, Any]]:
    result = ok("list", "--json", *args, cwd=cwd)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_list_structured_tree(tmp_path: Path) -> None:
    [(_, _, sg)] = created(ok("new", "--type", "study_group", cwd=tmp_path), tmp_path)
    [(_, _, study)] = created(ok("new", "--type", "study", "--dest", sg, cwd=tmp_path), tmp_path)
    expected = {}
    for label in ("a", "b"):
        result = ok(
            "new",
            "--type",
            "task_group",
            "--dest",
            study,
            "--label",
            label,
            "--set",
            f"command=run {label}",
            cwd=tmp_path,
        )
        [(_, group_id, _), (_, task_id, task_dir)] = created(result, tmp_path)
        expected[task_id] = (label, group_id, f"run {label}", os.path.relpath(task_dir, sg))
    result = ok("new", "--from", task_dir, cwd=tmp_path)
    [(_, clone_id, clone_dir)] = created(result, tmp_path)
    expected[clone_id] = ("b", group_id, "run b", os.path.relpath(clone_dir, sg))
    before = snapshot(tmp_path)

    rows = list_json(tmp_path, sg)
    assert {
        r["task_id"]: (r["label"], r["task_group_id"], r["command"], r["rel_path"]) for r in rows
    } == expected
    assert all(r["error"] is None and r["task_class"] == "task" for r in rows)
    assert snapshot(tmp_path) == before  # nothing to create in a complete tree

    table = ok("list", sg.name, cwd=tmp_path)  # relative: the title stays on one line
    assert f"3 task(s) under {sg.name}" in table.stdout
    for task_id, (label, _group_id, command, rel) in expected.items():
        here = f"{sg.name}/{rel}"  # paths are printed relative to the current directory
        assert re.search(
            rf"{task_id}\s*│\s*{label}\s*│\s*idle\s*│[\s│]*│\s*{here}\s*│\s*{command}",
            table.stdout,
        )


def test_list_defaults_to_the_current_directory(tmp_path: Path) -> None:
    [(_, task_id, _)] = created(ok("new", "--set", "command=true", cwd=tmp_path), tmp_path)
    rows = list_json(tmp_path)
    assert [r["task_id"] for r in rows] == [task_id]
    assert rows[0]["rel_path"] == task_id


def test_list_unstructured_tree_creates_missing_metadata_once(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    [(_, made_id, _)] = created(
        ok(
            "new", "--dest", loose, "--name-template", "made", "--set", "command=true", cwd=tmp_path
        ),
        tmp_path,
    )
    hand = loose / "deep" / "hand"
    hand.mkdir(parents=True)
    (hand / "inputs.json").write_text('{"task_inputs": {"command": "echo hi"}}')
    flat = loose / "flat"
    flat.mkdir()
    (flat / "inputs.json").write_text('{"command": "echo flat"}')  # the seed's flat form
    (loose / "notes").mkdir()  # not a task

    first = ok("list", "--json", loose, cwd=tmp_path)
    assert (hand / "task.json").is_file()
    assert (flat / "task.json").is_file()
    assert not (loose / "notes" / "task.json").exists()
    assert sorted(first.stderr.splitlines()) == sorted([f"created {flat}", f"created {hand}"])
    rows = {r["rel_path"]: r for r in map(json.loads, first.stdout.splitlines())}
    assert set(rows) == {"made", "deep/hand", "flat"}
    meta = read(hand / "task.json")
    assert rows["deep/hand"]["task_id"] == meta["task_id"]
    assert meta["label"] == "hand"
    assert meta["task_class"] == "task"
    assert rows["deep/hand"]["command"] == "echo hi"
    assert rows["flat"]["command"] == "echo flat"
    assert rows["made"]["task_id"] == made_id
    assert all(r["error"] is None for r in rows.values())

    snapshot_after_first = snapshot(tmp_path)
    second = ok("list", "--json", loose, cwd=tmp_path)
    assert snapshot(tmp_path) == snapshot_after_first  # task.json bytes unchanged
    assert second.stdout == first.stdout
    assert "created" not in second.stderr


def test_list_json_lines_parse(tmp_path: Path) -> None:
    for label in ("a", "b", "c"):
        ok("new", "--label", label, "--set", "command=python x.py 'quoted arg' ü", cwd=tmp_path)
    result = ok("list", "--json", cwd=tmp_path)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["label"] for r in rows) == ["a", "b", "c"]
    keys = {
        "path",
        "rel_path",
        "task_id",
        "label",
        "task_group_id",
        "task_class",
        "command",
        "error",
    }
    state = {"state", "exit_code", "cause", "started_at", "ended_at", "run_seconds", "host"}
    assert all(set(r) == keys | state for r in rows)  # fields are only ever added
    assert all(r["state"] == "idle" and r["run_seconds"] is None for r in rows)
    assert all(r["command"] == "python x.py 'quoted arg' ü" for r in rows)


def test_list_empty_directory(tmp_path: Path) -> None:
    for args in (["list", "--json"], ["list"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stdout == ""
        assert "no tasks under . (a task is a directory holding inputs.json)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_list_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = run("list", tmp_path / "nope", cwd=tmp_path)
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_list_keeps_a_task_group_loadable_when_it_creates_metadata(tmp_path: Path) -> None:
    from autojob.task_group import TaskGroup

    group_dir, _ = make_task_group(tmp_path, "--set", "command=true")
    hand = group_dir / "hand"
    hand.mkdir()
    (hand / "inputs.json").write_text('{"task_inputs": {"command": "echo hi"}}')
    assert len(TaskGroup.from_directory(group_dir, strict_mode=True).tasks) == 1
    ok("list", tmp_path, cwd=tmp_path)
    new_id = read(hand / "task.json")["task_id"]
    assert new_id in read(group_dir / "task_group.json")["tasks"]
    assert len(TaskGroup.from_directory(group_dir, strict_mode=True).tasks) == 2


def test_list_json_stays_parseable_when_a_warning_is_logged(tmp_path: Path) -> None:
    [(_, task_id, path)] = created(
        ok("new", "--set", "command=true", "--name-template", "t", cwd=tmp_path), tmp_path
    )
    meta = read(path / "task.json")
    meta["task_class"] = "not-installed"  # list loads relaxed: a warning, not an error
    (path / "task.json").write_text(json.dumps(meta))
    result = ok("list", "--json", cwd=tmp_path)
    assert "not-installed" in result.stderr  # the warning is shown, on stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["task_id"] for r in rows] == [task_id]


@pytest.mark.parametrize("kind", ["study", "study_group"])
def test_new_task_directly_in_a_study_is_refused(tmp_path: Path, kind: str) -> None:
    made = created(ok("new", "--type", kind, "--name-template", "x", cwd=tmp_path), tmp_path)
    before = snapshot(tmp_path)
    result = run("new", "--dest", "x", cwd=tmp_path)
    assert result.returncode == 1
    assert "tasks belong in task groups" in result.stderr and "--type task_group" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before
    assert made


def test_set_a_bad_scheduler_time_names_field_and_forms(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    result = run("new", "--set", "scheduler_inputs.time=25:61:00", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "scheduler_inputs.time" in result.stderr and "25:61:00" in result.stderr
    assert "days-hours:minutes:seconds" in result.stderr
    assert snapshot(tmp_path) == before


def test_status_by_state_lists_the_states_in_the_order_the_report_shows_them(
    tmp_path: Path,
) -> None:
    """``status --by state`` and the report's summary show the states in one order."""
    assert sorted(STATE_ORDER) == sorted(s.value for s in State)  # every state, once
    study, folders = make_study(tmp_path, 3)
    end(folders[:1], 0)
    end(folders[1:2], 1)  # the third stays idle
    result = CliRunner().invoke(cli, ["status", str(study), "--by", "state", "--all"])
    assert result.exit_code == 0, result.output
    shown = [s for line in result.output.splitlines() for s in line.split() if s in STATE_ORDER]
    expected = [s for s in STATE_ORDER if s in {"success", "failed", "idle"}]
    assert list(dict.fromkeys(shown)) == expected
    page = tmp_path / "report.html"
    write_report(study, page)
    summary = page.read_text().split('id="failures"')[0]
    cells = {s: summary.find(f'<td class="s-{s}">{s}</td>') for s in STATE_ORDER}
    assert sorted((s for s, at in cells.items() if at >= 0), key=cells.__getitem__) == expected
