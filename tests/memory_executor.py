"""A test-only executor: a queue held in this process, no scheduler.

It plays a scheduler's part for the unit tests of submit, status, cancel,
resubmit and advance: ``submit`` claims the tasks and gives each a job id,
``run_pending`` runs the queued task scripts (for real, with bash), and
``reconcile`` and ``cancel`` answer from the queue, as a scheduler would. Every
call is logged in ``calls``, so a test can tell which executor was asked.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from autojob import SETTINGS
from autojob.execution.claims import claim_tasks, new_claim
from autojob.execution.executor import Executor, Plan, Preview, Submission
from autojob.execution.submit import Selected
from autojob.store.run_files import record
from autojob.store.state import State, TaskState, read_state
from autojob.store.task_lock import task_lock

NAME = "memory"


@dataclass
class Job:
    """One queued task."""

    job_id: str
    path: Path
    script: str
    claim: str
    state: str = "PENDING"  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED
    exit_code: int | None = None


class MemoryExecutor(Executor):
    """Jobs in a dict; run when the test says so."""

    name = NAME
    summary = "a queue in this process, for tests"
    asks_scheduler = True
    accounts = True
    _ids: ClassVar[itertools.count[int]] = itertools.count(7001)

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        #: run pending jobs each time the queue is asked, as time passing would
        self.autorun = False

    def plan(self, selected: Sequence[Selected], *, max_parallel: int | None, root: Path) -> Plan:
        """One job per task; the preview shows each command."""
        blocks = [
            (f"# job for {s.spec.path}", f"bash {shlex.quote(s.spec.script)}") for s in selected
        ]
        preview = Preview(blocks=blocks, summary=f"{len(selected)} task(s) would be queued")
        return Plan(NAME, list(selected), max_parallel, preview=preview)

    def submit(self, plan: Plan, *, allowed: frozenset[State]) -> Submission:
        """Claim each task with a job id of its own."""
        ids = {s.spec.path: f"{next(self._ids)}" for s in plan.selected}
        token = new_claim()
        extra = {path: {"job_id": job} for path, job in ids.items()}
        claimed = claim_tasks(list(ids), allowed, NAME, extra=extra, claim=token)
        scripts = {s.spec.path: s.spec.script for s in plan.selected}
        for path in claimed:
            self.jobs[ids[path]] = Job(ids[path], path, scripts[path], token)
        self.calls.append(("submit", tuple(ids[p] for p in claimed)))
        return Submission(
            len(claimed),
            f"queued {len(claimed)} task(s) in memory",
            tasks=claimed,
            job_ids=[ids[p] for p in claimed],
        )

    def run_pending(self) -> None:
        """Run every pending job's task script to its end, as the scheduler would."""
        for job in self.jobs.values():
            if job.state != "PENDING":
                continue
            job.state = "RUNNING"
            env = {
                **os.environ,
                "AUTOJOB_TASK_DIR": str(job.path),
                "AUTOJOB_EXECUTOR": NAME,
                "AUTOJOB_JOB_ID": job.job_id,
                "AUTOJOB_CLAIM": job.claim,
            }
            with (
                open(job.path / SETTINGS.STDOUT_FILE, "wb") as out,
                open(job.path / SETTINGS.STDERR_FILE, "wb") as err,
            ):
                done = subprocess.run(
                    ["bash", job.script], cwd=job.path, env=env, stdout=out, stderr=err, check=False
                )
            job.exit_code = done.returncode
            job.state = "COMPLETED" if done.returncode == 0 else "FAILED"

    def reconcile(self, tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
        """Ended jobs get their accounting written; jobs never heard of become unknown."""
        self.calls.append(("reconcile", tuple(s.job_id or "" for _, s in tasks)))
        if self.autorun:
            self.run_pending()
        changed = {}
        for path, state in tasks:
            job = self.jobs.get(state.job_id or "")
            if job is None:
                changed[path] = TaskState(State.UNKNOWN, job_id=state.job_id, detail="not queued")
                continue
            if job.state in ("PENDING", "RUNNING"):
                continue
            with task_lock(path):
                try:
                    ended = json.loads((path / SETTINGS.ENDED_FILE).read_bytes())
                except (OSError, ValueError):
                    ended = {"exit_code": job.exit_code}
                if job.state == "CANCELLED":
                    ended["reason"] = "cancelled"
                record(path, "ENDED_FILE", {**ended, "job_id": job.job_id, "accounted": True})
            changed[path] = read_state(path)
        return changed

    def cancel(self, tasks: Sequence[tuple[Path, TaskState]], *, grace: float) -> list[Path]:
        """Pending jobs never run; the queue forgets nothing."""
        ids = tuple(s.job_id or "" for _, s in tasks)
        self.calls.append(("cancel", ids))
        for job_id in ids:
            if job_id in self.jobs and self.jobs[job_id].state == "PENDING":
                self.jobs[job_id].state = "CANCELLED"
        return []
