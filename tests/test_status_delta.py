"""The status index keeps the rows a status changed in a delta beside it.

A status that re-reads a few tasks of many appends their rows to
``.autojob/status.delta`` instead of writing the whole index; the index is
written whole once the delta passes a tenth of the tasks. Whatever the mix,
the states reported must be those a full scan reads.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from autojob import SETTINGS
from autojob.store.journal import note_changed
from autojob.store.state import this_host
from autojob.store.status_delta import delta_path
from autojob.store.status_index import collect
from autojob.study import Study
from autojob.tasks.task import Task, TaskInputs, TaskMetadata


def make_study(tmp_path: Path, n: int) -> tuple[Path, list[Path]]:
    tasks = [
        Task(task_inputs=TaskInputs(command="true"), task_metadata=TaskMetadata(label=f"t{i}"))
        for i in range(n)
    ]
    study = Study(name="s", tasks=tasks).to_directory(tmp_path)
    dirs = sorted(p.parent for p in study.glob(f"*/*/{SETTINGS.TASK_METADATA_FILE}"))
    return study, dirs


def end(folders: list[Path], exit_code: int) -> None:
    """Record an end in each task as its script does (a new file renamed in), and journal it."""
    when = time.time()
    for folder in folders:
        record = {
            "time": when,
            "exit_code": exit_code,
            "job_id": "",
            "executor": "",
            "started_at": when - 1,
            "host": this_host(),
        }
        tmp = folder / ".ended.tmp"
        tmp.write_text(json.dumps(record) + "\n")
        os.replace(tmp, folder / SETTINGS.ENDED_FILE)
    note_changed(folders)


def states(study: Path, **options: bool) -> dict[str, str]:
    report = collect(study, **options)
    return {path: task.state.state.value for path, task in report.tasks.items()}


def index_bytes(study: Path) -> bytes:
    return (study / SETTINGS.INDEX_DIR / "status.index").read_bytes()


def test_a_few_changes_are_appended_and_many_rewrite_the_index(tmp_path: Path) -> None:
    study, dirs = make_study(tmp_path, 40)
    collect(study)  # the index, written whole
    whole = index_bytes(study)
    delta = Path(delta_path(os.path.realpath(study)))
    end(dirs[:2], 0)
    assert states(study) == states(study, use_index=False)
    assert index_bytes(study) == whole  # not rewritten: two rows appended
    assert len(delta.read_text().split()) == 1
    end(dirs[2:3], 1)
    seen = states(study)
    assert seen == states(study, use_index=False)
    assert list(seen.values()).count("success") == 2 and list(seen.values()).count("failed") == 1
    end(dirs[3:10], 0)  # past a tenth of the tasks: the index is written whole
    assert states(study) == states(study, use_index=False)
    assert index_bytes(study) != whole and not delta.exists()


def one_change_appended(tmp_path: Path) -> tuple[Path, list[Path], Path]:
    """A study of 40 tasks with its index, and one task's change in the delta."""
    study, dirs = make_study(tmp_path, 40)
    collect(study)
    end(dirs[:1], 0)
    collect(study)
    return study, dirs, Path(delta_path(os.path.realpath(study)))


def test_a_line_cut_short_is_skipped_and_its_tasks_read_again(tmp_path: Path) -> None:
    study, _, delta = one_change_appended(tmp_path)
    line = delta.read_bytes()
    delta.write_bytes(line[: len(line) // 2])  # a crash in the middle of the append
    assert states(study) == states(study, use_index=False)
    assert collect(study).reread == 0  # the journal read again once; nothing new since


def test_a_rescan_drops_the_delta(tmp_path: Path) -> None:
    study, dirs, delta = one_change_appended(tmp_path)
    assert delta.exists()
    collect(study, rescan=True)
    assert not delta.exists()
    end(dirs[1:2], 1)
    assert states(study) == states(study, use_index=False)
