"""New attempts of tasks that ended badly, with more time or memory.

A restart is a new task in the same task group (the seed's data hierarchy):
the old attempt stays as it is, history included. Only the newest attempt of a
group is restarted, so running ``resubmit`` twice creates nothing twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autojob import SETTINGS
from autojob.create.new import as_new_attempt, load_source
from autojob.errors import InputError
from autojob.execution.track import refresh_from_scheduler
from autojob.scheduler import scale_memory, scale_time
from autojob.store.state import State
from autojob.store.status_index import collect, newest_attempts
from autojob.store.walk import no_tasks_error
from autojob.store.write import create_task_tree
from autojob.timefmt import parse_slurm_time

__all__ = [
    "CAUSES",
    "Attempt",
    "by_executor",
    "plan_resubmission",
    "restarts_of",
    "resubmit",
    "within_budget",
]

#: what --only accepts, and the states and causes each means
CAUSES: dict[str, tuple[State, str | None]] = {
    "timeout": (State.TIMEOUT, None),
    "oom": (State.OOM, None),
    "failed": (State.FAILED, None),
    "node_fail": (State.FAILED, "node_fail"),
    "preempted": (State.FAILED, "preempted"),
    "cancelled": (State.CANCELLED, None),
    "unknown": (State.UNKNOWN, None),
}


@dataclass
class Attempt:
    """A task to restart, and (once made) its new attempt."""

    old: Path
    state: State
    reason: str | None
    new: Path | None = None
    #: the executor the old attempt ran on, as recorded with it (None: not recorded)
    executor: str | None = None


def _capped(value: str | None, cap: str | None) -> str | None:
    if value is None or cap is None:
        return value
    limit, most = parse_slurm_time(value), parse_slurm_time(cap)
    if limit is not None and most is not None and limit > most:
        return cap
    return value


def _matches(state: State, reason: str | None, only: Iterable[str]) -> bool:
    for name in only:
        want_state, want_reason = CAUSES[name]
        if state is want_state and (want_reason is None or reason == want_reason):
            return True
    return False


def plan_resubmission(paths: Sequence[Path], only: Sequence[str]) -> list[Attempt]:
    """The newest attempts under ``paths`` that ended in one of ``only``.

    Raises:
        InputError: a cause is unknown, or no task lies under ``paths``.
    """
    unknown = sorted(set(only) - set(CAUSES))
    if unknown:
        raise InputError(
            f"unknown cause(s) {', '.join(unknown)}",
            field="--only",
            hint=f"use some of {', '.join(CAUSES)}",
        )
    attempts: dict[str, Attempt] = {}
    seen = 0
    for root in paths:
        report = collect(root)
        seen += len(report)
        # what the scheduler knows now: ends it saw, jobs it lost (unknown)
        refresh_from_scheduler(report, force=True)
        for entry in newest_attempts(report):
            path = os.path.realpath(report.root / entry.path)
            wanted = _matches(entry.state.state, entry.state.reason, only)
            stopped = (Path(path) / SETTINGS.STOP_FILE).exists()
            if wanted and not stopped and path not in attempts:
                state = entry.state
                attempts[path] = Attempt(
                    Path(path), state.state, state.reason, executor=state.executor
                )
    if not seen:
        raise no_tasks_error(paths)
    return list(attempts.values())


def within_budget(attempt: Attempt) -> tuple[bool, str]:
    """Whether an automatic restart of ``attempt`` is allowed, and why (not).

    The budget is the task's own: ``max_attempts`` in all (restarts are
    counted by the ``restart-of:`` tags each attempt inherits).
    """
    source = load_source(attempt.old)
    made = 1 + sum(tag.startswith("restart-of:") for tag in source.task_metadata.tags)
    inputs = source.task_inputs
    if not inputs.auto_restart:
        return False, "auto_restart is off"
    if made >= inputs.max_attempts:
        return False, f"{made} of max_attempts={inputs.max_attempts} attempts made"
    return True, f"attempt {made + 1} of {inputs.max_attempts}"


def resubmit(
    attempts: Sequence[Attempt],
    *,
    time_factor: float = 1.0,
    mem_factor: float = 1.0,
    assignments: Sequence[str] = (),
    auto: bool = False,
) -> list[Attempt]:
    """Create the new attempts (same group, carried-over files, scaled resources).

    ``auto``: an automatic restart: the time limit grows by the task's own
    ``restart_time_factor``, capped by its ``restart_max_time``.
    """
    if time_factor <= 0 or mem_factor <= 0:
        raise InputError("factors must be positive", field="--time-factor/--mem-factor")
    for attempt in attempts:
        source = load_source(attempt.old)
        task = as_new_attempt(source, None, list(assignments), previous=attempt.old, resume=True)
        sched = task.scheduler_inputs
        factor = source.task_inputs.restart_time_factor if auto else time_factor
        if factor != 1.0 and sched.time is not None:
            sched.time = _capped(
                scale_time(sched.time, factor), source.task_inputs.restart_max_time
            )
        if mem_factor != 1.0:
            if sched.mem is not None:
                sched.mem = scale_memory(sched.mem, mem_factor)
            if sched.mem_per_cpu is not None:
                sched.mem_per_cpu = scale_memory(sched.mem_per_cpu, mem_factor)
        task.task_metadata.tags = [
            *task.task_metadata.tags,
            f"restart-of:{source.task_metadata.task_id}",
        ]
        attempt.new = create_task_tree(
            task,
            attempt.old.parent,
            src=attempt.old,
            # as restart does: the carried-over files and the task's input files
            files_to_carry_over=list(
                dict.fromkeys(
                    [*source.task_inputs.files_to_carry_over, *source.task_inputs.files_to_copy]
                )
            ),
            inherited=source.input_sections(),
        )
    return list(attempts)


def by_executor(
    attempts: Sequence[Attempt], given: str | None, default: str
) -> dict[str, list[Path]]:
    """The new attempts to submit, by the executor each is submitted to.

    ``given`` (``--executor``) for all when set; else the executor the old
    attempt ran on, as recorded with it; ``default`` for an attempt with none
    recorded.
    """
    groups: dict[str, list[Path]] = {}
    for attempt in attempts:
        if attempt.new is not None:
            name = given or attempt.executor or default
            groups.setdefault(name, []).append(attempt.new)
    return groups


def restarts_of(task_dir: Path, *, besides: Collection[str] = ()) -> list[Path]:
    """The attempts made by restarting ``task_dir``, oldest first.

    They are the tasks of its task group whose newest ``restart-of:`` tag
    names it.

    ``besides``: names of directories of the group to pass over (those that
    existed before, when only new restarts are wanted).
    """
    own = _task_id(task_dir)
    group = task_dir.parent
    if own is None or not (group / SETTINGS.TASK_GROUP_METADATA_FILE).is_file():
        return []
    found = []
    for entry in sorted(os.scandir(group), key=lambda e: e.name):
        if entry.name in besides or entry.name == task_dir.name or not entry.is_dir():
            continue
        tags = _tags(Path(entry.path))
        restarts = [t for t in tags if t.startswith(RESTART_TAG)]
        if restarts and restarts[-1] == RESTART_TAG + own:
            found.append(Path(entry.path))
    return found


#: the tag a new attempt carries, with the id of the attempt it restarts
RESTART_TAG = "restart-of:"


def _metadata(task_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((task_dir / SETTINGS.TASK_METADATA_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _task_id(task_dir: Path) -> str | None:
    value = _metadata(task_dir).get("task_id")
    return value if isinstance(value, str) else None


def _tags(task_dir: Path) -> list[str]:
    tags = _metadata(task_dir).get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
