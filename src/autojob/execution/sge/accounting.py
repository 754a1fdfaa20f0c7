"""What Grid Engine says of jobs: one qstat and one qacct per poll, ends written, qdel.

``qstat -u '*' -g d`` lists every queued and running array element in one call;
``qacct -j`` with a time window (``-b``) lists every finished one. The end and
the accounting of each finished element (``job_stats.json``: job and task id,
exit status, ``failed`` code, wallclock, maxvmem, host) are written in its task
directory, with the cause Grid Engine tells:

- ``failed`` 0: the script's exit status decides; a non-zero one under a
  memory limit is ``oom`` when maxvmem came near the limit or the task's
  standard error ends with an allocation failure (Grid Engine enforces
  ``h_vmem`` as an address-space limit: allocations fail, the job is not killed);
- ``failed`` 37 (qmaster enforced a limit): ``timeout`` when the wallclock
  reached ``h_rt``, else ``oom`` when the job had a memory limit;
- ``failed`` 100 with the job killed (exit status 137 or 143): ``cancelled``
  (qdel);
- any other ``failed`` code (the job could not be started, or its host was
  lost): ``failed`` with the cause ``node_fail`` and Grid Engine's message.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import SchedulerError
from autojob.execution.ends import cancelled_before_start, complete_end, jobs_to_ask, lost
from autojob.execution.sge.commands import sge_command
from autojob.execution.sge.missing import accounting_grace, first_missing
from autojob.scheduler import memory_mb
from autojob.store.atomic import write_atomic
from autojob.store.state import State, TaskState, read_state
from autojob.store.task_lock import task_lock

__all__ = ["CLOCK_SLACK", "SgeJob", "live_jobs", "poll", "qdel", "reconcile"]

logger = logging.getLogger(__name__)
#: seconds by which this machine's clock and qmaster's may differ
CLOCK_SLACK = 300.0
#: failed codes of qacct and what they mean here
FAILED_LIMIT = 37
FAILED_AFTER_JOB = 100


@dataclass
class SgeJob:
    """What Grid Engine says of one array element."""

    job_id: str  # JOB_ID.TASK_ID (JOB_ID alone for a job that is not an array)
    sge_state: str  # qstat's state letters, or "finished" once qacct has it
    exit_status: int | None = None
    failed: int | None = None
    failed_text: str | None = None
    wallclock: float | None = None
    maxvmem: str | None = None
    host: str | None = None
    limits: dict[str, str] | None = None
    source: str = "qacct"
    #: the task's standard error ends with an allocation failure (under a memory
    #: limit, Grid Engine makes allocations fail rather than kill the job)
    out_of_memory: bool = False

    @property
    def state(self) -> tuple[State, str | None]:
        """The autojob state and cause."""
        if self.source == "qstat":
            running = any(letter in self.sge_state for letter in "rtRsSTd")
            return (State.RUNNING if running else State.QUEUED), None
        return _finished_state(self)


def _finished_state(job: SgeJob) -> tuple[State, str | None]:
    limits = job.limits or {}
    if job.failed == FAILED_LIMIT:
        return _limit_cause(job, limits)
    if job.failed == FAILED_AFTER_JOB and job.exit_status in (137, 143):
        return State.CANCELLED, "cancelled"
    if job.failed:
        return State.FAILED, "node_fail"
    if job.exit_status == 0:
        return State.SUCCESS, None
    return (State.OOM, "oom") if _over_memory(job, limits) else (State.FAILED, None)


def _over_memory(job: SgeJob, limits: dict[str, str]) -> bool:
    """Whether a job that failed under a memory limit failed for want of memory."""
    limit = _memory_limit(limits)
    if limit is None:
        return False
    if job.out_of_memory:
        return True
    return bool(job.maxvmem) and memory_mb(_mb_text(job.maxvmem or "0")) >= 0.9 * limit


def _limit_cause(job: SgeJob, limits: dict[str, str]) -> tuple[State, str]:
    """Which limit qmaster enforced: the time limit if reached, else the memory's."""
    h_rt = limits.get("h_rt")
    reached = h_rt is not None and job.wallclock is not None and job.wallclock >= _seconds(h_rt)
    if not reached and _memory_limit(limits) is not None:
        return State.OOM, "oom"
    return State.TIMEOUT, "timeout"


