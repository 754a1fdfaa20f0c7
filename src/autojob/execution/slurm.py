"""The SLURM executor: job arrays, batched tracking, accounting, cancel.

Tasks whose scheduler inputs ask for the same resources share one job array
(chunked under the cluster's ``MaxArraySize``); each array element runs one
task's script in the task directory. The script records its own start and end;
for what it cannot record (killed at its time limit, out of memory, node
failure, cancelled), one batched ``sacct`` query (``squeue`` where accounting is
unavailable) tells, and the end and the accounting are written in the task
directory (``job_stats.json``).
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import InputError, SchedulerError
from autojob.scheduler import SchedulerInputs
from autojob.store.atomic import write_atomic
from autojob.store.journal import note_changed, real_paths
from autojob.store.run_files import record, remove_record
from autojob.store.state import State, TaskState, read_state, write_submitted
from autojob.store.task_lock import task_lock

__all__ = [
    "ArrayJob",
    "JobInfo",
    "cluster_limits",
    "plan_arrays",
    "poll",
    "reconcile",
    "run_scheduler_command",
    "scancel",
    "submit_arrays",
]

logger = logging.getLogger(__name__)
#: seconds by which this machine's clock and the controller's may differ
CLOCK_SLACK = 300.0
#: seconds a scheduler command may take to answer
COMMAND_TIMEOUT = 120.0
#: seconds to wait for sacct to know a job that ended before giving up on it
ACCOUNTING_PATIENCE = 120.0
#: directives that may differ between the tasks of one array
PER_TASK = frozenset({"job-name", "output", "error", "chdir", "array"})
_SACCT_FIELDS = "JobID,State,ExitCode,Elapsed,MaxRSS,NodeList,Reason"
#: sacct states and the autojob state and cause they mean
SLURM_STATES: dict[str, tuple[State, str | None]] = {
    "PENDING": (State.QUEUED, None),
    "REQUEUED": (State.QUEUED, None),
    "CONFIGURING": (State.QUEUED, None),
    "RESIZING": (State.RUNNING, None),
    "SUSPENDED": (State.RUNNING, None),
    "RUNNING": (State.RUNNING, None),
    "COMPLETING": (State.RUNNING, None),
    "COMPLETED": (State.SUCCESS, None),
    "FAILED": (State.FAILED, None),
    "TIMEOUT": (State.TIMEOUT, "timeout"),
    "OUT_OF_MEMORY": (State.OOM, "oom"),
    "CANCELLED": (State.CANCELLED, "cancelled"),
    "NODE_FAIL": (State.FAILED, "node_fail"),
    "PREEMPTED": (State.FAILED, "preempted"),
    "BOOT_FAIL": (State.FAILED, "boot_fail"),
    "DEADLINE": (State.FAILED, "deadline"),
}


# -- running scheduler commands -------------------------------------------


def run_scheduler_command(
    command: list[str],
    *,
    what: str,
    hint: str | None = None,
    cwd: Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
) -> str:
    """Run a scheduler command and return its output.

    Raises:
        SchedulerError: it is missing, failed, or timed out; the error keeps
            the command, its output and exit status.
    """
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise SchedulerError(
            f"{what}: {command[0]} is not installed here",
            command=command,
            returncode=None,
            hint=hint or "run autojob where the SLURM commands are, or use --executor local",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise SchedulerError(
            f"{what}: no answer in {timeout:g} s",
            command=command,
            returncode=None,
            hint="the controller may be down: try again, or check 'scontrol ping'",
            timed_out=True,
        ) from exc
    if done.returncode != 0:
        raise SchedulerError(
            what,
            command=command,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            hint=hint or _hint_for(done.stderr),
        )
    return done.stdout


def _hint_for(stderr: str) -> str | None:
    lowered = stderr.lower()
    if "invalid partition" in lowered:
        return f"partitions on this cluster: {', '.join(partitions()) or 'none found'}"
    if "invalid account" in lowered:
        return "check the account with 'sacctmgr show associations user=$USER'"
    if "time limit" in lowered:
        return "ask for less time (see 'sinfo -o \"%P %l\"' for each partition's limit)"
    if "unable to contact" in lowered or "connection refused" in lowered:
        return "the SLURM controller is not answering: check 'scontrol ping'"
    return None


def partitions() -> list[str]:
    """The partitions of the cluster (empty if sinfo fails)."""
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted({line.strip() for line in out.splitlines() if line.strip()})


def cluster_limits() -> dict[str, int]:
    """``MaxArraySize`` of the cluster (``scontrol show config``)."""
    out = run_scheduler_command(
        ["scontrol", "show", "config"], what="reading the SLURM configuration"
    )
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, flags=re.MULTILINE)
    return {"MaxArraySize": int(match[1]) if match else 1001}


# -- planning arrays -------------------------------------------------------


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
            'export AUTOJOB_TASK_DIR="$autojob_dir" AUTOJOB_EXECUTOR=slurm',
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


def _resources(path: Path, raw: Any, known: dict[str, Resources]) -> Resources:
    """The directives an array shares, from a task's raw scheduler inputs.

    ``known`` remembers the answer per distinct input, so the many tasks of a
    sweep that ask for the same resources are validated once.
    """
    if raw is None:
        from autojob.store.load import read_inputs_sections  # noqa: PLC0415

        raw = read_inputs_sections(path).get("scheduler_inputs") or {}
    try:
        key = json.dumps(raw, sort_keys=True)
    except (TypeError, ValueError):
        key = None
    if key is not None and key in known:
        return known[key]
    try:
        inputs = SchedulerInputs.model_validate(raw)
    except ValueError as exc:
        raise InputError(
            f"invalid scheduler inputs: {exc}", path=path / SETTINGS.INPUTS_FILE
        ) from exc
    shared = tuple(sorted((o, v) for o, v in inputs.directives() if o not in PER_TASK))
    if key is not None:
        known[key] = shared
    return shared


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
    groups: dict[Resources, list[tuple[Path, str]]] = {}
    known: dict[str, Resources] = {}
    given = scheduler_inputs or {}
    for path, script in tasks:
        groups.setdefault(_resources(path, given.get(path), known), []).append((path, script))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    plan = uuid.uuid4().hex[:8]  # two plans never share a directory
    jobs: list[ArrayJob] = []
    for key, members in groups.items():
        for start in range(0, len(members), max_array_size):
            chunk = members[start : start + max_array_size]
            name = f"{stamp}-{plan}-{len(jobs)}"
            directives = [("job-name", _job_name(chunk)), *key]
            jobs.append(ArrayJob(directives, chunk, batch_root / name, max_parallel))
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
    submitted are withdrawn, and the error raised.
    """
    submitted: list[ArrayJob] = []
    jobs = list(jobs)
    for position, job in enumerate(jobs):
        job.batch_dir.mkdir(parents=True, exist_ok=True)
        real = real_paths(path for path, _ in job.tasks)
        listing = "".join(f"{p}\0{s}\0" for p, (_, s) in zip(real, job.tasks, strict=True))
        (job.batch_dir / "tasks.list").write_bytes(listing.encode("utf-8", "surrogateescape"))
        write_atomic(job.batch_dir / "array.sh", job.script())
        try:
            out = run_scheduler_command(
                job.command(), what="sbatch refused the job array", cwd=job.batch_dir
            )
            job.job_id = out.strip().split(";")[0]
        except SchedulerError as exc:
            # no answer is not a no: the controller may have queued it anyway
            job.job_id = _queued_from(job.batch_dir) if exc.timed_out else None
            if job.job_id is None:
                # this array and the ones not submitted yet: their claims go
                for unsent in jobs[position:]:
                    for _, path in unsent.elements():
                        remove_record(path, "QUEUED_FILE")
                raise
            logger.warning("sbatch gave no answer, but the array is queued as %s", job.job_id)
        write_submitted(job.batch_dir, job.job_id)
        note_changed([path for _, path in job.elements()])
        submitted.append(job)
    return submitted


