"""Pilots run by the local executor: many tasks per pilot, each exactly once."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.execution.claims import claim_tasks, new_claim
from autojob.execution.pilots.pool import Budget, Pool
from autojob.store.state import State, read_record, read_state

from .helpers import AUTOJOB, run, study_of_commands, wait_until
from .pilot_helpers import (
    PACE,
    check_deaths,
    completed_runs,
    counted,
    counted_paced,
    kill_pilot,
    overlaps,
    revived_by_status,
    running_pilots,
    stats,
    submit_pilots,
    the_pool,
    wait_all_final,
    wait_pilots_ended,
)


@pytest.mark.slow
def test_2000_tasks_through_4_local_pilots_each_run_exactly_once(tmp_path: Path) -> None:
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted() for i in range(2000)})
    out = submit_pilots(study, "--pilots", "4")
    assert "submitted 4 pilot(s) (local) for 2000 task(s)" in out
    states = wait_all_final(paths, timeout=600)
    assert set(states.values()) == {State.SUCCESS}
    assert [completed_runs(p) for p in paths] == [1] * 2000  # counted by the task itself
    assert sum(overlaps(p) for p in paths) == 0
    pilots = wait_pilots_ended(the_pool(study), 4)
    assert len(pilots) == 4 and sum(r["done"] for r in pilots) == 2000
    assert {stats(p)["pilot"] for p in paths} == {r["pilot"] for r in pilots}


def test_a_pilot_records_each_task_as_if_it_ran_alone(tmp_path: Path) -> None:
    study, (ok, bad, slow) = study_of_commands(
        tmp_path, {"ok": "echo hi", "bad": "echo no >&2; exit 3", "slow": "sleep 30"}
    )
    inputs = json.loads((slow / SETTINGS.INPUTS_FILE).read_text())
    inputs["scheduler_inputs"] = {"time": "00:00:01"}
    (slow / SETTINGS.INPUTS_FILE).write_text(json.dumps(inputs))
    submit_pilots(study, "--pilots", "1", "-j", "3")
    states = wait_all_final([ok, bad, slow], timeout=60)
    assert states == {ok: State.SUCCESS, bad: State.FAILED, slow: State.TIMEOUT}
    (pilot,) = wait_pilots_ended(the_pool(study), 1)
    for task in (ok, bad, slow):
        state = read_state(task)
        assert (state.executor, state.job_id) == ("pilot", pilot["pilot"])
        assert state.started_at is not None and state.ended_at is not None and state.accounted
        assert stats(task)["pilot"] == pilot["pilot"] and stats(task)["elapsed_seconds"] >= 0
    assert (ok / SETTINGS.STDOUT_FILE).read_text() == "hi\n"
    assert (bad / SETTINGS.STDERR_FILE).read_text() == "no\n"
    assert read_state(bad).exit_code == 3 and stats(bad)["exit_code"] == 3
    assert stats(slow)["elapsed_seconds"] < 20  # stopped at its own limit, not the pilot's end
    assert pilot["done"] == 3 and pilot["why"] == "done"
    status = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    assert status["counts"] == {"success": 1, "failed": 1, "timeout": 1}


def test_a_dry_run_shows_the_pilots_and_writes_nothing(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {f"t{i}": "true" for i in range(3)})
    result = run("submit", study, "--pilots", "2", "-j", "2", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 task(s), 2 pilot(s) (local), 2 task(s) at once each" in result.stdout
    assert "autojob.execution.pilots.worker" in result.stdout
    assert not (study / SETTINGS.INDEX_DIR / "pilots").exists()


def test_a_task_longer_than_a_pilot_is_refused_naming_its_inputs(tmp_path: Path) -> None:
    study, (task,) = study_of_commands(tmp_path, {"long": "true"}, time="00:10:00")
    result = run("submit", study, "--pilots", "1", "--pilot-time", "00:05:00", cwd=tmp_path)
    assert result.returncode == 1
    assert str(task / SETTINGS.INPUTS_FILE) in result.stderr
    assert "scheduler_inputs.time" in result.stderr and "--pilot-time" in result.stderr
    assert read_state(task).state is State.IDLE


def test_pilot_options_that_contradict_each_other_are_refused(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {"t": "true"})
    few = run("submit", study, "--pilots", "3", "--max-pilots", "2", cwd=tmp_path)
    assert few.returncode == 1 and "--max-pilots" in few.stderr
    hours = run("submit", study, "--pilots", "1", "--pilot-hours", "2", cwd=tmp_path)
    assert hours.returncode == 1 and "--pilot-time" in hours.stderr
    waiting = run("submit", study, "--pilots", "1", "--wait", cwd=tmp_path)
    assert waiting.returncode == 2 and "--wait" in waiting.stderr
    assert not (study / SETTINGS.INDEX_DIR / "pilots").exists()


def _fits(task: Path, pilots: dict[str, dict[str, float]]) -> bool:
    """Whether the task's run lay within the life of the pilot that ran it."""
    state = read_state(task)
    pilot = pilots[str(state.job_id)]
    assert state.started_at is not None and state.ended_at is not None
    return pilot["started"] <= state.started_at and state.ended_at <= pilot["deadline"]


