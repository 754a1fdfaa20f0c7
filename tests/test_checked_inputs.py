"""Inputs are checked where they are written, and inputs.json is the source of truth.

Through the installed command on real files: typos in ``--set``, ``restart
--scheduler`` and sweep specs are refused with what was meant; a sweep's
``--dry-run`` refuses what the real run refuses; an edited ``inputs.json`` is
what the next submit runs; ``autojob render`` keeps scripts edited by hand
unless forced; a hand-written flat ``inputs.json`` is never rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autojob.errors import InputError
from autojob.next import create_task_tree
from autojob.study import Study
from autojob.tasks.task import Task, TaskInputs
from tests.helpers import run


def ok(*args: str | Path, cwd: Path) -> str:
    result = run(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(*args: str | Path, cwd: Path) -> str:
    result = run(*args, cwd=cwd)
    assert result.returncode != 0, result.stdout
    return result.stderr


def task_in(path: Path) -> Path:
    [task] = [p.parent for p in path.rglob("task.json")]
    return task


# -- typos are refused where inputs are written ----------------------------------


@pytest.mark.parametrize(
    ("assignment", "meant"),
    [
        ("comand=python calc.py", "did you mean task_inputs.command?"),
        ("scheduler_inputs.tme=01:00:00", "did you mean time"),
        ("scheduler.time=01:00:00", "did you mean scheduler_inputs?"),
        ("scheduler_inputs.mem=8", "8G"),
    ],
)
def test_new_refuses_typos_and_writes_nothing(tmp_path: Path, assignment: str, meant: str) -> None:
    error = refused("new", "--set", "command=true", "--set", assignment, cwd=tmp_path)
    assert meant in error
    assert assignment.partition("=")[0] in error  # names the key at fault
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_a_task_without_a_command(tmp_path: Path) -> None:
    error = refused("new", "--set", "scheduler_inputs.time=01:00:00", cwd=tmp_path)
    assert "task_inputs.command" in error and "--set command=" in error
    assert list(tmp_path.iterdir()) == []


def test_sbatch_options_and_extra_directives_stay_possible(tmp_path: Path) -> None:
    ok(
        "new",
        "--set",
        "command=true",
        "--set",
        "scheduler_inputs.gres=gpu:1",
        "--set",
        "scheduler_inputs.mem=8G",
        "--set",
        'scheduler_inputs.extra_directives=["--container-image=my image"]',
        "--name-template",
        "t",
        cwd=tmp_path,
    )
    lines = (tmp_path / "t" / "run.sh").read_text().splitlines()
    assert "#SBATCH --gres=gpu:1" in lines
    assert "#SBATCH --mem=8G" in lines
    assert "#SBATCH --container-image='my image'" in lines


def test_restart_refuses_a_typo_but_keeps_what_the_old_attempt_had(tmp_path: Path) -> None:
    """Keys written before these checks (a unitless memory) are not judged again."""
    ok("new", "--set", "command=true", "--name-template", "t", cwd=tmp_path)
    error = refused("restart", "t", "--scheduler", "tme=02:00:00", cwd=tmp_path)
    assert "scheduler_inputs.tme" in error and "did you mean time" in error
    assert [p.name for p in tmp_path.iterdir()] == ["t"]  # no new attempt

    inputs = tmp_path / "t" / "inputs.json"
    data = json.loads(inputs.read_text())
    data["scheduler_inputs"] = {"mem": 4000}
    inputs.write_text(json.dumps(data))
    ok("restart", "t", "--scheduler", "time=01:00:00", cwd=tmp_path)
    new = next(p for p in tmp_path.iterdir() if p.name != "t")
    assert json.loads((new / "inputs.json").read_text())["scheduler_inputs"] == {
        "mem": 4000,
        "time": "01:00:00",
    }


SPEC = """
name = "s"
command = "echo {x}"
[scheduler]
time = "%s"
[parameters]
x = [1, 2]
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (SPEC % "25:61:00", "25:61:00"),
        (SPEC.replace("time =", "tme =") % "01:00:00", "did you mean time"),
        (SPEC.replace('command = "echo {x}"', "") % "01:00:00", "no command"),
    ],
)
def test_sweep_dry_run_refuses_what_the_real_run_refuses(
    tmp_path: Path, spec: str, expected: str
) -> None:
    (tmp_path / "spec.toml").write_text(spec)
    dry = refused("sweep", "spec.toml", "--dry-run", cwd=tmp_path)
    real = refused("sweep", "spec.toml", cwd=tmp_path)
    assert expected in dry and expected in real
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


def test_sweep_refuses_a_typo_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "spec.toml").write_text(
        SPEC.replace("[parameters]", '[parameters]\n"scheduler_inputs.mem" = [8, 16]') % "1"
    )
    error = refused("sweep", "spec.toml", "--dry-run", cwd=tmp_path)
    assert "line 7" in error and "scheduler_inputs.mem" in error and "megabytes" in error


