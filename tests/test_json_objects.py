"""Objects encoded column by column (what ``status --json`` prints) equal json's encoding."""

from __future__ import annotations

import io
import json
import math
import random
import struct
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.cli import output
from autojob.cli.output import json_objects, print_json_streamed
from autojob.cli.status import group_columns
from autojob.store.index_file import Coded
from autojob.store.state import run_seconds, run_seconds_column
from autojob.store.status_index import collect

from .helpers import study_of_commands

#: columns of every kind the encoder treats apart, each with None among its values
COLUMNS: dict[str, list[Any]] = {
    "text": ['a"b', "tab\there", "new\nline", "é ü 日本", "back\\slash", None, "\x01"],
    "few": ["x", "x", "x", None, "x", "y", "x"],
    "ints": [1, 2, 3, None, -5, 2**40, 0],
    "floats": [1.5, 1733171234.123456, None, 0.1, -0.0, 1e16, 3.0],
    "bools": [True, False, None, True, True, True, True],
    "int and bool": [1, True, 0, False, 2, 3, 4],
    "none": [None] * 7,
    "odd floats": [math.inf, 1.0, None, 2.0, 3.0, 4.0, 5.0],
    "mixed": [1, "1", 1.0, None, [1, 2], {"k": "v"}, False],
    "surrogates": ["\udcff name", "plain", None, "a", "b", "c", "d"],
    # strings written between quotes as they are (none needs an escape), then not
    "plain": ["a", "é", "", "日本", "b/c", "x y", "\udcff"],
    "one escaped": ["a", "b", "c", "d", "e", "f", 'g"h'],
    "a string first": ["a", 1, "b", "c", "d", "e", "f"],
}


@pytest.mark.parametrize("block", [3, 10_000], ids=["in blocks of 3 rows", "one block"])
def test_objects_match_the_json_of_their_dicts(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(output, "BLOCK", block)
    names = list(COLUMNS)
    rows = list(zip(*COLUMNS.values(), strict=True))
    objects = list(json_objects(names, list(COLUMNS.values())))
    assert len(objects) == len(rows)
    for text, row in zip(objects, rows, strict=True):
        # the same text json writes (surrogates kept), so the same values back
        expected = json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False)
        assert json.loads(text) == json.loads(expected)
        assert text == json.dumps(
            dict(zip(names, row, strict=True)), ensure_ascii=False, separators=(",", ":")
        )


@pytest.mark.parametrize("block", [3, 10_000], ids=["in blocks of 3 rows", "one block"])
def test_columns_given_as_codes_encode_as_their_values(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(output, "BLOCK", block)
    columns: dict[str, list[Any]] = {
        "state": ["success", "success", "success", "failed", "idle", "success", 'x"y'],
        "ints": [1, 1, 1, 2, None, 1, 1],
        "bools": [True, True, True, False, True, None, True],  # True written so, not 1
        "host": ["é", "é", "é", "vm", "vm", "vm", "vm"],  # a block of one value, then another
        "none": [None] * 7,
    }
    names = list(columns)
    coded = []
    for values in columns.values():
        distinct = list(dict.fromkeys(values))
        coded.append(Coded(distinct, [distinct.index(v) for v in values]))
    assert list(json_objects(names, coded)) == list(json_objects(names, list(columns.values())))
    for text, row in zip(
        json_objects(names, coded), zip(*columns.values(), strict=True), strict=True
    ):
        expected = dict(zip(names, row, strict=True))
        assert text == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))


def test_ascii_strings_are_written_as_they_are_unless_json_escapes_them() -> None:
    # DEL and every printable character as they are; a control, quote or backslash escaped
    for values in (["a~", "\x7f", " !#/"], ["a", "b\x1f"], ["a", 'b"'], ["a", "b\\"]):
        text = list(json_objects(["s"], [values]))
        assert text == [
            json.dumps({"s": v}, ensure_ascii=False, separators=(",", ":")) for v in values
        ]