def test_pilots_shorter_than_the_work_stop_claiming_in_time_and_are_replaced(
    tmp_path: Path,
) -> None:
    # no task has a time: a pilot learns from the tasks of the study that ended
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted(1) for i in range(7)})
    submit_pilots(study, "--pilots", "1", "--pilot-time", "00:00:04", "--max-pilots", "5")
    assert set(wait_all_final(paths, timeout=90).values()) == {State.SUCCESS}
    pool = the_pool(study)
    records = wait_pilots_ended(pool, len(pool.submits()))
    assert 2 <= len(records) <= 5  # replaced, within the budget
    assert all(r["why"] in ("time", "done") for r in records)  # none reached its end
    pilots = {r["pilot"]: r for r in records}
    assert all(_fits(p, pilots) for p in paths)
    assert [completed_runs(p) for p in paths] == [1] * 7


def test_pilots_stop_when_their_budget_is_spent_and_leave_the_rest_idle(tmp_path: Path) -> None:
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted(1) for i in range(6)})
    submit_pilots(study, "--pilots", "1", "--pilot-time", "00:00:03", "--pilot-hours", "0.001")
    pool = the_pool(study)
    (record,) = wait_pilots_ended(pool, 1)
    time.sleep(0.5)  # a replacement, had one been submitted, would be recorded by now
    assert record["why"] == "time" and len(pool.submits()) == 1
    assert pool.budget_used()["pilots"] == 1
    states = [read_state(p).state for p in paths]
    assert 1 <= states.count(State.SUCCESS) < 6
    assert set(states) == {State.SUCCESS, State.IDLE}


def test_random_pilot_deaths_lose_no_task_and_run_none_twice(
    tmp_path: Path, figures: dict[str, dict[str, int | float | str]]
) -> None:
    """Workers killed with SIGKILL, half of them with the tasks they run.

    The tasks last 0.3 s each (their study's ``pace`` file) while pilots are
    killed, then nothing: every death happens while work is left.
    """
    count, deaths = 300, 20
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted_paced() for i in range(count)})
    (study / PACE).write_text("0.3\n")
    submit_pilots(study, "--pilots", "3", "-j", "2", "--max-pilots", str(4 + 3 * deaths))
    pool = the_pool(study)
    rng = random.Random(16)
    killed = revived = 0
    until = time.monotonic() + 120
    while killed < deaths:
        assert time.monotonic() < until, list(pool.pilots())
        live = running_pilots(pool)
        if live:
            kill_pilot(rng.choice(live), with_tasks=killed % 2 == 1)
            killed += 1
        else:  # every pilot dead: no one is left to replace them, but status revives
            revived += revived_by_status(study)
            wait_until(lambda: list(pool.pilots()) and running_pilots(pool), 30, "a pilot to start")
        time.sleep(rng.uniform(0.2, 0.5))
    (study / PACE).write_text("0\n")
    assert not all(read_state(p).state is State.SUCCESS for p in paths)  # work was left
    if not running_pilots(pool):
        revived += revived_by_status(study)
    states = wait_all_final(paths, timeout=300)
    assert set(states.values()) == {State.SUCCESS}
    twice = check_deaths(paths)
    again = sum(1 for p in paths if (p / SETTINGS.HISTORY_DIR).is_dir())
    figures["pilots: SIGKILL of workers (local)"] = {
        "tasks": count,
        "pilot deaths": killed,
        "runs interrupted and claimed again": again,
        **twice,
        "pilots in all": len(list(pool.pilots())),
        "pilots submitted by status": revived,
    }


