"""The journal carries a copy of what a task script records, so status need not read it back.

A task script appends ``PATH\\x1fNAME\\x1fRECORD\\0`` to the status journals
above it (no newline: bash writes its output line by line, and an entry must
go out in one write not to interleave with another script's); a warm status
takes an ended task's state from the copy of its end, and reads the task's
files whenever the copy is not enough or a later entry without a copy names
the task.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.execution.local import LocalRunner
from autojob.execution.submit import DEFAULT_ONLY, plan, select_tasks
from autojob.store.journal import entry_with_record, journal_path, note_changed, read_journal
from autojob.store.state import read_state, state_from_end
from autojob.store.status_index import StatusReport, collect

from .helpers import study_of_commands, task_dir
from .status_helpers import make_study, states


def run_all(study: Path) -> None:
    runner = LocalRunner(plan(select_tasks([study], DEFAULT_ONLY)), max_parallel=2, grace=2)
    runner.claim(DEFAULT_ONLY)
    runner.run()


def test_the_task_scripts_ends_are_taken_from_the_journal(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {"ok": "true", "bad": "exit 3", "also": "true"})
    collect(study)  # an index and a journal
    run_all(study)
    warm = collect(study)
    assert warm.source == "index" and warm.reread == 3 and warm.from_journal == 3
    cold = collect(study, use_index=False)
    assert {p: e.state for p, e in warm.tasks.items()} == {
        p: e.state for p, e in cold.tasks.items()
    }
    assert warm.tasks[os.path.relpath(task_dir(study, "bad"), study)].state.exit_code == 3


def test_a_later_entry_without_a_copy_has_the_task_read_from_its_files(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {"ok": "true"})
    collect(study)
    run_all(study)
    folder = task_dir(study, "ok")
    record = json.loads((folder / SETTINGS.ENDED_FILE).read_bytes())
    (folder / SETTINGS.ENDED_FILE).write_text(json.dumps({**record, "exit_code": 9}))
    note_changed([folder])  # e.g. a repair: the files are the truth
    report = collect(study)
    assert report.from_journal == 0 and report.reread == 1
    assert report.tasks[os.path.relpath(folder, study)].state.state.value == "failed"


def append(study: Path, data: bytes) -> None:
    with open(journal_path(os.path.realpath(study)), "ab") as stream:
        stream.write(data)


def test_a_copy_that_is_not_enough_has_the_task_read_from_its_files(tmp_path: Path) -> None:
    study, dirs = make_study(tmp_path, 4)
    collect(study)
    end = {"time": 2.0, "exit_code": 0, "job_id": "", "started_at": 1.0, "host": "h"}
    for folder in dirs:
        (folder / SETTINGS.ENDED_FILE).write_text(json.dumps({**end, "executor": "local"}))
    real = [os.path.realpath(d) for d in dirs]
    append(study, entry_with_record(real[0], SETTINGS.ENDED_FILE, "{not json"))
    no_executor = json.dumps({**end, "executor": ""})  # then the claim names it
    append(study, entry_with_record(real[1], SETTINGS.ENDED_FILE, no_executor))
    started = json.dumps({"time": 1.0, "host": "h", "pid": 1, "job_id": "", "executor": "local"})
    append(study, entry_with_record(real[2], SETTINGS.STARTED_FILE, started))
    whole = json.dumps({**end, "executor": "local"})
    append(study, entry_with_record(real[3], SETTINGS.ENDED_FILE, whole))
    report = collect(study)
    assert report.reread == 4 and report.from_journal == 1  # the last one only
    assert states(study) == states(study, use_index=False)


def test_a_cancel_before_the_copy_of_an_end_makes_the_task_cancelled(tmp_path: Path) -> None:
    # the cancel file is looked for beside each copy taken: a cancel asked before
    # the end may have no entry of its own after it
    study, dirs = make_study(tmp_path, 3)
    collect(study)
    end = {"time": 2.0, "exit_code": 143, "job_id": "", "started_at": 1.0, "host": "h"}
    record = json.dumps({**end, "executor": "local"})
    (dirs[1] / SETTINGS.CANCEL_FILE).write_text("")
    for folder in dirs:
        (folder / SETTINGS.ENDED_FILE).write_text(record)
        append(study, entry_with_record(os.path.realpath(folder), SETTINGS.ENDED_FILE, record))
    report = collect(study)
    assert report.from_journal == 3
    got = {p: e.state.state.value for p, e in report.tasks.items()}
    assert got[os.path.relpath(dirs[1], study)] == "cancelled"
    assert sorted(got.values()) == ["cancelled", "failed", "failed"]
    assert states(study) == states(study, use_index=False)


def test_the_scripts_entries_hold_no_newline_so_they_go_out_in_one_write(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {"ok": "true", "bad": "exit 3"})
    collect(study)
    journal = Path(journal_path(os.path.realpath(study)))
    before = journal.stat().st_size
    run_all(study)
    entries = journal.read_bytes()[before:].split(b"\0")
    assert entries[-1] == b""
    copies = [e for e in entries[:-1] if b"\x1f" in e]
    assert len(copies) == 4  # a start and an end each
    assert not any(b"\n" in e for e in entries)


def test_a_record_too_long_for_one_write_is_named_without_its_copy(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d" * 60] * 16)  # a path of about 1,000 bytes
    deep.mkdir(parents=True)
    study, _ = study_of_commands(deep, {"ok": "true"})
    collect(study)
    journal = Path(journal_path(os.path.realpath(study)))
    before = journal.stat().st_size
    run_all(study)
    entries = journal.read_bytes()[before:].split(b"\0")[:-1]
    folder = os.fsencode(os.path.realpath(task_dir(study, "ok")))
    assert entries and all(e == folder for e in entries)
    report = collect(study)
    assert report.from_journal == 0 and states(study) == states(study, use_index=False)


def test_interleaved_entries_of_older_scripts_have_every_task_read(tmp_path: Path) -> None:
    # scripts rendered before wrote PATH\nNAME\nRECORD\0 in three writes, which
    # the writes of another script ending at once could split
    journal = tmp_path / "journal"
    end = SETTINGS.ENDED_FILE
    journal.write_bytes(
        f"/a\n/b\n{end}\n{{}}\0{end}\n{{}}\0".encode()  # a's path, b's, a's rest, b's rest
        + f"/c\n{end}\n/d\n{end}\n{{}}\0{{}}\0".encode()  # c's first two lines, d's, c's last
        + f"/e\n{end}\n{{}}\0".encode()  # whole
    )
    found, _ = read_journal(str(journal), 0)
    # the torn entries are kept whole too (no such path: nothing is read there)
    named = {p: copy for p, copy in found.items() if p.startswith("/") and "\n" not in p}
    assert named == {"/a": None, "/b": None, "/c": None, "/d": None, "/e": (end, "{}")}


def test_a_path_holding_a_newline_is_a_plain_entry(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    odd = str(tmp_path / "a\nb")
    odder = str(tmp_path / "c\nd")
    journal.write_bytes(
        f"{odd}\0".encode()
        + entry_with_record("/t", SETTINGS.ENDED_FILE, "{}")
        + entry_with_record(odder, SETTINGS.ENDED_FILE, "{}")
        + b"/u\n"
    )
    found, offset = read_journal(str(journal), 0)
    assert found == {
        odd: None,
        str(tmp_path / "a"): None,  # as if older scripts' entries interleaved: read too
        "/t": (SETTINGS.ENDED_FILE, "{}"),
        odder: (SETTINGS.ENDED_FILE, "{}"),
    }  # "/u" not yet whole
    assert offset == journal.stat().st_size - len(b"/u\n")


def test_an_end_alone_gives_the_state_its_files_give(tmp_path: Path) -> None:
    record = {
        "time": 20.5,
        "exit_code": 1,
        "job_id": "7_1",
        "executor": "slurm",
        "started_at": 10.25,
        "host": "n1",
        "reason": "not_converged",
    }
    (tmp_path / SETTINGS.ENDED_FILE).write_text(json.dumps(record) + "\n")
    assert state_from_end(record, cancel=False) == read_state(tmp_path)
    (tmp_path / SETTINGS.CANCEL_FILE).write_text("")
    del record["reason"]
    (tmp_path / SETTINGS.ENDED_FILE).write_text(json.dumps(record) + "\n")
    cancelled = state_from_end(record, cancel=True)
    assert cancelled == read_state(tmp_path) and cancelled is not None
    assert cancelled.state.value == "cancelled"


def test_tasks_removed_and_journalled_are_dropped_in_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study, dirs = make_study(tmp_path, 30)
    collect(study)
    removed = dirs[:10]
    for folder in removed:
        shutil.rmtree(folder)
    whole_group = dirs[10].parent  # a task group removed with its task
    shutil.rmtree(whole_group)
    note_changed([*removed, whole_group, study / "never-there"])
    drops: list[list[str]] = []
    drop = StatusReport.drop

    def counted(self: StatusReport, rels: list[str]) -> None:
        drops.append(list(rels))
        drop(self, rels)

    monkeypatch.setattr(StatusReport, "drop", counted)
    report = collect(study)
    # one pass over the rows for every path gone, not one per path
    assert len(drops) == 1 and len(drops[0]) == 11
    assert len(report.tasks) == 19
    monkeypatch.undo()
    assert states(study) == states(study, use_index=False)
