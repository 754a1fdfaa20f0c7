"""A task's state, derived from the files in its directory.

The task script records its start (``autojob.started``) and end
(``autojob.ended``: time, exit code); ``submit`` records that a task is queued
(``autojob.queued``: executor and runner), ``cancel`` that it should stop
(``autojob.cancel``). Which of these files exist, and what the newest one says,
decide the state, so the state survives the death of any process::

    ended   exit 0 -> success; reason timeout/cancelled/oom/... -> that; else failed
            (with when and where it started: the task script's end record
            repeats them; else the start record tells)
    started (no end) -> running while its process lives, else unknown
    queued  (no start) -> queued while its runner lives, else idle again
    cancel  (nothing else) -> cancelled
    none    -> idle
"""

from __future__ import annotations

import json
import operator
import os
import socket
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import compress, repeat
from pathlib import Path
from typing import Any, cast

from autojob import SETTINGS

__all__ = [
    "FINAL_STATES",
    "STATE_FIELDS",
    "STATE_ORDER",
    "State",
    "TaskState",
    "command_alive",
    "group_alive",
    "process_alive",
    "process_group",
    "process_start_ticks",
    "read_record",
    "read_state",
    "run_seconds",
    "state_from_end",
    "this_host",
    "write_submitted",
]


class State(StrEnum):
    """The states of a task (DESIGN.md)."""

    IDLE = "idle"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    OOM = "oom"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


FINAL_STATES = frozenset({State.SUCCESS, State.FAILED, State.TIMEOUT, State.OOM, State.CANCELLED})
#: every state, in the order tables, reports and the live view show them: the
#: ended ones first (success, failed, timeout, oom, cancelled), then unknown,
#: running, queued and idle
STATE_ORDER: tuple[str, ...] = (
    *(s.value for s in State if s in FINAL_STATES),
    *(s.value for s in reversed(State) if s not in FINAL_STATES),
)
#: exit code of ``autojob run`` (and coreutils ``timeout``) when time ran out
TIMEOUT_EXIT = 124
_REASONS = {s.value: s for s in (State.TIMEOUT, State.OOM, State.CANCELLED, State.FAILED)}


@dataclass
class TaskState:
    """What the files of one task directory say about its run."""

    state: State = State.IDLE
    exit_code: int | None = None
    reason: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    host: str | None = None
    pid: int | None = None
    executor: str | None = None
    job_id: str | None = None
    detail: str | None = None
    accounted: bool = False  # the scheduler's accounting is recorded beside it

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dict(zip(STATE_FIELDS, self.row(), strict=True))

    def row(self) -> tuple[Any, ...]:
        """The values of :data:`STATE_FIELDS`, JSON-ready."""
        return (
            self.state.value, self.exit_code, self.reason, self.queued_at, self.started_at,
            self.ended_at, self.host, self.pid, self.executor, self.job_id, self.detail,
            self.accounted,
        )  # fmt: skip

    def run_seconds(self, now: float | None = None) -> float | None:
        """How long the run took (from its start to its end), or has run so far.

        ``now``: the time to count a running task to (default: the clock).
        None when the run has not started, or its start was not recorded.
        """
        return run_seconds(self.state.value, self.started_at, self.ended_at, now)

    @classmethod
    def from_row(cls, values: list[Any]) -> TaskState:
        """Rebuild from :meth:`row`."""
        state, *rest = values
        return cls(State(state), *rest)


def run_seconds(
    state: str, started_at: float | None, ended_at: float | None, now: float | None = None
) -> float | None:
    """:meth:`TaskState.run_seconds` of a task in ``state`` (its value) started and ended so."""
    if started_at is None:
        return None
    if ended_at is not None:
        return max(0.0, ended_at - started_at)
    if state == State.RUNNING.value:
        return max(0.0, (time.time() if now is None else now) - started_at)
    return None


