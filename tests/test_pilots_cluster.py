"""Pilots as SLURM and Grid Engine array jobs, on the real clusters (scripts/*-up.sh)."""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.store.state import State, read_state

from .helpers import run, study_of_commands
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

CLUSTERS = [
    pytest.param("slurm", marks=pytest.mark.slurm),
    pytest.param("sge", marks=pytest.mark.sge),
]


def _scheduler(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.sge
def test_2000_tasks_through_4_pilots_in_one_array_each_run_exactly_once(tmp_path: Path) -> None:
    """On SLURM and Grid Engine at the same time: each run waits on its scheduler apart."""
    runs = {}
    for executor in ("slurm", "sge"):
        study, paths = study_of_commands(
            tmp_path / executor, {f"t{i}": counted() for i in range(2000)}
        )
        out = submit_pilots(
            study, "--executor", executor, "--pilots", "4", "--pilot-time", "00:10:00"
        )
        pool = the_pool(study)
        (submit,) = pool.submits()  # one sbatch / qsub call for the 4 pilots
        assert submit["count"] == 4 and len(submit["job_ids"]) == 1
        assert f"submitted 4 pilot(s) ({executor}) for 2000 task(s): {submit['job_ids'][0]}" in out
        runs[executor] = (paths, pool, submit["job_ids"][0])
    try:
        states = {e: wait_all_final(paths, timeout=900) for e, (paths, _, _) in runs.items()}
    finally:
        for executor, (_, _, job) in runs.items():
            subprocess.run(["scancel" if executor == "slurm" else "qdel", job],
                           capture_output=True, check=False)  # fmt: skip
    for executor, (paths, pool, _) in runs.items():
        assert set(states[executor].values()) == {State.SUCCESS}, executor
        assert [completed_runs(p) for p in paths] == [1] * 2000  # counted by the task itself
        assert sum(overlaps(p) for p in paths) == 0
        pilots = pool.submitted_pilots()
        assert {stats(p)["pilot"] for p in paths} <= set(pilots)
        assert {read_state(p).executor for p in paths} == {"pilot"}
        records = wait_pilots_ended(pool, len({stats(p)["pilot"] for p in paths}), timeout=120)
        assert sum(r["done"] for r in records) == 2000


@pytest.mark.parametrize("executor", CLUSTERS)
def test_status_shows_the_pilots_and_cancel_stops_them(tmp_path: Path, executor: str) -> None:
    study, paths = study_of_commands(tmp_path, {f"t{i}": "sleep 30" for i in range(6)})
    submit_pilots(study, "--executor", executor, "--pilots", "2", "--pilot-time", "00:05:00")
    pool = the_pool(study)

    def pilots() -> list[dict[str, object]]:
        status = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
        (shown,) = status["pilots"]
        assert shown["executor"] == executor and shown["budget"]["max_pilots"] == 2
        return list(shown["pilots"])

    assert len(pilots()) == 2
    deadline = time.monotonic() + 120
    while not any(read_state(p).state is State.RUNNING for p in paths):
        assert time.monotonic() < deadline, pilots()
        time.sleep(0.5)
    running = [p for p in pilots() if p["state"] == "running"]
    assert running and all(0 < float(str(p["seconds_left"])) <= 300 for p in running)
    table = run("status", study, cwd=tmp_path).stdout
    assert f"pilots ({executor})" in table and "running" in table
    cancelled = run("cancel", study, "--grace", "2", cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "stopped 2 pilot(s)" in cancelled.stdout
    assert pool.cancelled
    states = {read_state(p).state for p in paths}
    assert states <= {State.CANCELLED, State.IDLE} and State.CANCELLED in states
    assert all(p["state"] != "running" for p in pilots())


def _node_down_and_back() -> None:
    """Mark the node down (its jobs are killed) and back, as a node failure would."""
    node = ["scontrol", "update", "nodename=localhost"]
    try:
        _scheduler([*node, "state=down", "reason=autojob pilot test"])
        time.sleep(1)
    finally:
        back = subprocess.run([*node, "state=resume"], capture_output=True, text=True, check=False)
        if back.returncode:  # slurmd registered again first: the node may be back already
            shown = _scheduler(["sinfo", "--noheader", "--Node", "--format=%T"])
            assert not {"down", "drained", "draining"} & set(shown.split()), back.stderr


@pytest.mark.slow
@pytest.mark.slurm
def test_random_pilot_deaths_on_slurm_lose_no_task_and_run_none_twice(
    tmp_path: Path, figures: dict[str, dict[str, int | float | str]]
) -> None:
    """50 deaths while 2,000 tasks run: scancel, SIGKILL of a worker, the node down and back.

    The tasks last 0.3 s each (their study's ``pace`` file) while pilots are
    killed, then nothing, so the deaths all happen while the work lasts.
    """
    count, deaths = 2000, 50
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted_paced() for i in range(count)})
    (study / PACE).write_text("0.3\n")
    submit_pilots(
        study, "--executor", "slurm", "--pilots", "6", "--pilot-time", "00:10:00",
        "--max-pilots", str(6 + 2 * deaths),
    )  # fmt: skip
    pool = the_pool(study)
    rng = random.Random(16)
    how = {"scancel": 0, "SIGKILL of the worker": 0, "with its tasks": 0, "node down and back": 0}
    revived, seen_live, until = 0, time.monotonic(), time.monotonic() + 150
    try:
        while sum(how[k] for k in how if k != "with its tasks") < deaths:
            assert time.monotonic() < until, (how, list(pool.pilots()))
            live = running_pilots(pool)
            if live:
                seen_live = time.monotonic()
            elif time.monotonic() - seen_live > 8:  # every pilot dead, none pending
                revived += revived_by_status(study)
                seen_live = time.monotonic()
            if len(live) >= 2:  # one is left working, to find the dead one and replace it
                done = sum(how[k] for k in how if k != "with its tasks")
                kind = rng.choice(["scancel", "SIGKILL of the worker"])
                kind = "node down and back" if done in (15, 35) else kind
                if kind == "scancel":
                    _scheduler(["scancel", str(rng.choice(live)["pilot"])])
                elif kind == "SIGKILL of the worker":
                    with_tasks = rng.random() < 0.5
                    kill_pilot(rng.choice(live), with_tasks=with_tasks)
                    how["with its tasks"] += with_tasks
                else:
                    _node_down_and_back()
                how[kind] += 1
            time.sleep(rng.uniform(0.3, 0.8))
        (study / PACE).write_text("0\n")  # the rest at full speed
        assert not any(read_state(p).state is State.SUCCESS for p in paths[-20:])  # work left
        time.sleep(8)
        if not running_pilots(pool):
            revived += revived_by_status(study)
        states = wait_all_final(paths, timeout=600)
    finally:
        ids = {j for s in pool.submits() for j in s["job_ids"]}
        subprocess.run(["scancel", *ids], capture_output=True, check=False)
    assert set(states.values()) == {State.SUCCESS}
    twice = check_deaths(paths)
    figures["pilots: deaths on SLURM"] = {
        "tasks": count,
        **how,
        **twice,
        "runs claimed again": sum(1 for p in paths if (p / SETTINGS.HISTORY_DIR).exists()),
        "pilots in all": len(pool.submitted_pilots()),
        "pilots submitted by status": revived,
    }
    assert how["scancel"] and how["SIGKILL of the worker"] and how["node down and back"] == 2


