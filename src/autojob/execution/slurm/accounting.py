"""What SLURM says of jobs: one batched query, ends and accounting written, cancel.

The task script records its own start and end; for what it cannot record
(killed at its time limit, out of memory, node failure, cancelled), one batched
``sacct`` query (``squeue`` where accounting is unavailable) tells, and the end
and the accounting are written in the task directory (``job_stats.json``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import SchedulerError
from autojob.execution.ends import cancelled_before_start, complete_end, jobs_to_ask, lost
from autojob.execution.slurm.commands import slurm_command
from autojob.store.atomic import write_atomic
from autojob.store.state import State, TaskState, read_state
from autojob.store.task_lock import task_lock

__all__ = ["CLOCK_SLACK", "JobInfo", "live_jobs", "poll", "reconcile", "scancel"]

logger = logging.getLogger(__name__)
#: seconds by which this machine's clock and the controller's may differ
CLOCK_SLACK = 300.0
#: seconds to wait for sacct to know a job that ended before giving up on it
ACCOUNTING_PATIENCE = 120.0
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
        out = slurm_command(command, what="squeue failed")
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
        out = slurm_command(
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
    live, since = jobs_to_ask(tasks)
    if not live:
        return {}
    infos, source = poll(sorted(live), since=since)
    missing = [j for j in live if j not in infos]
    if missing and source == "sacct":  # not (yet) in accounting: ask the queue
        infos.update(_squeue(missing))
    changed: dict[Path, TaskState] = {}
    for job_id, path in live.items():
        info = infos.get(job_id)
        if info is None and states[path].state in (State.QUEUED, State.RUNNING):
            changed[path] = lost(path)
            continue
        if info is None:  # ended, and unknown to the scheduler
            ended_at = states[path].ended_at or 0.0
            waited = time.time() - ended_at >= ACCOUNTING_PATIENCE
            if not waited and not cancelled_before_start(path, states[path]):
                continue  # accounting may lag behind: ask again later
            # e.g. cancelled while pending: there is nothing to account
            with task_lock(path):
                complete_end(path, {"job_id": job_id, "accounted": True})
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
    complete_end(path, changes, default={"exit_code": code, "source": info.source})


def scancel(job_ids: Sequence[str], *, settle: float = 10.0) -> None:
    """Cancel jobs (whole arrays or single elements) in one call, and check it.

    Raises:
        SchedulerError: scancel failed, or the jobs are still pending or
            running ``settle`` seconds later.
    """
    if not job_ids:
        return
    command = ["scancel", *job_ids]
    slurm_command(command, what="scancel failed")
    deadline = time.monotonic() + settle
    while True:
        out = slurm_command(
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


def live_jobs(job_ids: Sequence[str]) -> set[str]:
    """Those of ``job_ids`` (array elements ``12_3``) that squeue shows pending or running.

    A job that is completing counts as live: its processes may not all be gone.
    """
    if not job_ids:
        return set()
    return {j for j, info in _squeue(job_ids).items() if info.slurm_state in _LIVE_STATES}


_LIVE_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING",
     "REQUEUE_HOLD", "REQUEUE_FED", "STOPPED", "SIGNALING", "STAGE_OUT"}
)  # fmt: skip