def _queued_from(batch_dir: Path) -> str | None:
    """The job id of the array queued from ``batch_dir``, if squeue shows one."""
    script = str(batch_dir / "array.sh")
    try:
        out = run_scheduler_command(
            ["squeue", "--noheader", "--all", "--format=%F|%o"], what="looking for the array"
        )
    except SchedulerError:
        return None
    for line in out.splitlines():
        job_id, _, command = line.partition("|")
        if command.strip() == script and job_id.strip().isdigit():
            return job_id.strip()
    return None


# -- tracking ------------------------------------------------------------------


@dataclass
class JobInfo:
    """What the scheduler says of one job (array element)."""

    job_id: str
    slurm_state: str
    exit_code: int | None = None
    signal: int | None = None
    elapsed: str | None = None
    max_rss: str | None = None
    node: str | None = None
    reason: str | None = None
    source: str = "sacct"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> tuple[State, str | None]:
        """The autojob state and cause."""
        return SLURM_STATES.get(self.slurm_state, (State.UNKNOWN, self.slurm_state.lower()))


def _parse_sacct(out: str) -> dict[str, JobInfo]:
    jobs: dict[str, JobInfo] = {}
    rss: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) < 7:
            continue
        job_id, state, exit_code, elapsed, max_rss, node, reason = parts[:7]
        base, _, step = job_id.partition(".")
        if step:
            if max_rss:
                rss[base] = max(rss.get(base, ""), max_rss, key=_rss_bytes)
            continue
        code, _, sig = exit_code.partition(":")
        for element in _expand(base):
            jobs[element] = JobInfo(
                job_id=element,
                slurm_state=state.split()[0] if state else "UNKNOWN",
                exit_code=int(code) if code.isdigit() else None,
                signal=int(sig) if sig.isdigit() else None,
                elapsed=elapsed or None,
                node=node or None,
                reason=reason if reason and reason != "None" else None,
            )
    for base, value in rss.items():
        if base in jobs:
            jobs[base].max_rss = value
    return jobs