# -- inputs.json is the source of truth ----------------------------------------------


def test_edited_inputs_run_at_the_next_submit(tmp_path: Path) -> None:
    ok("new", "--set", "command=echo first", "--name-template", "t", cwd=tmp_path)
    task = tmp_path / "t"
    ok("submit", "t", "--wait", cwd=tmp_path)
    assert (task / "autojob.out").read_text() == "first\n"
    inputs = task / "inputs.json"
    data = json.loads(inputs.read_text())
    data["task_inputs"]["command"] = "echo second"
    inputs.write_text(json.dumps(data))

    dry = ok("submit", "t", "--only", "success", "--dry-run", cwd=tmp_path)
    assert "again" in dry
    ok("submit", "t", "--only", "success", "--wait", cwd=tmp_path)
    assert (task / "autojob.out").read_text() == "second\n"


def test_edited_inputs_with_a_typo_are_refused_at_submit(tmp_path: Path) -> None:
    ok("new", "--set", "command=true", "--name-template", "t", cwd=tmp_path)
    inputs = tmp_path / "t" / "inputs.json"
    data = json.loads(inputs.read_text())
    data["scheduler_inputs"] = {"tme": "01:00:00"}
    inputs.write_text(json.dumps(data))
    error = refused("submit", "t", "--dry-run", cwd=tmp_path)
    assert "scheduler_inputs.tme" in error and "did you mean time" in error
    assert not (tmp_path / "t" / "autojob.queued").exists()


def test_render_keeps_a_script_edited_by_hand_unless_forced(tmp_path: Path) -> None:
    ok("new", "--set", "command=echo first", "--name-template", "t", cwd=tmp_path)
    script = tmp_path / "t" / "run.sh"
    edited = script.read_text().replace('exit "$autojob_exit"', "echo mine; exit 0")
    script.write_text(edited)
    inputs = tmp_path / "t" / "inputs.json"
    data = json.loads(inputs.read_text())
    data["task_inputs"]["command"] = "echo second"
    inputs.write_text(json.dumps(data))

    said = ok("render", "t", cwd=tmp_path)
    assert "kept" in said and "edited by hand" in said and "--force" in said
    assert script.read_text() == edited
    ok("submit", "t", "--wait", cwd=tmp_path)  # the user's script runs
    assert (tmp_path / "t" / "autojob.out").read_text() == "first\nmine\n"

    said = ok("render", "t", "--force", cwd=tmp_path)
    assert "rendered again" in said
    assert "echo mine" not in script.read_text()
    assert "'echo second'" in script.read_text()
    assert "up to date" in ok("render", "t", cwd=tmp_path)


def test_submit_never_rewrites_a_flat_inputs_json(tmp_path: Path) -> None:
    task = tmp_path / "loose"
    task.mkdir()
    text = '{"command": "echo hello",\n "ecut": 400}\n'
    (task / "inputs.json").write_text(text)
    ok("submit", "loose", "--wait", cwd=tmp_path)
    assert (task / "inputs.json").read_text() == text
    assert (task / "autojob.out").read_text() == "hello\n"


def test_submit_refuses_a_loose_task_without_a_command(tmp_path: Path) -> None:
    task = tmp_path / "loose"
    task.mkdir()
    (task / "inputs.json").write_text('{"ecut": 400}')
    error = refused("submit", "loose", cwd=tmp_path)
    assert "task_inputs.command" in error and "inputs.json" in error
    assert not (task / "autojob.queued").exists()
    # a script of the user's own runs what it says: it needs no command
    (task / "run.sh").write_text("#!/bin/bash\necho own script\n")
    ok("submit", "loose", "--wait", cwd=tmp_path)
    assert (task / "autojob.out").read_text() == "own script\n"
    assert (task / "run.sh").read_text() == "#!/bin/bash\necho own script\n"


def test_the_api_refuses_typos_where_it_writes(tmp_path: Path) -> None:
    typo = Task(task_inputs=TaskInputs(command="true"), scheduler_inputs={"tme": "01:00:00"})
    with pytest.raises(InputError, match="did you mean time") as info:
        create_task_tree(typo, tmp_path)
    assert info.value.field == "scheduler_inputs.tme"
    study = Study(name="s", tasks=[Task(task_inputs=TaskInputs(command="true", comand="x"))])
    with pytest.raises(InputError, match=r"did you mean task_inputs\.command"):
        study.to_directory(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_sweep_refuses_a_step_without_a_command(tmp_path: Path) -> None:
    spec = SPEC % "01:00:00" + '[[steps]]\nname = "sum"\nafter = ["sweep"]\n'
    (tmp_path / "spec.toml").write_text(spec)
    error = refused("sweep", "spec.toml", "--dry-run", cwd=tmp_path)
    assert "step 'sum'" in error and "no command" in error and "steps.0.set" in error
