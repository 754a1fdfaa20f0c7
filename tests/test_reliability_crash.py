"""Crash safety: processes killed with SIGKILL at random points lose nothing.

Each trial forks a process doing real autojob work (creating tasks, running a
study with the local executor, rebuilding the status index), kills it with
SIGKILL after a random delay, then checks the tree: every metadata file and
state record parses, no task present before the kill is gone, and rerunning
the interrupted work finishes it with nothing created or run twice.

``AUTOJOB_CRASH_TRIALS`` scales the number of trials (default: 360 in all).
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.execution.local import LocalRunner
from autojob.execution.submit import DEFAULT_ONLY, plan, select_tasks
from autojob.next import create_task_group_tree, create_task_tree
from autojob.next.restart import restart_task
from autojob.store.completed_tasks import append_record, read_record, record_path
from autojob.store.index_file import parse_index
from autojob.store.names import STAGING_PREFIX
from autojob.store.state import State, read_state
from autojob.store.status_index import COLUMNS, collect
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .crash_helpers import assert_files_parse, fork_and_kill, full_duration, killed_runs, trials
from .helpers import runs, study_of_commands, wait_until

pytestmark = pytest.mark.slow

# -- creating tasks ------------------------------------------------------------------


def create_labels(group: Path, labels: list[str]) -> None:
    """The interrupted command: add a task per label not yet present (rerunnable)."""
    for label in labels:
        if not (group / label).exists():
            task = Task(
                task_metadata=TaskMetadata(label=label),
                task_inputs=TaskInputs(command=f"echo {label}"),
            )
            create_task_tree(task, group, name_template="{label}")


def tasks_of(group: Path) -> dict[str, str]:
    loaded = TaskGroup.from_directory(group, strict_mode=True)
    labels = [t.task_metadata.label or "" for t in loaded.tasks]
    assert len(labels) == len(set(labels)), "a task was created twice"
    return {t.task_metadata.label or "": t.task_metadata.task_id for t in loaded.tasks}


def test_killed_while_creating_tasks(tmp_path: Path, figures: dict[str, Any]) -> None:
    rng = random.Random(20261121)
    labels = [f"t{i:02d}" for i in range(12)]

    def probe(i: int) -> Callable[[], object]:
        group = TaskGroup(label=f"probe{i}")
        made = create_task_group_tree(group, tmp_path, name_template=f"probe{i}")
        return functools.partial(create_labels, made, labels)

    span = full_duration(probe)
    n, kills, files = trials(100), 0, 0
    for trial in range(n):
        group = create_task_group_tree(
            TaskGroup(label=f"g{trial}"), tmp_path, name_template=f"g{trial}"
        )
        create_labels(group, labels[:2])
        before = tasks_of(group)
        kills += fork_and_kill(
            functools.partial(create_labels, group, labels), rng.uniform(0, span)
        )
        files += assert_files_parse(group)
        after = tasks_of(group)  # strict: listed and on-disk tasks agree
        assert before.items() <= after.items(), "a task present before the kill is gone"
        create_labels(group, labels)  # rerun the interrupted command
        final = tasks_of(group)
        assert sorted(final) == labels and after.items() <= final.items()
        create_labels(group, ["extra"])  # the next write clears what the dead one left
        assert not [p for p in group.iterdir() if p.name.startswith(STAGING_PREFIX)]
    figures["crash: creating tasks"] = {
        "trials": n,
        "killed mid-work": kills,
        "files checked": files,
    }
    assert kills >= n // 5, f"only {kills} of {n} trials were killed before the end"


# -- running a study --------------------------------------------------------------------


def run_study(paths: list[Path]) -> None:
    """The interrupted command: what 'autojob submit --wait' does."""
    runner = LocalRunner(plan(select_tasks(paths, DEFAULT_ONLY)), max_parallel=2, grace=1)
    runner.claim(DEFAULT_ONLY)
    runner.run()


def settle(paths: list[Path], timeout: float = 20) -> None:
    """Wait until no task script started by the dead runner is still running."""
    wait_until(
        lambda: not any(read_state(p).state is State.RUNNING for p in paths),
        timeout,
        "every task to end",
        details=lambda: [read_state(p).state for p in paths],
        interval=0.02,
    )


def test_killed_while_running_a_study(tmp_path: Path, figures: dict[str, Any]) -> None:
    rng = random.Random(7)
    commands = {f"t{i}": "true" for i in range(6)}
    span = full_duration(
        lambda i: functools.partial(
            run_study, study_of_commands(tmp_path / f"p{i}", commands, count_runs=True)[1]
        )
    )
    n, kills, files = trials(100), 0, 0
    for trial in range(n):
        _, paths = study_of_commands(tmp_path / f"s{trial}", commands, count_runs=True)
        kills += fork_and_kill(functools.partial(run_study, paths), rng.uniform(0, span))
        settle(paths)
        files += assert_files_parse(tmp_path / f"s{trial}")
        done_before = {p for p in paths if read_state(p).state is State.SUCCESS}
        run_study(paths)  # rerun: 'autojob submit --wait' again
        settle(paths)  # a script the dead runner launched may have started meanwhile
        states = [read_state(p).state for p in paths]
        assert states == [State.SUCCESS] * len(paths), (trial, states)
        assert [runs(p) for p in paths] == [1] * len(paths), f"trial {trial}: a task ran twice"
        assert all(runs(p) == 1 for p in done_before)
    figures["crash: running a study (local executor)"] = {
        "trials": n,
        "killed mid-work": kills,
        "tasks": 6 * n,
        "files checked": files,
    }
    assert kills >= n // 5, f"only {kills} of {n} trials were killed before the end"


# -- the status index -------------------------------------------------------------------


def states_seen(study: Path, **how: Any) -> dict[str, dict[str, Any]]:
    return {k: e.as_dict() for k, e in collect(study, **how).tasks.items()}


def test_killed_while_writing_the_status_index(tmp_path: Path, figures: dict[str, Any]) -> None:
    rng = random.Random(11)
    study, paths = study_of_commands(
        tmp_path, {f"t{i}": "true" for i in range(40)}, count_runs=True
    )
    collect(study)  # an index and a journal from now on
    span = full_duration(lambda _: functools.partial(collect, study, rescan=True))
    n, kills = trials(40), 0
    for trial in range(n):
        kills += fork_and_kill(lambda: collect(study, rescan=True), rng.uniform(0, span))
        index = study / SETTINGS.INDEX_DIR / "status.index"
        if index.exists():
            parse_index(index.read_bytes(), COLUMNS)  # never half a file
        run_study(paths[trial % 40 : trial % 40 + 1])  # a task changes meanwhile
        assert states_seen(study) == states_seen(study, use_index=False)
    figures["crash: writing the status index"] = {"trials": n, "killed mid-work": kills}
    assert kills > 0


# -- record.txt and restart ------------------------------------------------------------


def record_ids(study: Path, ids: list[str]) -> None:
    """The interrupted command: record each id not yet in record.txt (rerunnable)."""
    done = set(read_record(study))
    for task_id in ids:
        if task_id not in done:
            append_record(study, task_id)


def test_killed_while_appending_to_the_record(tmp_path: Path, figures: dict[str, Any]) -> None:
    ids = [f"j{i:09d}" for i in range(2000)]
    n = kills = 0
    for study, killed in killed_runs(tmp_path, lambda s: record_ids(s, ids), 40, seed=5):
        n, kills = n + 1, kills + killed
        raw = record_path(study).read_bytes() if record_path(study).exists() else b""
        assert raw == b"" or raw.endswith(b"\n"), "a torn line"
        lines = raw.decode().splitlines()
        assert lines == ids[: len(lines)], "a lost, repeated or torn line"
        record_ids(study, ids)  # rerun
        assert read_record(study) == ids
    figures["crash: appending to record.txt"] = {"trials": n, "killed mid-work": kills}
    assert kills >= n // 5, f"only {kills} of {n} trials were killed before the end"


def restart_once(task_dir: Path) -> None:
    """The interrupted command: restart the task unless a restart of it exists."""
    old = json.loads((task_dir / SETTINGS.TASK_METADATA_FILE).read_bytes())["task_id"]
    for sibling in task_dir.parent.iterdir():
        meta = sibling / SETTINGS.TASK_METADATA_FILE
        if meta.is_file() and json.loads(meta.read_bytes()).get("previous_attempt") == old:
            return
    restart_task(task_dir, assignments=["command=echo second"])


def test_killed_while_restarting_a_task(tmp_path: Path, figures: dict[str, Any]) -> None:
    rng = random.Random(3)

    def failed_task(root: Path) -> Path:
        _, (path,) = study_of_commands(root, {"t0": "true"}, count_runs=True)
        (path / "big.dat").write_bytes(b"x" * 2_000_000)
        inputs = json.loads((path / SETTINGS.INPUTS_FILE).read_bytes())
        inputs["task_inputs"]["files_to_carry_over"] = ["big.dat"]
        (path / SETTINGS.INPUTS_FILE).write_text(json.dumps(inputs))
        return path

    span = full_duration(lambda i: functools.partial(restart_once, failed_task(tmp_path / f"p{i}")))
    n, kills, files = trials(40), 0, 0
    for trial in range(n):
        task_dir = failed_task(tmp_path / f"s{trial}")
        group = task_dir.parent
        kills += fork_and_kill(functools.partial(restart_once, task_dir), rng.uniform(0, span))
        files += assert_files_parse(group)
        attempts = TaskGroup.from_directory(group, strict_mode=True).tasks
        assert len(attempts) in (1, 2) and task_dir.is_dir()
        restart_once(task_dir)  # rerun
        attempts = TaskGroup.from_directory(group, strict_mode=True).tasks
        assert len(attempts) == 2, "a restart was created twice (or not at all)"
        new = next(p for p in group.iterdir() if p.is_dir() and p != task_dir and
                   not p.name.startswith("."))  # fmt: skip
        assert (new / "big.dat").stat().st_size == 2_000_000  # carried over whole
    figures["crash: restarting a task"] = {
        "trials": n,
        "killed mid-work": kills,
        "files checked": files,
    }
    assert kills >= n // 5, f"only {kills} of {n} trials were killed before the end"


# -- harvesting -------------------------------------------------------------------------


def finished_study(root: Path, n: int) -> list[Path]:
    """A study of n successful tasks, each with an outputs.json."""
    _, paths = study_of_commands(root, {f"t{i}": "true" for i in range(n)}, count_runs=True)
    for i, path in enumerate(paths):
        (path / SETTINGS.OUTPUTS_FILE).write_text(json.dumps({"energy": -i, "run": 1}))
        (path / SETTINGS.ENDED_FILE).write_text(json.dumps({"time": 1.0, "exit_code": 0}))
    return paths


def test_killed_while_harvesting(tmp_path: Path, figures: dict[str, Any]) -> None:
    from autojob.harvest import archive

    rng = random.Random(9)
    paths = finished_study(tmp_path / "tree", 300)
    study = paths[0].parent.parent
    target = tmp_path / "archive.json"

    def energies(path: Path) -> list[Any]:
        return sorted((r["outputs"] or {}).get("energy") for r in json.loads(path.read_bytes()))

    def probe(i: int) -> Callable[[], object]:
        return functools.partial(archive, study, tmp_path / f"probe{i}.json", incremental=False)

    span = full_duration(probe)
    archive(study, target)
    n, kills = trials(40), 0
    for trial in range(n):
        before = target.read_bytes()
        changed = paths[trial % len(paths)]  # a task's outputs change, as a rerun would
        fresh = changed / "outputs.new"  # written anew and moved into place
        fresh.write_text(json.dumps({"energy": 1000 + trial}))
        fresh.replace(changed / SETTINGS.OUTPUTS_FILE)
        work = functools.partial(
            archive, study, target, incremental=rng.random() < 0.5, verify=rng.random() < 0.5
        )
        kills += fork_and_kill(work, rng.uniform(0, span))
        after = target.read_bytes()
        assert isinstance(json.loads(after), list)  # the old archive or the new: never half
        assert after == before or 1000 + trial in energies(target)
        archive(study, target)  # rerun (incremental: the cache must not hide the change)
        archive(study, tmp_path / "full.json", incremental=False)
        assert energies(target) == energies(tmp_path / "full.json")
        assert len(json.loads(target.read_bytes())) == len(paths)
    figures["crash: harvesting"] = {"trials": n, "killed mid-work": kills, "tasks": len(paths)}
    assert kills >= n // 5, f"only {kills} of {n} trials were killed before the end"
