"""One suite, every executor: the same scenarios on ``local``, ``slurm`` and ``sge``.

Each scenario runs through the command line against the real thing (this
machine's cores, the SLURM and Grid Engine clusters of ``scripts/*-up.sh``) and
must end in the same task states and causes on each; harvesting the trees gives
the same archives apart from the scheduler's accounting (the ``scheduler``
section, checked per executor), the ids and times. A new executor is accepted
when it passes this suite: add it to ``TARGETS`` in ``tests/cluster_helpers.py``
(``docs/design.md``, "Adding a scheduler"). What an executor cannot do is
skipped with the reason, so a run shows it.

Run it for one executor with ``-k``: ``pytest tests/test_conformance.py -k sge``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.execution.executor import available_executors, get_executor
from autojob.next.advance import advance, workflow_progress
from autojob.store.completed_tasks import read_record
from autojob.store.state import State, read_state
from autojob.store.state import read_record as read_run_record

from .cluster_helpers import TARGETS, Target, cluster_command, processes_under, wait_final
from .helpers import AUTOJOB, alive, run, runs, study_of_commands, wait_until
from .workflow_helpers import attempts, check_finished_study, finished, squares_study

pytestmark = pytest.mark.slow
targets = pytest.mark.parametrize("target", [t.param() for t in TARGETS])

#: each executor's archive of a scenario, as far as executors must agree
ARCHIVES: dict[str, dict[str, tuple[str, Any]]] = {}


def submit(target: Target, study: Path, *args: str) -> str:
    """``autojob submit --executor NAME``; its output."""
    result = run("submit", study, "--executor", target.name, *args, cwd=study.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout


def stats(path: Path) -> dict[str, Any]:
    """The scheduler's accounting of a task (``job_stats.json``)."""
    data: dict[str, Any] = json.loads((path / SETTINGS.SCHEDULER_STATS_FILE).read_text())
    return data


def newest(task: Path) -> Path:
    """The newest attempt of the task's group."""

    def created(path: Path) -> str:
        return str(json.loads((path / SETTINGS.TASK_METADATA_FILE).read_text())["date_created"])

    group = [p for p in task.parent.iterdir() if p.is_dir() and p.name[0] != "."]
    return max(group, key=created)


def agree(scenario: str, target: Target, archive: Any) -> None:
    """The archive must be the one every other executor gave for ``scenario``."""
    seen = ARCHIVES.setdefault(scenario, {})
    for name, other in seen.items():
        assert archive == other, f"{scenario}: {target.name} and {name} archive differently"
    seen[target.name] = archive


def comparable(target: Target, study: Path, times: dict[str, str] | None = None) -> dict[str, Any]:
    """The study's archive (``autojob harvest``), as far as executors must agree.

    Left out: ids, dates, times, hosts, pids, job ids, the executor's name and
    the ``scheduler`` section (its accounting, in its own fields). Time limits
    are named relative to the scenario's (each executor gets the shortest it
    enforces: ``times`` names them, by default the scenario's ``limit``), and
    the exit code of a task stopped at a limit (time, memory) or cancelled is
    left out: whether it is killed, and by which signal, is the executor's
    choice (Grid Engine's memory limit makes allocations fail, and the program
    exits by itself).
    """
    default = {target.limit: "limit", target.doubled: "twice the limit"}
    relative = default if times is None else times
    archive = study.parent / f"{study.name}-archive.json"
    result = run("harvest", study, "-o", archive, cwd=study.parent)
    assert result.returncode == 0, result.stderr
    shown: dict[str, Any] = {}
    for record in json.loads(archive.read_text()):
        meta, state = record["metadata"], record["state"]
        inputs = copy.deepcopy(record["inputs"])
        sched = inputs.get("scheduler_inputs") or {}
        if "time" in sched:
            sched["time"] = relative.get(sched["time"], sched["time"])
        stopped = state["state"] in ("timeout", "oom", "cancelled")
        key = f"{meta['label']} attempt {record['attempts']['number']}"
        shown[key] = {
            "tags": [t.partition(":")[0] if ":" in t else t for t in meta["tags"]],
            "task_class": meta["task_class"],
            "inputs": inputs,
            "outputs": record["outputs"],
            "state": (state["state"], state["reason"], None if stopped else state["exit_code"]),
            "attempts": [record["attempts"][k] for k in ("number", "count", "current")],
            "harvesters": record["harvesters"],
            "problems": record["problems"],
            "history": len(record["history"]),
        }
    return shown