def run_seconds_column(
    states: Sequence[str],
    started: Sequence[float | None],
    ended: Sequence[float | None],
    now: float,
) -> list[float | None]:
    """:func:`run_seconds` of each row of three columns (states, starts, ends).

    Rows that started and ended are subtracted in C; only the others (not
    started, or running) go through :func:`run_seconds`.
    """
    if not (len(states) == len(started) == len(ended)):
        raise ValueError("columns of different lengths")
    unknown = list(
        compress(
            range(len(started)),
            map(
                operator.or_,
                map(operator.is_, started, repeat(None)),
                map(operator.is_, ended, repeat(None)),
            ),
        )
    )
    begun, done = cast("tuple[Sequence[float], Sequence[float]]", (started, ended))
    if unknown:  # a span of 1 where a time is missing (those rows are done below)
        begun, done = list(begun), list(done)
        for row in unknown:
            begun[row], done[row] = 0.0, 1.0
    spans = list(map(operator.sub, done, begun))
    if min(spans, default=1.0) <= 0.0:  # a clock set back: none below 0 (nor -0.0)
        spans = list(map(max, repeat(0.0), spans))
    found = cast("list[float | None]", spans)  # the rows below take None
    for row in unknown:  # not started: None; started, not ended: only a running one counts
        found[row] = (
            None
            if started[row] is None
            else run_seconds(states[row], started[row], ended[row], now)
        )
    return found


#: the fields of a TaskState kept in a status index, in order
STATE_FIELDS = (
    "state", "exit_code", "reason", "queued_at", "started_at", "ended_at",
    "host", "pid", "executor", "job_id", "detail", "accounted",
)  # fmt: skip


def this_host() -> str:
    """Return the name this machine's task scripts record as their host."""
    return socket.gethostname()


