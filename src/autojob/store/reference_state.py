"""The state of a task that python-autojob 0.0.2 ran: read from what it leaves.

python-autojob records no start or end of its own. A task it submitted holds
SLURM's output ``slurm-<job id>.out`` and, once harvested there, the job's
accounting as ``sacct --json`` prints it (``job_stats.json``: a ``jobs``
list). Its calculations (``calculation_inputs`` in ``inputs.json``) succeed
only when they leave their final structure (``final.traj``), python-autojob's
own rule. So, for a task with none of autojob's run records:

    sacct record  COMPLETED -> success (a calculation without its final
                  structure: failed, cause not_converged); TIMEOUT -> timeout;
                  OUT_OF_MEMORY -> oom; CANCELLED -> cancelled; PENDING ->
                  queued; RUNNING -> running; any other -> failed with that cause
    slurm-N.out   only: a calculation with its final structure -> success;
                  else unknown (the job's end was never recorded)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection
from typing import Any

from autojob import SETTINGS
from autojob.store.state import State, TaskState

__all__ = ["NOT_CONVERGED", "reference_state"]

#: the cause of a calculation that ended without converging
NOT_CONVERGED = "not_converged"
_SLURM_OUTPUT = re.compile(r"slurm-(\d+)\.out")
_SACCT_STATES = {
    "COMPLETED": State.SUCCESS,
    "TIMEOUT": State.TIMEOUT,
    "OUT_OF_MEMORY": State.OOM,
    "CANCELLED": State.CANCELLED,
    "PENDING": State.QUEUED,
    "RUNNING": State.RUNNING,
    "FAILED": State.FAILED,
}


def _load(path: str) -> Any:
    try:
        with open(path, "rb") as stream:
            return json.loads(stream.read())
    except (OSError, ValueError):
        return None


def _sacct_job(folder: str, names: Collection[str]) -> dict[str, Any] | None:
    """The first job of a ``sacct --json`` record in ``job_stats.json``, if there is one."""
    if SETTINGS.SCHEDULER_STATS_FILE not in names:
        return None
    data = _load(os.path.join(folder, SETTINGS.SCHEDULER_STATS_FILE))
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list) or not jobs or not isinstance(jobs[0], dict):
        return None
    job: dict[str, Any] = jobs[0]
    return job


def _sacct_state(job: dict[str, Any]) -> str:
    state = job.get("state")
    current = state.get("current") if isinstance(state, dict) else state
    if isinstance(current, list):
        current = current[0] if current else ""
    return str(current or "").split()[0] if current else ""


def _is_calculation(folder: str) -> bool:
    data = _load(os.path.join(folder, SETTINGS.INPUTS_FILE))
    return isinstance(data, dict) and isinstance(data.get("calculation_inputs"), dict)


def _times(job: dict[str, Any], result: TaskState) -> None:
    times = job.get("time")
    if not isinstance(times, dict):
        return
    for field, key in (("started_at", "start"), ("ended_at", "end")):
        value = times.get(key)
        value = value.get("number") if isinstance(value, dict) else value
        if isinstance(value, int | float) and value > 0:
            setattr(result, field, float(value))


def reference_state(folder: str, names: Collection[str]) -> TaskState | None:
    """The state of a task python-autojob ran, or None when it left no trace of a run."""
    outputs = sorted((m for m in map(_SLURM_OUTPUT.fullmatch, names) if m), key=lambda m: m[0])
    job = _sacct_job(folder, names)
    if job is None and not outputs:
        return None
    result = TaskState(executor="slurm", detail="run by python-autojob")
    result.job_id = str(job.get("job_id")) if job is not None else outputs[-1][1]
    finished = SETTINGS.OUTPUT_ATOMS_FILE in names
    if job is None:
        calculation = _is_calculation(folder)
        result.state = State.SUCCESS if calculation and finished else State.UNKNOWN
        if result.state is State.UNKNOWN:
            result.detail = "run by python-autojob, which recorded no end of the job"
        return result
    result.accounted = True
    _times(job, result)
    sacct = _sacct_state(job)
    result.state = _SACCT_STATES.get(sacct, State.FAILED)
    if result.state is State.FAILED and sacct != "FAILED":
        result.reason = sacct.lower() or None
    elif result.state in (State.TIMEOUT, State.OOM, State.CANCELLED):
        result.reason = result.state.value
    if result.state is State.SUCCESS and not finished and _is_calculation(folder):
        result.state, result.reason = State.FAILED, NOT_CONVERGED
    result.exit_code = 0 if result.state is State.SUCCESS else None
    return result
