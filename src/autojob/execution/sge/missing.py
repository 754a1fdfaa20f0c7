"""Jobs known to neither qstat nor qacct: when one is taken as lost.

A job leaves ``qstat`` when it ends, and qmaster writes its record to the
accounting file that ``qacct`` reads at its next flush. Between the two, a job
that ended normally is known to neither, so a missing job is lost only once it
has been missing for longer than a flush can take (:func:`accounting_grace`).
When it was first missed is kept in its array's batch directory
(``missing.json``), so that successive ``autojob status`` commands, each a
process of its own, agree on it.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from autojob import SETTINGS
from autojob.errors import SchedulerError
from autojob.execution.sge.commands import sge_command
from autojob.store.atomic import write_atomic
from autojob.store.state import read_record

__all__ = ["DEFAULT_FLUSH", "FLUSH_MARGIN", "MISSING_FILE", "accounting_grace", "first_missing"]

#: Grid Engine's default interval of accounting flushes (``flush_time``), seconds
DEFAULT_FLUSH = 15.0
#: what a busy qmaster may take beyond its flush interval, seconds
FLUSH_MARGIN = 10.0
#: the file of a batch directory that holds when each of its jobs was first missed
MISSING_FILE = "missing.json"
#: when this process first missed each job of a task that names no batch
_MISSED_HERE: dict[str, float] = {}


@functools.cache
def accounting_grace() -> float:
    """Seconds a job that ended may be known to neither qstat nor qacct.

    Twice the cluster's accounting flush interval (``accounting_flush_time``
    of ``reporting_params`` in ``qconf -sconf``, else its ``flush_time``, else
    Grid Engine's default of 15 s), so that a flush just missed is waited for,
    plus :data:`FLUSH_MARGIN` for a busy qmaster. Read once per process.
    """
    try:
        config = sge_command(["qconf", "-sconf"], what="reading the Grid Engine configuration")
    except SchedulerError:
        config = ""
    flush = _interval(config, "accounting_flush_time")
    if flush is None:
        flush = _interval(config, "flush_time")
    return 2 * (DEFAULT_FLUSH if flush is None else flush) + FLUSH_MARGIN


def _interval(config: str, name: str) -> float | None:
    """The ``name=HH:MM:SS`` of ``reporting_params``, in seconds, if set."""
    match = re.search(rf"(?<![A-Za-z_]){name}=(\d+):(\d+):(\d+)", config)
    if match is None:
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def first_missing(path: Path, job_id: str, now: float) -> float:
    """When the job of the task in ``path`` was first missed by qstat and qacct.

    ``now`` when this is the first time: then it is written in the batch
    directory the task's claim names (in this process only when it names none,
    or the batch directory cannot be written). Two commands missing the job at
    once may both write; the later time then stands, which only delays the
    verdict.
    """
    batch = _batch_of(path)
    if batch is None:
        return _MISSED_HERE.setdefault(job_id, now)
    file = batch / MISSING_FILE
    seen = read_record(file) or {}
    when = seen.get(job_id)
    if isinstance(when, int | float):
        return float(when)
    seen[job_id] = now
    try:
        write_atomic(file, json.dumps(seen, sort_keys=True) + "\n")
    except OSError:
        return _MISSED_HERE.setdefault(job_id, now)  # a tree this user cannot write
    return now


def _batch_of(path: Path) -> Path | None:
    """The batch directory of the array that runs the task, from its claim."""
    batch = (read_record(path / SETTINGS.QUEUED_FILE) or {}).get("batch")
    return Path(batch) if isinstance(batch, str) and Path(batch).is_dir() else None
