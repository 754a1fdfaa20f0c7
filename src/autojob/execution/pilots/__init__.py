"""Packed execution: pilots that claim many short tasks inside one allocation each.

``autojob submit PATHS --executor slurm --pilots N --pilot-time 02:00:00 -j 4``
submits N pilots (one array job) instead of one job per task. Each pilot runs
a worker (:mod:`.worker`) that claims tasks from the tree under each task's
lock, as ``submit`` does, and runs up to ``-j`` at once; no server holds any
state, the task files and the pool's files (:mod:`.pool`) are the whole truth.

- :func:`plan_pilots`, :func:`submit_planned_pilots`: one pool per resource
  group, each with its N pilots;
- :class:`PilotExecutor` (``pilot``): the executor recorded with each task a
  pilot runs, so status asks it (:mod:`.liveness`) whether the pilot that
  holds a task still lives, and cancel stops the task where it runs;
- :mod:`.launch`: pilots started, replaced within the budget, stopped;
- :mod:`.report`: the pilots as status shows them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autojob import SETTINGS
from autojob.errors import InputError
from autojob.execution.batching import batch_name, new_plan
from autojob.execution.executor import Executor, Plan, Preview, Submission, get_executor
from autojob.execution.pilots.launch import pilot_command, pilot_script, python_path, submit_pilots
from autojob.execution.pilots.liveness import Liveness
from autojob.execution.pilots.pool import (
    NAME,
    POOL_VARIABLE,
    Budget,
    Pool,
    PoolSettings,
    deadline_margin,
)
from autojob.execution.processes import stop_runs
from autojob.store.run_files import remove_record
from autojob.store.state import State, TaskState, read_state, this_host
from autojob.store.task_lock import task_lock
from autojob.store.walk import tree_dir

if TYPE_CHECKING:
    from autojob.execution.submit import Selected

__all__ = [
    "EXECUTORS",
    "PilotExecutor",
    "PilotRequest",
    "PoolPlan",
    "lost_to_a_dead_pilot",
    "plan_pilots",
    "submit_planned_pilots",
]

#: the executors pilots can be jobs of
EXECUTORS = ("local", "slurm", "sge")
#: scheduler inputs that concern one task, not the pilot that runs it
_PER_TASK = frozenset({"time", "job_name", "job-name", "output", "error", "array"})


@dataclass
class PilotRequest:
    """What ``--pilots``, ``--pilot-time``, ``-j`` and the budget options ask for."""

    pilots: int
    per_pilot: int = 1
    pilot_seconds: float | None = None
    budget: Budget = field(default_factory=Budget)


@dataclass
class PoolPlan:
    """One pool to be written: its directory, settings and tasks."""

    pool: Pool
    settings: PoolSettings
    tasks: list[tuple[str, str, float | None]]

    def command(self) -> list[str]:
        """The command that submits its pilots."""
        return pilot_command(self.pool, self.settings.pilots)


def _group_key(scheduler: dict[str, Any] | None, executor: str) -> str:
    """Tasks with the same key share pilots: their resources, their time apart."""
    if executor == "local":
        return ""
    kept = {k: v for k, v in (scheduler or {}).items() if k not in _PER_TASK}
    return json.dumps(kept, sort_keys=True, default=str)


def _pilot_inputs(scheduler: dict[str, Any] | None, request: PilotRequest) -> dict[str, Any]:
    """A pilot's scheduler inputs: its tasks' resources times ``-j``, its own time."""
    from autojob.scheduler import SchedulerInputs, scale_memory  # noqa: PLC0415
    from autojob.timefmt import format_slurm_time  # noqa: PLC0415

    kept = {k: v for k, v in (scheduler or {}).items() if k not in _PER_TASK}
    inputs = SchedulerInputs.model_validate(kept)
    inputs.cpus_per_task = (inputs.cpus_per_task or 1) * request.per_pilot
    inputs.mem = scale_memory(inputs.mem, request.per_pilot)
    if request.pilot_seconds is not None:
        inputs.time = format_slurm_time(_delta(request.pilot_seconds))
    dumped: dict[str, Any] = inputs.model_dump(mode="json", by_alias=True, exclude_none=True)
    if dumped.get("cpus_per_task") == 1:
        del dumped["cpus_per_task"]
    return dumped


def _delta(seconds: float) -> Any:
    import datetime  # noqa: PLC0415

    return datetime.timedelta(seconds=seconds)


def _check_fits(selected: Sequence[Selected], request: PilotRequest) -> None:
    """Refuse a task whose own time limit leaves no room in a pilot."""
    if request.pilot_seconds is None:
        return
    room = request.pilot_seconds - deadline_margin(request.pilot_seconds)
    from autojob import SETTINGS  # noqa: PLC0415

    for chosen in selected:
        limit = chosen.spec.time_limit
        if limit is not None and limit > room:
            raise InputError(
                f"the task's time limit ({limit:g} s) does not fit in a pilot of "
                f"{request.pilot_seconds:g} s, which keeps {request.pilot_seconds - room:g} s "
                "free before its end",
                path=chosen.spec.path / SETTINGS.INPUTS_FILE,
                field="scheduler_inputs.time",
                hint="give a longer --pilot-time, or submit this task without --pilots",
            )


def plan_pilots(
    executor: Executor,
    selected: Sequence[Selected],
    request: PilotRequest,
    *,
    root: Path,
    allowed: frozenset[State],
) -> Plan:
    """Pools of ``selected``, one per resource group, each to get ``request.pilots`` pilots.

    Changes nothing; :func:`submit_planned_pilots` writes and submits them.

    Raises:
        InputError: pilots cannot be jobs of ``executor``, or a task's time
            limit does not fit in a pilot.
    """
    if executor.name not in EXECUTORS:
        raise InputError(
            f"--pilots cannot run as jobs of the executor {executor.name!r}",
            field="--pilots",
            hint="use --executor " + ", ".join(EXECUTORS) + ", or leave out --pilots",
        )
    _check_fits(selected, request)
    groups: dict[str, list[Selected]] = {}
    for chosen in selected:
        groups.setdefault(_group_key(chosen.scheduler, executor.name), []).append(chosen)
    where = tree_dir(root.resolve()) / "pilots"
    name = new_plan()
    pools = [
        _pool_plan(where / batch_name(name, n), members, executor.name, request, root, allowed)
        for n, members in enumerate(groups.values())
    ]
    return Plan(
        NAME, list(selected), request.per_pilot, list(pools), where, _preview(pools, executor.name)
    )


def _pool_plan(
    directory: Path,
    members: list[Selected],
    executor: str,
    request: PilotRequest,
    root: Path,
    allowed: frozenset[State],
) -> PoolPlan:
    settings = PoolSettings(
        executor=executor,
        pilots=request.pilots,
        per_pilot=request.per_pilot,
        pilot_seconds=request.pilot_seconds,
        allowed=sorted(allowed),
        root=str(root.resolve()),
        budget=request.budget,
        scheduler=_pilot_inputs(members[0].scheduler, request) if executor != "local" else {},
        python=python_path(),
        created=time.time(),
    )
    tasks = [(str(s.spec.path), s.spec.script, s.spec.time_limit) for s in members]
    pool = Pool(directory)
    pool._settings = settings  # planned, not written yet
    return PoolPlan(pool, settings, tasks)


def _preview(pools: list[PoolPlan], executor: str) -> Preview:
    blocks = []
    for plan in pools:
        s = plan.settings
        comment = (
            f"# {len(plan.tasks)} task(s), {s.pilots} pilot(s) ({executor}), "
            f"{s.per_pilot} task(s) at once each: {' '.join(plan.command())}"
        )
        blocks.append((comment, pilot_script(plan.pool) if executor != "local" else ""))
    total = sum(len(p.tasks) for p in pools)
    pilots = sum(p.settings.pilots for p in pools)
    return Preview(
        blocks=blocks,
        summary=f"{total} task(s) would run in {pilots} pilot(s) of {len(pools)} pool(s)",
    )


def submit_planned_pilots(plan: Plan) -> Submission:
    """Write each pool of ``plan`` and submit its pilots (one call per pool)."""
    pools = [p for p in plan.jobs if isinstance(p, PoolPlan)]
    ids: list[str] = []
    details = []
    count = 0
    for planned in pools:
        planned.pool.write(planned.settings, planned.tasks)
        sent = submit_pilots(planned.pool, planned.settings.pilots)
        ids += sent
        count += len(planned.tasks)
        details.append(f"pool: {planned.pool.dir}")
    executor = pools[0].settings.executor if pools else "?"
    pilots = sum(p.settings.pilots for p in pools)
    return Submission(
        count,
        f"submitted {pilots} pilot(s) ({executor}) for {count} task(s): {', '.join(ids)}",
        details=details,
        job_ids=ids,
    )


def lost_to_a_dead_pilot() -> Callable[[Path, TaskState], bool]:
    """A test for :func:`~autojob.execution.submit.select_tasks`: the task's pilot died.

    Its files still say queued or running (nothing but a pilot would notice):
    submitting pilots again picks it up.
    """
    liveness = Liveness()

    def lost(path: Path, state: TaskState) -> bool:
        live = state.state in (State.QUEUED, State.RUNNING)
        return live and state.executor == NAME and liveness.lost(path, state)

    return lost


class PilotExecutor(Executor):
    """The executor of tasks a pilot claimed: status and cancel ask it.

    Tasks are never submitted to it directly: ``submit --pilots N`` plans pools
    (:func:`plan_pilots`) with a scheduler's executor.
    """

    name = NAME
    summary = "tasks run by pilots (submit --pilots N)"
    asks_scheduler = True
    own_jobs = False

    def plan(self, selected: Sequence[Selected], *, max_parallel: int | None, root: Path) -> Plan:
        """The plan of the executor the pilots are jobs of, for a task a pilot runs.

        A task that submits tasks itself (a workflow's next steps, its automatic
        restart) names the executor that runs it: ``pilot``. Its pilot exports
        ``AUTOJOB_PILOT_POOL``, and the tasks go to the pool's executor.
        """
        base = _pool_executor()
        return base.plan(selected, max_parallel=max_parallel, root=root)

    def submit(self, plan: Plan, *, allowed: frozenset[State]) -> Submission:
        """Submit the pilots of a plan of :func:`plan_pilots`, or another executor's plan."""
        if plan.executor != NAME:
            return get_executor(plan.executor).submit(plan, allowed=allowed)
        return submit_planned_pilots(plan)

    def reconcile(self, tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
        """Tasks whose pilot is dead: claimable again (queued) or unknown (started)."""
        liveness = Liveness()
        changed = {}
        for path, state in tasks:
            if state.state not in (State.QUEUED, State.RUNNING):
                continue
            with task_lock(path):
                now = read_state(path)
                if now.state not in (State.QUEUED, State.RUNNING) or not liveness.lost(path, now):
                    continue
                if now.state is State.QUEUED:
                    remove_record(path, "QUEUED_FILE")
                    now = read_state(path)
                    now.detail = "its pilot ended before starting it; claimable again"
                else:
                    now.state = State.UNKNOWN
                    now.detail = "its pilot ended during its run; claimable again"
            changed[path] = now
        return changed

    def cancel(self, tasks: Sequence[tuple[Path, TaskState]], *, grace: float) -> list[Path]:
        """Stop the runs on this host; a pilot elsewhere stops its own (it sees the cancel)."""
        here = [
            (p, s) for p, s in tasks if s.state is State.RUNNING and s.host in (None, this_host())
        ]
        left = stop_runs(here, grace=grace)
        elsewhere = [p for p, s in tasks if s.state is State.RUNNING and (p, s) not in here]
        return left + _wait_stopped(elsewhere, grace)


def _pool_executor() -> Executor:
    """The executor of the pool whose pilot runs this process (``AUTOJOB_PILOT_POOL``).

    Raises:
        InputError: not run by a pilot.
    """
    where = os.environ.get(POOL_VARIABLE)
    if not where or not (Path(where) / "pool.json").is_file():
        raise InputError(
            "tasks are not submitted to the pilot executor itself",
            field="--executor",
            hint="submit with --pilots N and --executor " + ", ".join(EXECUTORS),
        )
    return get_executor(Pool(Path(where)).settings.executor)


def _wait_stopped(paths: list[Path], grace: float) -> list[Path]:
    """Wait until the pilots elsewhere have stopped ``paths``; those still running."""
    deadline = time.monotonic() + grace + 15.0
    waiting = list(paths)
    while waiting and time.monotonic() < deadline:
        waiting = [p for p in waiting if not (p / SETTINGS.ENDED_FILE).exists()]
        time.sleep(0.2)
    return waiting
