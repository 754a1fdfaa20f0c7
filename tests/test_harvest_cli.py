"""``autojob harvest`` as users run it: a real process on real trees."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.harvest import load_archive
from autojob.harvest.cache import cache_path
from tests.harvest_helpers import age, by_label, finished_sweep
from tests.helpers import run


def test_harvest_writes_archive_json_by_default(tmp_path: Path) -> None:
    sg_dir, _ = finished_sweep(tmp_path / "tree")

    done = run("harvest", sg_dir, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "3 task(s) archived to archive.json (1 failed, 1 idle, 1 success)" in done.stdout
    assert "3 read from disk, 0 unchanged" in done.stdout
    tasks = by_label(load_archive(tmp_path / SETTINGS.ARCHIVE_FILE))
    assert tasks["t0"].outputs is not None and tasks["t0"].outputs["energy"] == -1.5
    assert "Traceback" not in done.stderr


def test_second_run_reads_only_what_changed(tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    age(sg_dir)
    assert run("harvest", sg_dir, cwd=tmp_path).returncode == 0
    assert cache_path(tmp_path / SETTINGS.ARCHIVE_FILE).is_file()
    (dirs[0] / SETTINGS.OUTPUTS_FILE).write_text('{"energy": 9.0}')  # in place
    (dirs[1] / "new.log").write_text("seen: its directory changed")
    age(dirs[1], 60.0)

    again = run("harvest", sg_dir, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (
        "2 read from disk, 1 unchanged since the last harvest "
        "(by their directories; --verify checks every file)"
    ) in again.stdout
    verified = run("harvest", sg_dir, "--verify", cwd=tmp_path)
    assert (
        "2 read from disk, 1 unchanged since the last harvest (every file checked)"
        in verified.stdout
    )
    assert by_label(load_archive(tmp_path / SETTINGS.ARCHIVE_FILE))["t0"].outputs == {"energy": 9.0}
    full = run("harvest", sg_dir, "--full", cwd=tmp_path)
    assert "3 read from disk, 0 unchanged" in full.stdout


@pytest.mark.parametrize(
    ("options", "name"),
    [
        (["--format", "csv"], "archive.csv"),
        (["-o", "results.jsonl"], "results.jsonl"),
        (["-o", "results.dat", "-f", "parquet"], "results.dat"),
    ],
)
def test_formats(tmp_path: Path, options: list[str], name: str) -> None:
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    done = run("harvest", sg_dir, *options, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / name
    if name.endswith(".csv"):
        with out.open(newline="") as stream:
            assert len(list(csv.DictReader(stream))) == 3
    elif name.endswith(".jsonl"):
        assert len(out.read_text().splitlines()) == 3
    else:
        pq = pytest.importorskip("pyarrow.parquet")
        assert pq.read_table(out).num_rows == 3


def test_where_and_state_filters(tmp_path: Path) -> None:
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    done = run(
        "harvest", sg_dir, "--state", "success", "--state", "failed", "--where",
        "state.exit_code=3", "-o", "x.jsonl", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 task(s) archived" in done.stdout
    assert "2 task(s) left out by --where/--state" in done.stdout
    (record,) = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert record["metadata"]["label"] == "t1"
    bad = run("harvest", sg_dir, "--where", "no-equals-sign", cwd=tmp_path)
    assert bad.returncode == 1
    assert "'no-equals-sign' is not FIELD=VALUE" in bad.stderr


def test_relaxed_by_default_strict_on_request(tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    broken = dirs[0] / SETTINGS.OUTPUTS_FILE
    broken.write_text('{"energy": ')

    relaxed = run("harvest", sg_dir, cwd=tmp_path)

    assert relaxed.returncode == 0, relaxed.stderr
    assert "1 problem(s), recorded on their tasks in the archive" in relaxed.stdout
    assert str(broken) in relaxed.stdout  # a wide terminal: no folding
    (bad,) = [t for t in load_archive(tmp_path / SETTINGS.ARCHIVE_FILE) if t.problems]
    assert bad.problems[0].path == str(broken)
    before = (tmp_path / SETTINGS.ARCHIVE_FILE).read_bytes()
    listing = sorted(os.listdir(tmp_path))

    strict = run("harvest", sg_dir, "--strict", cwd=tmp_path)

    assert strict.returncode == 1
    assert f"error: {broken}: not valid JSON" in strict.stderr
    assert "Traceback" not in strict.stderr
    assert (tmp_path / SETTINGS.ARCHIVE_FILE).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing


def test_bad_paths_and_unwritable_archives(tmp_path: Path) -> None:
    missing = run("harvest", tmp_path / "nope", cwd=tmp_path)
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    sg_dir, _ = finished_sweep(tmp_path / "tree")
    nowhere = run("harvest", sg_dir, "-o", tmp_path / "no" / "dir" / "a.json", cwd=tmp_path)
    assert nowhere.returncode == 1
    assert "cannot write the archive" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


def test_help_lists_the_options(tmp_path: Path) -> None:
    done = run("harvest", "--help", cwd=tmp_path)
    for option in ("--output", "--format", "--strict / --relaxed", "--where", "--state"):
        assert option in done.stdout
