"""Reliability: a live run is never run twice, and nothing of a stopped run is left.

Real processes, real signals: commands that ignore SIGTERM, a start record
moved back as a clock step would, Ctrl-C and SIGTERM on ``submit --wait``.
Each test adds what it saw to the ``processes`` figures (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.execution.claims import claim_tasks
from autojob.store.state import State, read_state

from .helpers import AUTOJOB, alive, run, runs, study_of_commands, wait_until

#: a command that ignores SIGTERM and says which process it is
STUBBORN = "trap '' TERM; echo $$ > cmd.pid; exec sleep 60"
#: a command that stops on SIGTERM
PATIENT = "echo $$ > cmd.pid; exec sleep 60"


@pytest.fixture
def tally(figures: dict[str, dict[str, int | float | str]]) -> Iterator[dict[str, int]]:
    """The ``processes`` figures: runs tried, duplicate runs seen, processes left."""
    seen = {"tasks run": 0, "duplicate runs": 0, "processes left behind": 0}
    yield seen
    family = figures.setdefault("processes", {})
    for key, value in seen.items():
        family[key] = int(family.get(key, 0)) + value


def one_task(root: Path, command: str, *, limit: str | None = "00:05:00") -> Path:
    """A study with one task that counts its runs; return the task directory.

    With a time limit the command runs under ``autojob run`` in a session of
    its own, as a task of a real study would.
    """
    if limit is None:
        _, (task,) = study_of_commands(root, {"t": command}, auto_restart=True, count_runs=True)
    else:
        _, (task,) = study_of_commands(
            root, {"t": command}, auto_restart=True, count_runs=True, time=limit
        )
    return task


def command_pid(task: Path) -> int:
    """The pid of the task's command, once it has started."""
    pid_file = task / "cmd.pid"
    wait_until(lambda: pid_file.is_file() and pid_file.read_text(), 60, "the command to start")
    return int(pid_file.read_text())


