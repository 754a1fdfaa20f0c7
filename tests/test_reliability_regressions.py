"""The cases the reliability suite found, kept as plain regression tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.errors import MetadataError
from autojob.execution.claims import claim_tasks, new_claim
from autojob.execution.slurm import ArrayJob
from autojob.execution.submit import DEFAULT_ONLY, select_tasks
from autojob.next import create_task_tree
from autojob.store.state import State, read_state
from autojob.store.status_index import _start_journal, collect
from autojob.study import Study
from autojob.tasks.task import Task, TaskInputs


def _task(tmp_path: Path, command: str = "echo ran >> runs.txt") -> Path:
    task = Task(task_inputs=TaskInputs(command=command, auto_restart=False))
    return create_task_tree(task, tmp_path)


def _launch(task_dir: Path, claim: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOJOB_TASK_DIR": str(task_dir), "AUTOJOB_CLAIM": claim}
    return subprocess.run(
        ["bash", "run.sh"], cwd=task_dir, env=env, capture_output=True, text=True, check=False
    )


def test_a_script_launched_for_a_superseded_claim_does_not_run(tmp_path: Path) -> None:
    # a runner claimed the task, launched its script and died before the script
    # started; meanwhile another submit claimed the task again
    task_dir = _task(tmp_path)
    old = new_claim()
    pid = os.fork()
    if pid == 0:
        claim_tasks([task_dir], DEFAULT_ONLY, "local", claim=old)
        os._exit(0)
    os.waitpid(pid, 0)
    assert read_state(task_dir).state is State.IDLE  # its claimer is dead
    new = new_claim()
    assert claim_tasks([task_dir], DEFAULT_ONLY, "local", claim=new) == [task_dir]
    late = _launch(task_dir, old)
    assert late.returncode == 0 and "claimed again" in late.stderr
    assert not (task_dir / "runs.txt").exists()
    assert not (task_dir / SETTINGS.STARTED_FILE).exists()
    current = _launch(task_dir, new)
    assert current.returncode == 0, current.stderr
    assert (task_dir / "runs.txt").read_text() == "ran\n"


def test_an_index_rescan_killed_after_emptying_the_journal(tmp_path: Path) -> None:
    task_dir = _task(tmp_path, "true")
    collect(tmp_path)
    _start_journal(os.path.realpath(tmp_path))  # a rescan dies here, before saving
    assert _launch(task_dir, "").returncode == 0  # the task runs meanwhile
    assert collect(tmp_path).tasks[task_dir.name].state.state is State.SUCCESS


@pytest.mark.parametrize("content", [{"tasks": None}, {"tasks": [None]}, {"tasks": "x"}])
def test_a_study_file_with_a_tasks_key_is_refused_clearly(
    tmp_path: Path, content: dict[str, object]
) -> None:
    study = Study(name="s", tasks=[Task()]).to_directory(tmp_path, study_template="{name}")
    path = study / SETTINGS.STUDY_METADATA_FILE
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, **content}))
    with pytest.raises(MetadataError, match="tasks must be a list of Task objects") as info:
        Study.from_directory(study)
    assert info.value.path == path


@pytest.mark.parametrize("section", ["task_inputs", "scheduler_inputs"])
def test_an_inputs_section_that_is_not_an_object_is_refused(tmp_path: Path, section: str) -> None:
    task_dir = _task(tmp_path)
    path = task_dir / SETTINGS.INPUTS_FILE
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, section: True}))
    with pytest.raises(MetadataError, match="must be an object") as info:
        select_tasks([tmp_path], dry_run=True)
    assert info.value.path == path and info.value.field == section


def test_an_array_script_survives_a_newline_in_names_and_paths(tmp_path: Path) -> None:
    root = tmp_path / "a\nb"
    root.mkdir()
    task_dir = _task(root, "pwd > where.txt")
    job = ArrayJob([("job-name", "x")], [(task_dir, "run.sh")], root / "batch\nx")
    from autojob.execution.slurm.arrays import _job_name

    assert "\n" not in _job_name([(task_dir, "run.sh")])
    assert subprocess.run(["bash", "-n", "-c", job.script()], check=False).returncode == 0
    assert any(a.startswith("--output=") and "\n" in a for a in job.command())


@pytest.mark.parametrize("cause", ["node_fail", "preempted", "boot_fail"])
def test_an_end_with_a_scheduler_cause_is_a_failure_even_with_exit_0(
    tmp_path: Path, cause: str
) -> None:
    task_dir = _task(tmp_path)
    (task_dir / SETTINGS.ENDED_FILE).write_text(
        json.dumps({"time": 1.0, "exit_code": 0, "reason": cause, "job_id": "7_0"})
    )
    state = read_state(task_dir)
    assert state.state is State.FAILED and state.reason == cause
