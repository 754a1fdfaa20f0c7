"""Choose the tasks to run under some paths and hand them to an executor.

This is the one submission path: ``submit``, ``restart --submit``,
``resubmit`` and ``advance --submit`` all select tasks with
:func:`select_tasks` and submit them with :func:`submit_tasks` (or, for a dry
run or ``--wait``, :func:`plan_submission` and the executor's own methods).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autojob import SETTINGS
from autojob.errors import AutojobError, InputError
from autojob.store.discovery import TaskDir, discover_tasks, ensure_task_metadata
from autojob.store.load import read_inputs_sections
from autojob.store.state import State, TaskState, read_state
from autojob.store.task_script import ScriptReport, refresh_task_script
from autojob.store.walk import no_tasks_error

if TYPE_CHECKING:
    from autojob.execution.executor import Executor, Plan, Submission

__all__ = [
    "DEFAULT_ONLY",
    "RunSpec",
    "Selected",
    "check_only",
    "find_tasks",
    "plan",
    "plan_submission",
    "select_tasks",
    "submit_tasks",
]

logger = logging.getLogger(__name__)
#: seconds past its time limit a self-restarting task may take to start its restart
RESTART_SLACK = 15.0
#: what submit runs by default: tasks never run, and tasks whose run was lost
DEFAULT_ONLY = frozenset({State.IDLE, State.UNKNOWN})


@dataclass(frozen=True)
class RunSpec:
    """One task to run: its directory, script and time limit (seconds)."""

    path: Path
    script: str
    time_limit: float | None = None


@dataclass
class Selected:
    """A task chosen to run, with what is needed to run it."""

    spec: RunSpec
    state: TaskState
    command: str | None = None
    #: the ``scheduler_inputs`` section of its inputs, as read
    scheduler: dict[str, Any] | None = None
    #: what became of its task script (rendered again, written, kept)
    script: ScriptReport | None = None


def find_tasks(paths: Iterable[Path], *, dry_run: bool = False) -> list[TaskDir]:
    """Every task directory under ``paths``, once each, in order, resolved.

    Each root is resolved once; discovery follows no symbolic link below it,
    so the paths found are canonical. Task directories without metadata get
    it, unless ``dry_run``.

    Raises:
        InputError: no task lies under ``paths``.
    """
    roots = list(paths)
    seen: set[Path] = set()
    found = []
    for root in roots:
        for task in discover_tasks(root.resolve()):
            if task.path not in seen:
                seen.add(task.path)
                if not task.has_metadata and not dry_run:
                    ensure_task_metadata(task.path)
                found.append(task)
    if roots and not found:
        raise no_tasks_error(roots)
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
    # inputs.json is the source of truth: the script is rendered again when it
    # changed since (never a script edited by hand), written where it is missing
    report = refresh_task_script(path, dry_run=dry_run, require_command=True)
    script = report.path.name
    if report.kept and report.stale:
        logger.warning(
            "%s: kept although %s changed since autojob rendered it, because it was "
            "edited by hand: 'autojob render --force %s' replaces it",
            report.path,
            SETTINGS.INPUTS_FILE,
            path,
        )
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
        report,
    )


def select_tasks(
    paths: Sequence[Path],
    only: frozenset[State] = DEFAULT_ONLY,
    *,
    dry_run: bool = False,
    also: Callable[[Path, TaskState], bool] | None = None,
) -> list[Selected]:
    """The tasks under ``paths`` whose state is in ``only``, ready to run.

    Loose task directories get their metadata and task script written, and a
    script autojob rendered is rendered again where ``inputs.json`` changed
    since, unless ``dry_run`` (which checks the same, writing nothing).

    ``also``: asked about each task in another state; True selects it too
    (a task whose run is known lost, though its files say it runs).

    Raises:
        InputError: a task whose script autojob renders has no command, or its
            inputs hold a key autojob refuses; nothing is submitted then.
    """
    chosen = []
    for task in find_tasks(paths, dry_run=dry_run):
        state = read_state(task.path, task.names or None)
        if state.state in only or (also is not None and also(task.path, state)):
            chosen.append(_selected(task, state, dry_run))
    return chosen


def plan(selected: Sequence[Selected]) -> list[RunSpec]:
    """The run specifications of selected tasks."""
    return [s.spec for s in selected]


def plan_submission(
    paths: Sequence[Path],
    *,
    executor: str | None = None,
    allowed: frozenset[State] = DEFAULT_ONLY,
    max_parallel: int | None = None,
    dry_run: bool = False,
    root: Path | None = None,
) -> tuple[Executor, Plan]:
    """The executor and its plan for the tasks under ``paths`` in ``allowed`` states.

    ``executor``: its name (default: ``SETTINGS.DEFAULT_EXECUTOR``). ``root``:
    where the executor keeps its job scripts (default: the first path).
    Nothing is claimed or submitted; unless ``dry_run``, loose task directories
    get their metadata and script written.
    """
    from autojob.execution.executor import chosen_executor  # noqa: PLC0415

    check_only(allowed)
    chosen = chosen_executor(executor)
    selected = select_tasks(paths, allowed, dry_run=dry_run)
    where = root if root is not None else (paths[0] if paths else Path())
    return chosen, chosen.plan(selected, max_parallel=max_parallel, root=where)


def submit_tasks(
    paths: Sequence[Path],
    *,
    executor: str | None = None,
    allowed: frozenset[State] = DEFAULT_ONLY,
    max_parallel: int | None = None,
    root: Path | None = None,
) -> Submission:
    """Submit the tasks under ``paths`` whose state is in ``allowed``; say what was done."""
    from autojob.execution.executor import Submission  # noqa: PLC0415

    chosen, planned = plan_submission(
        paths, executor=executor, allowed=allowed, max_parallel=max_parallel, root=root
    )
    if not planned.selected:
        return Submission(0, nothing_to_submit(allowed))
    return chosen.submit(planned, allowed=allowed)


def check_only(allowed: Iterable[State]) -> None:
    """Refuse to submit tasks that are queued or running: they would run twice.

    Raises:
        InputError: ``allowed`` holds queued or running.
    """
    live = sorted(set(allowed) & {State.QUEUED, State.RUNNING})
    if live:
        raise InputError(
            f"--only {live[0]}: a task that is queued or running is never submitted again "
            "(it would run twice)",
            field="--only",
            hint="cancel it first ('autojob cancel PATH') and submit it with --only cancelled, "
            "or wait for it to end; 'autojob status' tells when a run is lost (unknown)",
        )


def nothing_to_submit(allowed: Iterable[State]) -> str:
    """What to say when no task under the paths may be submitted."""
    return "nothing to submit: no task under the paths is " + " or ".join(sorted(allowed))
