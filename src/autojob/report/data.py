"""What a report or a live view shows, gathered from the status index.

Everything here comes from the columns of the status index
(:func:`autojob.store.status_index.collect`: one read of the index and of the
tasks changed since), plus the few files that the index points at: the
scheduler's accounting (``job_stats.json``) of the tasks it says are
accounted, the tail of the standard error of the tasks that failed, and each
study's workflow. No task directory is listed.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.execution.track import refresh_from_scheduler
from autojob.next.advance import StepProgress, workflow_progress
from autojob.scheduler import memory_mb
from autojob.store.run_files import tail
from autojob.store.state import FINAL_STATES
from autojob.store.status_index import StatusReport, TaskVisitor, collect, newest_rows
from autojob.store.walk import no_tasks_error
from autojob.store.workflow import has_workflow

__all__ = [
    "ENDED",
    "TROUBLE",
    "Estimate",
    "Failure",
    "ReportData",
    "StudyProgress",
    "TaskTimes",
    "WorkflowView",
    "gather",
    "study_progress",
    "summarise",
]

#: states whose run is over: they count as done in a progress bar
ENDED = frozenset(s.value for s in FINAL_STATES)
#: the states of a task that needs attention, as listed in a report
TROUBLE = ("failed", "timeout", "oom")
TAIL_LINES = 5


@dataclass(frozen=True)
class TaskTimes:
    """One attempt's run: when, how long, how much memory."""

    path: str
    state: str
    started_at: float | None
    ended_at: float | None
    run_seconds: float | None
    peak_memory_mb: float | None = None
    cpu_hours: float | None = None


@dataclass(frozen=True)
class Failure:
    """An attempt that failed, timed out or ran out of memory."""

    path: str
    state: str
    cause: str
    exit_code: int | None
    stderr_tail: str
    ended_at: float | None
    newest: bool  # the newest attempt of its task group (no restart replaced it)


@dataclass(frozen=True)
class WorkflowView:
    """A study's workflow: its steps (in order) and how far each has come."""

    study: str
    steps: list[StepProgress] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class StudyProgress:
    """The newest attempts of one study (or the loose tasks), counted by state."""

    name: str
    counts: Counter[str]

    @property
    def total(self) -> int:
        """Task groups (and loose tasks) counted."""
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """Those whose newest attempt has ended."""
        return sum(n for state, n in self.counts.items() if state in ENDED)


@dataclass(frozen=True)
class Estimate:
    """Time left: the work to do (mean run time of the ended attempts) over the runs at once."""

    seconds: float | None  # None until an attempt has ended
    running: int
    waiting: int  # queued or idle
    mean_run: float | None


@dataclass
class ReportData:
    """The summary, the runs, the failures and the workflows of a tree."""

    root: Path
    status: StatusReport
    studies: list[StudyProgress]
    counts: Counter[str]  # newest attempt of each task group, by state
    attempt_counts: Counter[str]  # every attempt, by state
    task_groups: int
    times: list[TaskTimes]
    failures: list[Failure]
    workflows: list[WorkflowView]
    generated_at: float = field(default_factory=time.time)
    note: str | None = None  # a scheduler that could not be asked

    def estimate(self) -> Estimate:
        """How long the tasks not ended yet will take, from the run times of those ended."""
        ended = [t.run_seconds for t in self.times if t.state in ENDED and t.run_seconds]
        running = [t.run_seconds or 0.0 for t in self.times if t.state == "running"]
        waiting = self.counts.get("queued", 0) + self.counts.get("idle", 0)
        if not ended:
            return Estimate(None, len(running), waiting, None)
        mean = sum(ended) / len(ended)
        work = waiting * mean + sum(max(0.0, mean - elapsed) for elapsed in running)
        return Estimate(work / max(1, len(running)), len(running), waiting, mean)

    @property
    def run_seconds(self) -> float:
        """The run time of every attempt, added up."""
        return sum(t.run_seconds or 0.0 for t in self.times)

    @property
    def cpu_hours(self) -> float | None:
        """CPU-hours of the attempts a scheduler accounted, if any was."""
        accounted = [t.cpu_hours for t in self.times if t.cpu_hours is not None]
        return sum(accounted) if accounted else None


def gather(
    root: Path, *, rescan: bool = False, tails: bool = True, visit: TaskVisitor | None = None
) -> ReportData:
    """Everything a report shows of the tasks under ``root``, but sweep results.

    The status index is brought up to date with the schedulers first (one
    batched query per executor, as ``autojob status`` makes); a scheduler
    that cannot be asked leaves its note in ``ReportData.note``.
    ``tails=False``: leave out the tails of standard error (the live view
    reads them only for the failures it shows). ``visit``: called for each
    task whose files are read on the way (see :func:`collect`).

    Raises:
        AutojobError: ``root`` is not a directory, or holds no task.
    """
    status = collect(root, rescan=rescan, visit=visit)
    if not len(status):
        raise no_tasks_error([root])
    note = refresh_from_scheduler(status, force=rescan)
    data = summarise(status, tails=tails)
    data.note = note
    return data


