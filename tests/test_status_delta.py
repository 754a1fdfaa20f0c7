"""The status index keeps the rows a status changed in a delta beside it.

A status that re-reads a few tasks of many appends their rows to
``.autojob/status.delta`` instead of writing the whole index; the index is
written whole once the delta passes a twentieth of the tasks. Whatever the mix,
the states reported must be those a full scan reads.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.store import status_index
from autojob.store.status_delta import delta_path
from autojob.store.status_index import collect

from .helpers import run
from .status_helpers import end, make_study, states


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
    end(dirs[3:10], 0)  # past a twentieth of the tasks: the index is written whole
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


def every_row(study: Path, **options: Any) -> dict[str, tuple[object, ...]]:
    """Every column of every task, by path (the values a status holds)."""
    report = collect(study, **options)
    return {rel: tuple(report.row_values(rel)) for rel in report.rows}


@pytest.mark.parametrize("share", [0, 10**9], ids=["paths searched", "paths decoded"])
def test_many_warm_updates_hold_what_a_full_scan_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: int
) -> None:
    monkeypatch.setattr(status_index, "SEARCHED_SHARE", share)
    study, dirs = make_study(tmp_path, 60)
    collect(study)
    rng = random.Random(7)
    delta = Path(delta_path(os.path.realpath(study)))
    appended = rewritten = 0
    for _ in range(30):
        end(rng.sample(dirs, rng.randint(1, 4)), rng.choice([0, 1]))
        before = index_bytes(study)
        warm = every_row(study)
        appended += delta.exists()
        rewritten += index_bytes(study) != before
        assert warm == every_row(study, use_index=False)
    assert appended and rewritten  # both the delta and the whole index were exercised
    report = collect(study)
    assert report.source == "index" and len(report) == 60
    expected = Counter(states(study, use_index=False).values())
    done = run("status", "--json", study, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == dict(expected)


def test_a_delta_row_names_where_it_sits_and_a_wrong_place_is_not_trusted(
    tmp_path: Path,
) -> None:
    study, dirs, delta = one_change_appended(tmp_path)
    line = json.loads(delta.read_text())
    paths = sorted(collect(study, use_index=False).rows)  # the index's rows: in path order
    changed = os.path.relpath(dirs[0], study)
    assert line["at"] == [paths.index(changed)]
    line["at"] = [paths.index(changed) + 1]  # the row of another task
    delta.write_text("\n" + json.dumps(line) + "\n")
    end(dirs[1:2], 1)
    assert states(study) == states(study, use_index=False)  # found by its path instead
    assert list(states(study).values()).count("success") == 1


def test_a_delta_line_without_places_is_replayed_by_its_paths(tmp_path: Path) -> None:
    study, dirs, delta = one_change_appended(tmp_path)
    line = json.loads(delta.read_text())
    del line["at"]  # as the lines written before rows named their place
    delta.write_text("\n" + json.dumps(line) + "\n")
    end(dirs[1:2], 1)
    seen = states(study)
    assert seen == states(study, use_index=False)
    assert sorted(Counter(seen.values()).items()) == [("failed", 1), ("idle", 38), ("success", 1)]