def _memory_limit(limits: dict[str, str]) -> float | None:
    """The memory limit per slot in megabytes, if the job had one."""
    value = limits.get(SETTINGS.SGE_MEMORY_RESOURCE) or limits.get("h_vmem")
    try:
        return memory_mb(value) if value else None
    except ValueError:
        return None


def _mb_text(value: str) -> str:
    """The ``4.816MB`` of qacct as ``4.816M`` (the form memory_mb reads)."""
    return value.removesuffix("B") if value[-2:-1].isalpha() else value.rstrip("B") or "0"


def _seconds(value: str) -> float:
    total = 0.0
    for part in value.split(":"):
        total = total * 60 + float(part or 0)
    return total


# --- qstat ----------------------------------------------------------------------


def _qstat() -> dict[str, SgeJob]:
    """Every queued and running array element, one line each (``-g d``)."""
    out = sge_command(["qstat", "-u", "*", "-g", "d"], what="qstat failed")
    jobs: dict[str, SgeJob] = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) < 8 or not words[0].isdigit():
            continue  # the header, its rule
        rest = words[7:]
        queue = rest.pop(0) if rest and "@" in rest[0] else None
        task = rest[1] if len(rest) > 1 else None
        element = f"{words[0]}.{task}" if task else words[0]
        host = queue.partition("@")[2] if queue else None
        jobs[element] = SgeJob(element, words[4], host=host, source="qstat")
    return jobs


# --- qacct ----------------------------------------------------------------------


def _qacct(since: float | None, job: str | None = None) -> dict[str, SgeJob]:
    """Every finished job element qacct knows (started after ``since``, if given).

    ``job``: only the elements of this job (its id).
    """
    window = [] if since is None else ["-b", _qacct_time(since)]
    try:
        out = sge_command(["qacct", *window, "-j", *([job] if job else [])], what="qacct failed")
    except SchedulerError as exc:
        if "no jobs" in (exc.stderr + exc.stdout).lower():
            return {}  # an accounting file with nothing in the window
        raise
    jobs: dict[str, SgeJob] = {}
    for block in re.split(r"^=+\s*$", out, flags=re.MULTILINE):
        fields = _fields(block)
        if "jobnumber" in fields:
            found = _from_fields(fields)
            jobs[found.job_id] = found  # a job run again: its last run
    return jobs


