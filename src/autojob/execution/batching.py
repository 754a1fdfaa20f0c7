"""What every scheduler's job arrays share: grouping, chunking, claiming, the executor.

Tasks that ask for the same resources share one array job, chunked under the
scheduler's largest array; each task is claimed under its lock with its array's
batch directory and its index, so its element's job id is known once the
array's is (:func:`autojob.store.state.write_submitted`).
"""

from __future__ import annotations

import json
import logging
import shlex
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from autojob import SETTINGS
from autojob.errors import InputError, SchedulerError
from autojob.execution.claims import claim_tasks, new_claim
from autojob.execution.executor import Executor, Plan, Preview, Submission
from autojob.scheduler import SchedulerInputs
from autojob.store.journal import note_changed
from autojob.store.run_files import remove_record
from autojob.store.state import ELEMENT_FORMAT, State, write_submitted
from autojob.store.walk import tree_dir

if TYPE_CHECKING:
    from autojob.execution.submit import Selected

__all__ = [
    "ArrayBatch",
    "ArrayExecutor",
    "ArrayJobLike",
    "batch_name",
    "claim_arrays",
    "group_by_resources",
    "new_plan",
    "send_arrays",
]

logger = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)


class ArrayBatch(Protocol):
    """An array job as :func:`claim_arrays` sees it."""

    tasks: list[tuple[Path, str]]
    batch_dir: Path
    indices: list[int] | None
    claim: str | None


class ArrayJobLike(ArrayBatch, Protocol):
    """An array job as :class:`ArrayExecutor` plans, previews and submits it."""

    job_id: str | None

    def command(self) -> list[str]:
        """The scheduler's submit command line."""
        ...

    def script(self) -> str:
        """The job script."""
        ...

    def elements(self) -> list[tuple[int, Path]]:
        """The claimed tasks with their array indices."""
        ...


def _read_inputs(path: Path, raw: Any) -> Any:
    if raw is None:
        from autojob.store.load import scheduler_inputs_of  # noqa: PLC0415

        raw = scheduler_inputs_of(path)
    return raw


def group_by_resources(
    tasks: Sequence[tuple[Path, str]],
    resources: Callable[[Path, SchedulerInputs], K],
    *,
    max_size: int,
    scheduler_inputs: Mapping[Path, Any] | None = None,
) -> list[tuple[K, list[tuple[Path, str]]]]:
    """Tasks grouped by ``resources`` of their scheduler inputs, in chunks of ``max_size``.

    ``scheduler_inputs``: each task's ``scheduler_inputs`` section when the
    caller has read it already (else, or where it is None, it is read from
    ``inputs.json``, or from the task script's directive lines where
    ``inputs.json`` has no such section). Each
    distinct input is validated (and ``resources`` asked) once, so a sweep of
    many tasks with equal resources costs one validation.

    Raises:
        InputError: a task's scheduler inputs are invalid, or ``resources``
            refuses them (the error then names the task's inputs file).
    """
    groups: dict[K, list[tuple[Path, str]]] = {}
    known: dict[str, K] = {}
    given = scheduler_inputs or {}
    for path, script in tasks:
        raw = _read_inputs(path, given.get(path))
        try:
            cache_key: str | None = json.dumps(raw, sort_keys=True)
        except (TypeError, ValueError):
            cache_key = None
        if cache_key is not None and cache_key in known:
            key = known[cache_key]
        else:
            key = _resources_of(path, raw, resources)
            if cache_key is not None:
                known[cache_key] = key
        groups.setdefault(key, []).append((path, script))
    return [
        (key, members[start : start + max_size])
        for key, members in groups.items()
        for start in range(0, len(members), max_size)
    ]


def _resources_of(path: Path, raw: Any, resources: Callable[[Path, SchedulerInputs], K]) -> K:
    where = path / SETTINGS.INPUTS_FILE
    try:
        inputs = SchedulerInputs.model_validate(raw)
    except ValueError as exc:
        raise InputError(f"invalid scheduler inputs: {exc}", path=where) from exc
    try:
        return resources(path, inputs)
    except InputError as exc:
        if exc.path is not None:
            raise
        raise InputError(exc.message, path=where, field=exc.field, hint=exc.hint) from exc


def batch_name(plan: str, number: int) -> str:
    """The directory name of the ``number``-th array of a plan (see :func:`new_plan`)."""
    return f"{plan}-{number}"


