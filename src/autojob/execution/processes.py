"""The processes of a task's run on this machine, and how they are stopped.

A run started here is up to two process groups: the task script's (a runner
starts it in a session of its own) and, when the command runs under
``autojob run``, the command's own session (recorded in
``SETTINGS.COMMAND_FILE``). Both are identified by what the kernel says (pid
and start time in clock ticks), never by wall-clock times. Stopping a run
sends SIGTERM to every group, SIGKILL after the grace period, and waits until
nothing of it is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from autojob.store.state import (
    TaskState,
    command_alive,
    group_alive,
    process_alive,
    process_group,
    read_state,
    this_host,
)

__all__ = ["KILL_PATIENCE", "run_groups", "send_signal", "stop_runs"]

#: seconds to wait for processes to vanish after SIGKILL
KILL_PATIENCE = 10.0


def run_groups(path: Path, state: TaskState | None = None) -> list[int]:
    """The process groups of the task's run still alive here (as negative ids).

    A positive id is a lone process: a task script started by hand shares its
    terminal's group, which is not the run's to signal.
    """
    state = read_state(path) if state is None else state
    found: list[int] = []
    here = state.host in (None, this_host()) and state.started_at is not None
    if here and process_alive(state.pid, state.started_at, start_ticks=_ticks(path)):
        pid = state.pid or 0
        found.append(-pid if process_group(pid) == pid else pid)
    command = command_alive(path)
    if command is not None and -command not in found:
        found.append(-command)
    return found


def _ticks(path: Path) -> int | None:
    """The start ticks in the task's start record, if its script wrote them."""
    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.store.state import read_record  # noqa: PLC0415

    record = read_record(path / SETTINGS.STARTED_FILE) or {}
    ticks = record.get("start_ticks")
    return ticks if isinstance(ticks, int) and not isinstance(ticks, bool) else None


def send_signal(target: int, signum: int) -> None:
    """Signal a process group (a negative id) or a lone process, if it is still there."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if target < 0:
            os.killpg(-target, signum)
        else:
            os.kill(target, signum)


def _alive(target: int) -> bool:
    return group_alive(-target) if target < 0 else process_alive(target)


def stop_runs(
    tasks: Sequence[tuple[Path, TaskState]],
    *,
    grace: float,
    known: Mapping[Path, Sequence[int]] | None = None,
) -> list[Path]:
    """Stop the runs of ``tasks`` here: TERM, KILL after ``grace``; return those left.

    Task directories whose run has no process here are passed over. Groups
    that appear meanwhile (a command's session recorded just after its start)
    are signalled too; ``known``: groups the caller started itself (negative
    ids), for a run that may not have recorded its start yet. Returns the
    tasks of which something still runs after SIGKILL and
    :data:`KILL_PATIENCE` seconds (a process stuck in the kernel).
    """
    given = known or {}
    targets = {path: [*run_groups(path, state), *given.get(path, ())] for path, state in tasks}
    signalled: dict[Path, set[int]] = {path: set() for path in targets}

    def pass_of(signum: int) -> list[Path]:
        left = []
        for path, before in targets.items():
            groups = [g for g in {*before, *run_groups(path)} if _alive(g)]
            targets[path] = groups
            for group in groups:
                if signum == signal.SIGKILL or group not in signalled[path]:
                    send_signal(group, signum)
                    signalled[path].add(group)
            if groups:
                left.append(path)
        return left

    deadline = time.monotonic() + grace
    while pass_of(signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.05)
    deadline = time.monotonic() + KILL_PATIENCE
    left = pass_of(signal.SIGKILL)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [path for path in left if any(_alive(g) for g in targets[path])]
    return left
