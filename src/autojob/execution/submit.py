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
from typing import TYPE_CHECKING, Any

from autojob import SETTINGS
from autojob.errors import AutojobError, InputError
from autojob.execution.local import RunSpec, default_parallelism, write_job_file
from autojob.store.discovery import TaskDir, discover_tasks, ensure_task_metadata
from autojob.store.load import read_inputs_sections
from autojob.store.state import State, TaskState, read_state

if TYPE_CHECKING:
    from autojob.execution.slurm import ArrayJob

__all__ = [
    "DEFAULT_ONLY",
    "Selected",
    "default_parallelism",
    "find_tasks",
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
    #: the ``scheduler_inputs`` section of its inputs, as read
    scheduler: dict[str, Any] | None = None


def find_tasks(paths: Iterable[Path], *, dry_run: bool = False) -> list[TaskDir]:
    """Every task directory under ``paths``, once each, in order, resolved.

    Each root is resolved once; discovery follows no symbolic link below it,
    so the paths found are canonical. Task directories without metadata get
    it, unless ``dry_run``.
    """
    seen: set[Path] = set()
    found = []
    for root in paths:
        for task in discover_tasks(root.resolve()):
            if task.path not in seen:
                seen.add(task.path)
                if not task.has_metadata and not dry_run:
                    ensure_task_metadata(task.path)
                found.append(task)
    return found


def iter_task_dirs(paths: Iterable[Path], *, dry_run: bool = False) -> list[Path]:
    """The paths of :func:`find_tasks`."""
    return [task.path for task in find_tasks(paths, dry_run=dry_run)]


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


def _selected(task: TaskDir, state: TaskState, dry_run: bool) -> Selected:
    path = task.path
    sections = read_inputs_sections(path)
    inputs = sections.get("task_inputs") or {}
    script = inputs.get("task_script") or SETTINGS.DEFAULT_TASK_SCRIPT_FILE
    present = script in task.names or (path / script).is_file()
    if not present and not dry_run:
        from autojob.store.write import write_task_files  # noqa: PLC0415
        from autojob.tasks.task import Task  # noqa: PLC0415

        write_task_files(Task.from_directory(path, magic_mode=True, strict_mode=False), path)
    command = inputs.get("command")
    scheduler = sections.get("scheduler_inputs")
    limit = _time_limit(scheduler, path)
    if limit is not None and inputs.get("auto_restart", True):
        limit += RESTART_SLACK  # the script stops itself first, then starts the restart
    return Selected(
        RunSpec(path, str(script), limit),
        state,
        command if isinstance(command, str) else None,
        scheduler if isinstance(scheduler, dict) else None,
    )


def select_tasks(
    paths: Sequence[Path], only: frozenset[State] = DEFAULT_ONLY, *, dry_run: bool = False
) -> list[Selected]:
    """The tasks under ``paths`` whose state is in ``only``, ready to run.

    Loose task directories get their metadata and task script written, unless
    ``dry_run``.
    """
    chosen = []
    for task in find_tasks(paths, dry_run=dry_run):
        state = read_state(task.path, task.names or None)
        if state.state in only:
            chosen.append(_selected(task, state, dry_run))
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
    from autojob.execution.claims import claim_tasks, new_claim  # noqa: PLC0415
    from autojob.execution.slurm import cluster_limits, plan_arrays, submit_arrays  # noqa: PLC0415

    limit = cluster_limits()["MaxArraySize"]
    jobs = plan_arrays(
        [(s.spec.path, s.spec.script) for s in selected],
        batch_root=batch_root,
        max_array_size=limit,
        max_parallel=max_parallel,
        scheduler_inputs={s.spec.path: s.scheduler or {} for s in selected},
    )
    if dry_run:
        return jobs
    # each claim names the array element that will run the task, so one record
    # per task suffices: the job id is written once per array, after sbatch
    places = {
        path: {"batch": str(job.batch_dir), "array_index": index}
        for job in jobs
        for index, (path, _) in enumerate(job.tasks)
    }
    # noted in the status journals once submitted (with their job ids)
    token = new_claim()
    claimed = set(claim_tasks(places, allowed, "slurm", extra=places, note=False, claim=token))
    for job in jobs:
        job.indices = [i for i, (path, _) in enumerate(job.tasks) if path in claimed]
        job.claim = token
    return submit_arrays([job for job in jobs if job.indices])
