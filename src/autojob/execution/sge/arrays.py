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
from autojob.execution.batching import batch_name, group_by_resources, new_plan
from autojob.execution.sge.commands import sge_command
from autojob.execution.sge.resources import Options, job_name, qsub_options
from autojob.scheduler import SchedulerInputs
from autojob.store.atomic import write_atomic
from autojob.store.journal import note_changed, real_paths
from autojob.store.run_files import remove_record
from autojob.store.state import write_submitted

__all__ = ["ELEMENT", "NAME", "SgeArrayJob", "plan_arrays", "submit_arrays"]

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
    If qsub refuses an array (or does not answer), the claims of its tasks and of
    every array not yet submitted are withdrawn, and the error raised: an array
    queued without an answer finds its claims gone and starts no task.
    """
    submitted: list[SgeArrayJob] = []
    jobs = list(jobs)
    for position, job in enumerate(jobs):
        job.batch_dir.mkdir(parents=True, exist_ok=True)
        (job.batch_dir / LISTING).write_bytes(job.listing())
        write_atomic(job.batch_dir / SCRIPT, job.script())
        try:
            out = sge_command(job.command(), what="qsub refused the array job", cwd=job.batch_dir)
        except SchedulerError:
            for unsent in jobs[position:]:
                for _, path in unsent.elements():
                    remove_record(path, "QUEUED_FILE")
            raise
        job.job_id = out.strip().split(".")[0]  # -terse: "JOB_ID.FIRST-LAST:STEP"
        write_submitted(job.batch_dir, job.job_id, element=ELEMENT)
        note_changed([path for _, path in job.elements()])
        submitted.append(job)
    return submitted
