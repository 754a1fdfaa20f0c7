"""Grid Engine array jobs: tasks that ask for the same resources share one qsub call.

Tasks are grouped by the qsub options their scheduler inputs give (chunked under
the cluster's ``max_aj_tasks``); element ``i`` (``-t 1-N``, numbered from 1) runs
the task at position ``i - 1`` of the array's ``tasks.list`` in its directory.
Each task is claimed first with its array's batch directory and its index, and
the array's job id is written once in the batch (``submitted.json``), so each
task's element id (``JOB_ID.TASK_ID``) is known without a record per task.
Resources go on the qsub command line, not in ``#$`` lines, so no value needs
quoting for qsub's own parser; the script itself holds only shell.
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
from autojob.execution.sge.commands import sge_command
from autojob.execution.sge.resources import Options, job_name, qsub_options
from autojob.scheduler import SchedulerInputs
from autojob.store.atomic import write_atomic
from autojob.store.journal import real_paths

__all__ = ["ELEMENT", "NAME", "SgeArrayJob", "plan_arrays", "queued_from", "submit_arrays"]

logger = logging.getLogger(__name__)
#: the name the Grid Engine executor is registered under, recorded with its tasks
NAME = "sge"
#: how Grid Engine names an array's elements (task ids count from 1)
ELEMENT = "{job_id}.{index1}"
SCRIPT = "array.sh"
LISTING = "tasks.list"


@dataclass
class SgeArrayJob:
    """One qsub call: tasks with the same resources, as one array job."""

    options: Options
    name: str
    tasks: list[tuple[Path, str]]  # (task directory, its script)
    batch_dir: Path
    max_parallel: int | None = None
    job_id: str | None = None
    #: the elements to run (None: all); tasks another submit claimed are left out
    indices: list[int] | None = None
    #: the claim token of its tasks (AUTOJOB_CLAIM of their scripts)
    claim: str | None = None

    def task_range(self) -> str:
        """``-t``'s range: the elements from the first to the last to run (from 1).

        An element between them whose task is not to run finds no task in
        ``tasks.list`` and ends at once.
        """
        indices = range(len(self.tasks)) if self.indices is None else self.indices
        return f"{min(indices) + 1}-{max(indices) + 1}"

    def elements(self) -> list[tuple[int, Path]]:
        """The (array index, task directory) of each element submitted."""
        if self.indices is None:
            return [(i, path) for i, (path, _) in enumerate(self.tasks)]
        return [(i, self.tasks[i][0]) for i in self.indices]

    def command(self) -> list[str]:
        """The qsub command line (``$JOB_ID`` and ``$TASK_ID`` are qsub's to expand)."""
        throttle = ["-tc", str(self.max_parallel)] if self.max_parallel else []
        return [
            "qsub",
            "-terse",
            "-N",
            self.name,
            "-t",
            self.task_range(),
            *throttle,
            "-S",
            "/bin/bash",
            "-wd",
            str(self.batch_dir),
            "-j",
            "y",
            "-o",
            str(self.batch_dir / "sge-$JOB_ID.$TASK_ID.out"),
            *(word for option in self.options for word in option),
            str(self.batch_dir / SCRIPT),
        ]

    def script(self) -> str:
        """The array's job script: each element runs one task's script."""
        lines = [
            "#!/usr/bin/env bash",
            "# Written by autojob: element i runs the task at position i of tasks.list.",
            f"autojob_list={shlex.quote(str(self.batch_dir / LISTING))}",
            'mapfile -d "" -t autojob_tasks < "$autojob_list"',
            "autojob_index=$((SGE_TASK_ID - 1))",
            "autojob_dir=${autojob_tasks[$((2 * autojob_index))]:-}",
            "autojob_script=${autojob_tasks[$((2 * autojob_index + 1))]:-}",
            'if [ -z "$autojob_dir" ]; then',
            '    echo "autojob: element $SGE_TASK_ID runs no task (not claimed by this submit)"',
            "    exit 0",
            "fi",
            'cd -P -- "$autojob_dir" || exit 1',
            f'export AUTOJOB_TASK_DIR="$autojob_dir" AUTOJOB_EXECUTOR={NAME}',
            'export AUTOJOB_JOB_ID="${JOB_ID}.${SGE_TASK_ID}"',
            *([f"export AUTOJOB_CLAIM={shlex.quote(self.claim)}"] if self.claim else []),
            f'exec bash "./$autojob_script" > {shlex.quote(SETTINGS.STDOUT_FILE)}'
            f" 2> {shlex.quote(SETTINGS.STDERR_FILE)}",
        ]
        return "\n".join(lines) + "\n"

    def listing(self) -> bytes:
        """``tasks.list``: directory and script of each element, NUL-separated.

        Elements not to run get empty entries.
        """
        run = set(range(len(self.tasks)) if self.indices is None else self.indices)
        real = real_paths(path for path, _ in self.tasks)
        text = "".join(
            f"{p}\0{s}\0" if i in run else "\0\0"
            for i, (p, (_, s)) in enumerate(zip(real, self.tasks, strict=True))
        )
        return text.encode("utf-8", "surrogateescape")


def plan_arrays(
    tasks: Sequence[tuple[Path, str]],
    *,
    batch_root: Path,
    max_array_size: int,
    max_parallel: int | None = None,
    scheduler_inputs: Mapping[Path, Any] | None = None,
) -> list[SgeArrayJob]:
    """Group tasks by qsub options into arrays of at most ``max_array_size``.

    Raises:
        InputError: a task asks for something Grid Engine cannot give.
    """
    names: dict[Path, str | None] = {}

    def options(path: Path, inputs: SchedulerInputs) -> Options:
        names[path] = inputs.job_name
        return qsub_options(inputs)

    groups = group_by_resources(
        tasks, options, max_size=max_array_size, scheduler_inputs=scheduler_inputs
    )
    plan = new_plan()  # two plans never share a directory
    jobs: list[SgeArrayJob] = []
    for key, chunk in groups:
        batch_dir = batch_root / batch_name(plan, len(jobs))
        name = _array_name(chunk, {names.get(path) for path, _ in chunk})
        jobs.append(SgeArrayJob(key, name, chunk, batch_dir, max_parallel))
    return jobs


def _array_name(chunk: list[tuple[Path, str]], given: set[str | None]) -> str:
    """The job name its tasks share, else one from their directories' names."""
    if len(given) == 1 and (shared := next(iter(given))):
        return job_name(shared)
    if len(chunk) > 1:
        return job_name("autojob-" + chunk[0][0].parent.name[:40])
    return job_name(chunk[0][0].name[:48])


def submit_arrays(jobs: Iterable[SgeArrayJob]) -> list[SgeArrayJob]:
    """Write each array's files, submit it, and record its job id in its batch.

    The tasks must have been claimed first (:func:`autojob.execution.batching.claim_arrays`).
    If qsub refuses an array, the claims of its tasks and of every array not yet
    submitted are withdrawn, and the error raised; a qsub that gave no answer is
    looked for in the queue by its script (:func:`queued_from`): an array queued
    without an answer and not found there finds its claims gone and starts no task.
    """
    return send_arrays(
        list(jobs), prepare=_write_files, send=_qsub, queued_from=queued_from, element=ELEMENT
    )


def _write_files(job: SgeArrayJob) -> None:
    """The array's task list and job script, in its batch directory."""
    (job.batch_dir / LISTING).write_bytes(job.listing())
    write_atomic(job.batch_dir / SCRIPT, job.script())


def _qsub(job: SgeArrayJob) -> str:
    """Submit the array job; its job id."""
    out = sge_command(job.command(), what="qsub refused the array job", cwd=job.batch_dir)
    return out.strip().split(".")[0]  # -terse: "JOB_ID.FIRST-LAST:STEP"


def queued_from(batch_dir: Path) -> str | None:
    """The job id of the array job queued from ``batch_dir``, if qstat shows one.

    ``qstat -j '*'`` describes every job Grid Engine holds, each with the
    script it was submitted with (``script_file``): the batch's own
    ``array.sh``, which no other submit uses. None when qstat lists no such job
    (or cannot be asked).
    """
    script = str(batch_dir / SCRIPT)
    try:
        out = sge_command(["qstat", "-j", "*"], what="looking for the array job")
    except SchedulerError:
        return None  # no job at all ("Following jobs do not exist"), or no qmaster
    job_id = None
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key == "job_number":
            job_id = value.strip()
        elif key == "script_file" and value.strip() == script and job_id and job_id.isdigit():
            return job_id
    return None
