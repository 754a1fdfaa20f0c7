"""The SLURM executor: job arrays, batched tracking, accounting, cancel.

- :mod:`.commands`: running SLURM's commands, the cluster's limits;
- :mod:`.arrays`: planning and submitting job arrays;
- :mod:`.accounting`: one batched ``sacct`` (or ``squeue``) query, ends and
  accounting written in each task directory, ``scancel``;
- :class:`SlurmExecutor`: the executor interface over them, registered as
  ``slurm`` in the ``autojob.executor`` entry-point group.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autojob.execution.batching import claim_arrays
from autojob.execution.executor import Executor, Plan, Preview, Submission
from autojob.execution.slurm.accounting import CLOCK_SLACK, JobInfo, poll, reconcile, scancel
from autojob.execution.slurm.arrays import NAME, ArrayJob, plan_arrays, submit_arrays
from autojob.execution.slurm.commands import cluster_limits, slurm_command
from autojob.store.state import State, TaskState
from autojob.store.walk import tree_dir

if TYPE_CHECKING:
    from autojob.execution.submit import Selected

__all__ = [
    "CLOCK_SLACK",
    "ArrayJob",
    "JobInfo",
    "SlurmExecutor",
    "batch_root",
    "cluster_limits",
    "plan_arrays",
    "poll",
    "reconcile",
    "scancel",
    "slurm_arrays",
    "slurm_command",
    "submit_arrays",
]


def batch_root(path: Path) -> Path:
    """Where the job-array scripts of a submit under ``path`` are written.

    In the tree's ``.autojob/`` (beside ``path`` when it is a task directory).
    """
    return tree_dir(path.resolve()) / NAME


def slurm_arrays(
    selected: Sequence[Selected],
    *,
    allowed: frozenset[State],
    max_parallel: int | None,
    batch_root: Path,
    dry_run: bool,
) -> list[ArrayJob]:
    """Plan (and unless ``dry_run``, claim and submit) the SLURM job arrays."""
    jobs = _plan(selected, max_parallel, batch_root)
    return jobs if dry_run else _submit(jobs, allowed)


def _plan(selected: Sequence[Selected], max_parallel: int | None, root: Path) -> list[ArrayJob]:
    limit = cluster_limits()["MaxArraySize"]
    return plan_arrays(
        [(s.spec.path, s.spec.script) for s in selected],
        batch_root=root,
        max_array_size=limit,
        max_parallel=max_parallel,
        scheduler_inputs={s.spec.path: s.scheduler or {} for s in selected},
    )


def _submit(jobs: list[ArrayJob], allowed: frozenset[State]) -> list[ArrayJob]:
    claim_arrays(jobs, allowed, NAME)
    return submit_arrays([job for job in jobs if job.indices])


class SlurmExecutor(Executor):
    """Tasks as SLURM job arrays; their states from one batched sacct query."""

    name = NAME
    summary = "SLURM job arrays"
    asks_scheduler = True
    accounts = True

    def available(self) -> bool:
        """Whether SLURM's commands are on this machine's PATH."""
        import shutil  # noqa: PLC0415

        return shutil.which("squeue") is not None

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
            f"{len(jobs)} sbatch call(s)",
        )
        return Plan(NAME, list(selected), max_parallel, list(jobs), where, preview)

    def submit(self, plan: Plan, *, allowed: frozenset[State]) -> Submission:
        """Claim the tasks and submit one array per group (one sbatch call each)."""
        jobs = _submit([j for j in plan.jobs if isinstance(j, ArrayJob)], allowed)
        tasks = [path for job in jobs for _, path in job.elements()]
        ids = [j.job_id or "?" for j in jobs]
        return Submission(
            len(tasks),
            f"submitted {len(tasks)} task(s) in {len(jobs)} job array(s): {', '.join(ids)}",
            tasks=tasks,
            job_ids=ids,
        )

    def reconcile(self, tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
        """One sacct query (squeue without accounting); ends and accounting written."""
        return reconcile(tasks)

    def cancel(self, tasks: Sequence[tuple[Path, TaskState]], *, grace: float) -> list[Path]:
        """One scancel for every job, checked with squeue (it raises if any is left)."""
        jobs = [state.job_id for _, state in tasks if state.job_id]
        scancel(jobs)
        return []