def _expand(job_id: str) -> list[str]:
    """Expand ``"12_[3-5,7%2]"`` (elements sacct reports together) to single ids."""
    match = re.fullmatch(r"(\d+)_\[([0-9,\-]+)(?:%\d+)?\]", job_id)
    if not match:
        return [job_id]
    elements = []
    for part in match[2].split(","):
        first, _, last = part.partition("-")
        elements += [f"{match[1]}_{i}" for i in range(int(first), int(last or first) + 1)]
    return elements


def _rss_bytes(value: str) -> float:
    units = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    if value and value[-1] in units:
        return float(value[:-1] or 0) * units[value[-1]]
    return float(value or 0)


def _parse_squeue(out: str) -> dict[str, JobInfo]:
    jobs = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) >= 3:
            jobs[parts[0]] = JobInfo(parts[0], parts[1], node=parts[2] or None, source="squeue")
    return jobs


def _squeue(job_ids: Sequence[str]) -> dict[str, JobInfo]:
    """Pending and running jobs among ``job_ids`` (none when all are gone)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    command = ["squeue", "--noheader", "--array", "-o", "%i|%T|%N", "-j", ",".join(arrays)]
    try:
        out = run_scheduler_command(command, what="squeue failed")
    except SchedulerError as exc:
        if "invalid job id" in exc.stderr.lower():
            return {}  # the controller has forgotten them: none is queued or running
        raise
    return _parse_squeue(out)


def poll(job_ids: Sequence[str], since: float | None = None) -> tuple[dict[str, JobInfo], str]:
    """Ask the scheduler about ``job_ids`` in one call; return what it says, and how.

    ``sacct`` is asked first; where accounting is unavailable, ``squeue`` (which
    knows only pending and running jobs). ``since``: the jobs were submitted
    after this time (epoch seconds), so an older job that had the same id (a
    controller that lost its state hands ids out again) is not taken for them.
    """
    if not job_ids:
        return {}, "none"
    arrays = sorted({j.split("_")[0] for j in job_ids})
    window = [] if since is None else [f"--starttime={_sacct_time(since)}"]
    try:
        out = run_scheduler_command(
            [
                "sacct",
                "--parsable2",
                "--noheader",
                f"--format={_SACCT_FIELDS}",
                *window,
                "-j",
                ",".join(arrays),
            ],
            what="sacct failed",
        )
        return _parse_sacct(out), "sacct"
    except SchedulerError as exc:
        logger.warning("%s; falling back to squeue (running and pending jobs only)", exc.message)
    return _squeue(job_ids), "squeue"


def _sacct_time(epoch: float) -> str:
    """An sacct time (local, to the second) a little before ``epoch``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch - CLOCK_SLACK))


def _accounting(path: Path, info: JobInfo) -> None:
    data = {
        "job_id": info.job_id,
        "array_job_id": info.job_id.split("_")[0],
        "array_index": int(info.job_id.split("_")[1]) if "_" in info.job_id else None,
        "state": info.slurm_state,
        "exit_code": info.exit_code,
        "signal": info.signal,
        "elapsed": info.elapsed,
        "max_rss": info.max_rss,
        "node": info.node,
        "source": info.source,
    }
    write_atomic(path / SETTINGS.SCHEDULER_STATS_FILE, json.dumps(data, indent=4) + "\n")