# --- success, a non-zero exit, a timeout; resubmit with more time ----------------

SLOW = "if [ -f part1 ]; then echo finished; else touch part1; sleep 600; fi"


@targets
def test_success_failure_and_timeout_then_resubmit_with_more_time(
    target: Target, tmp_path: Path
) -> None:
    study, (ok, bad, slow) = study_of_commands(
        tmp_path,
        {
            "ok": "echo ok; echo '{\"answer\": 42}' > outputs.json",
            "bad": "echo no >&2; exit 3",
            "slow": SLOW,
        },
        files_to_carry_over=["part1"],
        time=target.limit,
    )
    submit(target, study)
    if target.job_id is not None:  # each task knows its job id at once
        assert all(target.job_id.fullmatch(read_state(p).job_id or "") for p in (ok, bad, slow))
    states = wait_final([ok, bad, slow], timeout=target.patience)
    assert states == {ok: State.SUCCESS, bad: State.FAILED, slow: State.TIMEOUT}
    assert (ok / SETTINGS.STDOUT_FILE).read_text() == "ok\n"
    assert (bad / SETTINGS.STDERR_FILE).read_text() == "no\n"
    assert read_state(bad).exit_code == 3 and read_state(bad).reason is None
    assert read_state(slow).reason == "timeout"
    assert all(read_state(p).executor == target.name for p in (ok, bad, slow))
    ACCOUNTING[target.name]({"ok": ok, "bad": bad, "slow": slow}, target)

    # a new attempt with twice the time, on the executor the old one ran on
    # (recorded with it), whatever the default
    other = next(t.name for t in TARGETS if t.name != target.name)
    result = run(
        "resubmit", study, "--only", "timeout", "--time-factor", "2",
        cwd=tmp_path, env={"AUTOJOB_DEFAULT_EXECUTOR": other},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    again = newest(slow)
    assert again != slow
    assert read_state(again).executor == target.name
    sched = json.loads((again / SETTINGS.INPUTS_FILE).read_text())["scheduler_inputs"]
    assert sched["time"] == target.doubled
    assert wait_final([again], timeout=target.patience) == {again: State.SUCCESS}
    assert (again / SETTINGS.STDOUT_FILE).read_text() == "finished\n"
    counts = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)["counts"]
    assert counts == {"success": 2, "failed": 1}
    agree("outcomes", target, comparable(target, study))
    if target.name == "sge":
        assert stats(again)["limits"] == {"h_rt": "8"}
    if target.name == "slurm":
        assert stats(again)["state"] == "COMPLETED"


def _no_accounting(tasks: dict[str, Path], _target: Target) -> None:
    assert not any((p / SETTINGS.SCHEDULER_STATS_FILE).exists() for p in tasks.values())


def _slurm_accounting(tasks: dict[str, Path], _target: Target) -> None:
    ok, bad, slow = stats(tasks["ok"]), stats(tasks["bad"]), stats(tasks["slow"])
    assert (ok["state"], ok["exit_code"]) == ("COMPLETED", 0)
    assert ok["node"] and ok["elapsed"] is not None
    assert ok["array_job_id"] == ok["job_id"].split("_")[0]
    assert (bad["state"], bad["exit_code"]) == ("FAILED", 3)
    assert slow["state"] == "TIMEOUT"