def _read_record(path: str) -> dict[str, Any] | None:
    """Read a small JSON record; None when missing, {} when unreadable."""
    try:
        with open(path, "rb") as stream:
            data = json.loads(stream.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_record(path: str | Path) -> dict[str, Any] | None:
    """A small JSON record of a task: None when missing, {} when unreadable."""
    return _read_record(os.fspath(path))


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as stream:
            for line in stream:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


_BOOT = _boot_time()
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` from the third (state) on, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            raw = stream.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/PID/stat`` field 22).

    The kernel's own count: no clock step changes it, and with the pid it
    names one process for as long as the machine runs.
    """
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def process_group(pid: int) -> int | None:
    """The process group of ``pid`` (``/proc/PID/stat`` field 5), or None."""
    fields = _stat_fields(pid)
    return int(fields[2]) if fields is not None and len(fields) > 2 else None


def _process_start(pid: int) -> float | None:
    """Return when ``pid`` started (epoch seconds), where /proc tells."""
    ticks = process_start_ticks(pid) if _BOOT is not None else None
    return None if ticks is None or _BOOT is None else _BOOT + ticks / _TICKS


def process_alive(
    pid: int | None, started_before: float | None = None, *, start_ticks: int | None = None
) -> bool:
    """Tell whether ``pid`` runs on this machine (and is not a reused pid).

    ``start_ticks``: the process's start in clock ticks, as recorded when it
    ran; the pid must have started at exactly that tick, else it now belongs
    to another process. Without it, ``started_before``: the process must have
    started no later than this wall-clock time (plus a little slack), which a
    clock step can fool; records written by older task scripts have no ticks.
    """
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if start_ticks is not None:
        ticks = process_start_ticks(pid)
        if ticks is not None and ticks != start_ticks:
            return False
    elif started_before is not None:
        began = _process_start(pid)
        if began is not None and began > started_before + 2.0:
            return False
    return _not_zombie(pid)


def group_alive(pgid: int | None) -> bool:
    """Whether any process of process group ``pgid`` is left (zombies aside)."""
    if not pgid or pgid <= 0:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    leader = _stat_fields(pgid)
    if leader is not None and process_group(pgid) == pgid and leader[0] != b"Z":
        return True
    # the leader is gone or a zombie: look for a member that is not
    return any(
        fields is not None and fields[0] != b"Z" and int(fields[2]) == pgid
        for fields in (_stat_fields(int(n)) for n in _pids())
    )


def _pids() -> list[str]:
    try:
        return [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def command_alive(task_dir: str | Path) -> int | None:
    """The process group of a task's command still running here, or None.

    ``autojob run`` records the session it starts the command in
    (``SETTINGS.COMMAND_FILE``) and removes the record once the command has
    ended; a record left behind means it was killed, so the group is checked.
    """
    record = _read_record(os.path.join(task_dir, SETTINGS.COMMAND_FILE))
    if not record:
        return None
    pgid, ticks, host = record.get("pgid"), record.get("start_ticks"), record.get("host")
    if not isinstance(pgid, int) or host not in (None, this_host()):
        return None
    if process_alive(pgid) and isinstance(ticks, int) and process_start_ticks(pgid) != ticks:
        return None  # the id now belongs to another process
    return pgid if group_alive(pgid) else None


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            raw = stream.read()
    except OSError:
        return True
    return raw[raw.rfind(b")") + 2 : raw.rfind(b")") + 3] != b"Z"


def _ended(record: dict[str, Any], result: TaskState, cancel: bool) -> TaskState:
    result.ended_at = _number(record.get("time"))
    code = record.get("exit_code")
    result.exit_code = code if isinstance(code, int) else None
    reason = record.get("reason")
    result.reason = reason if isinstance(reason, str) else None
    job = record.get("job_id")
    result.job_id = job if isinstance(job, str) and job else result.job_id
    result.accounted = record.get("accounted") is True
    if result.reason in _REASONS:
        result.state = _REASONS[result.reason]
    elif result.reason:  # a scheduler's cause (node_fail, preempted, ...): not a success
        result.state = State.FAILED
    elif cancel and result.exit_code != 0:
        result.state, result.reason = State.CANCELLED, "cancelled"
    elif result.exit_code == 0:
        result.state = State.SUCCESS
    elif result.exit_code == TIMEOUT_EXIT:
        result.state, result.reason = State.TIMEOUT, result.reason or "time limit"
    else:
        result.state = State.FAILED
    return result


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def read_state(task_dir: str | Path, names: Collection[str] | None = None) -> TaskState:
    """Derive the state of the task in ``task_dir`` from its files.

    ``names``: the entries of the directory, when the caller has listed it
    already (discovery does), to save a listing.
    """
    folder = os.fspath(task_dir)
    if names is None:
        try:
            names = set(os.listdir(folder))
        except OSError:
            return TaskState(State.UNKNOWN, detail="directory cannot be read")
    result = TaskState()
    cancel = SETTINGS.CANCEL_FILE in names
    if SETTINGS.ENDED_FILE in names:
        record = _read_record(os.path.join(folder, SETTINGS.ENDED_FILE))
        if record is not None:
            return state_from_end(record, cancel) or _end_and_files(record, cancel, folder, names)
    if SETTINGS.STARTED_FILE in names:
        record = _read_record(os.path.join(folder, SETTINGS.STARTED_FILE)) or {}
        return _executor(record, _started(record, result, cancel, folder), folder, names)
    if SETTINGS.QUEUED_FILE in names:
        record = _read_record(os.path.join(folder, SETTINGS.QUEUED_FILE)) or {}
        return _queued(record, result, cancel)
    if cancel:
        result.state = State.CANCELLED
        return result
    # no record of autojob's: what python-autojob leaves of a run, if anything
    from autojob.store.reference_state import reference_state  # noqa: PLC0415

    return reference_state(folder, names) or result


def _end_and_files(
    record: dict[str, Any], cancel: bool, folder: str, names: Collection[str]
) -> TaskState:
    """The state of an ended task whose end record is not enough alone."""
    result = TaskState()
    if "started_at" in record:  # the task script's end repeats its start
        _start_of({**record, "time": record["started_at"]}, result)
    elif SETTINGS.STARTED_FILE in names:  # an end written by another process
        _start_of(_read_record(os.path.join(folder, SETTINGS.STARTED_FILE)) or {}, result)
    return _executor(record, _ended(record, result, cancel), folder, names)


def state_from_end(record: dict[str, Any], cancel: bool) -> TaskState | None:
    """The state an end record gives alone, or None when the task's other files are needed.

    A task script's end record repeats its start and names its executor; then
    the record, and whether the task was asked to stop (``cancel``: its
    ``SETTINGS.CANCEL_FILE`` exists), are the whole state.
    """
    executor = record.get("executor")
    if "started_at" not in record or not isinstance(executor, str) or not executor:
        return None
    result = TaskState()
    _start_of({**record, "time": record["started_at"]}, result)
    result = _ended(record, result, cancel)
    result.executor = executor
    return result


def _executor(
    record: dict[str, Any], result: TaskState, folder: str, names: Collection[str]
) -> TaskState:
    """Fill in the executor a start or end record names (else its claim's)."""
    executor = record.get("executor")
    if isinstance(executor, str) and executor:
        result.executor = executor
    elif SETTINGS.QUEUED_FILE in names:
        # written by a task script that did not record its executor, or by another
        # process (a runner stopping the task at its limit, cancel): the claim tells
        claim = _read_record(os.path.join(folder, SETTINGS.QUEUED_FILE)) or {}
        executor = claim.get("executor")
        result.executor = executor if isinstance(executor, str) and executor else None
    return result


def _start_of(record: dict[str, Any], result: TaskState) -> None:
    """Fill in when and where the run started, from its start record."""
    result.started_at = _number(record.get("time"))
    host = record.get("host")
    result.host = host if isinstance(host, str) and host else None
    pid = record.get("pid")
    result.pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else None
    job = record.get("job_id")
    result.job_id = job if isinstance(job, str) and job else None


def _started(record: dict[str, Any], result: TaskState, cancel: bool, folder: str) -> TaskState:
    _start_of(record, result)
    if result.job_id:  # a scheduler's task: the scheduler's view decides
        result.state = State.RUNNING
        return result
    if result.host and result.host != this_host():
        result.state = State.RUNNING
        result.detail = f"runs on {result.host}; cannot be checked from here"
        return result
    ticks = record.get("start_ticks")
    ticks = ticks if isinstance(ticks, int) and not isinstance(ticks, bool) else None
    if process_alive(result.pid, result.started_at, start_ticks=ticks):
        result.state = State.RUNNING
    elif (group := command_alive(folder)) is not None:
        result.state = State.RUNNING
        result.detail = f"its task script is gone, but its command runs on (group {group})"
    elif cancel:
        result.state, result.reason = State.CANCELLED, "cancelled"
    else:
        result.state = State.UNKNOWN
        result.detail = "started, but its process is gone without recording an end"
    return result


def _queued(record: dict[str, Any], result: TaskState, cancel: bool) -> TaskState:
    result.queued_at = _number(record.get("time"))
    executor = record.get("executor")
    result.executor = executor if isinstance(executor, str) else None
    job = record.get("job_id") or _array_element(record)
    result.job_id = str(job) if job else None
    if cancel:
        result.state, result.reason = State.CANCELLED, "cancelled"
        return result
    if result.job_id:
        result.state = State.QUEUED
        return result
    runner = record.get("runner")
    runner = runner if isinstance(runner, dict) else {}
    pid, ticks = runner.get("pid"), runner.get("start_ticks")
    same_host = runner.get("host") in (None, this_host())
    alive = process_alive(
        pid if isinstance(pid, int) else None,
        result.queued_at,
        start_ticks=ticks if isinstance(ticks, int) else None,
    )
    if not same_host or alive:
        result.state = State.QUEUED
    else:
        result.state = State.IDLE
        result.detail = "was queued, but the runner that queued it is gone"
    return result


#: the file in a batch directory holding the job id the scheduler gave its array
SUBMITTED_FILE = "submitted.json"
#: how an array element's job id is made from the array's, unless the batch says
ELEMENT_FORMAT = "{job_id}_{index}"
#: job ids of batch directories read so far (never changes once written)
_ARRAY_IDS: dict[str, tuple[str, str]] = {}


def write_submitted(batch_dir: str | Path, job_id: str, element: str = ELEMENT_FORMAT) -> None:
    """Record the job id of the array submitted from ``batch_dir``.

    ``element``: how the scheduler names the array's elements, a format of
    ``job_id`` and ``index`` (SLURM's ``12_3`` by default; Grid Engine's
    ``{job_id}.{index}``, with indices from 1, would be ``{job_id}.{index1}``).
    """
    from autojob.store.atomic import write_atomic  # noqa: PLC0415

    data: dict[str, Any] = {"job_id": job_id, "time": time.time()}
    if element != ELEMENT_FORMAT:
        data["element"] = element
    write_atomic(Path(batch_dir, SUBMITTED_FILE), json.dumps(data) + "\n")
    _ARRAY_IDS[os.fspath(batch_dir)] = (job_id, element)


def _array_element(record: dict[str, Any]) -> str | None:
    """The job id of a task claimed as element ``array_index`` of a batch's array.

    None while the array is not submitted (or its submit died before sbatch
    answered).
    """
    batch, index = record.get("batch"), record.get("array_index")
    if not isinstance(batch, str) or not isinstance(index, int):
        return None
    known = _ARRAY_IDS.get(batch)
    if known is None:
        data = _read_record(os.path.join(batch, SUBMITTED_FILE)) or {}
        found, element = data.get("job_id"), data.get("element", ELEMENT_FORMAT)
        if not isinstance(found, str) or not found or not isinstance(element, str):
            return None
        known = _ARRAY_IDS[batch] = (found, element)
    job_id, element = known
    if element == ELEMENT_FORMAT:
        return f"{job_id}_{index}"
    return element.format(job_id=job_id, index=index, index1=index + 1)
