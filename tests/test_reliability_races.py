"""Races: two autojob commands on the same files at the same moment.

Each race starts two real ``autojob`` processes (the command line, loaded and
held at a barrier, then released together, one of them after a random delay
so that the rounds try different interleavings) and checks invariants once
both have returned and whatever they started has ended:

- ``submit`` against ``cancel``: every task ends cancelled or succeeded, none
  runs twice, none is left queued or running, no process of a task survives;
- ``restart`` against ``submit --only failed``: nothing is deleted from under a
  running attempt, each attempt runs at most once, the tree loads strictly;
- two ``harvest`` into one archive: the archive equals a harvest done alone,
  no temporary file is left, no traceback;
- ``advance`` of one task from two processes: the next steps' tasks are
  created once, the task is recorded once.

Each race adds its figures to the ``races`` family (docs/reliability.md).
``AUTOJOB_RACE_ROUNDS`` sets the rounds of each race (default 6).
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.execution.local import LocalRunner
from autojob.execution.submit import DEFAULT_ONLY, plan, select_tasks
from autojob.store.state import State, read_state
from autojob.study import Study

from .helpers import AUTOJOB, alive, run, runs, study_of_commands, wait_until
from .workflow_helpers import COMPUTE, attempts, set_compute, squares_study

pytestmark = pytest.mark.slow

ROUNDS = max(1, int(os.environ.get("AUTOJOB_RACE_ROUNDS", "6")))
LIVE = (State.QUEUED, State.RUNNING)

#: a process that loads the command line (and the modules its command imports
#: lazily), says it is ready, waits for the go file, sleeps its delay, then runs
#: ``autojob ARGS...``: the two commands of a race start within a millisecond
RACER = r"""
import importlib, os, sys, time
from autojob.cli.main import main
import autojob.cli.app
for name in sys.argv[4].split(","):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
ready, go, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0002)
if delay > 0:
    time.sleep(delay)
main(sys.argv[5:])
"""

#: modules the racing commands import once they run, loaded before the barrier
WARM = ",".join(
    [
        # the command group imports a command's module when the command runs
        "autojob.cli.submit",
        "autojob.cli.cancel",
        "autojob.cli.restart",
        "autojob.cli.advance",
        "autojob.cli.harvest",
        "autojob.execution.submit",
        "autojob.execution.local",
        "autojob.execution.cancel",
        "autojob.next.restart",
        "autojob.next.advance",
        "autojob.harvest",
    ]
)


@dataclass
class Outcome:
    """How one racing command ended."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def clean(self) -> bool:
        """It succeeded, or failed with a message of autojob's own (no traceback, no bug)."""
        if "Traceback" in self.stderr or "this is a bug" in self.stderr:
            return False
        return self.returncode == 0 or (self.returncode == 1 and "error:" in self.stderr)


def race(cwd: Path, *commands: tuple[float, Sequence[str | Path]]) -> list[Outcome]:
    """Run the commands at once, each ``(delay, args)``; return how each ended."""
    barrier = cwd / f".race-{time.monotonic_ns()}"
    barrier.mkdir()
    go = barrier / "go"
    procs = []
    for i, (delay, args) in enumerate(commands):
        argv = [str(barrier / f"ready-{i}"), str(go), f"{delay:.4f}", WARM, *map(str, args)]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RACER, *argv],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "COLUMNS": "400"},
            )
        )
    try:
        wait_until(
            lambda: all((barrier / f"ready-{i}").exists() for i in range(len(procs))),
            60,
            "both commands to reach the barrier",
            details=lambda: [p.poll() for p in procs],
            interval=0.01,
        )
    finally:
        go.touch()  # (on a failure too: none is left waiting)
    outcomes = []
    for proc, (_, args) in zip(procs, commands, strict=True):
        out, err = proc.communicate(timeout=120)
        outcomes.append(Outcome(tuple(map(str, args)), proc.returncode, out, err))
    for entry in barrier.iterdir():
        entry.unlink()
    barrier.rmdir()
    return outcomes