def _fields(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            fields[key] = value.strip()
    return fields


def _from_fields(fields: dict[str, str]) -> SgeJob:
    task = fields.get("taskid", "undefined")
    element = fields["jobnumber"] + ("" if task in ("undefined", "") else f".{task}")
    failed_code, _, failed_text = fields.get("failed", "").partition(":")
    status = fields.get("exit_status", "").split()
    wallclock = fields.get("ru_wallclock", "").removesuffix("s")
    return SgeJob(
        job_id=element,
        sge_state="finished",
        exit_status=int(status[0]) if status and status[0].isdigit() else None,
        failed=int(failed_code) if failed_code.strip().isdigit() else None,
        failed_text=failed_text.strip() or None,
        wallclock=float(wallclock) if re.fullmatch(r"[0-9.]+", wallclock) else None,
        maxvmem=fields.get("maxvmem"),
        host=fields.get("hostname"),
        limits=_limits(fields.get("category", "")),
    )


def _limits(category: str) -> dict[str, str]:
    """The ``-l`` resources of qacct's category (``-l h_rt=60,h_vmem=100M -pe smp 2``)."""
    match = re.search(r"-l\s+(\S+)", category)
    if not match:
        return {}
    pairs = (item.partition("=") for item in match[1].split(","))
    return {key: value for key, _, value in pairs if value}


def _qacct_time(epoch: float) -> str:
    """A qacct time (local, ``[CC]YYMMDDhhmm.SS``) a little before ``epoch``."""
    return time.strftime("%Y%m%d%H%M.%S", time.localtime(epoch - CLOCK_SLACK))


def poll(job_ids: Sequence[str], since: float | None = None) -> dict[str, SgeJob]:
    """What Grid Engine says of ``job_ids``: one qstat call, and one qacct call.

    ``since``: the jobs were submitted after this time (epoch seconds); qacct is
    asked about jobs started since then only.
    """
    if not job_ids:
        return {}
    wanted = set(job_ids)
    found = {j: info for j, info in _qstat().items() if j in wanted}
    if len(found) < len(wanted):
        finished = _qacct(since)
        found.update({j: finished[j] for j in wanted - found.keys() if j in finished})
    return found


# --- reconcile ------------------------------------------------------------------


#: what programs print when an allocation fails
_ALLOCATION_FAILED = re.compile(
    rb"MemoryError|Cannot allocate memory|std::bad_alloc|[Oo]ut of memory|memory exhausted"
)


def _allocation_failed(path: Path) -> bool:
    """Whether the last lines of the task's standard error tell of a failed allocation."""
    try:
        with (path / SETTINGS.STDERR_FILE).open("rb") as stream:
            stream.seek(max(0, stream.seek(0, 2) - 4096))
            tail = stream.read()
    except OSError:
        return False
    return _ALLOCATION_FAILED.search(tail) is not None


def _accounting(path: Path, job: SgeJob) -> None:
    array, _, task = job.job_id.partition(".")
    data = {
        "job_id": job.job_id,
        "array_job_id": array,
        "task_id": int(task) if task.isdigit() else None,
        "exit_status": job.exit_status,
        "failed": job.failed,
        "failed_reason": job.failed_text,
        "wallclock": job.wallclock,
        "maxvmem": job.maxvmem,
        "host": job.host,
        "limits": job.limits or {},
        "source": job.source,
    }
    write_atomic(path / SETTINGS.SCHEDULER_STATS_FILE, json.dumps(data, indent=4) + "\n")


def reconcile(tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
    """Merge Grid Engine's view into tasks the files call queued or running.

    Finished elements get their end (with its cause) and accounting written in
    the task directory. Returns the tasks whose state changed.
    """
    states = dict(tasks)
    live, since = jobs_to_ask(tasks)
    if not live:
        return {}
    infos = poll(sorted(live), since=since)
    changed: dict[Path, TaskState] = {}
    now = time.time()
    last_looks: dict[str, dict[str, SgeJob]] = {}
    for job_id, path in live.items():
        info = infos.get(job_id)
        if info is None:
            if not _gone(path, job_id, states[path], now):
                continue
            info = _last_look(job_id, last_looks)
            if info is None:
                changed[path] = _account_gone(path, job_id, states[path])
                continue
        if info.source == "qstat":
            continue  # queued or running
        info.out_of_memory = _allocation_failed(path)
        _state, cause = info.state
        with task_lock(path):
            _accounting(path, info)
            _record_end(path, info, cause)
        changed[path] = read_state(path)
    return changed


def _last_look(job_id: str, seen: dict[str, dict[str, SgeJob]]) -> SgeJob | None:
    """The job's record, from qacct asked of its job alone, with no time window.

    A job whose host was lost before it started has no start time in the
    accounting file, so the window of a poll (``qacct -b``) leaves it out;
    asked once per job (``seen``), and only of a job about to be taken as lost.
    """
    array = job_id.partition(".")[0]
    if array not in seen:
        try:
            seen[array] = _qacct(None, array)
        except SchedulerError:
            seen[array] = {}
    return seen[array].get(job_id)


def _gone(path: Path, job_id: str, state: TaskState, now: float) -> bool:
    """Whether a job known to neither qstat nor qacct is to be taken as gone.

    qacct learns of a job at the accounting flush after it ends: a job ended
    just now may be known to neither yet, so it is taken as gone once missing
    for longer than a flush takes (:func:`.missing.accounting_grace`), counted
    from when a poll that reached qmaster first missed it, and for a task that
    recorded its end, from that end too. A job that ended while qmaster was
    down is reported by its execd once qmaster is back, so its grace starts
    when qmaster answers again, not at its end.
    """
    if cancelled_before_start(path, state):
        return True  # deleted while pending: qacct never has such a job
    missed = first_missing(path, job_id, now)
    if state.state not in (State.QUEUED, State.RUNNING):
        missed = max(missed, state.ended_at or 0.0)
    return now - missed >= accounting_grace()


def _account_gone(path: Path, job_id: str, state: TaskState) -> TaskState:
    if state.state in (State.QUEUED, State.RUNNING):
        return lost(path)
    # ended, and unknown to qacct: e.g. deleted while pending (nothing to account)
    with task_lock(path):
        complete_end(path, {"job_id": job_id, "accounted": True})
    return read_state(path)


def _record_end(path: Path, job: SgeJob, cause: str | None) -> None:
    """Write (or complete) the task's end with Grid Engine's cause."""
    changes: dict[str, Any] = {"job_id": job.job_id, "accounted": True}
    if cause is not None:
        changes["reason"] = cause
    complete_end(path, changes, default={"exit_code": job.exit_status, "source": job.source})


# --- qdel -----------------------------------------------------------------------


def qdel(job_ids: Sequence[str], *, settle: float = 10.0) -> None:
    """Delete array elements (``JOB.TASK``) in one qdel call, and check it.

    Raises:
        SchedulerError: qdel failed, or some are still queued or running
            (not being deleted) ``settle`` seconds later.
    """
    if not job_ids:
        return
    command = ["qdel", *_qdel_words(job_ids)]
    try:
        sge_command(command, what="qdel failed")
    except SchedulerError as exc:
        if not _only_finished(exc):
            raise
    wanted = set(job_ids)
    deadline = time.monotonic() + settle
    while True:
        alive = sorted(
            j for j, info in _qstat().items() if j in wanted and "d" not in info.sge_state
        )
        if not alive:
            return
        if time.monotonic() > deadline:
            raise SchedulerError(
                f"jobs still queued or running after qdel: {', '.join(alive[:10])}",
                command=command,
                returncode=0,
                hint="check them with 'qstat -u \"*\" -g d'; sge_qmaster may be busy",
            )
        time.sleep(0.5)


def _qdel_words(job_ids: Sequence[str]) -> list[str]:
    """The arguments of qdel: ``JOB -t TASKS`` per array, the tasks as ranges.

    qdel reads ``-t`` as applying to the job id before it, so each array is
    deleted in the same call with its own task list.
    """
    tasks: dict[str, list[int]] = {}
    whole: list[str] = []
    for job_id in sorted(set(job_ids)):
        array, _, task = job_id.partition(".")
        if task.isdigit():
            tasks.setdefault(array, []).append(int(task))
        else:
            whole.append(array)
    words = list(whole)
    for array, numbers in sorted(tasks.items()):
        numbers.sort()
        if numbers == list(range(numbers[0], numbers[-1] + 1)):
            words += [array, "-t", f"{numbers[0]}-{numbers[-1]}"]
        else:
            for number in numbers:
                words += [array, "-t", str(number)]
    return words


def _only_finished(exc: SchedulerError) -> bool:
    """True when qdel failed only because the jobs had finished already."""
    lines = [ln for ln in (exc.stdout + exc.stderr).splitlines() if ln.strip()]
    return bool(lines) and all(
        "does not exist" in ln or "has been deleted" in ln or "registered" in ln for ln in lines
    )


def live_jobs(job_ids: Sequence[str]) -> set[str]:
    """Those of ``job_ids`` (array elements ``JOB.TASK``) that qstat still lists.

    A job being deleted counts as live until qstat drops it: its processes may
    not all be gone.
    """
    if not job_ids:
        return set()
    return set(job_ids) & set(_qstat())