def test_floats_written_by_pydantic_core_are_python_s_text() -> None:
    rng = random.Random(7)
    values: list[float | None] = [10 ** rng.uniform(-4, 16) for _ in range(20_000)]
    values += [1e-4, 0.0001234, math.nextafter(1e16, 0), 1.0, 3.0, 0.1, 0.0, -0.0, -1.5]
    values += [1796311784.05837 + rng.random() for _ in range(1_000)] + [None, 10.00001]
    texts = [repr(v) if v is not None else "null" for v in values]
    assert output._floats(values) == texts  # taken by the fast way
    assert [json.loads(text)["f"] for text in json_objects(["f"], [values])] == values
    assert list(json_objects(["f"], [values])) == [
        json.dumps({"f": v}, separators=(",", ":")) for v in values
    ]
    # where repr writes an exponent (or json NaN, Infinity): each value is repr'd
    for odd in (1e16, 9.9e-5, 1e-5, -2e-5, 1e-6, 5e-324, 1e22, math.nan, math.inf, -math.inf):
        assert output._floats([1.5, odd]) is None
        assert list(json_objects(["f"], [[1.5, 2.5, odd]]))[-1] == json.dumps(
            {"f": odd}, separators=(",", ":")
        )
    # any float at all, one at a time: the fast way's text is repr's wherever it is taken
    plenty = [rng.choice((-1, 1)) * 10 ** rng.uniform(-7, 19) for _ in range(20_000)]
    plenty += [
        struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20_000)
    ]
    taken = 0
    for value in plenty:
        found = output._floats([value])
        assert found is None or found == [repr(value)], value
        taken += found is not None
    assert taken > 10_000  # (the others: an exponent, NaN or infinite, or below 1e-4)


def test_floats_are_repr_d_by_a_pydantic_core_without_inf_nan_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pydantic_core

    to_json = pydantic_core.to_json

    def older(value: Any, **options: Any) -> bytes:
        """to_json as pydantic_core wrote it before inf_nan_mode (NaN written null)."""
        if "inf_nan_mode" in options:
            raise TypeError("to_json() got an unexpected keyword argument 'inf_nan_mode'")
        return to_json(value, inf_nan_mode="null", **options)

    monkeypatch.setattr(pydantic_core, "to_json", older)
    values = [1.5, math.nan, None, 1796311784.05837]
    assert output._floats(values) is None
    assert list(json_objects(["f"], [values])) == [
        json.dumps({"f": v}, separators=(",", ":")) for v in values
    ]  # NaN written NaN, as json does, not null


def test_no_rows_and_one_row() -> None:
    assert list(json_objects(["a", "b"], [[], []])) == []
    assert list(json_objects(["a", "b"], [[None], ["x"]])) == ['{"a":null,"b":"x"}']
    # every column the same in every row: still one object per row, no more
    assert list(json_objects(["a", "b"], [["x"] * 3, [None] * 3])) == ['{"a":"x","b":null}'] * 3
    with pytest.raises(ValueError, match="different lengths"):
        json_objects(["a", "b"], [[1, 2], [1]])


def test_a_streamed_document_is_the_same_with_encoded_objects() -> None:
    names = ["text", "floats", "bools"]
    columns = [COLUMNS[n][:6] for n in names]
    dicts = (dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True))
    found = []
    for items in (dicts, json_objects(names, columns)):
        out = io.StringIO()
        with redirect_stdout(out):
            print_json_streamed({"before": 1, "items": items, "after": [2]})
        found.append(out.getvalue())
    assert found[0] == found[1]
    assert json.loads(found[1])["items"][5] == {"text": None, "floats": 1e16, "bools": True}