def reconcile(tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
    """Merge the scheduler's view into tasks the files call queued or running.

    Finished jobs get their end (with its cause) and accounting written in the
    task directory; jobs the scheduler no longer knows, with no end recorded,
    become unknown. Returns the tasks whose state changed.
    """
    states = dict(tasks)
    live = {
        s.job_id: p
        for p, s in tasks
        if s.job_id and (s.state in (State.QUEUED, State.RUNNING) or not s.accounted)
    }
    if not live:
        return {}
    times = [s.queued_at or s.started_at for _, s in tasks if s.job_id in live]
    known = [t for t in times if t is not None]
    since = min(known) if known and len(known) == len(times) else None
    infos, source = poll(sorted(live), since=since)
    missing = [j for j in live if j not in infos]
    if missing and source == "sacct":  # not (yet) in accounting: ask the queue
        infos.update(_squeue(missing))
    changed: dict[Path, TaskState] = {}
    for job_id, path in live.items():
        info = infos.get(job_id)
        if info is None and states[path].state in (State.QUEUED, State.RUNNING):
            changed[path] = _lost(path)
            continue
        if info is None:  # ended, and unknown to the scheduler
            ended_at = states[path].ended_at or 0.0
            if time.time() - ended_at < ACCOUNTING_PATIENCE:
                continue  # accounting may lag behind: ask again later
            # e.g. cancelled while pending: there is nothing to account
            with task_lock(path):
                _complete_end(path, {"job_id": job_id, "accounted": True})
            changed[path] = read_state(path)
            continue
        state, cause = info.state
        if state in (State.QUEUED, State.RUNNING):
            continue
        with task_lock(path):
            _accounting(path, info)
            _record_end(path, info, cause)
        changed[path] = read_state(path)
    return changed


def _record_end(path: Path, info: JobInfo, cause: str | None) -> None:
    """Write (or complete) the task's end with the scheduler's cause."""
    code = info.exit_code if info.signal in (0, None) else 128 + (info.signal or 0)
    changes: dict[str, Any] = {"job_id": info.job_id, "accounted": info.source == "sacct"}
    if cause is not None:
        changes["reason"] = cause
    _complete_end(path, changes, default={"exit_code": code, "source": info.source})


def _complete_end(
    path: Path, changes: dict[str, Any], default: dict[str, Any] | None = None
) -> None:
    """Update the task's end record (or write one from ``default``)."""
    try:
        ended = json.loads((path / SETTINGS.ENDED_FILE).read_bytes())
    except (OSError, ValueError):
        ended = dict(default or {"exit_code": None})
    record(path, "ENDED_FILE", {**ended, **changes})


def _lost(path: Path) -> TaskState:
    state = read_state(path)
    if state.state in (State.QUEUED, State.RUNNING):
        state.state = State.UNKNOWN
        state.detail = "the scheduler no longer knows the job, and it recorded no end"
    return state


def scancel(job_ids: Sequence[str], *, settle: float = 10.0) -> None:
    """Cancel jobs (whole arrays or single elements) in one call, and check it.

    Raises:
        SchedulerError: scancel failed, or the jobs are still pending or
            running ``settle`` seconds later.
    """
    if not job_ids:
        return
    command = ["scancel", *job_ids]
    run_scheduler_command(command, what="scancel failed")
    deadline = time.monotonic() + settle
    while True:
        out = run_scheduler_command(
            [
                "squeue",
                "--noheader",
                "--array",
                "-o",
                "%i|%T",
                "-j",
                ",".join(sorted(set(job_ids))),
            ],
            what="squeue failed (checking the cancellation)",
        )
        alive = [
            ln.split("|")[0] for ln in out.splitlines() if ln.endswith(("|PENDING", "|RUNNING"))
        ]
        alive = [j for j in alive if j in job_ids or j.split("_")[0] in job_ids]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise SchedulerError(
                f"jobs still alive after scancel: {', '.join(alive[:10])}",
                command=command,
                returncode=0,
                hint="check them with 'squeue -j ...'; the controller may be busy",
            )
        time.sleep(0.5)
