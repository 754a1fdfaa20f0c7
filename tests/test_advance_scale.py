"""Advancing a workflow costs time in what each advance writes, not in the study's size.

One advance lists all the task groups it makes in ``study.json`` with one
rewrite; in a large study the new ids wait in ``task_groups.pending`` and are
merged into ``study.json`` once they reach a share of it, so advancing from
each of N tasks rewrites it far fewer than N times. Whatever happens, a group
is never listed before it is complete, none is lost, and a killed advance is
finished by running it again.
"""

from __future__ import annotations

import functools
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autojob.next.advance as advance_module
from autojob import SETTINGS
from autojob.next.advance import advance
from autojob.store import atomic, study_list, walk
from autojob.store.completed_tasks import append_record, in_record, read_record
from autojob.study import Study

from .crash_helpers import assert_files_parse, fork_and_kill, full_duration, trials
from .workflow_helpers import finished_sweep, sweep_tasks


def group_ids_on_disk(study: Path) -> dict[str, str]:
    """Every task group directory in the study, by id."""
    found = {}
    for meta in study.glob(f"*/{SETTINGS.TASK_GROUP_METADATA_FILE}"):
        found[json.loads(meta.read_text())["task_group_id"]] = meta.parent.name
    return found


def listed(study: Path) -> list[str]:
    return list(json.loads((study / SETTINGS.STUDY_METADATA_FILE).read_text())["task_groups"])


@pytest.fixture
def study_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """The rewrites of any ``study.json``, as they happen."""
    writes: list[Path] = []
    real = atomic.write_atomic

    def counted(path: Path, *args: Any, **kwargs: Any) -> Any:
        if Path(path).name == SETTINGS.STUDY_METADATA_FILE:
            writes.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(atomic, "write_atomic", counted)
    yield writes


def test_one_advance_lists_all_its_new_groups_in_one_rewrite(
    tmp_path: Path, study_writes: list[Path]
) -> None:
    study = finished_sweep(tmp_path, 3, steps=("double", "triple"))
    before = listed(study)
    result = advance(sweep_tasks(study)[1])
    assert [p.parent.name for p in result.created] == ["double.x-1", "triple.x-1"]
    assert study_writes == [study / SETTINGS.STUDY_METADATA_FILE]  # once, for both groups
    assert listed(study) == [*before, *result.group_ids]
    loaded = Study.from_directory(study, strict_mode=True)
    assert len(loaded.task_groups) == 5
    assert not (study / SETTINGS.PENDING_TASK_GROUPS_FILE).exists()


