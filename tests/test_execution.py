"""Running tasks for real: states, the local runner, submit, cancel, recovery."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autojob.execution.local import LocalRunner
from autojob.execution.submit import DEFAULT_ONLY, plan, select_tasks
from autojob.next import create_task_group_tree
from autojob.store.index_file import parse_index
from autojob.store.state import State, read_state
from autojob.store.status_index import COLUMNS
from autojob.study import Study
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .helpers import alive, run, runs, snapshot, study_of_commands, task_dir, wait_until


def run_all(
    study: Path, only: frozenset[State] = DEFAULT_ONLY, parallel: int = 2
) -> dict[Path, State]:
    runner = LocalRunner(plan(select_tasks([study], only)), max_parallel=parallel, grace=2)
    runner.claim(only)
    return {p: s.state for p, s in runner.run().items()}


def test_states_follow_the_files_the_script_writes(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path,
        {"ok": "echo fine", "bad": "echo oops >&2; exit 3", "slow": "sleep 30"},
        count_runs=True,
        time="00:00:01",
    )
    assert {read_state(task_dir(study, k)).state for k in ("ok", "bad", "slow")} == {State.IDLE}
    results = run_all(study, parallel=3)
    ok, bad, slow = (task_dir(study, k) for k in ("ok", "bad", "slow"))
    assert results == {ok: State.SUCCESS, bad: State.FAILED, slow: State.TIMEOUT}
    assert (ok / "autojob.out").read_text() == "fine\n"
    assert (bad / "autojob.err").read_text() == "oops\n"
    assert read_state(bad).exit_code == 3
    ended = json.loads((slow / "autojob.ended").read_text())
    assert ended["reason"] == "timeout"
    started = json.loads((ok / "autojob.started").read_text())
    assert started["pid"] > 0 and started["time"] <= ended["time"]
    # finished tasks are never run again by default
    assert select_tasks([study]) == []
    assert run_all(study) == {}
    assert [runs(p) for p in (ok, bad, slow)] == [1, 1, 1]


def test_resubmitting_failed_tasks_keeps_their_history(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path, {"flaky": "test -f ok || { touch ok; exit 1; }"}, count_runs=True
    )
    flaky = task_dir(study, "flaky")
    assert run_all(study) == {flaky: State.FAILED}
    assert run_all(study, frozenset({State.FAILED})) == {flaky: State.SUCCESS}
    history = flaky / "autojob.history" / "1"
    assert json.loads((history / "autojob.ended").read_text())["exit_code"] == 1
    assert runs(flaky) == 2


def test_a_started_task_whose_process_died_is_unknown_and_rerun(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {"crashed": "echo again"}, count_runs=True)
    crashed = task_dir(study, "crashed")
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = {"time": time.time() - 5, "host": os.uname().nodename, "pid": dead.pid, "job_id": ""}
    (crashed / "autojob.started").write_text(json.dumps(record))
    state = read_state(crashed)
    assert state.state is State.UNKNOWN and "process is gone" in (state.detail or "")
    assert run_all(study) == {crashed: State.SUCCESS}


def test_cancel_stops_running_and_queued_tasks(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path, {"a": "sleep 60", "b": "sleep 60", "c": "sleep 60"}, count_runs=True
    )
    result = run("submit", study, "-j", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "submitted 3 task(s)" in result.stdout
    runner = int(result.stdout.split("pid ")[1].split(",")[0])
    wait_until(
        lambda: sum(read_state(task_dir(study, k)).state is State.RUNNING for k in "abc") >= 2,
        20,
        "two tasks to start",
    )
    states = {k: read_state(task_dir(study, k)).state for k in "abc"}
    assert sorted(states.values()) == [State.QUEUED, State.RUNNING, State.RUNNING]
    pids = [read_state(task_dir(study, k)).pid or 0 for k in "abc" if states[k] is State.RUNNING]
    result = run("cancel", study, "--grace", "2", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.count("cancelled ") == 3
    for k in "abc":
        assert read_state(task_dir(study, k)).state is State.CANCELLED
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    queued = next(k for k in "abc" if states[k] is State.QUEUED)
    wait_until(lambda: not alive(runner), 20, f"the runner (pid {runner}) to end")
    assert runs(task_dir(study, queued)) == 0
    assert "nothing to cancel" in run("cancel", study, cwd=tmp_path).stdout


def test_runner_killed_midway_loses_nothing_and_reruns_nothing(tmp_path: Path) -> None:
    commands = {f"t{i}": f"sleep {0.4 + 0.1 * (i % 3)}" for i in range(8)}
    study, _ = study_of_commands(tmp_path, commands, count_runs=True)
    result = run("submit", study, "-j", "2", cwd=tmp_path)
    pid = int(result.stdout.split("pid ")[1].split(",")[0])
    paths = [task_dir(study, k) for k in commands]
    wait_until(
        lambda: sum(read_state(p).state is State.SUCCESS for p in paths) >= 2,
        20,
        "two tasks to succeed",
        interval=0.05,
    )
    os.kill(pid, signal.SIGKILL)  # the runner dies; its running tasks live on
    wait_until(
        lambda: not {State.QUEUED, State.RUNNING} & {read_state(p).state for p in paths},
        20,
        "the tasks the dead runner started to end and its claims to lapse",
        details=lambda: [read_state(p).state for p in paths],
    )
    states = [read_state(p).state for p in paths]
    assert State.QUEUED not in states and State.RUNNING not in states
    assert states.count(State.SUCCESS) >= 2 and State.IDLE in states
    finished = {p for p, s in zip(paths, states, strict=True) if s is State.SUCCESS}
    result = run("submit", study, "-j", "2", "--wait", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        f"{len(paths) - len(finished)} of {len(paths) - len(finished)} task(s) succeeded"
        in result.stdout
    )
    assert all(read_state(p).state is State.SUCCESS for p in paths)
    assert [runs(p) for p in paths] == [1] * len(paths)


def test_two_submits_at_once_run_each_task_once(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path, {f"t{i}": "sleep 0.2" for i in range(12)}, count_runs=True
    )
    procs = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "autojob"),
                "submit",
                str(study),
                "--wait",
                "-j",
                "3",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    paths = [task_dir(study, f"t{i}") for i in range(12)]
    assert [runs(p) for p in paths] == [1] * 12
    # each ran what it claimed; one that chose a task another took first says so
    ran = []
    for out, err in outputs:
        found = re.findall(r"of (\d+) task\(s\) succeeded", out.decode())
        if not found:  # it chose after the other had claimed everything
            assert "nothing to submit" in out.decode() and "meanwhile" not in err.decode()
            ran.append(0)
            continue
        claimed = int(found[0])
        ran.append(claimed)
        told = re.findall(r"(\d+) of (\d+) selected task\(s\) were claimed meanwhile", err.decode())
        for taken, selected in told:  # what it chose = what it ran + what it left
            assert claimed + int(taken) == int(selected) and "no task runs twice" in err.decode()
    assert sum(ran) == 12
    assert all(read_state(p).state is State.SUCCESS for p in paths)


def test_submit_wait_exit_status_and_dry_run(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {"ok": "true", "bad": "false"}, count_runs=True)
    before = snapshot(tmp_path)
    dry = run("submit", study, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "2 task(s) would run" in dry.stdout
    assert snapshot(tmp_path) == before
    result = run("submit", study, "--wait", cwd=tmp_path)
    assert result.returncode == 1
    assert "1 of 2 task(s) succeeded" in result.stdout
    again = run("submit", study, "--wait", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to submit" in again.stdout


def test_loose_task_directories_run(tmp_path: Path) -> None:
    loose = tmp_path / "loose" / "a"
    loose.mkdir(parents=True)
    (loose / "inputs.json").write_text(
        json.dumps({"task_inputs": {"command": "echo hand-made > out.txt"}})
    )
    result = run("submit", tmp_path / "loose", "--wait", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (loose / "out.txt").read_text() == "hand-made\n"
    assert (loose / "task.json").is_file() and (loose / "run.sh").is_file()


def test_status_table_json_and_attempt_history(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path, {"ok": "true", "bad": "echo broken >&2; exit 2"}, count_runs=True
    )
    run_all(study)
    table = run("status", study, cwd=tmp_path).stdout
    assert "broken" in table and "need attention" in table
    bad_group = study / "bad"
    retry = Task(task_metadata=TaskMetadata(label="bad"), task_inputs=TaskInputs(command="true"))
    from autojob.next import create_task_tree

    create_task_tree(retry, bad_group)
    data = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    # one state per task group (its newest attempt); the replaced attempt apart
    assert data["counts"] == {"success": 1, "idle": 1}
    assert data["attempt_counts"] == {"success": 1, "failed": 1, "idle": 1}
    assert data["replaced_counts"] == {"failed": 1}
    groups = {g["path"]: g for g in data["task_groups"]}
    assert groups["bad"] == {"path": "bad", "state": "idle", "attempts": 2}
    # the failed attempt is history now: the group's newest attempt is idle
    assert "need attention" not in run("status", study, cwd=tmp_path).stdout
    by_group = run("status", study, "--by", "task_group", cwd=tmp_path).stdout
    assert "bad" in by_group and "2" in by_group


def test_status_index_sees_what_changed(tmp_path: Path) -> None:
    from autojob.store.status_index import collect

    study, _ = study_of_commands(tmp_path, {f"t{i}": "true" for i in range(5)}, count_runs=True)
    cold = collect(study)
    assert cold.source == "scan" and len(cold.tasks) == 5
    assert (study / ".autojob" / "status.index").is_file()
    warm = collect(study)
    assert warm.source == "index" and warm.reread == 0
    run_all(study)
    after = collect(study)
    assert after.source == "index" and after.reread == 5 and after.from_journal == 5
    assert {e.state.state for e in after.tasks.values()} == {State.SUCCESS}
    create_task_group_tree(TaskGroup(label="late", tasks=[Task()]), study, name_template="late")
    grown = collect(study)
    assert len(grown.tasks) == 6 and grown.reread == 1
    # a hand edit bypasses the journal: seen on --rescan
    (task_dir(study, "t0") / "autojob.ended").write_text('{"time": 1, "exit_code": 9}')
    assert collect(study).tasks["t0/" + task_dir(study, "t0").name].state.state is State.SUCCESS
    rescanned = collect(study, rescan=True)
    assert rescanned.tasks["t0/" + task_dir(study, "t0").name].state.state is State.FAILED
    assert collect(study, rescan=True).tasks == rescanned.tasks


def test_status_watch_refreshes_until_interrupted(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {"w": "sleep 1"}, count_runs=True)
    watcher = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "autojob"),
            "status",
            str(study),
            "--watch",
            "--interval",
            "0.2",
            "--by",
            "state",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run("submit", study, "--wait", cwd=tmp_path).returncode == 0
    index = study / ".autojob" / "status.index"

    def seen_by_the_watcher() -> bool:  # only the watcher collects: its index says what it saw
        if not index.is_file():
            return False
        return parse_index(index.read_bytes(), COLUMNS)[1]["state"] == ["success"]

    wait_until(seen_by_the_watcher, 20, "the watcher to see the task succeed")
    time.sleep(0.4)  # two intervals: the frame of that refresh is drawn right after it
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=20)
    assert watcher.returncode == 0, err
    # off a terminal, rich prints the last frame: the refreshed one
    assert "success" in out and "idle" not in out


def test_resubmit_restarts_a_timeout_with_more_time(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path, {"slow": "sleep 2", "ok": "true"}, count_runs=True, time="0:01"
    )
    run_all(study)
    slow = task_dir(study, "slow")
    assert read_state(slow).state is State.TIMEOUT
    (slow / "checkpoint").write_text("kept")
    data = json.loads((slow / "inputs.json").read_text())
    data["task_inputs"]["files_to_carry_over"] = ["checkpoint"]
    (slow / "inputs.json").write_text(json.dumps(data))
    dry = run("resubmit", study, "--dry-run", cwd=tmp_path)
    assert "would restart" in dry.stdout and dry.stdout.count("would restart") == 1
    result = run("resubmit", study, "--only", "timeout", "--time-factor", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    attempts = sorted(p for p in (study / "slow").iterdir() if p.is_dir())
    assert len(attempts) == 2
    (new,) = [p for p in attempts if p != slow]
    assert json.loads((new / "inputs.json").read_text())["scheduler_inputs"]["time"] == "00:00:10"
    assert (new / "checkpoint").read_text() == "kept"
    group = json.loads((study / "slow" / "task_group.json").read_text())
    assert group["tasks"][-1] == json.loads((new / "task.json").read_text())["task_id"]
    wait_until(
        lambda: read_state(new).state is State.SUCCESS,
        30,
        "the restarted attempt to succeed",
        details=lambda: read_state(new),
    )
    status = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    assert {g["path"]: g["state"] for g in status["task_groups"]} == {
        "slow": "success",
        "ok": "success",
    }
    # the newest attempt succeeded: nothing more to restart
    assert "nothing to restart" in run("resubmit", study, cwd=tmp_path).stdout
    (task_dir(study, "ok") / "autojob.stop").touch()
    assert "nothing to restart" in run("resubmit", study, "--only", "timeout", cwd=tmp_path).stdout


def test_auto_restart_recovers_a_timeout_with_no_one_watching(tmp_path: Path) -> None:
    command = "if [ -f part1 ]; then echo finished > result; else touch part1; sleep 60; fi"
    study, (first,) = study_of_commands(
        tmp_path, {"long": command}, auto_restart=True, files_to_carry_over=["part1"], time="0:04"
    )
    assert "--time-limit 00:00:04 --buffer 0.5" in (first / "run.sh").read_text()
    assert run("submit", study, cwd=tmp_path).returncode == 0

    def attempts() -> list[Path]:
        return sorted(p for p in (study / "long").iterdir() if p.is_dir())

    wait_until(
        lambda: len(attempts()) == 2 and any((p / "result").exists() for p in attempts()),
        60,
        "a second attempt to write its result",
        interval=0.2,
    )
    (second,) = [p for p in attempts() if p != first]
    wait_until(
        lambda: read_state(second).state is State.SUCCESS,
        60,
        "the second attempt to succeed",
        interval=0.2,
    )
    assert read_state(first).state is State.TIMEOUT and read_state(first).exit_code == 124
    assert (
        json.loads((second / "inputs.json").read_text())["scheduler_inputs"]["time"] == "00:00:06"
    )
    assert (second / "result").read_text() == "finished\n"


def test_auto_restart_stops_at_the_budget(tmp_path: Path) -> None:
    task = Task(
        task_metadata=TaskMetadata(label="hopeless"),
        task_inputs=TaskInputs(command="sleep 60", max_attempts=2, restart_max_time="0:02"),
        scheduler_inputs={"time": "0:02"},
    )
    study = Study(name="s", task_groups=[TaskGroup(label="h", tasks=[task])]).to_directory(
        tmp_path, study_template="{name}", task_group_template="{label}"
    )
    assert run("submit", study, cwd=tmp_path).returncode == 0
    group = study / "h"

    def states() -> list[State]:
        return [read_state(p).state for p in sorted(group.iterdir()) if p.is_dir()]

    wait_until(
        lambda: states() == [State.TIMEOUT, State.TIMEOUT],
        60,
        "two attempts to time out",
        details=states,
        interval=0.2,
    )

    def told() -> str:
        outs = [p / "autojob.out" for p in sorted(group.iterdir()) if p.is_dir()]
        return "".join(out.read_text() for out in outs if out.exists())

    # the second attempt's script decides last: once it has said so, no third comes
    wait_until(lambda: "not restarting" in told(), 30, "the decision not to restart")
    assert states() == [State.TIMEOUT, State.TIMEOUT]
    attempts = [p for p in sorted(group.iterdir()) if p.is_dir()]
    assert {
        json.loads((p / "inputs.json").read_text())["scheduler_inputs"]["time"] for p in attempts
    } == {"0:02"}
    assert (
        "not restarting"
        in (attempts[0] / "autojob.out").read_text() + (attempts[1] / "autojob.out").read_text()
    )
