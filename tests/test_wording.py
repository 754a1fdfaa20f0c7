"""What the commands say is what they do, through the installed commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from autojob import SETTINGS

from .datasets_helpers import make_dataset
from .helpers import run, snapshot

EXAMPLE = Path(__file__).parents[1] / "examples" / "workflow"
BIN = Path(sys.executable).parent


def _command(name: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / name), *(str(a) for a in args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _loose_task(root: Path, name: str, sections: dict[str, object]) -> Path:
    task = root / name
    task.mkdir(parents=True)
    (task / SETTINGS.INPUTS_FILE).write_text(json.dumps(sections))
    return task


def _squares(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)  # the spec and its scripts
    made = run("sweep", "squares.toml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path / "squares"


def test_the_console_scripts_name_themselves_in_their_usage(tmp_path: Path) -> None:
    for name in ("sketchjob", "_jobarchitect_agent"):
        shown = _command(name, "--help", cwd=tmp_path)
        assert shown.returncode == 0
        assert shown.stdout.startswith(f"Usage: {name} [OPTIONS]")
    wrong = _command("sketchjob", "--nchunks", "0", "a", "b", "c", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "Usage: sketchjob" in wrong.stderr and "autojob sketch" not in wrong.stderr


def test_sketch_study_into_an_existing_directory_names_the_option(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data")
    tool = tmp_path / "tool.py"
    tool.write_text("print('hi')\n")
    (tmp_path / "study").mkdir()
    before = snapshot(tmp_path / "study")
    result = _command(
        "sketchjob", tool, dataset.uri, tmp_path / "out", "--study", "study", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "study: field '--study': already exists" in result.stderr
    assert "template" not in result.stderr  # sketch has no name template to change
    assert snapshot(tmp_path / "study") == before


def test_list_names_each_broken_task_and_why(tmp_path: Path) -> None:
    _loose_task(tmp_path, "good", {"task_inputs": {"command": "true"}})
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / SETTINGS.INPUTS_FILE).write_text("{not json")
    result = run("list", cwd=tmp_path)
    assert result.returncode == 1
    assert "error column" not in result.stderr
    assert "1 broken task(s):" in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("  bad: ")]
    assert SETTINGS.INPUTS_FILE in line


def test_workflow_check_names_the_steps_of_a_cycle(tmp_path: Path) -> None:
    study = _squares(tmp_path)
    names = {
        sid: step["name"]
        for sid, step in json.loads((study / SETTINGS.PARAMETERIZATION_FILE).read_text()).items()
    }
    ids = {name: sid for sid, name in names.items()}
    graph = json.loads((study / SETTINGS.WORKFLOW_FILE).read_text())
    graph[ids["sweep"]] = [ids["aggregate"]]  # sweep after aggregate after sweep
    (study / SETTINGS.WORKFLOW_FILE).write_text(json.dumps(graph))
    result = run("workflow", "check", study, cwd=tmp_path)
    assert result.returncode == 1
    assert f"sweep ({ids['sweep']})" in result.stderr
    assert f"aggregate ({ids['aggregate']})" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_default_executor_is_named_as_the_setting(tmp_path: Path) -> None:
    _loose_task(tmp_path, "t", {"task_inputs": {"command": "true"}})
    env = {"AUTOJOB_DEFAULT_EXECUTOR": "slurmm"}
    for args in (["submit", "--dry-run"], ["resubmit", ".", "--dry-run"]):
        result = run(*args, cwd=tmp_path, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert "--executor'" not in result.stderr  # not reported as the option
        assert "unknown executor 'slurmm' in the setting DEFAULT_EXECUTOR" in result.stderr
        assert "environment variable AUTOJOB_DEFAULT_EXECUTOR" in result.stderr
    given = run("submit", "--dry-run", "--executor", "slurmm", cwd=tmp_path)
    assert given.returncode == 1 and "field '--executor'" in given.stderr


def test_verbosity_options_follow_the_command_name(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)  # the spec and its scripts
    assert run("sweep", "squares.toml", "--dry-run", "-v", cwd=tmp_path).returncode == 0
    assert run("workflow", "show", "nowhere", "-q", cwd=tmp_path).returncode == 2
    # -v after the name shows an error's traceback, as -v before it does
    for args in (["-v", "list"], ["list", "-v"], ["list", "--json", "-vv"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 1
        assert "Traceback" in result.stderr, args
    assert "Traceback" not in run("list", cwd=tmp_path).stderr


def test_workflow_show_calls_the_first_step_what_status_calls_it(tmp_path: Path) -> None:
    study = _squares(tmp_path)
    shown = run("workflow", "show", study, cwd=tmp_path)
    status = run("status", study, cwd=tmp_path)
    assert shown.returncode == 0 and status.returncode == 0, (shown.stderr, status.stderr)
    (tree_line,) = [x for x in shown.stdout.splitlines() if " sweep " in f" {x} "]
    (status_line,) = [x for x in status.stdout.splitlines() if x.startswith("│ sweep ")]
    assert "start" in tree_line and "independent" not in tree_line
    assert "start" in status_line
    mermaid = run("workflow", "show", study, "--format", "mermaid", cwd=tmp_path).stdout
    assert '"sweep (start)"' in mermaid


def test_dry_run_shows_the_time_limit_as_given(tmp_path: Path) -> None:
    _loose_task(
        tmp_path,
        "restarts",
        {"task_inputs": {"command": "true"}, "scheduler_inputs": {"time": "01:00:00"}},
    )
    _loose_task(
        tmp_path,
        "plain",
        {
            "task_inputs": {"command": "true", "auto_restart": False},
            "scheduler_inputs": {"time": "90"},
        },
    )
    result = run("submit", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3615" not in result.stdout
    (restarts,) = [x for x in result.stdout.splitlines() if "restarts" in x]
    assert "01:00:00, +15 s for the task to start its automatic restart" in restarts
    (plain,) = [x for x in result.stdout.splitlines() if "plain" in x]
    assert "90 (01:30:00)" in plain and "+" not in plain
