"""The Grid Engine executor: array jobs, batched tracking, accounting, qdel.

- :mod:`.commands`: running Grid Engine's commands, the cluster's limits;
- :mod:`.resources`: scheduler inputs as qsub options (and what is refused);
- :mod:`.arrays`: planning and submitting array jobs (``qsub -t``, ``-tc``);
- :mod:`.accounting`: one ``qstat`` and one ``qacct`` per poll, ends and
  accounting written in each task directory, ``qdel``;
- :class:`SgeExecutor`: the executor interface over them, registered as ``sge``
  in the ``autojob.executor`` entry-point group.

Written for Son of Grid Engine 8.1.9 (Debian's ``gridengine-*`` packages).
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autojob.execution.batching import claim_arrays
from autojob.execution.executor import Executor, Plan, Preview, Submission
from autojob.execution.sge.accounting import SgeJob, poll, qdel, reconcile
from autojob.execution.sge.arrays import NAME, SgeArrayJob, plan_arrays, submit_arrays
from autojob.execution.sge.commands import cluster_limits, sge_command
from autojob.execution.sge.resources import qsub_options
from autojob.store.state import State, TaskState
from autojob.store.walk import tree_dir

if TYPE_CHECKING:
    from autojob.execution.submit import Selected

__all__ = [
    "SgeArrayJob",
    "SgeExecutor",
    "SgeJob",
    "batch_root",
    "cluster_limits",
    "plan_arrays",
    "poll",
    "qdel",
    "qsub_options",
    "reconcile",
    "sge_command",
    "submit_arrays",
]


def batch_root(path: Path) -> Path:
    """Where the array-job scripts of a submit under ``path`` are written.

    In the tree's ``.autojob/`` (beside ``path`` when it is a task directory).
    """
    return tree_dir(path.resolve()) / NAME


def _plan(selected: Sequence[Selected], max_parallel: int | None, root: Path) -> list[SgeArrayJob]:
    return plan_arrays(
        [(s.spec.path, s.spec.script) for s in selected],
        batch_root=root,
        max_array_size=cluster_limits()["max_aj_tasks"],
        max_parallel=max_parallel,
        scheduler_inputs={s.spec.path: s.scheduler for s in selected},
    )


class SgeExecutor(Executor):
    """Tasks as Grid Engine array jobs; their states from one qstat and one qacct."""

    name = NAME
    summary = "Grid Engine array jobs"
    asks_scheduler = True
    accounts = True

    def available(self) -> bool:
        """Whether Grid Engine's commands are on this machine's PATH."""
        return shutil.which("qstat") is not None and shutil.which("qacct") is not None

    def plan(self, selected: Sequence[Selected], *, max_parallel: int | None, root: Path) -> Plan:
        """Arrays of tasks with equal resources, under ``root``'s index directory."""
        where = batch_root(root)
        if not selected:
            return Plan(NAME, [], max_parallel, batch_root=where)
        jobs = _plan(selected, max_parallel, where)
        preview = Preview(
            blocks=[
                (f"# {len(job.tasks)} task(s): {shlex.join(job.command())}", job.script())
                for job in jobs
            ],
            summary=f"{sum(len(j.tasks) for j in jobs)} task(s) would go in "
            f"{len(jobs)} qsub call(s)",
        )
        return Plan(NAME, list(selected), max_parallel, list(jobs), where, preview)

    def submit(self, plan: Plan, *, allowed: frozenset[State]) -> Submission:
        """Claim the tasks and submit one array job per group (one qsub call each)."""
        jobs = [j for j in plan.jobs if isinstance(j, SgeArrayJob)]
        claim_arrays(jobs, allowed, NAME)
        sent = submit_arrays([job for job in jobs if job.indices])
        tasks = [path for job in sent for _, path in job.elements()]
        ids = [j.job_id or "?" for j in sent]
        return Submission(
            len(tasks),
            f"submitted {len(tasks)} task(s) in {len(sent)} array job(s): {', '.join(ids)}",
            tasks=tasks,
            job_ids=ids,
        )

    def reconcile(self, tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
        """One qstat and one qacct query; ends and accounting written."""
        return reconcile(tasks)

    def cancel(self, tasks: Sequence[tuple[Path, TaskState]], *, grace: float) -> list[Path]:
        """One qdel for every element, checked with qstat (it raises if any is left)."""
        qdel([state.job_id for _, state in tasks if state.job_id])
        return []