def _sge_accounting(tasks: dict[str, Path], _target: Target) -> None:
    ok, bad, slow = stats(tasks["ok"]), stats(tasks["bad"]), stats(tasks["slow"])
    assert ok["job_id"] == f"{ok['array_job_id']}.{ok['task_id']}"
    assert (ok["exit_status"], ok["failed"]) == (0, 0)
    assert ok["host"] == "localhost" and ok["wallclock"] is not None
    assert ok["maxvmem"] is not None and ok["limits"] == {"h_rt": "4"}
    assert (bad["exit_status"], bad["failed"]) == (3, 0)
    assert slow["failed"] == 37 and slow["limits"] == {"h_rt": "4"}  # qmaster enforced h_rt


#: what each executor's accounting says of the tasks ok, bad and slow
ACCOUNTING = {"local": _no_accounting, "slurm": _slurm_accounting, "sge": _sge_accounting}


# --- out of memory --------------------------------------------------------------

HOG = """python3 -c '
import time
hog = []
for _ in range(300):
    hog.append(bytearray(10**7))
    time.sleep(0.02)
'"""


@targets
def test_a_task_over_its_memory_limit_ends_as_oom(target: Target, tmp_path: Path) -> None:
    if (why := target.no_memory_limit()) is not None:
        pytest.skip(f"out of memory cannot happen here: {why}")
    study, (hog, calm) = study_of_commands(
        tmp_path, {"hog": HOG, "calm": "exit 1"}, time="00:02:00", mem="150M"
    )
    submit(target, study)
    assert wait_final([hog, calm], timeout=target.patience) == {
        hog: State.OOM,
        calm: State.FAILED,
    }
    assert read_state(hog).reason == "oom"
    counts = json.loads(run("status", study, "--json", "--rescan", cwd=tmp_path).stdout)["counts"]
    assert counts == {"oom": 1, "failed": 1}
    agree("out of memory", target, comparable(target, study, times={}))
    if target.name == "sge":
        assert stats(hog)["limits"] == {"h_rt": "120", "h_vmem": "150M"}
    if target.name == "slurm":
        assert stats(hog)["state"] == "OUT_OF_MEMORY"


# --- cancel of queued and running tasks -------------------------------------------