def new_plan() -> str:
    """A name no two plans share: the time, and a random part."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def claim_arrays(jobs: Sequence[ArrayBatch], allowed: frozenset[State], executor: str) -> None:
    """Claim the tasks of ``jobs`` still in ``allowed``; set each job's indices and claim.

    Each claim names the array element that will run the task, so one record
    per task suffices (the array's job id is written once, after submitting).
    The claims are noted in the status journals once submitted.
    """
    places = {
        path: {"batch": str(job.batch_dir), "array_index": index}
        for job in jobs
        for index, (path, _) in enumerate(job.tasks)
    }
    token = new_claim()
    claimed = set(claim_tasks(places, allowed, executor, extra=places, note=False, claim=token))
    for job in jobs:
        job.indices = [i for i, (path, _) in enumerate(job.tasks) if path in claimed]
        job.claim = token


J = TypeVar("J", bound=ArrayJobLike)


def send_arrays(
    jobs: Sequence[J],
    *,
    prepare: Callable[[J], None],
    send: Callable[[J], str],
    queued_from: Callable[[Path], str | None],
    element: str = ELEMENT_FORMAT,
) -> list[J]:
    """Write each array's files, submit it, and record its job id in its batch.

    ``prepare`` writes the files, ``send`` submits and returns the job id,
    ``element`` says how the scheduler names the array's elements. The tasks
    must have been claimed first (:func:`claim_arrays`). A submit that gave no
    answer in time is not a refusal: the scheduler may have queued the array
    anyway, so ``queued_from`` looks for the array queued from its batch
    directory. If the scheduler refuses an array (or the array
    is not found), the claims of its tasks and of every array not yet
    submitted are withdrawn, and the error raised; an array queued after all
    finds its claims gone and starts no task.
    """
    submitted: list[J] = []
    for position, job in enumerate(jobs):
        job.batch_dir.mkdir(parents=True, exist_ok=True)
        prepare(job)
        try:
            job.job_id = send(job)
        except SchedulerError as exc:
            job.job_id = queued_from(job.batch_dir) if exc.timed_out else None
            if job.job_id is None:
                for unsent in jobs[position:]:
                    for _, path in unsent.elements():
                        remove_record(path, "QUEUED_FILE")
                raise
            logger.warning(
                "%s gave no answer, but the array is queued as %s", exc.command[0], job.job_id
            )
        write_submitted(job.batch_dir, job.job_id, element=element)
        note_changed([path for _, path in job.elements()])
        submitted.append(job)
    return submitted


class ArrayExecutor(Executor):
    """An executor submitting tasks as the job arrays of a scheduler.

    Tasks with equal resources share one array, in chunks under the
    scheduler's largest array; each task is claimed under its lock before the
    one submit call of its array. A scheduler supplies how its arrays are
    planned (:meth:`make_jobs`) and sent (:meth:`send`), and the words its
    messages use.
    """

    #: the scheduler's submit command, as messages name it ("sbatch")
    submit_command: ClassVar[str]
    #: what the scheduler calls an array ("job array")
    array_word: ClassVar[str]
    #: the class of its array jobs (:meth:`make_jobs` makes them)
    job_class: ClassVar[type[Any]]

    def batch_root(self, root: Path) -> Path:
        """Where the job scripts of a submit under ``root`` are written.

        In the tree's ``.autojob/`` (beside ``root`` when it is a task directory).
        """
        return tree_dir(root.resolve()) / self.name

    @abstractmethod
    def make_jobs(
        self, selected: Sequence[Selected], max_parallel: int | None, where: Path
    ) -> Sequence[ArrayJobLike]:
        """The arrays of ``selected``, their scripts under ``where``."""

    @abstractmethod
    def send(self, jobs: Sequence[ArrayJobLike]) -> Sequence[ArrayJobLike]:
        """Submit ``jobs`` (each with claimed tasks), one call each; those submitted."""

    def plan(self, selected: Sequence[Selected], *, max_parallel: int | None, root: Path) -> Plan:
        """Arrays of tasks with equal resources, under ``root``'s index directory."""
        where = self.batch_root(root)
        if not selected:
            return Plan(self.name, [], max_parallel, batch_root=where)
        jobs = list(self.make_jobs(selected, max_parallel, where))
        preview = Preview(
            blocks=[
                (f"# {len(job.tasks)} task(s): {shlex.join(job.command())}", job.script())
                for job in jobs
            ],
            summary=f"{sum(len(j.tasks) for j in jobs)} task(s) would go in "
            f"{len(jobs)} {self.submit_command} call(s)",
        )
        return Plan(self.name, list(selected), max_parallel, list(jobs), where, preview)

    def submit(self, plan: Plan, *, allowed: frozenset[State]) -> Submission:
        """Claim the tasks and submit one array per group (one call each)."""
        jobs: list[ArrayJobLike] = [j for j in plan.jobs if isinstance(j, self.job_class)]
        claim_arrays(jobs, allowed, self.name)
        sent = self.send([job for job in jobs if job.indices])
        tasks = [path for job in sent for _, path in job.elements()]
        ids = [j.job_id or "?" for j in sent]
        return Submission(
            len(tasks),
            f"submitted {len(tasks)} task(s) in {len(sent)} {self.array_word}(s): {', '.join(ids)}",
            tasks=tasks,
            job_ids=ids,
        )