def test_a_large_study_lists_new_groups_through_the_pending_file(
    tmp_path: Path, study_writes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(study_list, "DIRECT_BYTES", 0)  # every study counts as large
    study = finished_sweep(tmp_path, 40)
    pending = study / SETTINGS.PENDING_TASK_GROUPS_FILE
    for task in sweep_tasks(study):
        advance(task)
        # every group is listed or pending, each once; nothing listed is missing
        known = listed(study) + study_list.pending_task_groups(study)
        assert sorted(known) == sorted(group_ids_on_disk(study))
    assert 1 <= len(study_writes) <= 40 // 4, "study.json rewritten for (nearly) every advance"
    loaded = Study.from_directory(study, strict_mode=True)  # pending groups are the study's
    assert sorted(g.task_group_id for g in loaded.task_groups) == sorted(group_ids_on_disk(study))
    assert study_list.list_task_groups(study, [], merge=True)
    assert not pending.exists()
    assert sorted(listed(study)) == sorted(group_ids_on_disk(study))  # each once


def test_advancing_again_neither_records_nor_lists_twice(
    tmp_path: Path, study_writes: list[Path]
) -> None:
    study = finished_sweep(tmp_path, 2)
    task = sweep_tasks(study)[0]
    assert advance(task).recorded
    writes = len(study_writes)
    again = advance(task)
    assert not again.recorded and not again.created and again.existing
    assert len(study_writes) == writes
    assert read_record(study).count(task.name) == 1


def test_the_record_is_searched_by_whole_lines(tmp_path: Path) -> None:
    append_record(tmp_path, "j10")
    (tmp_path / SETTINGS.RECORD_FILE).open("a").write("  j7 \nj99")  # the last line: unfinished
    assert in_record(tmp_path, "j10")
    assert in_record(tmp_path, "j7")  # a line written by hand, with spaces
    assert not in_record(tmp_path, "j1")  # a prefix of a recorded id
    assert not in_record(tmp_path, "j99")  # a line being written is not read
    assert not in_record(tmp_path / "none", "j10")


# -- a dependent step waiting on every task ----------------------------------------------


@pytest.fixture
def study_listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories advance lists, as it lists them."""
    seen: list[str] = []
    real = walk.list_directory

    def counted(top: str, **kwargs: Any) -> Any:
        seen.append(os.path.normpath(top))
        return real(top, **kwargs)

    monkeypatch.setattr(advance_module, "list_directory", counted)
    return seen


def waiting_hints(study: Path) -> dict[str, Any]:
    path = study / advance_module.WAITING_FILE
    return dict(json.loads(path.read_text())) if path.exists() else {}


def advance_waiting(study: Path, tasks: list[Path]) -> list[Path]:
    """Advance from each task in turn: the total is made by the last, and only then."""
    made: list[Path] = []
    for number, task in enumerate(tasks, 1):
        result = advance(task)
        made.extend(result.created)
        if number < len(tasks):
            assert not result.created and result.waiting, f"made before task {number}"
    return made


@pytest.mark.parametrize("order", ["ascending", "shuffled", "descending"])
def test_a_dependent_step_does_not_list_the_study_at_each_advance(
    tmp_path: Path, study_listings: list[str], order: str
) -> None:
    n = 120
    study = finished_sweep(tmp_path, n, steps=("total",), progression="dependent")
    tasks = sorted(sweep_tasks(study), key=lambda t: t.parent.name)
    if order == "shuffled":
        random.Random(7).shuffle(tasks)
    elif order == "descending":
        tasks.reverse()
    made = advance_waiting(study, tasks)
    assert [p.parent.name for p in made] == ["total"]
    assert json.loads((made[0] / SETTINGS.INPUTS_FILE).read_text())["task_inputs"]["value"] == (
        list(range(n))
    )
    of_study = study_listings.count(os.path.normpath(study))
    # the group found not done is remembered and checked first; the study is listed again
    # only when that group is done: once or twice in name order, about ln(n) times shuffled;
    # in the reverse of name order the group found is always the next to finish
    bound = {"ascending": 3, "shuffled": 20, "descending": n + 1}[order]
    assert of_study <= bound, f"the study listed {of_study} times for {n} advances"
    if order != "descending":
        assert of_study < n // 4
    assert (
        not (study / advance_module.WAITING_FILE).exists()
        or json.loads((study / advance_module.WAITING_FILE).read_text()) == {}
    )


@pytest.mark.parametrize(
    "hint",
    [
        "not json",
        '["a list"]',
        '{"STEP": "../outside"}',
        '{"STEP": "missing-group"}',
        '{"STEP": 3}',
        '{"STEP": "x-0"}',  # a group whose task is done: the hint is stale
        '{"STEP": ".autojob"}',
        '{"STEP": ""}',
    ],
)
def test_a_wrong_waiting_hint_changes_nothing(tmp_path: Path, hint: str) -> None:
    n = 6
    study = finished_sweep(tmp_path, n, steps=("total",), progression="dependent")
    tasks = sorted(sweep_tasks(study), key=lambda t: t.parent.name)
    advance(tasks[0])
    (step_id,) = waiting_hints(study)  # the dependent step's id
    for task in tasks[1:]:
        (study / advance_module.WAITING_FILE).write_text(hint.replace("STEP", step_id))
        result = advance(task)
        if task != tasks[-1]:
            assert not result.created and result.waiting
    assert [p.parent.name for p in result.created] == ["total"]
    assert not (tmp_path.parent / "outside").exists()


def test_a_hint_naming_an_undone_group_keeps_the_step_waiting(tmp_path: Path) -> None:
    study = finished_sweep(tmp_path, 4, steps=("total",), progression="dependent")
    tasks = sorted(sweep_tasks(study), key=lambda t: t.parent.name)
    for task in tasks[:3]:
        advance(task)
    assert list(waiting_hints(study).values()) == [tasks[3].parent.name]
    assert len(Study.from_directory(study, strict_mode=True).task_groups) == 4  # not a group
    # a task of that group recorded by hand: the hint is checked, found stale, and the step
    # is made by the next advance, though nothing else changed
    append_record(
        study, json.loads((tasks[3] / SETTINGS.TASK_METADATA_FILE).read_text())["task_id"]
    )
    result = advance(tasks[0])
    assert [p.parent.name for p in result.created] == ["total"]


# -- killed mid-advance ------------------------------------------------------------------


def advance_all(study: Path) -> None:
    """The interrupted work: advance from every sweep task (rerunnable)."""
    for task in sweep_tasks(study):
        advance(task)


def check_consistent(study: Path) -> None:
    """What a killed advance may leave: only whole groups, listed ones all present."""
    assert_files_parse(study)
    on_disk = group_ids_on_disk(study)
    assert set(listed(study)) <= set(on_disk), "a listed group is missing"
    assert set(study_list.pending_task_groups(study)) <= set(on_disk)
    for name in on_disk.values():
        if name.startswith("double."):
            assert len(list((study / name).glob(f"*/{SETTINGS.TASK_METADATA_FILE}"))) == 1, name
    Study.from_directory(study, strict_mode=True)


@pytest.mark.slow
def test_killed_while_advancing_leaves_whole_groups_and_a_rerun_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(study_list, "DIRECT_BYTES", 0)  # the pending file is in play
    rng = random.Random(18)
    n = 12

    def probe(i: int) -> functools.partial[None]:
        (tmp_path / f"p{i}").mkdir()
        return functools.partial(advance_all, finished_sweep(tmp_path / f"p{i}", n))

    span = full_duration(probe)
    runs, kills = trials(24), 0
    for trial in range(runs):
        (tmp_path / f"t{trial}").mkdir()
        study = finished_sweep(tmp_path / f"t{trial}", n)
        kills += fork_and_kill(functools.partial(advance_all, study), rng.uniform(0, span))
        check_consistent(study)
        advance_all(study)  # the rerun
        check_consistent(study)
        names = sorted(os.listdir(study))
        assert [n for n in names if n.startswith("double.")] == sorted(
            f"double.{t.parent.name}" for t in sweep_tasks(study)
        )
        assert sorted(read_record(study)) == sorted(t.name for t in sweep_tasks(study))
    assert kills >= runs // 4, f"only {kills} of {runs} trials were killed before the end"