def start(task: Path, tmp_path: Path) -> int:
    """Submit the task to a background runner and return its command's pid."""
    result = run("submit", task, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return command_pid(task)


def cleanup(*pids: int) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_cancel_stops_a_command_that_ignores_sigterm(tmp_path: Path, tally: dict[str, int]) -> None:
    task = one_task(tmp_path, STUBBORN)
    pid = start(task, tmp_path)
    tally["tasks run"] += 1
    try:
        assert (task / SETTINGS.COMMAND_FILE).is_file()  # autojob run recorded its session
        result = run("cancel", task, "--grace", "1", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        left = alive(pid)
        tally["processes left behind"] += left
        assert not left, "the command outlived cancel"
        assert read_state(task).state is State.CANCELLED
        # submitting the cancelled task again starts one run: the old one is gone
        assert run("submit", task, "--only", "cancelled", cwd=tmp_path).returncode == 0
        wait_until(lambda: runs(task) == 2, 60, "the second run")
        second = command_pid(task)
        tally["tasks run"] += 1
        tally["duplicate runs"] += alive(pid) and alive(second)
        assert run("cancel", task, "--grace", "1", cwd=tmp_path).returncode == 0
        wait_until(lambda: not alive(second), 15, "the second run to stop")
    finally:
        cleanup(pid)


def test_a_running_task_is_never_submitted_again(tmp_path: Path, tally: dict[str, int]) -> None:
    task = one_task(tmp_path, PATIENT)
    pid = start(task, tmp_path)
    tally["tasks run"] += 1
    try:
        wait_until(lambda: read_state(task).state is State.RUNNING, 60, "running")
        before = {name: (task / name).read_bytes() for name in (SETTINGS.STARTED_FILE,)}
        for only in ("running", "queued"):
            result = run("submit", task, "--only", only, cwd=tmp_path)
            assert result.returncode == 1
            assert f"--only {only}" in result.stderr and "never submitted again" in result.stderr
        # nor by the library, whatever it is asked
        assert claim_tasks([task], frozenset(State), "local") == []
        assert not (task / SETTINGS.HISTORY_DIR).exists()
        assert (task / SETTINGS.STARTED_FILE).read_bytes() == before[SETTINGS.STARTED_FILE]
        time.sleep(0.5)
        tally["duplicate runs"] += runs(task) - 1
        assert runs(task) == 1
    finally:
        run("cancel", task, "--grace", "1", cwd=tmp_path)
        cleanup(pid)


@pytest.mark.parametrize("step", [-10.0, 3600.0])
def test_a_clock_step_does_not_make_a_live_task_look_dead(
    tmp_path: Path, tally: dict[str, int], step: float
) -> None:
    task = one_task(tmp_path, PATIENT)
    pid = start(task, tmp_path)
    tally["tasks run"] += 1
    try:
        wait_until((task / SETTINGS.STARTED_FILE).is_file, 60, "the start record")
        started = json.loads((task / SETTINGS.STARTED_FILE).read_text())
        assert isinstance(started["start_ticks"], int)
        # the wall clock stepped between the start and now: the record says another time
        started["time"] += step
        (task / SETTINGS.STARTED_FILE).write_text(json.dumps(started))
        assert read_state(task).state is State.RUNNING
        status = run("status", task.parent.parent, "--json", "--rescan", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert '"running"' in status.stdout and '"unknown"' not in status.stdout
        result = run("submit", task, cwd=tmp_path)
        assert result.returncode == 0 and "nothing to submit" in result.stdout
        time.sleep(0.5)
        tally["duplicate runs"] += runs(task) - 1
        assert runs(task) == 1
    finally:
        run("cancel", task, "--grace", "1", cwd=tmp_path)
        cleanup(pid)


def test_a_runner_stops_what_is_left_when_the_task_script_dies(
    tmp_path: Path, tally: dict[str, int]
) -> None:
    task = one_task(tmp_path, STUBBORN)
    pid = start(task, tmp_path)
    tally["tasks run"] += 1
    try:
        script = json.loads((task / SETTINGS.STARTED_FILE).read_text())["pid"]
        os.kill(script, signal.SIGKILL)  # the task script dies; its command would run on
        wait_until((task / SETTINGS.ENDED_FILE).exists, 60, "the runner to record the end")
        left = alive(pid)
        tally["processes left behind"] += left
        assert not left, "an end was recorded while the command still ran"
        assert read_state(task).state is State.FAILED
    finally:
        cleanup(pid)


def test_a_run_whose_script_and_runner_died_is_alive_while_its_command_runs(
    tmp_path: Path, tally: dict[str, int]
) -> None:
    task = one_task(tmp_path, PATIENT)
    pid = start(task, tmp_path)
    tally["tasks run"] += 1
    try:
        runner = json.loads((task / SETTINGS.QUEUED_FILE).read_text())["runner"]["pid"]
        script = json.loads((task / SETTINGS.STARTED_FILE).read_text())["pid"]
        os.kill(runner, signal.SIGKILL)  # nobody watches the run any more...
        os.kill(script, signal.SIGKILL)  # ...and its script dies; its command runs on
        wait_until(lambda: not alive(script) and not alive(runner), 60, "both to die")
        assert alive(pid)
        state = read_state(task)
        assert state.state is State.RUNNING and "command runs on" in str(state.detail)
        assert "nothing to submit" in run("submit", task, cwd=tmp_path).stdout
        assert run("cancel", task, "--grace", "1", cwd=tmp_path).returncode == 0
        left = alive(pid)
        tally["processes left behind"] += left
        assert not left
        assert read_state(task).state is State.CANCELLED
        tally["duplicate runs"] += runs(task) - 1
        assert runs(task) == 1
    finally:
        cleanup(pid)


def test_restart_and_clone_of_a_running_task_are_refused_unless_forced(
    tmp_path: Path, tally: dict[str, int]
) -> None:
    task = one_task(tmp_path, "touch big; " + PATIENT)
    inputs = json.loads((task / SETTINGS.INPUTS_FILE).read_text())
    inputs["task_inputs"]["files_to_delete"] = ["big"]
    (task / SETTINGS.INPUTS_FILE).write_text(json.dumps(inputs))
    pid = start(task, tmp_path)
    tally["tasks run"] += 1
    try:
        wait_until((task / "big").exists, 60, "the file to delete")
        for args in (("restart", task), ("new", "--from", task)):
            result = run(*args, cwd=tmp_path)
            assert result.returncode == 1, result.stdout
            assert "the task is running" in result.stderr and "--force" in result.stderr
        assert [p for p in task.parent.iterdir() if p.is_dir()] == [task]
        forced = run("restart", task, "--force", cwd=tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert (task / "big").exists(), "a running attempt lost its files_to_delete"
        assert alive(pid)
        assert len([p for p in task.parent.iterdir() if p.is_dir()]) == 2
    finally:
        run("cancel", task, "--grace", "1", cwd=tmp_path)
        cleanup(pid)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_submit_wait_stops_its_tasks(
    tmp_path: Path, tally: dict[str, int], signum: int
) -> None:
    task = one_task(tmp_path, STUBBORN, limit=None)
    waiting = subprocess.Popen(
        [str(AUTOJOB), "submit", str(task), "--wait"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tally["tasks run"] += 1
    pid = 0
    try:
        pid = command_pid(task)
        waiting.send_signal(signum)
        # it returns once its task is stopped (the grace period is 10 s), not when the
        # command would have ended by itself (60 s)
        waiting.wait(timeout=30)
        assert waiting.returncode != 0
        left = alive(pid)
        tally["processes left behind"] += left
        assert not left
        assert read_state(task).state is State.CANCELLED
    finally:
        waiting.kill()
        waiting.communicate()
        if pid:
            cleanup(pid)
