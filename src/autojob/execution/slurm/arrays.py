"""SLURM job arrays: tasks that ask for the same resources share one sbatch call.

Tasks are grouped by the directives their scheduler inputs give (chunked under
the cluster's ``MaxArraySize``); each array element runs one task's script in
the task directory. Each task is claimed first with its array's batch
directory and its index, and the array's job id is written once in the batch
(``submitted.json``), so each task's element id is known without a record per
task.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import SchedulerError
from autojob.execution.batching import batch_name, group_by_resources, new_plan, send_arrays
from autojob.execution.slurm.commands import slurm_command
from autojob.scheduler import SchedulerInputs
from autojob.store.atomic import write_atomic
from autojob.store.journal import real_paths

__all__ = ["ArrayJob", "plan_arrays", "submit_arrays"]

logger = logging.getLogger(__name__)
#: directives that may differ between the tasks of one array
PER_TASK = frozenset({"job-name", "output", "error", "chdir", "array"})
#: the name the SLURM executor is registered under, recorded with its tasks
NAME = "slurm"


@dataclass
class ArrayJob:
    """One sbatch call: tasks with the same resources, as one job array."""

    directives: list[tuple[str, str | None]]
    tasks: list[tuple[Path, str]]  # (task directory, its script)
    batch_dir: Path
    max_parallel: int | None = None
    job_id: str | None = None
    #: the elements to run (None: all); tasks another submit claimed are left out
    indices: list[int] | None = None
    #: the claim token of its tasks (AUTOJOB_CLAIM of their scripts)
    claim: str | None = None

    def array_option(self) -> str:
        """``--array=0-N[%M]`` (or the ranges of :attr:`indices`)."""
        throttle = f"%{self.max_parallel}" if self.max_parallel else ""
        if self.indices is None or len(self.indices) == len(self.tasks):
            return f"--array=0-{len(self.tasks) - 1}{throttle}"
        return f"--array={_ranges(self.indices)}{throttle}"

    def elements(self) -> list[tuple[int, Path]]:
        """The (array index, task directory) of each element submitted."""
        if self.indices is None:
            return [(i, path) for i, (path, _) in enumerate(self.tasks)]
        return [(i, self.tasks[i][0]) for i in self.indices]

    def command(self) -> list[str]:
        """The sbatch command line."""
        # the output path goes on the command line: a path may hold a newline,
        # which no #SBATCH line can carry
        output = f"--output={self.batch_dir / 'slurm-%A_%a.out'}"
        return [
            "sbatch",
            "--parsable",
            self.array_option(),
            output,
            str(self.batch_dir / "array.sh"),
        ]

    def script(self) -> str:
        """The array's job script: each element runs one task's script."""
        lines = ["#!/usr/bin/env bash"]
        for option, value in self.directives:
            lines.append(
                f"#SBATCH --{option}" + ("" if value is None else f"={shlex.quote(value)}")
            )
        lines += [
            "# Written by autojob: element i runs the task named at line i of tasks.list.",
            f"autojob_list={shlex.quote(str(self.batch_dir / 'tasks.list'))}",
            'mapfile -d "" -t autojob_tasks < "$autojob_list"',
            "autojob_dir=${autojob_tasks[$((2 * SLURM_ARRAY_TASK_ID))]}",
            "autojob_script=${autojob_tasks[$((2 * SLURM_ARRAY_TASK_ID + 1))]}",
            'cd -P -- "$autojob_dir" || exit 1',
            f'export AUTOJOB_TASK_DIR="$autojob_dir" AUTOJOB_EXECUTOR={NAME}',
            'export AUTOJOB_JOB_ID="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
            *([f"export AUTOJOB_CLAIM={shlex.quote(self.claim)}"] if self.claim else []),
            f'exec bash "./$autojob_script" > {shlex.quote(SETTINGS.STDOUT_FILE)}'
            f" 2> {shlex.quote(SETTINGS.STDERR_FILE)}",
        ]
        return "\n".join(lines) + "\n"


def _ranges(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"``."""
    parts: list[str] = []
    start = previous = indices[0]
    for index in [*indices[1:], None]:
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if index is not None:
            start = previous = index
    return ",".join(parts)


Resources = tuple[tuple[str, str | None], ...]


def _resources(_path: Path, inputs: SchedulerInputs) -> Resources:
    """The directives an array shares, from a task's scheduler inputs."""
    return tuple(sorted((o, v) for o, v in inputs.directives() if o not in PER_TASK))


def plan_arrays(
    tasks: Sequence[tuple[Path, str]],
    *,
    batch_root: Path,
    max_array_size: int,
    max_parallel: int | None = None,
    scheduler_inputs: Mapping[Path, Any] | None = None,
) -> list[ArrayJob]:
    """Group tasks by resources into arrays of at most ``max_array_size``.

    ``scheduler_inputs``: each task's ``scheduler_inputs`` section when the
    caller has read it already (else it is read from ``inputs.json``).
    """
    plan = new_plan()  # two plans never share a directory
    jobs: list[ArrayJob] = []
    groups = group_by_resources(
        tasks, _resources, max_size=max_array_size, scheduler_inputs=scheduler_inputs
    )
    for key, chunk in groups:
        directives = [("job-name", _job_name(chunk)), *key]
        batch_dir = batch_root / batch_name(plan, len(jobs))
        jobs.append(ArrayJob(directives, chunk, batch_dir, max_parallel))
    return jobs


def _job_name(chunk: list[tuple[Path, str]]) -> str:
    """A job name from the tasks' directory names (printable, one line)."""
    name = "autojob-" + chunk[0][0].parent.name[:40] if len(chunk) > 1 else chunk[0][0].name[:48]
    return "".join(c if c.isprintable() else "_" for c in name)


def submit_arrays(jobs: Iterable[ArrayJob]) -> list[ArrayJob]:
    """Write each array's files, submit it, and record its job id in its batch.

    The tasks must have been claimed (``claim_tasks``) first, each with its
    array's batch directory and its index (so its element's job id is known
    once the array's is: see :func:`autojob.store.state.read_state`). If
    sbatch refuses an array, the claims of its tasks and of every array not yet
    submitted are withdrawn, and the error raised; an sbatch that gave no
    answer is looked for in the queue (:func:`autojob.execution.batching.send_arrays`).
    """
    return send_arrays(list(jobs), prepare=_write_files, send=_sbatch, queued_from=_queued_from)


def _write_files(job: ArrayJob) -> None:
    """The array's task list and job script, in its batch directory."""
    real = real_paths(path for path, _ in job.tasks)
    listing = "".join(f"{p}\0{s}\0" for p, (_, s) in zip(real, job.tasks, strict=True))
    (job.batch_dir / "tasks.list").write_bytes(listing.encode("utf-8", "surrogateescape"))
    write_atomic(job.batch_dir / "array.sh", job.script())


def _sbatch(job: ArrayJob) -> str:
    """Submit the array; its job id."""
    out = slurm_command(job.command(), what="sbatch refused the job array", cwd=job.batch_dir)
    return out.strip().split(";")[0]  # --parsable: JOBID[;CLUSTER]


def _queued_from(batch_dir: Path) -> str | None:
    """The job id of the array queued from ``batch_dir``, if squeue shows one."""
    script = str(batch_dir / "array.sh")
    try:
        out = slurm_command(
            ["squeue", "--noheader", "--all", "--format=%F|%o"], what="looking for the array"
        )
    except SchedulerError:
        return None
    for line in out.splitlines():
        job_id, _, command = line.partition("|")
        if command.strip() == script and job_id.strip().isdigit():
            return job_id.strip()
    return None