def summarise(status: StatusReport, *, tails: bool = True) -> ReportData:
    """What a report or the live view shows of the tasks of a status report.

    Read from the report's columns: no task or state object is built per task.
    """
    newest = newest_rows(status)
    states = status.columns["state"]
    return ReportData(
        root=status.root,
        status=status,
        studies=study_progress(status, newest),
        counts=Counter(states[r] for r in newest),
        attempt_counts=Counter(states),
        task_groups=len({g for g in status.columns["group"] if g is not None}),
        times=[_times(status, row) for row in range(len(states))],
        failures=_failures(status, set(newest), tails=tails),
        workflows=_workflows(status),
    )


def study_progress(status: StatusReport, newest: Sequence[int]) -> list[StudyProgress]:
    """Per study (by name), the states of the newest attempts (rows); loose tasks apart."""
    per: dict[str, Counter[str]] = {}
    studies, states = status.columns["study"], status.columns["state"]
    for row in newest:
        name = study_name(status.root, studies[row])
        per.setdefault(name, Counter())[states[row]] += 1
    return [StudyProgress(name, counts) for name, counts in sorted(per.items())]


def study_name(root: Path, study: str | None) -> str:
    """How a study is named on screen: its path, the root's name for ``.``."""
    return root.name if study == "." else study or "(tasks outside studies)"


def _times(status: StatusReport, row: int) -> TaskTimes:
    col = status.columns
    path, state, started, ended = (col[n][row] for n in ("path", "state", "started_at", "ended_at"))
    if started is not None and ended is not None:
        seconds: float | None = max(0.0, ended - started)
    else:  # running (counted to now), or not run
        seconds = status.state_of(row).run_seconds() if state == "running" else None
    memory = cpu = None
    if col["accounted"][row]:
        memory, cpu = _accounting(status.root / path)
    return TaskTimes(path, state, started, ended, seconds, memory, cpu)


def _accounting(task_dir: Path) -> tuple[float | None, float | None]:
    """Peak memory (MB) and CPU-hours from a task's ``job_stats.json``, where it has them."""
    try:
        stats = json.loads((task_dir / SETTINGS.SCHEDULER_STATS_FILE).read_bytes())
        inputs = json.loads((task_dir / SETTINGS.INPUTS_FILE).read_bytes())
    except (OSError, ValueError):
        return None, None
    if not isinstance(stats, dict):
        return None, None
    memory = _megabytes(stats.get("max_rss") or stats.get("maxvmem"))
    seconds = _seconds(stats.get("elapsed") or stats.get("wallclock"))
    scheduler = inputs.get("scheduler_inputs") if isinstance(inputs, dict) else None
    cpus = _cpus(scheduler if isinstance(scheduler, dict) else {})
    return memory, None if seconds is None else seconds * cpus / 3600


def _megabytes(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value) / 1e6  # bytes, as Grid Engine's qacct may give them
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().upper().removesuffix("B")
    try:
        return memory_mb(text) if text[-1:].isalpha() else float(text) / 1e6
    except ValueError:
        return None


_ELAPSED = re.compile(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")


def _seconds(value: Any) -> float | None:
    """Seconds of SLURM's ``[D-][HH:]MM:SS`` or of a number (Grid Engine's wallclock)."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _ELAPSED.fullmatch(value.strip())
    if match is None:
        try:
            return float(value)
        except ValueError:
            return None
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _cpus(scheduler: dict[str, Any]) -> int:
    def number(key: str) -> int:
        value = scheduler.get(key, scheduler.get(key.replace("_", "-"), 1))
        return value if isinstance(value, int) and value > 0 else 1

    return number("cpus_per_task") * number("ntasks")


def _failures(status: StatusReport, newest: set[int], *, tails: bool) -> list[Failure]:
    found = []
    for row in status.rows_where(TROUBLE):
        st = status.state_of(row)
        path = status.columns["path"][row]
        stderr = tail(status.root / path / SETTINGS.STDERR_FILE, TAIL_LINES) if tails else ""
        found.append(
            Failure(
                path=path,
                state=st.state.value,
                cause=st.detail or st.reason or _last_line(stderr) or st.state.value,
                exit_code=st.exit_code,
                stderr_tail=stderr,
                ended_at=st.ended_at,
                newest=row in newest,
            )
        )
    return sorted(found, key=lambda f: (-(f.ended_at or 0.0), f.path))


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _workflows(status: StatusReport) -> list[WorkflowView]:
    views = []
    for study in sorted({s for s in status.columns["study"] if s is not None}):
        folder = status.root / study
        if not has_workflow(folder):
            continue
        name = study_name(status.root, study)
        try:
            views.append(WorkflowView(name, workflow_progress(folder)))
        except AutojobError as exc:
            views.append(WorkflowView(name, error=str(exc).splitlines()[0]))
    return views
