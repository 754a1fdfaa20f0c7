"""The status index file: columns of bytes in path order, decoded when used.

A warm status reads only the tasks named in the journal, finds their rows
without building a map of every path, and writes their changed values into
columns it never decodes; the index is a cache, rebuilt (with a warning) when
it is corrupt or of an older version. ``status --json`` prints the tasks in
path order whatever order the index holds them in.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.next import create_task_group_tree
from autojob.store import status_index
from autojob.store.index_file import (
    MAGIC,
    Coded,
    Columns,
    IndexFileError,
    encode_index,
    parse_index,
)
from autojob.store.state import read_state
from autojob.store.status_index import COLUMNS, collect
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task

from .helpers import run
from .status_helpers import end, make_study, states


def index_file(study: Path) -> Path:
    return study / SETTINGS.INDEX_DIR / "status.index"


def decoded(columns: Any) -> set[str]:
    """The columns of an index decoded so far."""
    assert isinstance(columns, Columns)
    return set(dict.keys(columns))


def test_a_warm_status_reads_only_the_changed_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study, dirs = make_study(tmp_path, 60)  # two changes of 60: appended to the delta
    collect(study)
    end(dirs[3:5], 1)
    read: list[str] = []
    real = read_state

    def counted(folder: str, names: Any = None) -> Any:
        read.append(os.path.basename(folder))
        return real(folder, names)

    monkeypatch.setattr(status_index, "read_state", counted)
    report = collect(study)
    assert sorted(read) == sorted(d.name for d in dirs[3:5])
    assert report.source == "index" and report.reread == 2
    # the rows were found and written without decoding the columns of times and hosts
    assert {"queued_at", "started_at", "ended_at", "host"}.isdisjoint(decoded(report.columns))
    assert report._rows is None  # no map of every path was built
    monkeypatch.undo()
    assert states(study) == states(study, use_index=False)
    failed = [p for p, s in states(study).items() if s == "failed"]
    assert sorted(os.path.basename(p) for p in failed) == sorted(d.name for d in dirs[3:5])


def test_values_written_into_undecoded_columns_are_seen_when_decoded(tmp_path: Path) -> None:
    study, dirs = make_study(tmp_path, 40)  # one change of 40: appended to the delta
    collect(study)
    end(dirs[:1], 0)
    report = collect(study)
    assert "ended_at" not in decoded(report.columns)
    row = report.find(os.path.relpath(dirs[0], os.path.realpath(study)))
    assert row is not None
    assert report.columns["ended_at"][row] is not None  # decoded now, the new end laid over it
    assert report.columns["ended_at"].count(None) == len(report) - 1
    scan = collect(study, use_index=False)
    assert {p: e.as_dict() for p, e in report.tasks.items()} == {
        p: e.as_dict() for p, e in scan.tasks.items()
    }


def test_a_corrupt_index_is_rebuilt_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    study, dirs = make_study(tmp_path, 8)
    collect(study)
    index = index_file(study)
    whole = index.read_bytes()
    damaged = [
        whole[: len(whole) - 7],  # cut short
        whole[:-3] + bytes([whole[-3] ^ 0xFF]) + whole[-2:],  # one byte changed
        b"garbage\n",
        whole.replace(b'"rows":8', b'"rows":9'),  # checksum fails
        whole.replace(MAGIC, b"autojob status index 6 ", 1),  # the version before
    ]
    for number, data in enumerate(damaged):
        index.write_bytes(data)
        end(dirs[number : number + 1], 0)  # journalled: a trusted index would miss nothing
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="autojob.store.status_index"):
            report = collect(study)
        assert report.source == "scan", number
        assert "not used" in caplog.text and os.path.realpath(study) in caplog.text
        parse_index(index.read_bytes(), COLUMNS)  # rewritten whole
        assert states(study) == states(study, use_index=False)
        assert collect(study).source == "index"


def test_an_index_of_version_5_is_replaced(tmp_path: Path) -> None:
    study, _ = make_study(tmp_path, 3)
    old = study / SETTINGS.INDEX_DIR / "status.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"version": 5, "columns": {}}))
    assert collect(study).source == "scan"
    assert not old.exists() and index_file(study).is_file()
    assert collect(study).source == "index"


def test_the_index_holds_its_rows_in_path_order(tmp_path: Path) -> None:
    study, _ = make_study(tmp_path, 15)
    collect(study)
    _, columns = parse_index(index_file(study).read_bytes(), COLUMNS)
    assert columns["path"] == sorted(columns["path"])


def test_status_json_prints_the_tasks_in_path_order_after_new_ones(tmp_path: Path) -> None:
    study, _ = make_study(tmp_path, 12)
    collect(study)
    # new task groups whose names sort before and after the others, journalled by the writer
    for label in ("aaa", "zzz"):
        create_task_group_tree(TaskGroup(label=label, tasks=[Task()]), study, name_template=label)
    report = collect(study)
    assert report.source == "index" and len(report) == 14
    done = run("status", "--json", study, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    paths = [task["path"] for task in json.loads(done.stdout)["tasks"]]
    assert len(paths) == 14 and paths == sorted(paths)
    assert [g["path"] for g in json.loads(done.stdout)["task_groups"]] == sorted(
        {os.path.dirname(p) for p in paths}
    )


def test_every_encoding_reads_back_what_was_written() -> None:
    n = 40
    columns: dict[str, list[Any]] = {
        "path": [f"s/g{i:02d}/t\udcff{i}" for i in range(n)],  # a name that is not UTF-8
        "group": [None if i % 3 else f"s/g{i:02d}" for i in range(n)],
        "state": ["success" if i % 2 else "failed" for i in range(n)],
        "exit_code": [i % 5 for i in range(n)],
        "queued_at": [None if i == 7 else 1.5 + i for i in range(n)],
        "started_at": [float(i) for i in range(n)],
        "ended_at": [i if i % 2 else None for i in range(n)],  # ints stay ints
        "accounted": [i == 3 for i in range(n)],
        "detail": [None] * n,
        "mixed": [1 if i % 2 else True for i in range(n)],  # 1 and True stay apart
        "unique": [f"id-{i}" for i in range(n)],
        "nul": ["a\0b" if i == 0 else f"x{i}" for i in range(n)],
    }
    columns["path"][5] = "s/g05/ünïcode"
    data = encode_index({"rows": n}, columns)
    header, read = parse_index(data, list(columns))
    encodings = {spec["name"]: spec["encoding"] for spec in header["columns"]}
    assert encodings["path"] == encodings["group"] == "text"
    assert encodings["state"] == encodings["exit_code"] == "codes"
    assert encodings["queued_at"] == encodings["started_at"] == "floats"
    assert encodings["detail"] == encodings["accounted"] == "sparse"
    for name, values in columns.items():
        got = read[name]
        assert got == values, name
        assert [type(v) for v in got] == [type(v) for v in values], name
    empty = parse_index(encode_index({"rows": 0}, {"path": []}), ["path"])[1]
    assert empty["path"] == []
    # one row at a time, without decoding the column where its encoding allows
    one_by_one = parse_index(data, list(columns))[1]
    one_by_one.put("state", 4, "oom")  # written, not decoded: read back as written
    for name, values in columns.items():
        got = [one_by_one.value(name, row) for row in range(n)]
        expected = ["oom" if (name, row) == ("state", 4) else v for row, v in enumerate(values)]
        assert got == expected, name
        assert [type(v) for v in got] == [type(v) for v in expected], name
    picked = [n - 1, 0, 4, 4, 2]  # any rows, in any order, some twice
    fresh = parse_index(data, list(columns))[1]  # nothing written: read in place
    for name, values in columns.items():
        expected = ["oom" if (name, r) == ("state", 4) else values[r] for r in picked]
        assert one_by_one.values_at(name, picked) == expected, name
        assert one_by_one.values_at(name, []) == []
        got = fresh.values_at(name, picked)
        assert got == [values[r] for r in picked], name
        assert [type(v) for v in got] == [type(values[r]) for r in picked], name
    read_whole = {n for n, e in encodings.items() if e == "json"}
    assert set(one_by_one) == read_whole  # json only was decoded whole
    # the sorted paths searched over their bytes: each found, absent ones not
    paths = parse_index(encode_index({"rows": n}, {"path": sorted(columns["path"])}), ["path"])[1]
    for row, path in enumerate(sorted(columns["path"])):
        assert paths.search("path", path, n) == row
    for absent in ("", "s/g05", "s/g99/t", "\uffff"):
        assert paths.search("path", absent, n) is None
    assert paths.search("path", sorted(columns["path"])[-1], n - 1) is None  # outside [0, hi)
    assert decoded(paths) == set()


def test_paths_beyond_ascii_are_searched_in_the_order_of_strings() -> None:
    # an ASCII key is compared as bytes: other characters, and bytes kept by
    # surrogateescape (a name that is not UTF-8), must still sort as strings do
    paths = sorted(
        ["s/a", "s/a\u00e9", "s/a\udce9", "s/a\u4e2d", "s/ab", "s/b", "s/\u00e9", "s/\udcff/t",
         "s/z", "s/a/b", "s/a\udc80b", "s\u00e9/x"]
    )  # fmt: skip
    n = len(paths)
    data = encode_index({"rows": n}, {"path": paths})
    found = parse_index(data, ["path"])[1]
    for row, path in enumerate(paths):
        assert found.search("path", path, n) == row, path
    for absent in ("s/a0", "s/aa", "s/c", "s/a/", "t", "s/", "s/\u00e9x", "s/a\udce8"):
        assert absent not in paths
        assert found.search("path", absent, n) is None, absent
    assert decoded(found) == set()


def test_many_paths_searched_together_are_each_found_where_they_are() -> None:
    paths = sorted(
        [f"s/g{i:04d}/t" for i in range(0, 2000, 3)] + ["s/\u00e9/t", "s/a\udce9", "t/\u4e2d"]
    )
    n = len(paths)
    found = parse_index(encode_index({"rows": n}, {"path": paths}), ["path"])[1]
    absent = ["s/g0001/t", "s/g1999/t", "", "s/", "s/g0000/t/x", "\uffff", "s/\u00e8"]
    keys = sorted(paths[::7] + absent + paths[5:9])  # in order, some twice
    truth = [paths.index(k) if k in paths else None for k in keys]
    assert found.search_many("path", keys, n) == truth
    assert found.search_many("path", keys[::-1], n) == truth[::-1]  # out of order
    assert found.search_many("path", [], n) == []
    assert found.search_many("path", keys, n - 1)[-1] is None  # the last row is outside
    assert [found.search("path", k, n) for k in keys] == truth
    assert decoded(found) == set()


def test_a_text_column_whose_offsets_disagree_is_refused() -> None:
    data = encode_index({"rows": 2}, {"path": ["a", "b"]})
    assert b'"text_size":3' in data
    for wrong in (b'"text_size":4', b'"text_size":"3"', b'"nothing":3'):
        header = data.split(b"\n", 2)
        header[1] = header[1].replace(b'"text_size":3', wrong)
        rest = b"\n".join(header[1:])
        with pytest.raises(IndexFileError):
            parse_index(MAGIC + b"%08x\n" % zlib.crc32(rest) + rest, ["path"])


def test_an_index_with_other_columns_is_refused() -> None:
    data = encode_index({"rows": 1}, {"path": ["a"]})
    with pytest.raises(IndexFileError, match="columns"):
        parse_index(data, ["path", "state"])


def test_a_header_that_disagrees_with_its_columns_is_not_used(tmp_path: Path) -> None:
    study, _ = make_study(tmp_path, 4)
    collect(study)
    header, columns = parse_index(index_file(study).read_bytes(), COLUMNS)
    columns.decode_all()
    wrong = {k: v for k, v in header.items() if k != "columns"} | {"rows": 5}
    index_file(study).write_bytes(encode_index(wrong, dict(columns)))  # a valid checksum
    with pytest.raises(IndexFileError, match="rows"):
        parse_index(index_file(study).read_bytes(), COLUMNS)[1]["path"]
    assert collect(study).source == "scan"  # the paths did not decode: rebuilt


def test_columns_written_again_from_their_bytes_read_back_what_was_written() -> None:
    n = 40
    columns: dict[str, list[Any]] = {
        "path": [f"s/g{i:02d}/t\udcff{i}" for i in range(n)],
        "group": [None if i % 3 else f"s/g{i:02d}" for i in range(n)],
        "state": ["success" if i % 2 else "failed" for i in range(n)],
        "exit_code": [i % 5 for i in range(n)],
        "queued_at": [None if i == 7 else 1.5 + i for i in range(n)],
        "accounted": [i == 3 for i in range(n)],
        "reason": [None] * n,
        "unique": [f"id-{i}" for i in range(n)],
    }
    writes: dict[str, dict[int, Any]] = {
        "path": {4: "s/g04/t\udcff4"},  # the value it holds: its bytes are kept
        "group": {3: "s/other"},  # another text: encoded anew
        "state": {1: "oom", 2: "success", 5: None},  # a new code, an old one, None
        "exit_code": {0: 7, 1: True},  # True is not 1: encoded anew
        "queued_at": {7: 2.25, 8: None},  # a null filled, a value nulled
        "accounted": {3: False, 9: True, 10: None},  # back to the default, apart, None
        "reason": {6: "not_converged"},
        "unique": {0: "id-x"},  # json: decoded and encoded anew
    }
    data = encode_index({"rows": n}, columns)
    _, read = parse_index(data, list(columns))
    for name, rows in writes.items():
        read.put_many(name, list(rows), list(rows.values()))
        for row, value in rows.items():
            columns[name][row] = value
    assert decoded(read) == set()
    again = encode_index({"rows": n}, read)
    assert decoded(read) == {"group", "exit_code", "unique"}  # the others kept as bytes
    header, back = parse_index(again, list(columns))
    assert [spec["name"] for spec in header["columns"]] == list(columns)  # the file's order
    for name, values in columns.items():
        assert back[name] == values, name
        assert [type(v) for v in back[name]] == [type(v) for v in values], name


def test_columns_of_few_values_are_given_as_codes_that_read_as_the_values() -> None:
    n = 30
    columns: dict[str, list[Any]] = {
        "state": ["success" if i % 3 else "failed" for i in range(n)],  # codes
        "exit_code": [i % 4 for i in range(n)],  # codes of ints
        "host": ["node-é" if i in (4, 9) else "vm" for i in range(n)],  # sparse strings
        "pid": [None if i != 7 else 4242 for i in range(n)],  # sparse: one int among None
        "accounted": [i == 3 for i in range(n)],  # sparse bools: True stays True, not 1
        "detail": [None] * n,  # sparse, no row apart
        "started_at": [float(i) for i in range(n)],  # floats: not given as codes
        "path": [f"s/g{i:02d}" for i in range(n)],  # text: not given as codes
    }
    data = encode_index({"rows": n}, columns)
    read = parse_index(data, list(columns))[1]
    for name, values in columns.items():
        coded = read.coded(name)
        if name in ("started_at", "path"):
            assert coded is None, name
            continue
        assert isinstance(coded, Coded), name
        assert len(coded) == n and list(coded) == values, name
        assert [type(v) for v in coded] == [type(v) for v in values], name
        assert [coded[i] for i in range(n)] == values, name
        part = coded[5:12]
        assert isinstance(part, Coded) and list(part) == values[5:12], name
        assert len(set(coded.values)) == len(coded.values), name  # each value once
    assert decoded(read) == set()  # none was decoded to give its codes
    # a column decoded, or written into since it was read, is given as it is
    read["state"]
    read.put("host", 2, "other")
    assert read.coded("state") is None and read.coded("host") is None
    assert read["host"][2] == "other"
    assert read.coded("no such column") is None
