"""The task lock (on the directory, or a file where directories cannot be locked)
and the resolution of many task paths at once."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autojob.errors import AutojobError
from autojob.store.journal import real_paths
from autojob.store.task_lock import LOCK_FILE, task_lock

HOLD = """
import sys, time
from pathlib import Path
from autojob.store.task_lock import task_lock
with task_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(30)
"""


def _holder(folder: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def test_a_held_task_lock_excludes_another_process_until_it_dies(tmp_path: Path) -> None:
    child = _holder(tmp_path)
    try:
        with (
            pytest.raises(AutojobError, match="locked by another autojob process"),
            task_lock(tmp_path, timeout=0.3),
        ):
            pass
    finally:
        child.kill()
        child.wait()
    with task_lock(tmp_path, timeout=5):  # the kernel released it with its holder
        pass
    assert not (tmp_path / LOCK_FILE).exists()  # the directory itself was locked


def test_where_directories_cannot_be_locked_a_lock_file_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_flock = fcntl.flock

    def like_nfs(fd: int, operation: int) -> None:
        # NFS emulates flock with byte-range locks, refused on a read-only fd
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", like_nfs)
    with task_lock(tmp_path, timeout=1):
        assert (tmp_path / LOCK_FILE).exists()
        fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # held: others wait
                real_flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_real_paths_agree_with_realpath(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a" / "b")
    (tmp_path / "a" / "b" / "rel").symlink_to("c")
    (tmp_path / "loop").symlink_to("loop")
    paths: list[str | Path] = [
        tmp_path / "a" / "b" / "c",
        tmp_path / "link" / "c",
        tmp_path / "link" / "rel",
        f"{tmp_path}/link/../x",  # '..' after a link
        f"{tmp_path}/a/./b//c/",
        tmp_path / "missing" / "x",
        tmp_path / "loop" / "x",
        "relative/x",
        "/",
        *(tmp_path / "a" / "b" / "c" / f"t{i}" for i in range(3)),
    ]
    assert list(real_paths(paths)) == [os.path.realpath(p) for p in paths]
