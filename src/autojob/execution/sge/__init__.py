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

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autojob.execution.batching import ArrayExecutor, ArrayJobLike
from autojob.execution.sge.accounting import SgeJob, poll, qdel, reconcile
from autojob.execution.sge.arrays import NAME, SgeArrayJob, plan_arrays, submit_arrays
from autojob.execution.sge.commands import cluster_limits, sge_command
from autojob.execution.sge.resources import qsub_options
from autojob.store.state import TaskState

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
    return SgeExecutor().batch_root(path)


class SgeExecutor(ArrayExecutor):
    """Tasks as Grid Engine array jobs; their states from one qstat and one qacct."""

    name = NAME
    summary = "Grid Engine array jobs"
    asks_scheduler = True
    accounts = True
    submit_command = "qsub"
    array_word = "array job"
    job_class = SgeArrayJob

    def available(self) -> bool:
        """Whether Grid Engine's commands are on this machine's PATH."""
        return shutil.which("qstat") is not None and shutil.which("qacct") is not None

    def make_jobs(
        self, selected: Sequence[Selected], max_parallel: int | None, where: Path
    ) -> list[SgeArrayJob]:
        """Array jobs chunked under the cluster's max_aj_tasks."""
        return plan_arrays(
            [(s.spec.path, s.spec.script) for s in selected],
            batch_root=where,
            max_array_size=cluster_limits()["max_aj_tasks"],
            max_parallel=max_parallel,
            scheduler_inputs={s.spec.path: s.scheduler for s in selected},
        )

    def send(self, jobs: Sequence[ArrayJobLike]) -> list[SgeArrayJob]:
        """One qsub call per array job."""
        return submit_arrays([job for job in jobs if isinstance(job, SgeArrayJob)])

    def reconcile(self, tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
        """One qstat and one qacct query; ends and accounting written."""
        return reconcile(tasks)

    def cancel(self, tasks: Sequence[tuple[Path, TaskState]], *, grace: float) -> list[Path]:
        """One qdel for every element, checked with qstat (it raises if any is left)."""
        qdel([state.job_id for _, state in tasks if state.job_id])
        return []
