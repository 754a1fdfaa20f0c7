"""The SLURM executor: job arrays, batched tracking, accounting, cancel.

- :mod:`.commands`: running SLURM's commands, the cluster's limits;
- :mod:`.arrays`: planning and submitting job arrays;
- :mod:`.accounting`: one batched ``sacct`` (or ``squeue``) query, ends and
  accounting written in each task directory, ``scancel``;
- :class:`SlurmExecutor`: the executor interface over them, registered as
  ``slurm`` in the ``autojob.executor`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autojob.execution.batching import ArrayExecutor, ArrayJobLike, claim_arrays
from autojob.execution.slurm.accounting import CLOCK_SLACK, JobInfo, poll, reconcile, scancel
from autojob.execution.slurm.arrays import NAME, ArrayJob, plan_arrays, submit_arrays
from autojob.execution.slurm.commands import cluster_limits, slurm_command
from autojob.store.state import State, TaskState

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
    return SlurmExecutor().batch_root(path)


def slurm_arrays(
    selected: Sequence[Selected],
    *,
    allowed: frozenset[State],
    max_parallel: int | None,
    batch_root: Path,
    dry_run: bool,
) -> list[ArrayJob]:
    """Plan (and unless ``dry_run``, claim and submit) the SLURM job arrays."""
    executor = SlurmExecutor()
    jobs = executor.make_jobs(selected, max_parallel, batch_root)
    if dry_run:
        return jobs
    claim_arrays(jobs, allowed, NAME)
    return executor.send([job for job in jobs if job.indices])


class SlurmExecutor(ArrayExecutor):
    """Tasks as SLURM job arrays; their states from one batched sacct query."""

    name = NAME
    summary = "SLURM job arrays"
    asks_scheduler = True
    accounts = True
    submit_command = "sbatch"
    array_word = "job array"
    job_class = ArrayJob

    def available(self) -> bool:
        """Whether SLURM's commands are on this machine's PATH."""
        import shutil  # noqa: PLC0415

        return shutil.which("squeue") is not None

    def make_jobs(
        self, selected: Sequence[Selected], max_parallel: int | None, where: Path
    ) -> list[ArrayJob]:
        """Arrays chunked under the cluster's MaxArraySize."""
        return plan_arrays(
            [(s.spec.path, s.spec.script) for s in selected],
            batch_root=where,
            max_array_size=cluster_limits()["MaxArraySize"],
            max_parallel=max_parallel,
            scheduler_inputs={s.spec.path: s.scheduler or {} for s in selected},
        )

    def send(self, jobs: Sequence[ArrayJobLike]) -> list[ArrayJob]:
        """One sbatch call per array."""
        return submit_arrays([job for job in jobs if isinstance(job, ArrayJob)])

    def reconcile(self, tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
        """One sacct query (squeue without accounting); ends and accounting written."""
        return reconcile(tasks)

    def cancel(self, tasks: Sequence[tuple[Path, TaskState]], *, grace: float) -> list[Path]:
        """One scancel for every job, checked with squeue (it raises if any is left)."""
        jobs = [state.job_id for _, state in tasks if state.job_id]
        scancel(jobs)
        return []