@pytest.fixture
def tally(figures: dict[str, dict[str, int | float | str]]) -> Iterator[dict[str, int]]:
    """The ``races`` figures: each test adds what it saw."""
    seen: dict[str, int] = {}
    yield seen
    family = figures.setdefault("races", {})
    for key, value in seen.items():
        family[key] = int(family.get(key, 0)) + value


def add(tally: dict[str, int], **counts: int) -> None:
    for key, value in counts.items():
        name = key.replace("_", " ")
        tally[name] = tally.get(name, 0) + value


def pids_of(task: Path) -> list[int]:
    """The pids a task's commands wrote (every run, every process)."""
    file = task / "pids.txt"
    if not file.exists():
        return []
    return [int(line) for line in file.read_text().split() if line.isdigit()]


def settle(tasks: Sequence[Path], timeout: float = 90) -> None:
    """Wait until no task is queued or running, and the runners that ran them are gone."""
    wait_until(
        lambda: not any(read_state(t).state in LIVE for t in tasks),
        timeout,
        "every task to end",
        details=lambda: {t.parent.name: read_state(t).state.value for t in tasks},
        interval=0.05,
    )
    runners = set()
    for task in tasks:
        queued = task / SETTINGS.QUEUED_FILE
        if queued.exists():
            runner = json.loads(queued.read_bytes()).get("runner") or {}
            if isinstance(runner.get("pid"), int):
                runners.add(runner["pid"])
    wait_until(lambda: not any(alive(p) for p in runners), timeout, "the runners to exit")


def state_files_parse(root: Path) -> int:
    """Every metadata file and state record under ``root`` parses; return how many."""
    names = {
        SETTINGS.TASK_METADATA_FILE,
        SETTINGS.INPUTS_FILE,
        SETTINGS.TASK_GROUP_METADATA_FILE,
        SETTINGS.STUDY_METADATA_FILE,
        SETTINGS.QUEUED_FILE,
        SETTINGS.STARTED_FILE,
        SETTINGS.ENDED_FILE,
        SETTINGS.CANCEL_FILE,
    }
    checked = 0
    for path in root.rglob("*"):
        if path.name in names and path.is_file():
            assert isinstance(json.loads(path.read_bytes()), dict), path
            checked += 1
    return checked


