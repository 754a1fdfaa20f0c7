"""The index of a large ``record.txt``: one bucket read per question, never a wrong answer.

Each test lowers the size from which a record is indexed, so that a record of a
few lines is asked through its index (the rule does not depend on the size),
and checks every answer against the record itself, read whole.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.next.advance import advance
from autojob.store import record_index
from autojob.store.completed_tasks import append_record, in_record, read_record, record_path

from .crash_helpers import killed_runs
from .workflow_helpers import finished_sweep, sweep_tasks


@pytest.fixture
def indexed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record of 64 bytes or more is asked through its index."""
    monkeypatch.setattr(record_index, "INDEX_FROM", 64)


@pytest.fixture
def record_bytes_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many bytes of a file each read of the index took from it."""
    sizes: list[int] = []
    real = record_index.read_range

    def counted(fd: int, start: int, end: int) -> bytes:
        data = real(fd, start, end)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(record_index, "read_range", counted)
    return sizes


def ids(n: int, prefix: str = "task") -> list[str]:
    return [f"{prefix}-{i:06d}" for i in range(n)]


def assert_answers_match_the_record(study: Path, asked: list[str]) -> None:
    truth = set(read_record(study))
    for task_id in asked:
        assert in_record(study, task_id) is (task_id in truth), task_id


def test_a_question_reads_a_bounded_part_of_a_large_record(
    tmp_path: Path, indexed: None, record_bytes_read: list[int]
) -> None:
    record_path(tmp_path).write_text("".join(f"{task_id}\n" for task_id in ids(30000)))
    size = record_path(tmp_path).stat().st_size
    assert in_record(tmp_path, "task-000007")  # builds the index: reads the record once
    assert sum(record_bytes_read) >= size
    buckets = record_index.index_dir(tmp_path)
    assert len([p for p in buckets.iterdir() if len(p.name) == 2]) == record_index.BUCKETS
    record_bytes_read.clear()
    for task_id in ("task-029999", "task-000000", "task-1", "absent"):
        assert in_record(tmp_path, task_id) is (task_id not in {"task-1", "absent"})
    # the start and the end of what is indexed, checked for each question: no more
    assert max(record_bytes_read) <= 4096
    assert sum(record_bytes_read) < size // 10
    # appending one id adds its line alone
    append_record(tmp_path, "task-new")
    record_bytes_read.clear()
    assert in_record(tmp_path, "task-new")
    assert b"task-new\n" in b"".join(
        (buckets / name).read_bytes() for name in os.listdir(buckets) if len(name) == 2
    )


@pytest.mark.parametrize("threshold", [64, 1 << 40], ids=["indexed", "searched"])
def test_whole_lines_only_through_the_index_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    monkeypatch.setattr(record_index, "INDEX_FROM", threshold)
    for task_id in ids(20):
        append_record(tmp_path, task_id)
    append_record(tmp_path, "j10")
    with record_path(tmp_path).open("a") as record:
        record.write("  j7 \nj99")  # by hand: spaces around an id, and a line being written
    assert in_record(tmp_path, "j10")
    assert in_record(tmp_path, "j7")
    assert not in_record(tmp_path, "j1")  # a prefix of a recorded id
    assert not in_record(tmp_path, "j99")  # not a whole line yet
    with record_path(tmp_path).open("a") as record:
        record.write("\n")  # now it is
    assert in_record(tmp_path, "j99")
    assert (record_index.index_dir(tmp_path) / "state").exists() is (threshold == 64)


def test_lines_appended_by_another_writer_are_found(tmp_path: Path, indexed: None) -> None:
    for task_id in ids(50):
        append_record(tmp_path, task_id)
    assert not in_record(tmp_path, "other-1")
    with record_path(tmp_path).open("a") as record:  # another tool's append
        record.write("other-1\nother-2\n")
    assert in_record(tmp_path, "other-1")
    assert in_record(tmp_path, "other-2")
    assert_answers_match_the_record(tmp_path, [*ids(60), "other-1", "other-3"])


def test_a_record_edited_by_hand_is_indexed_again(tmp_path: Path, indexed: None) -> None:
    for task_id in ids(50):
        append_record(tmp_path, task_id)
    assert in_record(tmp_path, "task-000010")
    path = record_path(tmp_path)
    # a line removed (the record shorter, then longer again by appends)
    lines = path.read_text().splitlines()
    lines.remove("task-000010")
    path.write_text("".join(f"{line}\n" for line in lines) + "late-1\nlate-2\n")
    assert not in_record(tmp_path, "task-000010")
    assert in_record(tmp_path, "late-2")
    # an id changed in place, the size the same
    assert in_record(tmp_path, "task-000020")
    path.write_text(path.read_text().replace("task-000020", "task-xxxx20"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert not in_record(tmp_path, "task-000020")
    assert in_record(tmp_path, "task-xxxx20")
    # the record replaced by another file (a new inode), then emptied
    replacement = tmp_path / "new.txt"
    replacement.write_text("fresh-1\n" * 20)
    replacement.replace(path)
    assert in_record(tmp_path, "fresh-1")
    assert not in_record(tmp_path, "late-1")
    path.write_text("")
    assert not in_record(tmp_path, "fresh-1")
    assert_answers_match_the_record(tmp_path, [*ids(60), "late-1", "fresh-1"])


@pytest.mark.parametrize(
    "damage", ["bucket deleted", "state broken", "state without size", "no state"]
)
def test_a_damaged_index_is_built_again(tmp_path: Path, indexed: None, damage: str) -> None:
    for task_id in ids(200):
        append_record(tmp_path, task_id)
    assert in_record(tmp_path, "task-000000")
    where = record_index.index_dir(tmp_path)
    if damage == "bucket deleted":
        for name in os.listdir(where):
            if len(name) == 2:
                (where / name).unlink()
    elif damage == "state broken":
        (where / "state").write_text('{"version": 1, "size": "many"')
    elif damage == "state without size":  # names a prefix the buckets do not hold
        (where / "state").write_text((where / "state").read_text().replace('"size": ', '"x": '))
    else:
        (where / "state").unlink()
    assert_answers_match_the_record(tmp_path, [*ids(210), "task-1"])


def test_an_index_that_cannot_be_written_leaves_the_record_searched(
    tmp_path: Path, indexed: None, caplog: pytest.LogCaptureFixture
) -> None:
    for task_id in ids(20):
        append_record(tmp_path, task_id)
    (tmp_path / SETTINGS.INDEX_DIR).write_text("a file where the index's directory goes\n")
    with caplog.at_level(logging.WARNING):
        assert in_record(tmp_path, "task-000003")
        assert not in_record(tmp_path, "task-000099")
    assert "cannot keep the record's index" in caplog.text
    assert str(tmp_path / SETTINGS.INDEX_DIR) in caplog.text


def test_answers_match_the_record_through_random_appends(tmp_path: Path, indexed: None) -> None:
    rng = random.Random(11)
    known = ids(400)
    for step in range(300):
        task_id = rng.choice(known)
        if rng.random() < 0.5 and not in_record(tmp_path, task_id):
            append_record(tmp_path, task_id)
        elif rng.random() < 0.1:
            with record_path(tmp_path).open("a") as record:
                record.write(f" {task_id}\t\n" if step % 2 else f"{task_id}\n")
        assert in_record(tmp_path, task_id) is (task_id in set(read_record(tmp_path)))
    assert_answers_match_the_record(tmp_path, known)


def record_once(study: Path, names: list[str]) -> None:
    """The interrupted work: each id recorded unless the record has it (as advance does)."""
    for task_id in names:
        if not in_record(study, task_id):
            append_record(study, task_id)


def test_killed_while_recording_through_the_index(tmp_path: Path, indexed: None) -> None:
    names = ids(300)
    n = kills = 0
    for study, killed in killed_runs(tmp_path, lambda s: record_once(s, names), 20, seed=7):
        n, kills = n + 1, kills + killed
        assert_answers_match_the_record(study, names)
        record_once(study, names)  # the rerun finishes the work
        assert sorted(set(read_record(study))) == names
        assert len(read_record(study)) == len(names)  # none twice
    assert kills >= n // 4, f"only {kills} of {n} trials were killed before the end"


def test_advancing_a_large_study_asks_the_index(tmp_path: Path, indexed: None) -> None:
    study = finished_sweep(tmp_path, 12)
    tasks = sweep_tasks(study)
    for task in tasks:
        assert advance(task).recorded
    assert (record_index.index_dir(study) / "state").exists()
    for task in tasks:  # again: nothing recorded twice, nothing made twice
        again = advance(task)
        assert not again.recorded and not again.created
    recorded = read_record(study)
    assert sorted(recorded) == sorted(set(recorded)) and len(recorded) == len(tasks)
