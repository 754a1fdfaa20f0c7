"""AtomicFile: a new version of a file appears whole, or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from autojob.errors import AutojobError
from autojob.store.atomic import AtomicFile, replace_atomically, write_atomic


def _entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_commit_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    target.write_text("old")
    target.chmod(0o640)
    replace_atomically(target, b"new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _entries(tmp_path) == ["data.json"]


def test_a_new_file_gets_the_mode_less_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "run.sh", "#!/bin/sh\n", mode=0o777)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run.sh").stat().st_mode) == 0o750


def test_without_keep_mode_a_replaced_file_gets_the_default_mode(tmp_path: Path) -> None:
    target = tmp_path / "archive.json"
    target.write_text("old")
    target.chmod(0o600)
    old = os.umask(0o022)
    try:
        replace_atomically(target, b"new", keep_mode=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_an_error_in_the_block_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), AtomicFile(target) as file:
        file.write(b"half of the new")
        raise RuntimeError
    assert target.read_text() == "old"
    assert _entries(tmp_path) == ["data.json"]


def test_a_streamed_file_appears_on_commit(tmp_path: Path) -> None:
    target = tmp_path / "archive.jsonl"
    file = AtomicFile(target, keep_mode=False)
    with file.open_text() as stream:
        stream.write("line 1\nline 2\n")
    assert not target.exists()
    file.commit()
    assert target.read_text() == "line 1\nline 2\n"
    assert _entries(tmp_path) == ["archive.jsonl"]


def test_commit_new_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "task.json"
    first, second = AtomicFile(target), AtomicFile(target)
    first.write(b"first")
    second.write(b"second")
    assert first.commit_new()
    assert not second.commit_new()
    assert target.read_text() == "first"
    assert _entries(tmp_path) == ["task.json"]


def test_a_missing_directory_is_an_error_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "data.json"
    with pytest.raises(AutojobError, match="cannot write the file") as caught:
        write_atomic(target, "{}")
    assert caught.value.path == target