@pytest.mark.parametrize("executor", CLUSTERS)
def test_tasks_of_a_pilot_killed_mid_run_are_submitted_again(tmp_path: Path, executor: str) -> None:
    study, paths = study_of_commands(tmp_path, {f"t{i}": counted(3) for i in range(2)})
    submit_pilots(
        study,
        "--executor",
        executor,
        "--pilots",
        "1",
        "-j",
        "2",
        "--pilot-time",
        "00:05:00",
        "--max-pilots",
        "1",
    )  # fmt: skip  (a budget of one: status cannot submit another)
    pool = the_pool(study)
    deadline = time.monotonic() + 120
    while not all(read_state(p).state is State.RUNNING for p in paths):
        assert time.monotonic() < deadline, [read_state(p) for p in paths]
        time.sleep(0.3)
    (first,) = list(pool.pilots())
    kill_pilot(first, with_tasks=True)  # as the loss of its node would
    # the only pilot is gone: status tells (from the scheduler), a new submit picks them up
    deadline = time.monotonic() + 120
    while True:
        status = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
        if status["counts"] == {"unknown": 2}:
            break
        assert time.monotonic() < deadline, status["counts"]
        time.sleep(1)
    again = submit_pilots(study, "--executor", executor, "--pilots", "1", "-j", "2")
    assert "for 2 task(s)" in again
    states = wait_all_final(paths, timeout=240)
    assert set(states.values()) == {State.SUCCESS}
    assert [completed_runs(p) for p in paths] == [1] * 2  # the killed runs did not complete
    assert sum(overlaps(p) for p in paths) == 0
