"""archive() and load_archive(): formats, atomic writes, round trips, the cache."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autojob import SETTINGS
from autojob.errors import InputError, MetadataError, MissingFileError
from autojob.harvest import (
    Attempts,
    HarvestedTask,
    Harvester,
    Problem,
    TaskFiles,
    archive,
    harvest,
    load_archive,
    register_harvester,
)
from autojob.harvest import cache as cache_module
from autojob.harvest.cache import cache_path, previous_count
from autojob.harvest.harvesters import _registered
from autojob.next import create_task_tree
from autojob.tasks.task import Task, TaskInputs
from tests.harvest_helpers import WRITE_OUTPUTS, age, by_label, finished_sweep, run_task, sweep

# -- formats --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_archives_load_back_as_harvested(tmp_path: Path, fmt: str) -> None:
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    out = tmp_path / f"archive.{fmt}"

    summary = archive(sg_dir, out, strict=True)

    assert (summary.tasks, summary.reread, summary.cached) == (3, 3, 0)
    assert summary.states == {"success": 1, "failed": 1, "idle": 1}
    assert load_archive(out) == list(harvest(sg_dir, strict=True))
    text = out.read_text()
    if fmt == "json":
        assert isinstance(json.loads(text), list)
    else:
        assert [json.loads(line)["path"] for line in text.splitlines()] == sorted(
            t.path for t in load_archive(out)
        )


def test_default_archive_name_and_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    monkeypatch.chdir(tmp_path)
    archive(sg_dir, strict=True)
    assert len(load_archive(tmp_path / SETTINGS.ARCHIVE_FILE)) == 3
    archive(sg_dir, fmt="csv", strict=True)
    assert (tmp_path / "archive.csv").is_file()


def test_csv_flattens_nested_fields_into_dotted_columns(tmp_path: Path) -> None:
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    out = tmp_path / "archive.csv"
    archive(sg_dir, out, strict=True)

    with out.open(newline="") as stream:
        rows = list(csv.DictReader(stream))

    assert len(rows) == 3
    columns = set(rows[0])
    assert {"path", "metadata.label", "inputs.task_inputs.command", "state.state"} <= columns
    assert {"outputs.energy", "outputs.converged", "attempts.current"} <= columns
    assert "outputs" not in columns  # null where none was written: its leaves stand for it
    ok = next(r for r in rows if r["metadata.label"] == "t0")
    failed = next(r for r in rows if r["metadata.label"] == "t1")
    assert (ok["outputs.energy"], ok["outputs.converged"]) == ("-1.5", "true")
    assert ok["outputs.bands"] == "[1,2]"
    assert ok["metadata.tags"] == '["sweep"]'
    assert failed["outputs.energy"] == ""
    assert failed["state.exit_code"] == "3"


def test_parquet_has_typed_columns(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    out = tmp_path / "archive.parquet"
    archive(sg_dir, out, strict=True)

    table = pq.read_table(out)

    assert table.num_rows == 3
    types = {field.name: str(field.type) for field in table.schema}
    assert types["outputs.energy"] == "double"
    assert types["outputs.converged"] == "bool"
    assert types["state.exit_code"] == "int64"
    assert types["metadata.label"] == "string"
    assert types["outputs.bands"] == "string"  # lists are kept as JSON text
    rows = {r["metadata.label"]: r for r in table.to_pylist()}
    assert rows["t0"]["outputs.energy"] == -1.5
    assert rows["t0"]["outputs.bands"] == "[1,2]"
    assert rows["t1"]["outputs.energy"] is None


def test_unknown_format_and_flat_tables_do_not_load(tmp_path: Path) -> None:
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    with pytest.raises(InputError, match="unknown archive format 'xml'"):
        archive(sg_dir, tmp_path / "a.xml", fmt="xml")
    archive(sg_dir, tmp_path / "a.csv", strict=True)
    with pytest.raises(InputError, match="flat table"):
        load_archive(tmp_path / "a.csv")
    with pytest.raises(MissingFileError):
        load_archive(tmp_path / "none.json")


def test_a_broken_archive_names_record_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "a.json"
    bad.write_text('[{"path": "x", "attempts": {"number": 0}}]')
    with pytest.raises(MetadataError, match="greater than or equal to 1") as caught:
        load_archive(bad)
    assert caught.value.field == "0.attempts.number"
    bad.write_text("[{")
    with pytest.raises(MetadataError, match="not an archive"):
        load_archive(bad)
    lines = tmp_path / "a.jsonl"
    lines.write_text('{"path": "x"}\n{"path": 3')
    with pytest.raises(MetadataError, match="line 2: not an archive"):
        load_archive(lines)
    lines.write_text('{"path": "x"}\n{"path": 3}\n')
    with pytest.raises(MetadataError, match="line 2") as caught:
        load_archive(lines)
    assert caught.value.field == "path"


# -- atomic writes ---------------------------------------------------------------------


class Interrupting(Harvester):
    """Fails half-way through a harvest, as Ctrl-C would."""

    name = "interrupting"
    seen = 0

    def harvest(self, task: TaskFiles) -> dict[str, Any] | None:
        Interrupting.seen += 1
        if Interrupting.seen == 2:
            raise KeyboardInterrupt
        return None


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_a_failed_harvest_leaves_the_old_archive(tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    out = tmp_path / f"archive.{fmt}"
    archive(sg_dir, out, strict=True)
    before = out.read_bytes()
    cache_before = cache_path(out).read_bytes()
    listing = sorted(os.listdir(tmp_path))

    (dirs[2] / SETTINGS.OUTPUTS_FILE).write_text("{broken")
    with pytest.raises(MetadataError):
        archive(sg_dir, out, fmt=fmt, strict=True)
    register_harvester(Interrupting())
    try:
        Interrupting.seen = 0
        with pytest.raises(KeyboardInterrupt):
            archive(sg_dir, out, fmt=fmt, strict=False, harvesters=["interrupting"])
    finally:
        _registered.pop("interrupting")

    assert out.read_bytes() == before
    assert cache_path(out).read_bytes() == cache_before
    assert sorted(os.listdir(tmp_path)) == listing  # no temporary file left


def test_a_first_failed_harvest_writes_nothing(tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    (dirs[0] / SETTINGS.TASK_METADATA_FILE).write_text("")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MetadataError, match="empty"):
        archive(sg_dir, out / "archive.jsonl", strict=True)
    assert os.listdir(out) == []


# -- round trip (property) -------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_objects = st.dictionaries(st.text(max_size=6), _json, max_size=4)
_paths = st.text(min_size=1, max_size=12).filter(lambda p: "\x00" not in p)
_problems = st.builds(
    Problem,
    path=st.none() | _paths,
    field=st.none() | st.text(max_size=6),
    message=st.text(max_size=20),
    kind=st.sampled_from(["MetadataError", "MissingFileError", "PluginError"]),
)
_tasks = st.builds(
    HarvestedTask,
    path=_paths,
    metadata=_objects,
    inputs=_objects,
    outputs=st.none() | _objects,
    state=_objects,
    scheduler=st.none() | _objects,
    history=st.lists(_objects, max_size=2),
    harvesters=st.lists(st.text(max_size=6), max_size=2),
    problems=st.lists(_problems, max_size=2),
    attempts=st.builds(
        Attempts,
        group=st.none() | _paths,
        number=st.integers(min_value=1, max_value=5),
        count=st.integers(min_value=1, max_value=5),
        current=st.booleans(),
        tasks=st.lists(_paths, max_size=3),
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tasks=st.lists(_tasks, max_size=5), fmt=st.sampled_from(["json", "jsonl"]))
def test_archive_round_trip_is_lossless(
    tmp_path: Path, tasks: list[HarvestedTask], fmt: str
) -> None:
    out = tmp_path / f"archive.{fmt}"
    summary = archive(tasks, out)
    assert summary.tasks == len(tasks)
    assert load_archive(out) == tasks


def test_values_json_cannot_hold_survive_as_python_reads_them(tmp_path: Path) -> None:
    _, dirs = sweep(tmp_path / "tree", ["true"])
    run_task(dirs[0])
    (dirs[0] / SETTINGS.OUTPUTS_FILE).write_text('{"energy": NaN, "e2": Infinity}')
    out = tmp_path / "a.json"
    archive(dirs[0], out, strict=True)
    (task,) = load_archive(out)
    assert task.outputs is not None
    assert task.outputs["energy"] != task.outputs["energy"]  # NaN
    assert task.outputs["e2"] == float("inf")


# -- incremental harvests -------------------------------------------------------------------


def _cached_tree(tmp_path: Path) -> tuple[Path, list[Path], Path]:
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    age(sg_dir)  # files settled long ago can be trusted by their stamps
    out = tmp_path / "archive.json"
    first = archive(sg_dir, out, strict=True)
    assert (first.reread, first.cached) == (3, 0)
    return sg_dir, dirs, out


def test_second_harvest_rereads_only_what_changed(tmp_path: Path) -> None:
    sg_dir, dirs, out = _cached_tree(tmp_path)
    first = out.read_bytes()

    again = archive(sg_dir, out, strict=True)
    # the idle task is not settled (it may be submitted any time): always read
    assert (again.reread, again.cached) == (1, 2)
    assert out.read_bytes() == first

    # written anew and moved into place, as autojob and most programs write files
    outputs = dirs[0] / SETTINGS.OUTPUTS_FILE
    fresh = outputs.with_name("outputs.new")
    fresh.write_text(outputs.read_text().replace("-1.5", "-2.5"))
    fresh.replace(outputs)
    changed = archive(sg_dir, out, strict=True)
    assert (changed.reread, changed.cached) == (2, 1)
    assert load_archive(out) == list(harvest(sg_dir, strict=True))
    assert by_label(load_archive(out))["t0"].outputs == {
        "energy": -2.5,
        "converged": True,
        "bands": [1, 2],
    }


def _verified(out: Path) -> float:
    header = json.loads(cache_path(out).read_text().splitlines()[0])
    return float(header["verified"])


def _set_verified(out: Path, when: float) -> None:
    cache = cache_path(out)
    lines = cache.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["verified"] = when
    lines[0] = json.dumps(header, separators=(",", ":")) + "\n"
    cache.write_text("".join(lines))


def test_files_rewritten_in_place_are_seen_when_every_file_is_checked(tmp_path: Path) -> None:
    sg_dir, dirs, out = _cached_tree(tmp_path)
    checked_at = _verified(out)
    # rewritten in place (open for writing, truncated): the directory is unchanged
    outputs = dirs[0] / SETTINGS.OUTPUTS_FILE
    outputs.write_text(outputs.read_text().replace("-1.5", "-2.5"))

    # within HARVEST_VERIFY_AGE of the last check of every file, directories are checked
    quick = archive(sg_dir, out, strict=True)
    assert (quick.reread, quick.cached) == (1, 2)
    assert by_label(load_archive(out))["t0"].outputs["energy"] == -1.5  # type: ignore[index]
    assert _verified(out) == checked_at  # this harvest did not check every file

    verified = archive(sg_dir, out, strict=True, verify=True)
    assert (verified.reread, verified.cached) == (2, 1)
    assert by_label(load_archive(out))["t0"].outputs["energy"] == -2.5  # type: ignore[index]
    assert _verified(out) > checked_at


def test_every_file_is_checked_once_the_last_check_is_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sg_dir, dirs, out = _cached_tree(tmp_path)
    outputs = dirs[0] / SETTINGS.OUTPUTS_FILE
    outputs.write_text(outputs.read_text().replace("-1.5", "-2.5"))
    age(dirs[0], 60.0)  # settled: the cache may keep it again

    _set_verified(out, time.time() - SETTINGS.HARVEST_VERIFY_AGE - 1)
    old = archive(sg_dir, out, strict=True)
    assert (old.reread, old.cached) == (2, 1)
    assert by_label(load_archive(out))["t0"].outputs["energy"] == -2.5  # type: ignore[index]
    assert _verified(out) > time.time() - 60
    assert archive(sg_dir, out, strict=True).cached == 2

    outputs.write_text(outputs.read_text().replace("-2.5", "-3.5"))
    age(dirs[0], 30.0)
    monkeypatch.setattr(SETTINGS, "HARVEST_VERIFY_AGE", 0.0)  # always check every file
    assert archive(sg_dir, out, strict=True).cached == 1
    assert by_label(load_archive(out))["t0"].outputs["energy"] == -3.5  # type: ignore[index]

    # a cache that does not say when every file was checked: they are checked now
    outputs.write_text(outputs.read_text().replace("-3.5", "-4.5"))
    age(dirs[0], 20.0)
    _set_verified(out, "never")  # type: ignore[arg-type]
    monkeypatch.setattr(SETTINGS, "HARVEST_VERIFY_AGE", 3600.0)
    assert archive(sg_dir, out, strict=True).cached == 1
    assert by_label(load_archive(out))["t0"].outputs["energy"] == -4.5  # type: ignore[index]


def test_new_and_removed_tasks_and_new_attempts_are_seen(tmp_path: Path) -> None:
    sg_dir, dirs, out = _cached_tree(tmp_path)
    shutil.rmtree(dirs[1].parent)
    restart = create_task_tree(
        Task(task_inputs=TaskInputs(command="true")), dirs[0].parent, src=dirs[0]
    )
    run_task(restart)

    summary = archive(sg_dir, out, strict=True)

    tasks = load_archive(out)
    assert tasks == list(harvest(sg_dir, strict=True))
    assert summary.tasks == 3
    group_rel = str(dirs[0].parent.relative_to(sg_dir))
    group = sorted(
        (t for t in tasks if t.attempts.group == group_rel), key=lambda t: t.attempts.number
    )
    assert [t.path for t in group] == [
        f"{group_rel}/{dirs[0].name}",
        f"{group_rel}/{restart.name}",
    ]
    assert [(t.attempts.number, t.attempts.count, t.attempts.current) for t in group] == [
        (1, 2, False),
        (2, 2, True),
    ]
    assert summary.cached == 1  # the first attempt of t0 only: its group changed, not its files


def test_cache_is_dropped_when_the_harvest_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sg_dir, _, out = _cached_tree(tmp_path)
    assert archive(sg_dir, out, strict=True).cached == 2
    assert archive(sg_dir, out, strict=True, magic=True).cached == 0
    assert archive(sg_dir, out, strict=True).cached == 0  # the cache was made by magic
    assert archive(sg_dir, out, strict=True).cached == 2
    assert archive(sg_dir, out, strict=True, harvesters=["outputs"]).cached == 0
    assert archive(sg_dir, out, strict=True).cached == 0
    monkeypatch.setattr("autojob.harvest.cache.__version__", "999")
    assert archive(sg_dir, out, strict=True).cached == 0
    assert archive(sg_dir, out, strict=True).cached == 2
    assert archive(sg_dir, out, strict=True, incremental=False).cached == 0

    moved = tmp_path / "moved"
    sg_dir.rename(moved)
    assert archive(moved, out, strict=True).cached == 0  # another root


def test_a_corrupt_cache_is_not_trusted(tmp_path: Path) -> None:
    sg_dir, _, out = _cached_tree(tmp_path)
    expected = out.read_bytes()
    cache = cache_path(out)
    lines = cache.read_text().splitlines(keepends=True)
    kinds = [line.split("\t", 1)[0] for line in lines[1:]]
    # the root, study and three groups are listed; the two settled tasks kept;
    # the last line counts the tasks found
    assert sorted(kinds) == ["D"] * 5 + ["E"] + ["T"] * 2
    assert lines[-1] == "E\t3\n"
    first_task = kinds.index("T") + 1
    lines[first_task] = "T\tgarbage\n"
    cache.write_text("".join(lines))
    summary = archive(sg_dir, out, strict=True)
    assert summary.cached == 0
    assert out.read_bytes() == expected
    cache.write_text("not json\n")
    assert archive(sg_dir, out, strict=True).cached == 0
    assert out.read_bytes() == expected
    assert archive(sg_dir, out, strict=True).cached == 2


def test_problems_are_never_cached(tmp_path: Path) -> None:
    sg_dir, dirs, out = _cached_tree(tmp_path)
    (dirs[0] / SETTINGS.SCHEDULER_STATS_FILE).write_text("{")
    age(sg_dir)
    first = archive(sg_dir, out, strict=False)
    assert first.problem_count == 1
    again = archive(sg_dir, out, strict=False)
    assert again.problem_count == 1 and again.cached == 1
    with pytest.raises(MetadataError):
        archive(sg_dir, out, strict=True)


def test_recent_files_are_not_trusted_by_their_stamps(tmp_path: Path) -> None:
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    out = tmp_path / "archive.json"
    # stamped half a second before the first harvest, however long the tree
    # took to write: a change in the same clock tick could hide, so the first
    # harvest keeps none of them, and the second reads every task again
    recent = time.time_ns() - 500_000_000
    for path in [sg_dir, *sg_dir.rglob("*")]:
        os.utime(path, ns=(recent, recent))
    archive(sg_dir, out, strict=True)
    assert archive(sg_dir, out, strict=True).cached == 0
    assert json.loads(cache_path(out).read_text().splitlines()[0])["root"] == os.path.realpath(
        sg_dir
    )


def test_tasks_appearing_in_listed_directories_are_found(tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    notes = sg_dir / "notes" / "deeper"
    notes.mkdir(parents=True)
    age(sg_dir)
    out = tmp_path / "archive.json"
    assert archive(sg_dir, out, strict=True).tasks == 3
    assert archive(sg_dir, out, strict=True).cached == 2

    (notes / SETTINGS.INPUTS_FILE).write_text('{"command": "true"}')  # only deeper/ changed
    shutil.rmtree(dirs[2])

    summary = archive(sg_dir, out, strict=True)

    assert sorted(t.path for t in load_archive(out)) == sorted(
        [str(dirs[0].relative_to(sg_dir)), str(dirs[1].relative_to(sg_dir)), "notes/deeper"]
    )
    assert (summary.tasks, summary.cached) == (3, 2)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_names_that_are_not_utf8(tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    root = tmp_path / "tree"
    folder = os.fsdecode(os.fsencode(str(root)) + b"/caf\xe9")
    os.makedirs(folder)
    Path(folder, SETTINGS.INPUTS_FILE).write_text('{"command": "true"}')
    out = tmp_path / f"archive.{fmt}"

    assert archive(root, out, strict=True).tasks == 1

    if fmt in ("json", "jsonl"):
        (task,) = load_archive(out)
        assert task.path == os.path.basename(folder)
        assert os.fsencode(task.path) == b"caf\xe9"
    elif fmt == "csv":
        assert b"\ncaf\xe9," in out.read_bytes()
    else:
        import pyarrow.parquet as pq

        assert pq.read_table(out).to_pylist()[0]["path"] == "caf\ufffd"


def test_cache_tells_how_many_tasks_to_expect(tmp_path: Path) -> None:
    sg_dir, dirs, out = _cached_tree(tmp_path)
    assert previous_count(cache_path(out)) == 3
    archive(sg_dir, out, strict=True, states=["success"])  # every task counts, kept or not
    assert previous_count(cache_path(out)) == 3
    shutil.rmtree(dirs[0])
    archive(sg_dir, out, strict=True)
    assert previous_count(cache_path(out)) == 2
    assert previous_count(tmp_path / "none") is None


def test_attempts_kept_by_the_cache_follow_their_task_group(tmp_path: Path) -> None:
    sg_dir, dirs, out = _cached_tree(tmp_path)
    restart = create_task_tree(
        Task(task_inputs=TaskInputs(command="true")), dirs[0].parent, src=dirs[0]
    )
    run_task(restart)
    age(sg_dir)
    archive(sg_dir, out, strict=True)
    assert archive(sg_dir, out, strict=True).cached == 3  # the two attempts and t1
    full = tmp_path / "full.json"

    # the second attempt removed: the first, unchanged, is current again
    shutil.rmtree(restart)
    assert archive(sg_dir, out, strict=True).cached == 2
    archive(sg_dir, full, strict=True, incremental=False)
    assert out.read_bytes() == full.read_bytes()
    first = by_label(load_archive(out))["t0"]
    assert (first.attempts.count, first.attempts.current) == (1, True)

    # metadata rewritten in place: its mtime and size change, its directory's do not
    metadata = dirs[1] / SETTINGS.TASK_METADATA_FILE
    text = metadata.read_text()
    with metadata.open("r+") as stream:
        stream.write(text.replace('"t1"', '"t9"'))
    again = archive(sg_dir, out, strict=True, verify=True)
    assert (again.reread, again.cached) == (2, 1)
    archive(sg_dir, full, strict=True, incremental=False)
    assert out.read_bytes() == full.read_bytes()
    assert "t9" in by_label(load_archive(out))


def _replace_outputs(task: Path, energy: float) -> None:
    fresh = task / "outputs.new"
    fresh.write_text(json.dumps({"energy": energy}))
    fresh.replace(task / SETTINGS.OUTPUTS_FILE)


@pytest.mark.parametrize("run_tasks", [1, 2, 3, 512])
def test_runs_of_cached_tasks_give_what_a_full_harvest_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_tasks: int
) -> None:
    """Unchanged task groups pass in runs (of at most RUN_TASKS tasks); what breaks a
    run (a changed attempt after an unchanged one, a task added to a group, a task
    outside groups) is read as usual, and the archive is the one a full harvest writes."""
    monkeypatch.setattr("autojob.harvest.cache.RUN_TASKS", run_tasks)
    sg_dir, dirs = sweep(tmp_path / "tree", [WRITE_OUTPUTS.format(e=-i) for i in range(6)])
    restarts = {}
    for i in (1, 3):
        restarts[i] = create_task_tree(
            Task(task_inputs=TaskInputs(command=WRITE_OUTPUTS.format(e=-10 - i))),
            dirs[i].parent,
            src=dirs[i],
        )
    for task in [*dirs, *restarts.values()]:
        run_task(task)
    loose = [sg_dir / "loose" / name for name in ("x1", "x2")]
    for task in loose:  # tasks outside any task group
        shutil.copytree(dirs[0], task)
    age(sg_dir)
    out, full = tmp_path / "archive.json", tmp_path / "full.json"
    assert archive(sg_dir, out, strict=True).cached == 0
    assert archive(sg_dir, out, strict=True).cached == 10

    later = sorted([dirs[1], restarts[1]])[1]  # the attempt met second in its group
    _replace_outputs(later, 7.0)
    _replace_outputs(loose[1], 8.0)
    added = dirs[3].parent / "zz-added"
    shutil.copytree(dirs[3], added)  # a third attempt of group 3, copied in
    summary = archive(sg_dir, out, strict=True)

    archive(sg_dir, full, strict=True, incremental=False)
    assert out.read_bytes() == full.read_bytes()
    assert (summary.tasks, summary.reread, summary.cached) == (11, 3, 8)
    energies = {t.path: (t.outputs or {}).get("energy") for t in load_archive(out)}
    assert energies[str(later.relative_to(sg_dir))] == 7.0
    assert energies[str(loose[1].relative_to(sg_dir))] == 8.0
    group3 = [
        t for t in load_archive(out) if t.attempts.group == str(dirs[3].parent.relative_to(sg_dir))
    ]
    assert sorted(t.attempts.count for t in group3) == [3, 3, 3]


def test_runs_of_cached_tasks_with_names_the_cache_quotes(tmp_path: Path) -> None:
    """Paths that are not plain printable ASCII are JSON-quoted in the cache; runs
    still take their groups, and the archive is the one a full harvest writes."""
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    for name in ("grüppe é", "tab\there", 'quote"d'):
        shutil.copytree(dirs[0].parent, sg_dir / name)  # a task group, under an odd name
    age(sg_dir)
    out, full = tmp_path / "archive.json", tmp_path / "full.json"
    archive(sg_dir, out, strict=True)
    again = archive(sg_dir, out, strict=True)
    assert (again.tasks, again.cached) == (6, 5)  # the idle task is always read
    archive(sg_dir, full, strict=True, incremental=False)
    assert out.read_bytes() == full.read_bytes()
    cache = cache_path(out).read_text()
    assert '"grüppe é' not in cache and '"tab\\there' in cache


_CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["replace", "add-attempt", "remove-task", "remove-group", "add-group"]),
        st.integers(min_value=0, max_value=50),
    ),
    max_size=6,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=6),
    loose=st.integers(min_value=0, max_value=2),
    changes=_CHANGES,
    run_tasks=st.sampled_from([1, 2, 3, 512]),
)
def test_incremental_harvests_equal_full_ones_whatever_changed(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    loose: int,
    changes: list[tuple[str, int]],
    run_tasks: int,
) -> None:
    """Task groups of 1-3 attempts and tasks outside groups, harvested, changed in
    any of five ways, harvested again (before and after the changes settle): every
    incremental archive is byte for byte the full one."""
    template = _template(tmp_path_factory)
    root = tmp_path_factory.mktemp("tree")
    groups = []
    for g, size in enumerate(sizes):
        group = root / f"g{g:02d}"
        shutil.copytree(template.parent, group)
        for a in range(1, size):
            shutil.copytree(template, group / f"zattempt{a}")
        groups.append(group)
    for i in range(loose):
        shutil.copytree(template, root / "loose" / f"t{i}")
    age(root)
    out, full = root.parent / f"{root.name}.json", root.parent / f"{root.name}-full.json"

    def check() -> int:
        if not any(root.rglob(SETTINGS.TASK_METADATA_FILE)):  # every task removed
            before = out.read_bytes(), full.read_bytes()
            with pytest.raises(InputError, match="no tasks under"):
                archive(root, out, strict=True)
            assert (out.read_bytes(), full.read_bytes()) == before  # left as they were
            return 0
        cached = archive(root, out, strict=True).cached
        archive(root, full, strict=True, incremental=False)
        assert out.read_bytes() == full.read_bytes()
        return cached

    original = cache_module.RUN_TASKS
    cache_module.RUN_TASKS = run_tasks
    try:
        check()
        assert check() == sum(sizes) + loose  # every task from the cache
        for kind, pick in changes:
            tasks = sorted(p.parent for p in root.rglob(SETTINGS.TASK_METADATA_FILE))
            present = [g for g in groups if g.exists()]
            if kind == "replace" and tasks:
                _replace_outputs(tasks[pick % len(tasks)], float(pick))
            elif kind == "add-attempt" and present:
                group = present[pick % len(present)]
                shutil.copytree(template, group / f"added{pick}", dirs_exist_ok=True)
            elif kind == "remove-task" and tasks:
                shutil.rmtree(tasks[pick % len(tasks)])
            elif kind == "remove-group" and present:
                shutil.rmtree(present[pick % len(present)])
            elif kind == "add-group":
                shutil.copytree(template.parent, root / f"new{pick}", dirs_exist_ok=True)
        check()  # the changes are recent: read, not cached
        age(root)
        check()  # settled: cached
        tasks = list(root.rglob(SETTINGS.TASK_METADATA_FILE))
        assert check() == len(tasks)
    finally:
        cache_module.RUN_TASKS = original


_TEMPLATES: dict[str, Path] = {}


def _template(factory: pytest.TempPathFactory) -> Path:
    """A finished task in its task group, made once per test session."""
    if "task" not in _TEMPLATES:
        _, dirs = finished_sweep(factory.mktemp("template"))
        _TEMPLATES["task"] = dirs[0]
    return _TEMPLATES["task"]


def test_read_json_file_stat_reads_as_read_json_file(tmp_path: Path) -> None:
    """The same object, the file's status as os.stat gives it, the same errors."""
    from autojob.harvest.harvesters import read_json_file, read_json_file_stat

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"energy": -1.5, "name": "é"}))
    data, info = read_json_file_stat(str(good))
    assert data == read_json_file(str(good))
    assert info is not None
    assert (info.st_mtime_ns, info.st_size) == (good.stat().st_mtime_ns, good.stat().st_size)
    spaced = tmp_path / "spaced.json"
    spaced.write_text('\n {"a": 1}')  # not starting with "{": read as read_json_file reads it
    assert read_json_file_stat(str(spaced))[0] == {"a": 1}
    assert read_json_file_stat(str(tmp_path / "missing.json")) == (None, None)
    for name, text in (("list.json", "[1]"), ("cut.json", '{"a": '), ("bad.json", "{\xff")):
        path = tmp_path / name
        path.write_bytes(text.encode("latin-1"))
        with pytest.raises(MetadataError) as expected:
            read_json_file(str(path))
        with pytest.raises(MetadataError) as found:
            read_json_file_stat(str(path))
        assert str(found.value) == str(expected.value)
    with pytest.raises(MetadataError, match="cannot read"):
        read_json_file_stat(str(tmp_path))  # a directory


def test_the_stamp_of_the_sections_read_is_the_tasks_stamp(tmp_path: Path) -> None:
    """The status of the files read as they were opened makes the stamp a stat would."""
    from autojob.harvest.harvesting import make_reader

    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    age(sg_dir)
    reader = make_reader(sg_dir, strict=False, magic=False, harvesters=None)
    root = os.path.realpath(sg_dir)
    for task in dirs:  # the first with outputs.json, read by the outputs harvester
        top = os.path.realpath(task)
        names = set(os.listdir(top))
        sections, problems, stamp = reader.read_sections(top, "x", names, outputs=True)
        assert not problems and bool(sections["outputs"]) == (task == dirs[0])
        assert stamp is not None and stamp == reader.stamp(top, names)
    broken = os.path.realpath(dirs[0])
    Path(broken, SETTINGS.INPUTS_FILE).write_text("{")
    age(sg_dir)
    names = set(os.listdir(broken))
    _, problems, stamp = reader.read_sections(broken, os.path.relpath(broken, root), names,
                                              outputs=True)  # fmt: skip
    assert problems and stamp is None
