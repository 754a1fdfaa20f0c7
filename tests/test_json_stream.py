"""Reading a JSON object file a piece at a time (``autojob.store.json_stream``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autojob.errors import MetadataError, MissingFileError
from autojob.store import json_stream
from autojob.store.atomic import read_json_object
from autojob.store.json_stream import list_items, object_head

KEY = "task_groups"

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def read_back(path: Path) -> dict[str, Any]:
    """The object as the streamed reader gives it: the members, the list put back."""
    head = object_head(path, KEY)
    found = dict(head.members)
    if head.occurrence is not None:
        items = list(list_items(path, head))
        assert len(items) == head.count
        found[KEY] = items
    return found


@settings(max_examples=150, deadline=None)
@given(
    members=st.dictionaries(st.text(max_size=5), values, max_size=5),
    items=st.none() | st.lists(values, max_size=12),
    indent=st.sampled_from([None, 0, 4]),
    chunk=st.sampled_from([1, 3, 16, 1 << 16]),
)
def test_reads_what_json_loads_reads(
    tmp_path_factory: pytest.TempPathFactory,
    members: dict[str, Any],
    items: list[Any] | None,
    indent: int | None,
    chunk: int,
) -> None:
    document = {**members, **({KEY: items} if items is not None else {})}
    path = tmp_path_factory.mktemp("s") / "study.json"
    path.write_text(json.dumps(document, indent=indent, ensure_ascii=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_stream, "_CHUNK", chunk)  # values cut across every boundary
        found = read_back(path)
    assert found == json.loads(path.read_text(encoding="utf-8"))
    assert list(found) == list(document)  # the members' order kept


def test_the_last_of_members_of_one_name_wins_as_with_json_loads(tmp_path: Path) -> None:
    path = tmp_path / "study.json"
    for text in (
        '{"task_groups": ["a"], "name": "x", "task_groups": ["b", "c"]}',
        '{"task_groups": ["a"], "task_groups": 5}',
        '{"task_groups": 5, "task_groups": []}',
    ):
        path.write_text(text)
        assert read_back(path) == json.loads(text)
    path.write_text('{"task_groups": ["a"], "task_groups": 5}')
    assert object_head(path, KEY).occurrence is None  # no list: 5 is the value


@pytest.mark.parametrize(
    "text",
    ["", "  \n", "[1, 2]", '{"a": 1,}', '{"a": 1} x', '{"task_groups": [1,]}', '{"a": tru}'],
)
def test_a_broken_file_raises_what_read_json_object_raises(tmp_path: Path, text: str) -> None:
    path = tmp_path / "study.json"
    path.write_text(text)
    with pytest.raises(MetadataError) as expected:
        read_json_object(path)
    with pytest.raises(MetadataError) as got:
        object_head(path, KEY)
    assert got.value.message == expected.value.message and got.value.path == path


def test_bytes_that_are_not_utf8_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "study.json"
    path.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(MetadataError, match="not UTF-8"):
        object_head(path, KEY)
    with pytest.raises(MissingFileError):
        object_head(tmp_path / "none.json", KEY)


def test_items_are_read_a_chunk_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A list far longer than a chunk is never held as text: reads stay chunk-sized."""
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"name": "s", KEY: [f"id-{i:06d}" for i in range(20_000)]}))
    monkeypatch.setattr(json_stream, "_CHUNK", 4096)
    held: list[int] = []
    real = json_stream._Text.more

    def more(text: json_stream._Text) -> bool:
        found = real(text)
        held.append(len(text.text))
        return found

    monkeypatch.setattr(json_stream._Text, "more", more)
    head = object_head(path, KEY)
    assert head.count == 20_000 and head.members == {"name": "s", KEY: []}
    assert sum(1 for _ in list_items(path, head)) == 20_000
    assert len(held) > 2 * path.stat().st_size // 4096 and max(held) <= 2 * 4096