@targets
def test_cancel_stops_running_and_queued_tasks(target: Target, tmp_path: Path) -> None:
    study, paths = study_of_commands(
        tmp_path, {f"c{i}": "sleep 300" for i in range(3)}, time="00:10:00"
    )
    submit(target, study, "-j", "1")  # one runs, two wait for it
    wait_until(
        lambda: any(read_state(p).state is State.RUNNING for p in paths),
        120,
        "a task to start",
        interval=0.3,
    )
    assert [read_state(p).state for p in paths].count(State.QUEUED) == 2
    jobs = {read_state(p).job_id or "" for p in paths} - {""}
    result = run("cancel", study, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("cancelled ") == 3
    assert not target.listed(jobs)  # gone from the queue when cancel returns
    assert set(wait_final(paths, timeout=target.patience).values()) == {State.CANCELLED}
    assert all(read_state(p).reason == "cancelled" for p in paths)
    wait_until(lambda: not processes_under(study), 30, "every process of the tasks to end")
    ran = [p for p in paths if (p / SETTINGS.STARTED_FILE).exists()]
    assert len(ran) == 1  # the queued ones never started
    agree("cancel", target, comparable(target, study, times={}))
    if target.name == "sge":  # the running one is in qacct; the queued ones never ran
        assert [p for p in paths if (p / SETTINGS.SCHEDULER_STATS_FILE).exists()] == ran
        assert stats(ran[0])["failed"] == 100
    if target.name == "slurm":
        assert stats(ran[0])["state"] == "CANCELLED"


# --- a dependency -----------------------------------------------------------------


@targets
def test_a_dependency_holds_a_task_until_the_job_it_waits_for_ends(
    target: Target, tmp_path: Path
) -> None:
    if target.dependency is None:
        pytest.skip(
            f"{target.name} has no job ids to wait for: workflows order their steps "
            "with advance, which every executor runs"
        )
    go = tmp_path / "go"  # the first task runs until the test has seen the second wait
    first, (a,) = study_of_commands(
        tmp_path / "a",
        # tmp_path/a/s/first/TASK: go is four levels up
        {"first": "until [ -e ../../../../go ]; do sleep 0.2; done; date +%s.%N > stamp"},
        time="00:02:00",
    )
    submit(target, first)
    job = read_state(a).job_id
    assert job
    second, (b,) = study_of_commands(
        tmp_path / "b",
        {"second": "date +%s.%N > stamp"},
        time="00:02:00",
        dependency=target.dependency(job),
    )
    submit(target, second)
    wait_until(lambda: read_state(a).state is State.RUNNING, 120, "the first task to start")
    if target.name == "sge":
        held = (read_state(b).job_id or "").split(".")[0]
        shown = cluster_command("qstat", "-j", held)
        assert re.search(rf"^jid_predecessor_list:\s+{job.split('.')[0]}$", shown, re.M)
    assert read_state(b).state is State.QUEUED
    go.touch()
    assert wait_final([a, b], timeout=target.patience) == {a: State.SUCCESS, b: State.SUCCESS}
    assert float((b / "stamp").read_text()) > float((a / "stamp").read_text())
    # the dependency is in the scheduler's words: the rest must agree
    waited = comparable(target, second, times={})
    waited["second attempt 1"]["inputs"]["scheduler_inputs"].pop("dependency")
    agree("dependency", target, {**comparable(target, first, times={}), **waited})


# --- the submitting process killed mid-submit --------------------------------------


@targets
def test_a_submit_killed_midway_loses_nothing_and_runs_nothing_twice(
    target: Target, tmp_path: Path
) -> None:
    study, paths = study_of_commands(
        tmp_path, {f"k{i}": "sleep 1" for i in range(6)}, count_runs=True, time="00:02:00"
    )
    for i, path in enumerate(paths):  # six time limits: six arrays, six submit calls
        inputs = json.loads((path / SETTINGS.INPUTS_FILE).read_text())
        inputs["scheduler_inputs"]["time"] = f"00:0{i + 2}:00"
        (path / SETTINGS.INPUTS_FILE).write_text(json.dumps(inputs))
    if target.name == "local":
        # the local runner submits and runs: it is killed once the first task ended
        submit(target, study, "-j", "1")
        wait_until(lambda: any(runs(p) for p in paths), 60, "a task to run")
        victim = _local_runner(paths)
    else:
        process = subprocess.Popen(
            [str(AUTOJOB), "submit", str(study), "--executor", target.name],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        batches = study / SETTINGS.INDEX_DIR / target.name
        wait_until(
            lambda: any(batches.glob("*/submitted.json")), 60, "the first array", interval=0.002
        )
        victim = process.pid
        reaper = threading.Thread(target=process.wait)  # so that no zombie is left
        reaper.start()
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not alive(victim), 30, "the killed process to be gone")
    left = {p: read_state(p).state for p in paths}
    assert set(left.values()) <= {State.QUEUED, State.RUNNING, State.SUCCESS, State.IDLE}, left
    assert State.IDLE in left.values(), left  # some were never handed over
    submit(target, study)  # submits those again, and only those
    assert set(wait_final(paths, timeout=target.patience).values()) == {State.SUCCESS}
    assert [runs(p) for p in paths] == [1] * len(paths)


def _local_runner(paths: list[Path]) -> int:
    """The pid of the local runner that claimed the tasks."""
    for path in paths:
        claim = read_run_record(path / SETTINGS.QUEUED_FILE) or {}
        runner = claim.get("runner") or {}
        if isinstance(runner.get("pid"), int):
            return int(runner["pid"])
    pytest.fail("no task names its runner")


# --- the controller restarted mid-study ---------------------------------------------


@targets
def test_the_controller_restarted_mid_study_loses_nothing(target: Target, tmp_path: Path) -> None:
    if target.controller is None:
        pytest.skip(f"{target.name} has no controller (a killed runner is the killed submit)")
    study, paths = study_of_commands(
        tmp_path, {f"r{i}": f"sleep 4; echo done {i}" for i in range(4)}, time="00:05:00"
    )
    submit(target, study)
    wait_until(
        lambda: any(read_state(p).state is State.RUNNING for p in paths),
        60,
        "a task to start",
        interval=0.3,
    )
    start_again = target.controller()  # stopped mid-study (its jobs run on), then back
    try:
        out = run("status", study, "--rescan", "--json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr  # the task files answer
        counts = json.loads(out.stdout)["counts"]
        assert sum(counts.values()) == 4 and set(counts) <= {"queued", "running", "success"}
    finally:
        start_again()
    assert set(wait_final(paths, timeout=target.patience).values()) == {State.SUCCESS}
    for i, path in enumerate(paths):
        assert (path / SETTINGS.STDOUT_FILE).read_text() == f"done {i}\n"
    agree("controller restarted", target, comparable(target, study, times={}))
    if target.name == "sge":
        assert all(stats(p)["exit_status"] == 0 for p in paths)
    if target.name == "slurm":
        assert all(stats(p)["state"] == "COMPLETED" for p in paths)


# --- a workflow run by its jobs, with an automatic restart before the limit ----------


@targets
def test_a_three_step_workflow_runs_to_the_end_with_no_one_watching(
    target: Target, tmp_path: Path
) -> None:
    """Each sweep task that succeeds calls ``autojob advance --submit`` from inside its
    job, so the next steps are submitted by the jobs themselves; the slow task stops
    itself before its limit and restarts with more time."""
    limit, restarted = target.workflow_limit
    study = squares_study(tmp_path, limit)
    submit(target, study)
    wait_until(
        lambda: finished(study),
        target.patience + 60,
        "the workflow to finish",
        details=lambda: run("status", study, cwd=tmp_path).stdout,
        interval=0.5,
    )
    check_finished_study(study)
    # each task script records its task in record.txt after its end (and advance)
    wait_until(
        lambda: all(row.done == row.groups for row in workflow_progress(study)),
        60,
        "every step to be recorded done",
        details=lambda: workflow_progress(study),
    )
    slow = attempts(study / "x3")
    assert read_state(slow[0]).exit_code == 124  # stopped by itself, before the limit
    sched = json.loads((slow[-1] / SETTINGS.INPUTS_FILE).read_text())["scheduler_inputs"]
    assert sched["time"] == restarted  # the restart asked for more time
    assert read_state(slow[-1]).executor == target.name
    (agg,) = attempts(study / "aggregate")
    started = json.loads((agg / SETTINGS.STARTED_FILE).read_text())
    assert started["executor"] == target.name  # submitted by a job, where it ran
    if target.job_id is not None:
        assert target.job_id.fullmatch(started["job_id"])
    report = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    (rows,) = report["workflows"].values()
    assert [(r["name"], r["groups"], r["done"]) for r in rows] == [
        ("sweep", 4, 4),
        ("double", 4, 4),
        ("aggregate", 1, 1),
    ]
    steps = {row.name: row for row in workflow_progress(study)}
    assert (steps["sweep"].done, steps["double"].groups, steps["aggregate"].done) == (4, 4, 1)
    # advancing again creates nothing
    before = sorted(str(p) for p in study.rglob(SETTINGS.TASK_METADATA_FILE))
    lines = read_record(study)
    for task in (attempts(study / f"x{x}")[-1] for x in (1, 2, 3, 4)):
        again = advance(task)
        assert not again.created and not again.recorded and len(again.existing) == 2
    assert sorted(str(p) for p in study.rglob(SETTINGS.TASK_METADATA_FILE)) == before
    assert read_record(study) == lines
    times = {limit: "limit", restarted: "the limit restarted with more time"}
    agree("workflow", target, comparable(target, study, times))


def test_every_installed_executor_is_in_the_suite() -> None:
    # pilots run tasks inside another executor's jobs: tests/test_pilots*.py are theirs
    own = {name for name in available_executors() if get_executor(name).own_jobs}
    assert {t.name for t in TARGETS} == own
    assert "pilot" in set(available_executors()) - own
