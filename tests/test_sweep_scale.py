"""Sweeps that grow a study, and --dry-run, take one combination at a time.

What is checked is structural: no list of every combination is made
(``SweepSpec.combinations`` and ``build_study`` refuse to run), and at most
the group being written is alive while later ones are made (weak references
to the groups built die as the next are built).
"""

from __future__ import annotations

import gc
import json
import os
import tomllib
import weakref
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from autojob import SETTINGS
from autojob.cli.app import cli
from autojob.create import sweep as create_sweep
from autojob.create.sweep import SAMPLE, CombinationKeys, load_spec, sweep_into
from autojob.errors import AutojobError
from autojob.store import atomic
from autojob.store.names import STAGING_PREFIX
from autojob.study import Study
from autojob.sweep import SweepSpec
from autojob.task_group import TaskGroup


def spec_text(n: int, files: bool = False) -> str:
    text = f'name = "grow"\ncommand = "echo {{x}}"\n[parameters]\nx = {list(range(n))}\n'
    return ('files = [{src = "in/{x}.txt", dest = "in.txt"}]\n' if files else "") + text


@pytest.fixture
def alive(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many groups built by a sweep are alive, counted every 25 groups.

    Listing every combination, or building the whole study, fails the test.
    """
    counts: list[int] = []
    real = create_sweep.sweep_groups  # type: ignore[attr-defined]

    def tracked(spec: SweepSpec, **how: Any) -> Iterator[tuple[int, TaskGroup]]:
        refs: list[weakref.ref[TaskGroup]] = []
        for number, (index, group) in enumerate(real(spec, **how)):
            if number % 25 == 24:
                gc.collect()
                counts.append(sum(ref() is not None for ref in refs))
            refs.append(weakref.ref(group))
            yield index, group

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("every combination was listed")

    monkeypatch.setattr(create_sweep, "sweep_groups", tracked)
    monkeypatch.setattr(create_sweep, "build_study", refused)
    monkeypatch.setattr(SweepSpec, "combinations", refused)
    yield counts


def test_dry_run_checks_and_shows_one_combination_at_a_time(
    tmp_path: Path, alive: list[int]
) -> None:
    (tmp_path / "spec.toml").write_text(spec_text(300))
    result = CliRunner().invoke(
        cli, ["sweep", str(tmp_path / "spec.toml"), "-d", str(tmp_path), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "300 combination(s) of grow" in result.output
    assert "250 more combination(s)" in result.output
    assert len(alive) == 12 and max(alive) <= 2  # every combination built, one at a time
    assert sorted(os.listdir(tmp_path)) == ["spec.toml"]  # nothing written


def test_dry_run_refuses_a_later_combination_as_the_run_would(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for x in range(4):  # the file of x = 4 is missing
        (tmp_path / "in" / f"{x}.txt").write_text(f"{x}\n")
    (tmp_path / "spec.toml").write_text(spec_text(5, files=True))
    result = CliRunner().invoke(
        cli, ["sweep", str(tmp_path / "spec.toml"), "-d", str(tmp_path), "--dry-run"]
    )
    assert isinstance(result.exception, AutojobError)
    assert "combination 4" in str(result.exception) and "4.txt" in str(result.exception)


def test_growing_a_study_writes_one_combination_at_a_time(tmp_path: Path, alive: list[int]) -> None:
    (tmp_path / "spec.toml").write_text(spec_text(100))
    first = sweep_into(load_spec(tmp_path / "spec.toml"), tmp_path)
    before = json.loads((first.path / SETTINGS.STUDY_METADATA_FILE).read_text())["task_groups"]
    (tmp_path / "spec.toml").write_text(spec_text(250))
    alive.clear()
    grown = sweep_into(load_spec(tmp_path / "spec.toml"), tmp_path)
    assert grown.grown and grown.added == 150 and grown.existing == 100
    assert len(grown.study.task_groups) == SAMPLE  # what it says it added, not all of it
    # only the new combinations, one at a time (and the first ones, kept to say what was added)
    assert len(alive) == 6 and max(alive) <= SAMPLE + 2
    listed = json.loads((first.path / SETTINGS.STUDY_METADATA_FILE).read_text())["task_groups"]
    assert listed[:100] == before and len(set(listed)) == 250
    loaded = Study.from_directory(first.path, strict_mode=True)
    assert [t.task_inputs.command for t in loaded.tasks] == [f"echo {x}" for x in range(250)]
    assert not [n for n in os.listdir(first.path) if n.startswith(STAGING_PREFIX)]


def test_a_grow_refused_at_a_later_combination_leaves_the_study_as_it_was(
    tmp_path: Path,
) -> None:
    (tmp_path / "in").mkdir()
    for x in range(8):  # the file of x = 8 is missing
        (tmp_path / "in" / f"{x}.txt").write_text(f"{x}\n")
    (tmp_path / "spec.toml").write_text(spec_text(4, files=True))
    study = sweep_into(load_spec(tmp_path / "spec.toml"), tmp_path).path
    names = sorted(os.listdir(study))
    meta = (study / SETTINGS.STUDY_METADATA_FILE).read_bytes()
    (tmp_path / "spec.toml").write_text(spec_text(9, files=True))
    with pytest.raises(AutojobError, match="combination 8"):
        sweep_into(load_spec(tmp_path / "spec.toml"), tmp_path)
    assert sorted(os.listdir(study)) == names  # x-4 .. x-7 were written, none appeared
    assert (study / SETTINGS.STUDY_METADATA_FILE).read_bytes() == meta


def test_combination_keys_hold_each_key_once() -> None:
    keys = CombinationKeys()
    for i in range(5000):  # past several growths of the table
        keys.add(json.dumps([i]))
    keys.add(json.dumps([7]))
    assert len(keys) == 5000
    assert all(json.dumps([i]) in keys for i in range(5000))
    assert not any(json.dumps([i]) in keys for i in range(5000, 6000))
    assert 7 not in keys


def test_growing_a_study_never_holds_its_list_of_task_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``study.json`` is read a piece at a time: never parsed whole, its old ids copied."""
    (tmp_path / "spec.toml").write_text(spec_text(40))
    study = sweep_into(load_spec(tmp_path / "spec.toml"), tmp_path).path
    meta = study / SETTINGS.STUDY_METADATA_FILE
    before = json.loads(meta.read_text())
    parsed: list[str] = []
    real = atomic.parse_json_object

    def watched(raw: bytes, path: str | Path) -> dict[str, Any]:
        parsed.append(os.path.basename(path))
        return real(raw, path)

    monkeypatch.setattr(atomic, "parse_json_object", watched)
    (tmp_path / "spec.toml").write_text(spec_text(100))
    grown = sweep_into(load_spec(tmp_path / "spec.toml"), tmp_path)
    assert grown.added == 60 and parsed.count(SETTINGS.TASK_GROUP_METADATA_FILE) >= 40
    assert SETTINGS.STUDY_METADATA_FILE not in parsed
    after = json.loads(meta.read_text())
    assert after["task_groups"][:40] == before["task_groups"] and len(after["task_groups"]) == 100
    assert {k: v for k, v in after.items() if k != "task_groups"} == {
        k: v for k, v in before.items() if k != "task_groups"
    }
    assert list(after) == list(before)  # the members in their place


def test_a_parsed_spec_holds_its_lists_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lists a spec's TOML gives are the spec's own: not copied by validation."""
    made: list[dict[str, Any]] = []
    real = tomllib.loads

    def kept(text: str) -> dict[str, Any]:
        made.append(real(text))
        return made[-1]

    monkeypatch.setattr(tomllib, "loads", kept)
    (tmp_path / "spec.toml").write_text(spec_text(50))
    spec = load_spec(tmp_path / "spec.toml")
    assert spec.parameters["x"] is made[0]["parameters"]["x"]
    given = {"x": list(range(3))}  # a spec built in code validates (copies) as any model
    assert (
        SweepSpec(name="s", command="echo {x}", parameters=given).parameters["x"] is not given["x"]
    )


def test_a_long_list_of_integers_is_held_compact_and_reads_as_the_list(tmp_path: Path) -> None:
    n = create_sweep.COMPACT_LENGTH
    spec_file = tmp_path / "spec.toml"
    x, y = list(range(n)), [-(2**62) + i for i in range(n)]
    spec_file.write_text(f'name = "s"\ncommand = "echo {{x}} {{y}}"\n[zip]\nx = {x}\ny = {y}\n')
    spec = load_spec(spec_file)
    assert all(isinstance(values, array) for values in spec.zip.values())
    assert list(spec.zip["x"]) == x
    combinations = list(spec.iter_combinations())
    assert combinations == [{"x": a, "y": b} for a, b in zip(x, y, strict=True)]
    assert type(combinations[0]["x"]) is int
    assert spec.label_of(combinations[3], 3) == f"x-3_y-{-(2**62) + 3}"
    assert spec.command_of(combinations[3]) == f"echo 3 {-(2**62) + 3}"


@pytest.mark.parametrize(
    "values",
    [[*range(1500), True], [*range(1500), 2**70], [*range(1500), 1.5], list(range(999))],
    ids=["a boolean", "beyond 64 bits", "a float", "a short list"],
)
def test_a_list_of_other_values_stays_a_list(tmp_path: Path, values: list[Any]) -> None:
    text = f'name = "s"\ncommand = "echo {{x}}"\n[parameters]\nx = {json.dumps(values)}\n'
    (tmp_path / "spec.toml").write_text(text)
    spec = load_spec(tmp_path / "spec.toml")
    assert type(spec.parameters["x"]) is list
    assert spec.parameters["x"] == values
    assert [type(v) for v in spec.parameters["x"]] == [type(v) for v in values]


def test_combination_keys_sized_for_the_keys_expected_do_not_grow() -> None:
    keys = CombinationKeys(expected=3000)
    table = keys._slots
    for i in range(3000):
        keys.add(json.dumps([i]))
    assert keys._slots is table and len(keys) == 3000  # no copy made while filling
    assert all(json.dumps([i]) in keys for i in range(3000))