def leftovers(folder: Path) -> list[str]:
    """Temporary files under ``folder``: half-written archives, caches, records, trees."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.endswith((".tmp", ".spool")) or p.name.startswith(".autojob-staging-")
    )


# -- submit against cancel ---------------------------------------------------------------

#: each run of a task: its pids (the shell and its child) and, at its end, done.txt
WORK = "echo $BASHPID >> pids.txt; sleep 0.4 & echo $! >> pids.txt; wait $!; echo done >> done.txt"
TASKS = 6


@pytest.mark.parametrize("session", ["script", "autojob-run"], ids=["plain", "autojob-run"])
def test_submit_against_cancel(tmp_path: Path, tally: dict[str, int], session: str) -> None:
    """``submit`` and ``cancel --grace 1`` at once: each task cancelled or run once, whole."""
    rng = random.Random(f"submit-cancel-{session}")
    # with a time limit and auto restart the command runs under 'autojob run', in a
    # session of its own (what cancel must find and stop); else in the script's group
    extra: dict[str, Any] = {"auto_restart": True, "time": "00:05:00"}
    problems: list[str] = []
    for round_ in range(ROUNDS):
        root = tmp_path / f"r{round_}"
        commands = {f"t{i}": WORK for i in range(TASKS)}
        if session == "script":
            study, tasks = study_of_commands(root, commands, count_runs=True)
        else:
            study, tasks = study_of_commands(root, commands, count_runs=True, **extra)
        # cancel from just before the submit to well into the runs (the claims, the
        # launches, the scripts taking the lock, the commands running)
        lag = rng.uniform(-0.1, 1.5)
        outcomes = race(
            root,
            (max(0.0, -lag), ("submit", study, "-j", "3")),
            (max(0.0, lag), ("cancel", study, "--grace", "1")),
        )
        # what cancel said is cancelled is so, with nothing of it left
        at_cancel = {t: read_state(t).state for t in tasks}
        runs_at_cancel = {t: runs(t) for t in tasks}
        left_at_cancel = [
            p for t in tasks if at_cancel[t] is State.CANCELLED for p in pids_of(t) if alive(p)
        ]
        settle(tasks)
        final = {t: read_state(t) for t in tasks}
        left = [p for t in tasks for p in pids_of(t) if alive(p)]
        duplicate = sum(max(0, runs(t) - 1) for t in tasks)
        after_cancel = sum(
            runs(t) - runs_at_cancel[t] for t in tasks if at_cancel[t] is State.CANCELLED
        )
        for outcome in outcomes:
            if not outcome.clean() or outcome.returncode != 0:
                problems.append(f"round {round_}: {outcome.args[0]} ended badly: {outcome}")
        for task, state in final.items():
            name = f"round {round_} {task.parent.name}"
            if state.state not in (State.CANCELLED, State.SUCCESS):
                problems.append(f"{name}: ended {state.state.value} ({state.detail})")
            if state.state is State.SUCCESS and not (task / "done.txt").exists():
                problems.append(f"{name}: succeeded without its command finishing")
            if at_cancel[task] is State.CANCELLED and state.state is not State.CANCELLED:
                problems.append(f"{name}: cancelled, then {state.state.value}")
        if left_at_cancel or left:
            problems.append(f"round {round_}: processes left: {left_at_cancel} {left}")
        if duplicate or after_cancel:
            problems.append(f"round {round_}: {duplicate} duplicate runs, {after_cancel} after")
        files = state_files_parse(study)
        add(
            tally,
            rounds_submit_against_cancel=1,
            tasks_cancelled=sum(s.state is State.CANCELLED for s in final.values()),
            tasks_run_to_the_end=sum(s.state is State.SUCCESS for s in final.values()),
            duplicate_runs=duplicate,
            runs_after_cancel=after_cancel,
            processes_left_behind=len(set(left_at_cancel) | set(left)),
            tasks_stuck_queued_or_running=sum(s.state in LIVE for s in final.values()),
            state_files_checked=files,
        )
    assert not problems, "\n".join(problems)


def test_a_script_held_up_past_a_cancel_does_not_start(
    tmp_path: Path, tally: dict[str, int]
) -> None:
    """A script launched for a claim, slow to start (a loaded machine), then cancelled.

    The runner launches a task's script under the task's lock; the script takes
    the lock again to record its start. Held up in between (stopped here, as a
    busy machine would hold it), it must not start once ``cancel`` has reported
    the task cancelled.
    """
    study, (task,) = study_of_commands(tmp_path, {"t": WORK}, count_runs=True)
    runner = LocalRunner(plan(select_tasks([study])), max_parallel=1)
    assert [s.path for s in runner.claim(DEFAULT_ONLY)] == [task]
    lock = os.open(task, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(lock, fcntl.LOCK_EX)  # the task lock, as the runner holds it to launch
    script = subprocess.Popen(
        ["bash", str(task / SETTINGS.DEFAULT_TASK_SCRIPT_FILE)],
        cwd=task,
        env={**os.environ, "AUTOJOB_TASK_DIR": str(task), "AUTOJOB_CLAIM": runner.claim_token},
        start_new_session=True,
    )
    try:
        # once the script waits for the lock, stop it (its group: the shell, flock)
        wait_until(lambda: "(flock)" in " ".join(group_stats(script.pid)), 30, "the lock wait")
        os.killpg(script.pid, signal.SIGSTOP)
        wait_until(
            lambda: all(s.rsplit(")", 1)[1].split()[0] == "T" for s in group_stats(script.pid)),
            30,
            "the script to stop",
        )
    finally:
        os.close(lock)
    cancelled = run("cancel", study, "--grace", "1", cwd=tmp_path)
    os.killpg(script.pid, signal.SIGCONT)
    script.wait(timeout=60)
    assert cancelled.returncode == 0 and "was queued" in cancelled.stdout, cancelled
    ran = runs(task)
    add(tally, scripts_held_up_past_a_cancel=1, runs_after_cancel=ran)
    assert ran == 0, "the command ran after cancel reported the task cancelled"
    assert read_state(task).state is State.CANCELLED


def group_stats(pgid: int) -> list[str]:
    """The /proc stat lines of the processes of a process group."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text.rsplit(")", 1)[1].split()[3] == str(pgid):
            found.append(text)
    return found


