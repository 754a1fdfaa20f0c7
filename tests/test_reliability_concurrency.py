"""Concurrency: many processes finishing tasks at the same moment lose no update.

64 real task scripts end together (their state records, the status journal),
and 64 processes add tasks to one task group and one study at once (the
read-modify-write of the shared metadata files, under their lock). Every
update must be there, every line whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.execution.local import LocalRunner
from autojob.execution.submit import DEFAULT_ONLY, plan, select_tasks
from autojob.store.journal import journal_path
from autojob.store.state import State, read_state
from autojob.store.status_index import collect
from autojob.study import Study
from autojob.task_group import TaskGroup

from .helpers import study_of_commands, wait_until

pytestmark = pytest.mark.slow

PROCESSES = 64


def test_64_task_scripts_ending_at_once(tmp_path: Path, figures: dict[str, Any]) -> None:
    go = tmp_path / "go"
    # every command waits for the same file, so all 64 end within a few ms
    command = f"while [ ! -e {go} ]; do sleep 0.005; done"
    study, _ = study_of_commands(tmp_path, {f"t{i}": command for i in range(PROCESSES)})
    collect(study)  # an index, so every ending task appends to the journal
    runner = LocalRunner(plan(select_tasks([study])), max_parallel=PROCESSES)
    runner.claim(DEFAULT_ONLY)
    paths = [s.path for s in runner.specs]
    assert len(paths) == PROCESSES
    results: dict[Path, Any] = {}
    thread = threading.Thread(target=lambda: results.update(runner.run()))
    thread.start()
    wait_until(
        lambda: sum(read_state(p).state is State.RUNNING for p in paths) == PROCESSES,
        60,
        "every script to start",
        interval=0.05,
    )
    journal = Path(journal_path(study))
    before = journal.stat().st_size
    go.touch()
    thread.join(timeout=120)
    assert all(s.state is State.SUCCESS for s in results.values())
    for path in paths:
        ended = json.loads((path / SETTINGS.ENDED_FILE).read_bytes())
        assert ended["exit_code"] == 0
    entries = journal.read_bytes()[before:].split(b"\0")
    assert entries[-1] == b""  # every entry whole
    # each entry the task, the record's name and a copy of the record written (a start
    # noted just after its file was seen is there too)
    copies = [e.decode().split("\x1f") for e in entries[:-1]]
    named = {folder for folder, name, _ in copies if name == SETTINGS.ENDED_FILE}
    assert named == {os.path.realpath(p) for p in paths}  # none lost, none torn
    for folder, name, record in copies:
        assert name in (SETTINGS.STARTED_FILE, SETTINGS.ENDED_FILE)
        assert json.loads(record) == json.loads((Path(folder) / name).read_bytes())
    report = collect(study)
    assert report.source == "index"
    assert report.counts() == {(None, "success"): PROCESSES}
    figures["concurrency: task scripts ending at once"] = {
        "processes": PROCESSES,
        "journal entries": len(named),
        "lost or torn": PROCESSES - len(named),
    }


ADD = """
import sys, time
from pathlib import Path
from autojob.next import create_task_tree, create_task_group_tree
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskMetadata
study, group, go, i = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
go.with_name("ready-" + i).touch()
while not go.exists():
    time.sleep(0.002)
create_task_tree(Task(task_metadata=TaskMetadata(label="p" + i)), group)
create_task_group_tree(TaskGroup(label="g" + i), study)
"""


def test_64_processes_adding_to_one_group_and_one_study(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    study = Study(name="s", task_groups=[TaskGroup(label="shared")]).to_directory(
        tmp_path, study_template="{name}", task_group_template="{label}"
    )
    group, go = study / "shared", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ADD, str(study), str(group), str(go), str(i)],
            stderr=subprocess.PIPE,
        )
        for i in range(PROCESSES)
    ]
    try:
        wait_until(
            lambda: all((tmp_path / f"ready-{i}").exists() for i in range(PROCESSES)),
            120,
            "every process to reach the barrier",
            details=lambda: f"processes that failed: {[p.poll() for p in procs if p.poll()]}",
        )
    finally:
        go.touch()  # (on a failure too: none is left waiting)
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    listed_tasks = json.loads((group / SETTINGS.TASK_GROUP_METADATA_FILE).read_bytes())["tasks"]
    listed_groups = json.loads((study / SETTINGS.STUDY_METADATA_FILE).read_bytes())["task_groups"]
    assert len(listed_tasks) == len(set(listed_tasks)) == PROCESSES
    assert len(listed_groups) == len(set(listed_groups)) == PROCESSES + 1
    loaded = Study.from_directory(study, strict_mode=True)  # lists and disk agree
    assert len(loaded.task_groups) == PROCESSES + 1
    figures["concurrency: adding to shared metadata files"] = {
        "processes": PROCESSES,
        "updates": 2 * PROCESSES,
        "lost": 2 * PROCESSES - len(listed_tasks) - len(listed_groups) + 1,
    }