def _the_only_pilot_killed(tmp_path: Path) -> tuple[Path, list[Path], Pool]:
    """A study of 4 tasks whose one pilot (of at most 3) was killed with its tasks."""
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted(0.5) for i in range(4)})
    submit_pilots(study, "--pilots", "1", "-j", "2", "--max-pilots", "3")
    pool = the_pool(study)
    wait_until(lambda: any(read_state(p).state is State.RUNNING for p in paths), 60, "a start")
    (first,) = list(pool.pilots())
    kill_pilot(first, with_tasks=True)  # no pilot is left to replace it
    return study, paths, pool


def test_status_submits_pilots_when_work_is_left_and_every_pilot_died(tmp_path: Path) -> None:
    study, paths, pool = _the_only_pilot_killed(tmp_path)
    status = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    (shown,) = status["pilots"]
    assert len(shown["revived"]) == 1 and shown["revive_error"] is None
    assert {p["state"] for p in shown["pilots"]} >= {"lost"}
    assert set(wait_all_final(paths, timeout=120).values()) == {State.SUCCESS}
    check_deaths(paths)  # the killed runs claimed again, none twice at once
    wait_pilots_ended(pool, 1)
    # the work done: no pilot lives, but status submits none (the pool is finished)
    again = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    (shown,) = again["pilots"]
    assert shown["revived"] == [] and shown["finished"]
    assert pool.budget_used()["pilots"] == 2
    table = run("status", study, cwd=tmp_path).stdout
    assert "submitted pilot(s)" not in table


def test_status_watch_submits_pilots_when_every_pilot_died(tmp_path: Path) -> None:
    """The live view revives a pool as status does: watching a study never stalls it."""
    study, paths, pool = _the_only_pilot_killed(tmp_path)
    watch = subprocess.Popen(
        [AUTOJOB, "status", study, "--watch", "--interval", "0.5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert set(wait_all_final(paths, timeout=120).values()) == {State.SUCCESS}
    finally:
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    assert len(pool.submits()) == 2  # the first pilot, and the one the view submitted
    assert "pilots (local)" in out  # the pool drawn in the view
    check_deaths(paths)


def test_status_submits_no_pilot_beyond_the_budget(tmp_path: Path) -> None:
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted(0.5) for i in range(3)})
    submit_pilots(study, "--pilots", "1", "--max-pilots", "1")
    pool = the_pool(study)
    wait_until(lambda: any(read_state(p).state is State.RUNNING for p in paths), 60, "a start")
    (first,) = list(pool.pilots())
    kill_pilot(first, with_tasks=True)
    shown = run("status", study, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "submitted pilot(s)" not in shown.stdout and "lost" in shown.stdout
    assert len(pool.submits()) == 1 and not (pool.dir / "finished").exists()


def test_a_task_whose_pilot_died_before_starting_it_is_claimable_again(tmp_path: Path) -> None:
    study, (task,) = study_of_commands(tmp_path, {"t": counted()})
    # a claim left by a pilot that is gone (its record says it ended)
    pool_dir = tmp_path / "pool"
    (pool_dir / "pilots").mkdir(parents=True)
    (pool_dir / "pool.json").write_text(
        json.dumps(
            {"executor": "local", "pilots": 1, "per_pilot": 1, "pilot_seconds": None,
             "allowed": ["idle"], "root": str(study), "budget": {"max_pilots": 1}}
        )
    )  # fmt: skip
    (pool_dir / "pilots" / "gone.json").write_text(json.dumps({"pilot": "gone", "ended": 1.0}))
    extra = {task: {"job_id": "gone", "pool": str(pool_dir), "pilot": "gone"}}
    assert claim_tasks([task], frozenset({State.IDLE}), "pilot", extra=extra) == [task]
    assert read_state(task).state is State.QUEUED
    result = run("status", study, "--json", cwd=tmp_path)
    assert json.loads(result.stdout)["counts"] == {"idle": 1}
    assert read_record(task / SETTINGS.QUEUED_FILE) is None


def test_a_budget_counts_pilots_and_pilot_hours() -> None:
    assert Budget(2).allows(1, 0, 3600) and not Budget(2).allows(2, 0, 3600)
    assert Budget(None, 1.0).allows(0, 0, 3600) and not Budget(None, 1.0).allows(1, 3600, 60)


def test_tasks_a_pilot_task_submits_go_to_the_executor_of_its_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workflow's next steps, an automatic restart: submitted with --executor pilot."""
    from autojob.execution.submit import submit_tasks

    study, (first,) = study_of_commands(tmp_path / "a", {"first": "true"})
    submit_pilots(study, "--pilots", "1")
    wait_all_final([first], timeout=60)
    later, (task,) = study_of_commands(tmp_path / "b", {"later": counted()})
    refused = run("submit", later, "--executor", "pilot", cwd=tmp_path)
    assert refused.returncode == 1 and "--pilots" in refused.stderr
    monkeypatch.setenv("AUTOJOB_PILOT_POOL", str(the_pool(study).dir))
    done = submit_tasks([later], executor="pilot")
    assert done.count == 1 and "local runner" in done.message
    assert wait_all_final([task], timeout=60) == {task: State.SUCCESS}
    assert read_state(task).executor == "local"


def test_tasks_asking_for_other_resources_get_pilots_of_their_own(tmp_path: Path) -> None:
    """One pool per resource group; a pilot asks for -j tasks' cores and memory, its own time."""
    study, (_, big) = study_of_commands(tmp_path, {"small": "true", "big": "true"}, mem="1G")
    inputs = json.loads((big / SETTINGS.INPUTS_FILE).read_text())
    inputs["scheduler_inputs"] = {"mem": "4G", "time": "00:10:00"}
    (big / SETTINGS.INPUTS_FILE).write_text(json.dumps(inputs))
    result = run(
        "submit", study, "--executor", "slurm", "--pilots", "2", "-j", "3",
        "--pilot-time", "01:00:00", "--dry-run", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if line.startswith("# 1 task(s)")]
    assert len(commands) == 2, result.stdout  # two pools, 2 pilots each
    assert all("--array=0-1" in c and "--cpus-per-task=3" in c for c in commands)
    assert all("--time=01:00:00" in c and "--no-requeue" in c for c in commands)
    memory = {c.split("--mem=")[1].split()[0] for c in commands}
    assert memory == {"3072M", "12288M"}  # 3 x 1G, 3 x 4G


def test_two_submits_of_pilots_and_a_plain_submit_on_one_tree_run_each_task_once(
    tmp_path: Path,
) -> None:
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted(0.01) for i in range(200)})
    commands = [
        [str(AUTOJOB), "submit", str(study), "--pilots", "2", "-j", "2"],
        [str(AUTOJOB), "submit", str(study), "--pilots", "2", "-j", "2"],
        [str(AUTOJOB), "submit", str(study), "-j", "2"],
    ]
    started = [subprocess.Popen(c, cwd=tmp_path, stdout=subprocess.PIPE) for c in commands[:2]]
    # the plain submit claims every task it finds at once: it starts with the first pilot
    wait_until(lambda: any(SETTINGS.QUEUED_FILE in os.listdir(p) for p in paths), 60, "a claim")
    started.append(subprocess.Popen(commands[2], cwd=tmp_path, stdout=subprocess.PIPE))
    assert [p.wait(timeout=120) for p in started] == [0, 0, 0]
    assert set(wait_all_final(paths, timeout=300).values()) == {State.SUCCESS}
    check_deaths(paths)  # one successful end each, no run overlapping another
    assert [completed_runs(p) for p in paths] == [1] * 200
    executors = {read_state(p).executor for p in paths}
    assert "pilot" in executors  # the pilots got some of them (the plain submit may get others)


