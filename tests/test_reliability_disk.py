"""A full disk and a read-only tree: clear errors, previous files intact.

The tree lives on a small tmpfs mounted for the test (root only, as in CI),
which is then filled up, or remounted read-only.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import run, snapshot, study_of_commands

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


#: three tasks that write a file
WRITERS = {f"t{i}": "echo done > result.txt" for i in range(3)}


def fill(disk: Path) -> None:
    """Fill the file system to the last byte (big writes, then single bytes)."""
    for name, size in (("filler", 65536), ("filler2", 1)):
        fd = os.open(disk / name, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
        finally:
            os.close(fd)


def assert_clear_failure(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def without(snap: dict[str, bytes | None], *names: str) -> dict[str, bytes | None]:
    return {k: v for k, v in snap.items() if not any(k.startswith(n) for n in names)}


def test_a_full_disk_fails_clearly_and_keeps_the_files(
    small_disk: Path, figures: dict[str, Any]
) -> None:
    study, _ = study_of_commands(small_disk, WRITERS)
    assert run("status", study, cwd=small_disk).returncode == 0  # an index exists
    fill(small_disk)
    before = without(snapshot(small_disk), "filler")
    cases = {
        "new task": (
            "new",
            "--set",
            "command=true",
            "--type",
            "task",
            "--dest",
            study / "t0",
            "--label",
            "more",
        ),
        "new task group": (
            "new",
            "--set",
            "command=true",
            "--type",
            "task_group",
            "--dest",
            study,
            "--label",
            "g",
        ),
        "submit": ("submit", study, "--wait"),
    }
    for args in cases.values():
        assert_clear_failure(run(*args, cwd=small_disk), "No space left on device")
        assert without(snapshot(small_disk), "filler") == before  # nothing half-written
    # reading still works on a full disk
    status = run("status", study, cwd=small_disk)
    assert status.returncode == 0 and "idle" in status.stdout
    # space again: the same commands succeed
    (small_disk / "filler").unlink()
    (small_disk / "filler2").unlink()
    assert run("submit", study, "--wait", cwd=small_disk).returncode == 0
    assert all((d / "result.txt").exists() for d in study.glob("t*/*/") if d.is_dir())
    figures["disk full"] = {"commands refused cleanly": len(cases), "files changed": 0}


def test_a_read_only_tree_fails_clearly_and_keeps_the_files(
    small_disk: Path, figures: dict[str, Any]
) -> None:
    study, _ = study_of_commands(small_disk, WRITERS)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    before = snapshot(small_disk)
    cases = {
        "new task": (
            "new",
            "--set",
            "command=true",
            "--type",
            "task",
            "--dest",
            study / "t0",
            "--label",
            "more",
        ),
        "submit": ("submit", study, "--wait"),
        "cancel": ("cancel", study),
    }
    for args in cases.values():
        result = run(*args, cwd=small_disk)
        if args[0] == "cancel":  # nothing runs, so nothing to write: it says so
            assert result.returncode == 0 and "nothing to cancel" in result.stdout
            continue
        assert_clear_failure(result, "Read-only file system")
    assert snapshot(small_disk) == before
    status = run("status", study, cwd=small_disk)  # no index can be written: still answers
    assert status.returncode == 0 and "idle" in status.stdout
    figures["read-only tree"] = {"commands refused cleanly": len(cases) - 1, "files changed": 0}