# -- restart against submit ----------------------------------------------------------------

#: a failing run that creates a file to delete at its start and checks it is still
#: there at its end (else it notes the loss), and writes a file to carry over
FAILING = (
    "echo $BASHPID >> pids.txt; touch big; sleep 0.4; [ -e big ] || echo lost >> lost.txt; exit 1"
)
#: the size of the file carried over: copying it keeps a restart busy for a while,
#: as a large checkpoint would
CARRIED = 64 * 1024 * 1024


def failed_task(root: Path) -> tuple[Path, Path]:
    """A study with one task that failed once; its files_to_delete names ``big``."""
    study, (task,) = study_of_commands(
        root, {"t": FAILING}, count_runs=True, files_to_carry_over=["carry"]
    )
    inputs = json.loads((task / SETTINGS.INPUTS_FILE).read_text())
    inputs["task_inputs"]["files_to_delete"] = ["big"]
    (task / SETTINGS.INPUTS_FILE).write_text(json.dumps(inputs))
    result = run("submit", task, "--wait", cwd=root)
    assert result.returncode == 1, result.stderr
    assert read_state(task).state is State.FAILED and (task / "big").exists()
    with (task / "carry").open("wb") as stream:
        block = os.urandom(1024 * 1024)
        for _ in range(CARRIED // len(block)):
            stream.write(block)
    return study, task


def test_restart_against_submit(tmp_path: Path, tally: dict[str, int]) -> None:
    """``restart`` and ``submit --only failed`` at once: never deleting and running at once."""
    rng = random.Random("restart-submit")
    problems: list[str] = []
    for round_ in range(ROUNDS):
        root = tmp_path / f"r{round_}"
        study, task = failed_task(root)
        # the restart checks the task at once, then copies the carried file; the
        # submit claims at once with --wait (every other round), else once its
        # background runner has started, a few tenths of a second later
        wait = round_ % 2 == 0
        lag = rng.uniform(-0.1, 0.1) if wait else rng.uniform(-0.7, 0.2)
        restarted, submitted = race(
            root,
            (max(0.0, -lag), ("restart", task)),
            (max(0.0, lag), ("submit", task, "--only", "failed", *(["--wait"] if wait else []))),
        )
        settle([task])
        name = f"round {round_}"
        # (submit --wait exits 1 as the task it ran failed again)
        failed_again = submitted.returncode == 1 and "0 of 1 task(s) succeeded" in submitted.stdout
        for outcome in (restarted, submitted):
            if not outcome.clean() and not (outcome is submitted and failed_again):
                problems.append(f"{name}: {outcome.args[0]} ended badly: {outcome}")
        new = [p for p in task.parent.iterdir() if p.is_dir() and p != task]
        ran_again = runs(task) == 2
        lost = (task / "lost.txt").exists()
        if restarted.returncode == 0:
            if len(new) != 1:
                problems.append(f"{name}: restart said yes, {len(new)} new attempts")
            elif (new[0] / "carry").stat().st_size != CARRIED:
                problems.append(f"{name}: the carried file is not whole in the new attempt")
        elif "--force" not in restarted.stderr or new:
            problems.append(f"{name}: restart refused without the reason: {restarted}")
        if runs(task) > 2 or any(runs(p) for p in new):
            problems.append(f"{name}: an attempt ran twice: {runs(task)} {[runs(p) for p in new]}")
        if lost:
            problems.append(f"{name}: restart deleted files_to_delete from a running attempt")
        if not ran_again and "submitted 1" in submitted.stdout + submitted.stderr:
            problems.append(f"{name}: submit claimed the task but it did not run")
        if read_state(task).state is not State.FAILED:
            problems.append(f"{name}: the old attempt ended {read_state(task).state.value}")
        Study.from_directory(study, strict_mode=True)
        left = [p for p in pids_of(task) if alive(p)]
        add(
            tally,
            rounds_restart_against_submit=1,
            restarts_done=restarted.returncode == 0,
            restarts_refused=restarted.returncode != 0,
            reruns_of_the_old_attempt=ran_again,
            duplicate_runs=max(0, runs(task) - 2) + sum(runs(p) for p in new),
            files_deleted_from_a_running_attempt=lost,
            processes_left_behind=len(left),
            state_files_checked=state_files_parse(study),
        )
    assert not problems, "\n".join(problems)


def test_a_restart_held_up_while_the_task_runs_again_deletes_nothing(
    tmp_path: Path, tally: dict[str, int]
) -> None:
    """A restart checked the task (failed), then was held up copying the carried file.

    Meanwhile the task is submitted again and runs; once the restart goes on, it
    must not delete the running attempt's ``files_to_delete``.
    """
    for attempt in range(5):  # until the restart is caught copying (it takes a while)
        root = tmp_path / f"a{attempt}"
        _, task = failed_task(root)
        restart = subprocess.Popen(
            [str(AUTOJOB), "restart", str(task)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        copying = False
        while restart.poll() is None and not copying:
            copying = any(task.parent.glob(".autojob-staging-*/*/carry"))
        if copying:
            os.kill(restart.pid, signal.SIGSTOP)
            break
        restart.communicate()
    else:
        pytest.fail("the restart was never caught copying the carried file")
    try:
        submit = subprocess.Popen(
            [str(AUTOJOB), "submit", str(task), "--only", "failed", "--wait"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: read_state(task).state is State.RUNNING, 60, "the task to run again")
    finally:
        os.kill(restart.pid, signal.SIGCONT)
    out, err = restart.communicate(timeout=60)
    submit.communicate(timeout=60)
    lost = (task / "lost.txt").exists()
    add(tally, restarts_held_up_while_the_task_ran=1, files_deleted_from_a_running_attempt=lost)
    assert restart.returncode == 0, err
    assert not lost, f"the restart deleted files_to_delete from a running attempt: {out}"
    assert runs(task) == 2 and read_state(task).state is State.FAILED


# -- two harvests into one archive -----------------------------------------------------------

HARVEST_TASKS = 40


def archive_rows(path: Path) -> list[Any]:
    """An archive's records, in a comparable form (sorted by their text)."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as stream:
            rows: list[Any] = list(csv.DictReader(stream))
    else:
        rows = json.loads(path.read_bytes())
    assert isinstance(rows, list)
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


@pytest.fixture(scope="module")
def harvested_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A finished study of tasks with outputs, and full harvests of it done alone."""
    root = tmp_path_factory.mktemp("harvest")
    commands = {
        f"t{i:02d}": f"""echo '{{"value": {i}, "square": {i * i}}}' > outputs.json"""
        for i in range(HARVEST_TASKS)
    }
    commands["t99"] = "exit 3"  # one failure among them
    study, _ = study_of_commands(root, commands)
    result = run("submit", study, "--wait", "-j", "4", cwd=root)
    assert result.returncode == 1 and "40 of 41" in result.stdout, result.stdout + result.stderr
    alone = root / "alone"
    alone.mkdir()
    expected = {}
    for fmt in ("json", "csv"):
        target = alone / f"archive.{fmt}"
        result = run("harvest", study, "-o", target, "--full", cwd=root)
        assert result.returncode == 0, result.stderr
        expected[fmt] = archive_rows(target)
    assert len(expected["json"]) == len(expected["csv"]) == HARVEST_TASKS + 1
    return study, expected


#: what each round races: the two harvests' arguments (after PATH) and whether a
#: cache from an earlier harvest is there
HARVEST_RACES = [
    ("same json archive", ["-o", "archive.json"], ["-o", "archive.json"]),
    ("same csv archive", ["-o", "archive.csv"], ["-o", "archive.csv"]),
    ("full against incremental", ["-o", "archive.json", "--full"], ["-o", "archive.json"]),
    ("json and csv side by side", ["-o", "archive.json"], ["-o", "archive.csv"]),
    ("same archive, format given", ["-o", "archive.out", "-f", "json"], ["-o", "archive.out"]),
]


def test_two_harvests_into_one_archive(
    tmp_path: Path, tally: dict[str, int], harvested_study: tuple[Path, dict[str, Any]]
) -> None:
    """Two ``harvest`` at once: each archive whole and equal to a harvest alone, no temp files."""
    study, expected = harvested_study
    rng = random.Random("harvests")
    before = sorted(str(p) for p in study.rglob("*"))
    problems: list[str] = []
    rounds = max(ROUNDS, len(HARVEST_RACES))
    for round_ in range(rounds):
        label, first, second = HARVEST_RACES[round_ % len(HARVEST_RACES)]
        out = tmp_path / f"r{round_}"
        out.mkdir()
        name = f"round {round_} ({label})"
        warm = round_ // len(HARVEST_RACES) % 2 == 1
        if warm:  # a cache from an earlier harvest: the incremental reading races too
            for args in (first, second):
                assert run("harvest", study, *args, cwd=out).returncode == 0
        lag = rng.uniform(-0.05, 0.05)
        outcomes = race(
            out,
            (max(0.0, -lag), ("harvest", study, *first)),
            (max(0.0, lag), ("harvest", study, *second)),
        )
        for outcome in outcomes:
            if not outcome.clean():
                problems.append(f"{name}: a harvest ended badly: {outcome}")
        differing = 0
        for target in {args[1] for args in (first, second)}:
            path = out / target
            fmt = "csv" if target.endswith(".csv") else "json"
            try:
                rows = archive_rows(path)
            except (OSError, ValueError) as exc:
                problems.append(f"{name}: {target} does not parse: {exc}")
                differing += 1
                continue
            if rows != expected[fmt]:
                problems.append(f"{name}: {target} differs from a harvest done alone")
                differing += 1
        temporary = leftovers(out) + leftovers(study)
        if temporary:
            problems.append(f"{name}: temporary files left: {temporary}")
        add(
            tally,
            rounds_two_harvests=1,
            archives_differing_from_a_full_harvest=differing,
            temporary_files_left=len(temporary),
            harvest_tracebacks=sum(not o.clean() for o in outcomes),
        )
    assert sorted(str(p) for p in study.rglob("*")) == before, "a harvest changed the tree"
    assert not problems, "\n".join(problems)


# -- advance of one task from two processes ------------------------------------------------


def script_ran(task: Path) -> None:
    """Run a task's script here (it records its start and end, and its success)."""
    subprocess.run(
        ["bash", str(task / SETTINGS.DEFAULT_TASK_SCRIPT_FILE)], check=True, capture_output=True
    )


def sweep_done_but_not_advanced(root: Path) -> tuple[Path, list[Path]]:
    """The example workflow with every sweep task succeeded, none advanced or recorded."""
    root.mkdir()
    study = squares_study(root, "00:01:00")
    set_compute(study, COMPUTE.replace("x == 3", "False"))
    workflow = study / SETTINGS.WORKFLOW_FILE
    graph = workflow.read_text()
    workflow.unlink()  # without a workflow, the scripts only record their success
    tasks = [attempts(study / f"x{x}")[0] for x in (1, 2, 3, 4)]
    for task in tasks:
        script_ran(task)
    workflow.write_text(graph)
    (study / SETTINGS.RECORD_FILE).unlink()  # as if no script had got to recording
    return study, tasks


def check_advanced(study: Path, name: str, problems: list[str]) -> int:
    """Each next step's task made once, listed once; return how many were made twice."""
    groups = sorted(p.name for p in study.iterdir() if p.is_dir() and p.name[0] != ".")
    want = ["aggregate", *[f"double.x{x}" for x in (1, 2, 3, 4)], "x1", "x2", "x3", "x4"]
    duplicates = 0
    if groups != want:
        problems.append(f"{name}: task groups {groups}")
        duplicates += abs(len(groups) - len(want))
    for group in want[:5]:
        made = attempts(study / group) if (study / group).is_dir() else []
        duplicates += max(0, len(made) - 1)
        if len(made) != 1:
            problems.append(f"{name}: {group} holds {len(made)} tasks")
    listed = json.loads((study / SETTINGS.STUDY_METADATA_FILE).read_bytes())["task_groups"]
    if len(listed) != len(set(listed)) or len(listed) != len(want):
        problems.append(f"{name}: study.json lists {listed}")
    for group in groups:
        meta = study / group / SETTINGS.TASK_GROUP_METADATA_FILE
        tasks_listed = json.loads(meta.read_bytes())["tasks"]
        if len(tasks_listed) != len(set(tasks_listed)) or len(tasks_listed) != 1:
            problems.append(f"{name}: {group}/task_group.json lists {tasks_listed}")
    aggregates = attempts(study / "aggregate") if (study / "aggregate").is_dir() else []
    for agg in aggregates:
        values = json.loads((agg / SETTINGS.INPUTS_FILE).read_text())["task_inputs"]["values"]
        if values != [1, 4, 9, 16]:
            problems.append(f"{name}: the aggregate was made from {values}")
    return duplicates


def test_advance_from_two_processes(tmp_path: Path, tally: dict[str, int]) -> None:
    """Two ``advance`` of one task (or of the last two) at once: each next task made once."""
    rng = random.Random("advance")
    problems: list[str] = []
    for round_ in range(ROUNDS):
        study, tasks = sweep_done_but_not_advanced(tmp_path / f"r{round_}")
        # the first three advance alone; then the last one from two processes, or
        # (every other round) the last two at once, each completing the sweep
        both_last = round_ % 2 == 1
        for task in tasks[: 2 if both_last else 3]:
            assert run("advance", task, cwd=study).returncode == 0
        pair = (tasks[2], tasks[3]) if both_last else (tasks[3], tasks[3])
        lag = rng.uniform(-0.02, 0.02)
        outcomes = race(
            study,
            (max(0.0, -lag), ("advance", pair[0])),
            (max(0.0, lag), ("advance", pair[1])),
        )
        name = f"round {round_}"
        for outcome in outcomes:
            if not outcome.clean() or outcome.returncode != 0:
                problems.append(f"{name}: advance ended badly: {outcome}")
        record = (study / SETTINGS.RECORD_FILE).read_text().split()
        if sorted(record) != sorted(t.name for t in tasks):
            problems.append(f"{name}: record.txt holds {record}")
        duplicates = check_advanced(study, name, problems)
        Study.from_directory(study, strict_mode=True)
        add(
            tally,
            rounds_two_advances=1,
            duplicate_tasks_created=duplicates,
            record_lines_repeated=len(record) - len(set(record)),
            state_files_checked=state_files_parse(study),
        )
    assert not problems, "\n".join(problems)
