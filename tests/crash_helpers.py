"""Killing real autojob work with SIGKILL at random points, for the crash tests.

``AUTOJOB_CRASH_TRIALS`` scales the number of trials (default: 360 in all).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from autojob import SETTINGS
from autojob.store.names import STAGING_PREFIX

SCALE = float(os.environ.get("AUTOJOB_CRASH_TRIALS", "360")) / 360
RECORDS = ("QUEUED_FILE", "STARTED_FILE", "ENDED_FILE", "CANCEL_FILE")


def trials(base: int) -> int:
    return max(1, round(base * SCALE))


def fork_and_kill(work: Callable[[], object], delay: float) -> bool:
    """Run ``work`` in a child, SIGKILL it at ``delay`` s; True if it was killed then."""
    pid = os.fork()
    if pid == 0:  # the child: do the work, leave without pytest's teardown
        code = 0
        try:
            work()
        except BaseException:  # reported by the exit status
            code = 3
        os._exit(code)
    deadline = time.monotonic() + delay
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.0005)
    if os.WIFEXITED(status):
        assert os.WEXITSTATUS(status) == 0, "the work failed by itself, not by the kill"
        return False
    return os.WTERMSIG(status) == signal.SIGKILL


def full_duration(fresh_work: Callable[[int], Callable[[], object]]) -> float:
    """How long the work takes in a child left alone (least of three), to pick kill times.

    ``fresh_work(i)`` returns the work of probe ``i`` (on a tree of its own).
    """
    spans = []
    for i in range(3):
        work = fresh_work(i)
        start = time.monotonic()
        assert not fork_and_kill(work, 600)
        spans.append(time.monotonic() - start)
    return min(spans)


def killed_runs(
    tmp_path: Path, work: Callable[[Path], object], base: int, seed: int
) -> Iterator[tuple[Path, bool]]:
    """``work(folder)`` in fresh folders, each SIGKILLed at a random point of its run.

    Three probes time the work alone first; then ``trials(base)`` runs, each
    in a folder of its own. Yields each folder and whether its run was killed.
    """
    rng = random.Random(seed)

    def probe(i: int) -> Callable[[], object]:
        (tmp_path / f"p{i}").mkdir()
        return functools.partial(work, tmp_path / f"p{i}")

    span = full_duration(probe)
    for trial in range(trials(base)):
        folder = tmp_path / f"s{trial}"
        folder.mkdir()
        yield folder, fork_and_kill(functools.partial(work, folder), rng.uniform(0, span))


def assert_files_parse(root: Path) -> int:
    """Every metadata file and state record under ``root`` parses; return how many."""
    names = {
        SETTINGS.TASK_METADATA_FILE,
        SETTINGS.INPUTS_FILE,
        SETTINGS.TASK_GROUP_METADATA_FILE,
        SETTINGS.STUDY_METADATA_FILE,
        *(getattr(SETTINGS, r) for r in RECORDS),
    }
    checked = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(STAGING_PREFIX)]  # never visible
        for name in files:
            if name in names:
                path = Path(folder, name)
                assert isinstance(json.loads(path.read_bytes()), dict), path
                checked += 1
    return checked
