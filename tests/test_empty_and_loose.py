"""Directories without tasks, and loose tasks, through the installed command.

A command given a directory holding no task says so and exits non-zero, writing
nothing; a task directory never gets a ``.autojob/`` of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autojob import SETTINGS

from .helpers import run, snapshot

NO_TASKS = "no tasks under {} (a task is a directory holding inputs.json)"


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["status", "--rescan"],
        ["submit"],
        ["submit", "--dry-run"],
        ["submit", "--wait"],
        ["harvest"],
        ["harvest", "-o", "results.csv"],
        ["cancel", "."],
        ["resubmit", "."],
        ["list"],
        ["list", "--repair"],
    ],
    ids=" ".join,
)
def test_a_directory_without_tasks_is_refused_and_left_empty(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a task\n")
    before = snapshot(tmp_path)
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert NO_TASKS.format(".") in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before  # no index, no cache, no archive


def test_the_paths_given_are_named(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    result = run("submit", "a", "b", cwd=tmp_path)
    assert result.returncode == 1
    assert NO_TASKS.format("a, b") in result.stderr
    result = run("status", "a", cwd=tmp_path)
    assert NO_TASKS.format("a") in result.stderr


@pytest.mark.parametrize("command", ["restart", "advance"])
def test_a_command_on_one_task_refuses_a_directory_that_is_not_one(
    tmp_path: Path, command: str
) -> None:
    before = snapshot(tmp_path)
    result = run(command, ".", cwd=tmp_path)
    assert result.returncode == 1
    assert "is not a task directory (a task is a directory holding inputs.json" in result.stderr
    assert "--from" not in result.stderr  # restart has no such option
    assert snapshot(tmp_path) == before


def _loose_task(root: Path, command: str = "echo hi") -> Path:
    task = root / "calc"
    task.mkdir(parents=True)
    (task / SETTINGS.INPUTS_FILE).write_text(json.dumps({"task_inputs": {"command": command}}))
    return task


def test_status_of_a_task_keeps_no_index_inside_it(tmp_path: Path) -> None:
    task = _loose_task(tmp_path)
    assert run("submit", task, "--wait", cwd=tmp_path).returncode == 0
    for extra in ([], ["--json"], ["--rescan"]):
        result = run("status", task, *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "success" in result.stdout
    assert not (task / SETTINGS.INDEX_DIR).exists()
    assert not (tmp_path / SETTINGS.INDEX_DIR).exists()  # nor beside it: nothing asked for one
    # the directory around it keeps the index of its tree, as any tree does
    assert run("status", tmp_path, cwd=tmp_path).returncode == 0
    assert (tmp_path / SETTINGS.INDEX_DIR / "status.index").is_file()
    assert not (task / SETTINGS.INDEX_DIR).exists()


def test_a_tree_whose_tasks_were_all_removed_keeps_its_old_archive(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    task = _loose_task(tree)
    assert run("harvest", tree, "-o", "out.json", cwd=tmp_path).returncode == 0
    archived = (tmp_path / "out.json").read_bytes()
    (task / SETTINGS.INPUTS_FILE).unlink()
    (task / SETTINGS.TASK_METADATA_FILE).unlink(missing_ok=True)
    result = run("harvest", tree, "-o", "out.json", cwd=tmp_path)
    assert result.returncode == 1
    assert NO_TASKS.format(tree) in result.stderr
    assert (tmp_path / "out.json").read_bytes() == archived


def test_slurm_job_scripts_of_one_task_go_beside_it(tmp_path: Path) -> None:
    from autojob.execution.slurm import batch_root

    task = _loose_task(tmp_path / "group")
    assert batch_root(task) == (tmp_path / "group" / SETTINGS.INDEX_DIR / "slurm").resolve()
    assert batch_root(tmp_path) == tmp_path.resolve() / SETTINGS.INDEX_DIR / "slurm"