def test_a_script_told_of_a_lock_it_was_not_handed_takes_the_lock_itself(tmp_path: Path) -> None:
    """``AUTOJOB_CLAIM_LOCK=9`` without descriptor 9 open: the variable alone is not trusted."""
    from autojob.store.task_lock import hold_task_lock

    _, (task,) = study_of_commands(tmp_path, {"t": counted()})
    claim = new_claim()
    claim_tasks([task], frozenset({State.IDLE}), "pilot", claim=claim)
    env = {**os.environ, "AUTOJOB_TASK_DIR": str(task), "AUTOJOB_CLAIM": claim,
           "AUTOJOB_CLAIM_LOCK": "9"}  # fmt: skip
    lock = hold_task_lock(task)  # held by this test, as by a claimer at work
    try:
        script = subprocess.Popen(["bash", "run.sh"], cwd=task, env=env)  # descriptor 9 closed
        time.sleep(1.0)
        assert script.poll() is None and not (task / SETTINGS.STARTED_FILE).exists()
    finally:
        os.close(lock)
    assert script.wait(timeout=60) == 0
    assert read_state(task).state is State.SUCCESS and completed_runs(task) == 1


def test_a_script_handed_the_lock_still_checks_its_claim(tmp_path: Path) -> None:
    """The lock on descriptor 9 with a claim superseded: the script does not start."""
    from autojob.store.task_lock import hold_task_lock

    _, (task,) = study_of_commands(tmp_path, {"t": counted()})
    claim_tasks([task], frozenset({State.IDLE}), "pilot", claim="newer")
    env = {**os.environ, "AUTOJOB_TASK_DIR": str(task), "AUTOJOB_CLAIM": "older",
           "AUTOJOB_CLAIM_LOCK": "9"}  # fmt: skip
    lock = hold_task_lock(task)
    try:
        late = subprocess.run(
            ["bash", "-c", 'exec 9<&"$0"; exec bash run.sh', str(lock)],
            cwd=task, env=env, pass_fds=(lock,), capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        os.close(lock)
    assert late.returncode == 0 and "claimed again" in late.stderr
    assert not (task / SETTINGS.STARTED_FILE).exists() and completed_runs(task) == 0


#: ``mv`` for the task scripts of the test below (a script records its end with
#: ``mv``). For a task holding a ``stop-here`` file, it stops the task script
#: and the pilot's worker, in the order the file names, as a scheduler
#: signalling the processes of a job one by one may, this ``mv`` started after
#: it looked; and it renames the end record only once the worker is gone, or
#: once the worker stops it (then after the worker is gone, or 2 s).
OUTLIVING_MV = """#!/usr/bin/env bash
if [ "${{!#}}" = {ended} ] && [ -e stop-here ]; then
    order=$(< stop-here)
    rm -f stop-here
    args=("$@")
    rename() {{ {mv} "${{args[@]}}"; : > renamed; exit 0; }}
    gone() {{ [ ! -e "/proc/$1" ] || [[ $(< "/proc/$1/stat") == *") Z "* ]]; }}
    script=$PPID
    read -r -a stat < "/proc/$script/stat"
    worker=${{stat[3]}}
    if [ "$order" = script ]; then
        trap rename TERM
        kill -TERM "$script"
        until gone "$script"; do sleep 0.01; done  # the worker sees it end, then its signal
        kill -TERM "$worker"
    else
        trap 'for _ in {{1..40}}; do gone "$worker" && break; sleep 0.05; done; rename' TERM
        kill -TERM "$worker"  # which stops the script, and this mv with it
    fi
    until gone "$worker"; do sleep 0.05; done
    rename
fi
exec {mv} "$@"
"""


@pytest.mark.parametrize("first", ["script", "pilot"])
def test_a_failed_end_recorded_after_the_script_died_with_its_pilot_is_lost_with_it(
    tmp_path: Path, first: str
) -> None:
    """The run's end appears after its script died of the pilot's stop: the run is still lost.

    The command dies of SIGTERM and its script records that failed end, but
    is stopped with the pilot while its ``mv`` of the end record runs
    (:data:`OUTLIVING_MV`): the worker sees the script die before its own
    signal (``script``), or stops the script itself (``pilot``). It must not
    judge the run's end before every process of the run is gone: the end is
    then lost with the pilot, and the next pilot runs the task again.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_mv = shutil.which("mv")
    assert real_mv is not None
    shim = bin_dir / "mv"
    shim.write_text(OUTLIVING_MV.format(ended=SETTINGS.ENDED_FILE, mv=real_mv))
    shim.chmod(0o755)
    command = '[ -e first ] || { : > first; kill -TERM "$BASHPID"; }; echo done >> runs.txt'
    study, (task,) = study_of_commands(tmp_path / "s", {"t": command})
    (task / "stop-here").write_text(first)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"  # the mv above first
    # a budget of one pilot: none replaces it
    submitted = run(
        "submit", study, "--pilots", "1", "--max-pilots", "1", cwd=tmp_path, env={"PATH": path}
    )
    assert submitted.returncode == 0, submitted.stderr
    pool = the_pool(study)
    wait_until((task / "renamed").exists, 60, "the end record renamed")
    (pilot,) = wait_pilots_ended(pool, 1)
    assert read_record(task / SETTINGS.ENDED_FILE) is None  # lost with the pilot, not failed
    assert pilot["why"] == "terminated" and pilot["done"] == 0
    assert read_state(task).state is State.RUNNING  # as its files tell: claimed again below
    # the next pilot (started here, as a scheduler would) finds the run lost and runs it again
    again = subprocess.run(
        [sys.executable, "-m", "autojob.execution.pilots.worker", str(pool.dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert read_state(task).state is State.SUCCESS and completed_runs(task) == 1
    (lost,) = (task / SETTINGS.HISTORY_DIR).iterdir()  # the lost run, in the task's history
    assert (lost / SETTINGS.STARTED_FILE).exists() and not (lost / SETTINGS.ENDED_FILE).exists()
