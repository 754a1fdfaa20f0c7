"""Choose the tasks to run under some paths and hand them to an executor."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autojob import SETTINGS
from autojob.errors import AutojobError, InputError
from autojob.execution.local import RunSpec, default_parallelism, write_job_file
from autojob.store.discovery import discover_tasks, ensure_task_metadata
from autojob.store.load import read_inputs_sections
from autojob.store.state import State, TaskState, read_state

if TYPE_CHECKING:
    from autojob.execution.slurm import ArrayJob

__all__ = [
    "DEFAULT_ONLY",
    "Selected",
    "default_parallelism",
    "plan",
    "runner_log_dir",
    "select_tasks",
    "slurm_arrays",
    "slurm_batch_root",
    "start_background",
]

#: seconds past its time limit a self-restarting task may take to start its restart
RESTART_SLACK = 15.0
#: what submit runs by default: tasks never run, and tasks whose run was lost
DEFAULT_ONLY = frozenset({State.IDLE, State.UNKNOWN})


@dataclass
class Selected:
    """A task chosen to run, with what is needed to run it."""

    spec: RunSpec
    state: TaskState
    command: str | None = None


def iter_task_dirs(paths: Iterable[Path], *, dry_run: bool = False) -> list[Path]:
    """Every task directory under ``paths``, once each, in order.

    Task directories without metadata get it, unless ``dry_run``.
    """
    seen: set[str] = set()
    found = []
    for root in paths:
        for task in discover_tasks(root):
            key = os.path.realpath(task.path)
            if key not in seen:
                seen.add(key)
                if not task.has_metadata and not dry_run:
                    ensure_task_metadata(task.path)
                found.append(task.path)
    return found


def _time_limit(scheduler: object, path: Path) -> float | None:
    from autojob.timefmt import parse_slurm_time  # noqa: PLC0415

    if not isinstance(scheduler, dict) or scheduler.get("time") in (None, ""):
        return None
    try:
        limit = parse_slurm_time(str(scheduler["time"]), field="scheduler_inputs.time")
    except AutojobError as exc:
        raise type(exc)(
            exc.message, path=path / SETTINGS.INPUTS_FILE, field=exc.field, hint=exc.hint
        ) from exc
    return None if limit is None else limit.total_seconds()


def _spec_for(path: Path, dry_run: bool) -> tuple[RunSpec, str | None]:
    sections = read_inputs_sections(path)
    inputs = sections.get("task_inputs") or {}
    script = inputs.get("task_script") or SETTINGS.DEFAULT_TASK_SCRIPT_FILE
    if not (path / script).is_file() and not dry_run:
        from autojob.next.tree import write_task_files  # noqa: PLC0415
        from autojob.tasks.task import Task  # noqa: PLC0415

        write_task_files(Task.from_directory(path, magic_mode=True, strict_mode=False), path)
    command = inputs.get("command")
    limit = _time_limit(sections.get("scheduler_inputs"), path)
    if limit is not None and inputs.get("auto_restart", True):
        limit += RESTART_SLACK  # the script stops itself first, then starts the restart
    return RunSpec(path, str(script), limit), command if isinstance(command, str) else None


def select_tasks(
    paths: Sequence[Path], only: frozenset[State] = DEFAULT_ONLY, *, dry_run: bool = False
) -> list[Selected]:
    """The tasks under ``paths`` whose state is in ``only``, ready to run.

    Loose task directories get their metadata and task script written, unless
    ``dry_run``.
    """
    chosen = []
    for path in iter_task_dirs(paths, dry_run=dry_run):
        state = read_state(path)
        if state.state in only:
            spec, command = _spec_for(path, dry_run)
            chosen.append(Selected(spec, state, command))
    return chosen


def plan(selected: Sequence[Selected]) -> list[RunSpec]:
    """The run specifications of selected tasks."""
    return [s.spec for s in selected]


def runner_log_dir() -> Path:
    """Where background runners write their logs."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base, "autojob", "runners")
    path.mkdir(parents=True, exist_ok=True)
    return path


def start_background(
    specs: Sequence[RunSpec], *, max_parallel: int | None, allowed: frozenset[State]
) -> tuple[int, int, Path]:
    """Start a detached runner for ``specs``; return its pid, tasks claimed, log.

    The runner survives the terminal closing (own session, no terminal I/O).
    """
    logs = runner_log_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fd, job_name = tempfile.mkstemp(prefix=f"job-{stamp}-", suffix=".json", dir=logs)
    os.close(fd)
    write_job_file(Path(job_name), specs, max_parallel or default_parallelism(), allowed)
    log_path = Path(job_name).with_suffix(".log")
    read_end, write_end = os.pipe()
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "autojob.execution.local", job_name, str(write_end)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        answer = ready.read().strip()
    if not answer.isdigit():
        raise AutojobError(
            f"the background runner (pid {child.pid}) failed to start",
            path=log_path,
            hint="read its log for the reason",
        )
    return child.pid, int(answer), log_path


EXECUTORS = ("local", "slurm")


def check_executor(name: str) -> str:
    """Refuse executors that do not exist."""
    if name not in EXECUTORS:
        raise InputError(
            f"unknown executor {name!r}",
            field="--executor",
            hint="use 'local' (this machine's cores) or 'slurm'",
        )
    return name


def slurm_batch_root(path: Path) -> Path:
    """Where the job-array scripts of a submit under ``path`` are written."""
    return path.resolve() / SETTINGS.INDEX_DIR / "slurm"


def slurm_arrays(
    selected: Sequence[Selected],
    *,
    allowed: frozenset[State],
    max_parallel: int | None,
    batch_root: Path,
    dry_run: bool,
) -> list[ArrayJob]:
    """Plan (and unless ``dry_run``, claim and submit) the SLURM job arrays."""
    from autojob.execution.records import claim_tasks  # noqa: PLC0415
    from autojob.execution.slurm import cluster_limits, plan_arrays, submit_arrays  # noqa: PLC0415

    limit = cluster_limits()["MaxArraySize"]
    tasks = [(s.spec.path, s.spec.script) for s in selected]
    if not dry_run:
        claimed = set(claim_tasks((p for p, _ in tasks), allowed, "slurm"))
        tasks = [t for t in tasks if t[0] in claimed]
    jobs = plan_arrays(
        tasks, batch_root=batch_root, max_array_size=limit, max_parallel=max_parallel
    )
    return jobs if dry_run else submit_arrays(jobs)