@pytest.mark.parametrize("warm", [False, True])
def test_the_tasks_of_a_report_encode_as_their_dicts(tmp_path: Path, warm: bool) -> None:
    root, tasks = study_of_commands(tmp_path, {f"t{i}": "true" for i in range(5)})
    for code, task in enumerate(tasks[:3]):  # ended (0: success, else failed), two idle
        record = {"time": 1733171234.5 + code, "exit_code": code, "started_at": 1733171200.25}
        (task / SETTINGS.ENDED_FILE).write_text(json.dumps({**record, "host": "node-é"}))
    report = collect(root)
    assert sorted(report.columns["state"]) == ["failed", "failed", "idle", "idle", "success"]
    if warm:  # columns read from the index file, each decoded when first used
        report = collect(root)
        assert report.source == "index"
    rows = report.path_order()
    # the columns of few values as codes, where the index holds them so: the same text
    coded = list(json_objects(*report.dict_columns(rows, coded=True)))
    assert any(isinstance(c, Coded) for c in report.dict_columns(rows, coded=True)[1]) == warm
    texts = list(json_objects(*report.dict_columns(rows)))
    assert coded == texts
    dicts = list(report.dicts(rows))
    assert len(texts) == len(report) == 5
    for text, data in zip(texts, dicts, strict=True):
        assert json.loads(text) == {**data, "run_seconds": json.loads(text)["run_seconds"]}
        assert list(json.loads(text)) == list(data)


class _Columns:
    """What ``group_columns`` reads of a status report: its columns and its length."""

    def __init__(self, group: list[str | None], state: list[str]) -> None:
        self.columns: dict[str, list[Any]] = {"group": group, "state": state}

    def __len__(self) -> int:
        return len(self.columns["state"])


@pytest.mark.parametrize(
    ("group", "state", "newest", "expected"),
    [
        (["s/a", "s/a-b", "s/b"], ["idle", "failed", "success"], None, None),  # in order
        (  # rows not in the groups' order ('-' sorts before '/'): sorted
            ["s/a/j", "s/a-b", "s/b", None],
            ["idle", "failed", "success", "idle"],
            None,
            (["s/a-b", "s/a/j", "s/b"], ["failed", "idle", "success"], [1, 1, 1]),
        ),
        (  # two attempts in s/a: its newest (row 1) decides, counted twice
            ["s/a", "s/a", "s/b"],
            ["failed", "success", "idle"],
            [1, 2],
            (["s/a", "s/b"], ["success", "idle"], [2, 1]),
        ),
    ],
    ids=["in order", "out of order", "attempts"],
)
def test_task_groups_in_order_of_their_paths(
    group: list[str | None], state: list[str], newest: list[int] | None, expected: Any
) -> None:
    report: Any = _Columns(group, state)
    rows = list(range(len(state))) if newest is None else newest
    got = group_columns(report, rows)
    assert got == (expected or (group, state, [1] * len(group)))


def test_run_seconds_of_a_column_equal_those_of_each_row() -> None:
    states = ["success", "running", "running", "idle", "failed", "success", "queued"]
    started: list[float | None] = [10.0, 20.0, None, None, 5, 30.0, 1.0]
    ended: list[float | None] = [12.5, None, None, 3.0, 4.0, 30.0, None]  # one ends too soon
    now = 50.0
    each = [run_seconds(*row, now) for row in zip(states, started, ended, strict=True)]
    assert each == [2.5, 30.0, None, None, 0.0, 0.0, None]
    got = run_seconds_column(states, started, ended, now)
    assert got == each and [type(v) for v in got] == [type(v) for v in each]
    # no span of 0 or less (none made 0 by max): the rows not ended still taken apart
    spans = run_seconds_column(states[:4], started[:4], ended[:4], now)
    assert spans == [run_seconds(*row, now) for row in zip(states, started, ended, strict=True)][:4]
    # a span of -0.0 is written 0.0, as run_seconds gives it
    assert str(run_seconds_column(["success"], [0.0], [-0.0], now)[0]) == "0.0"
    assert run_seconds_column([], [], [], now) == []
    with pytest.raises(ValueError, match="lengths"):
        run_seconds_column(states, started[:-1], ended, now)
