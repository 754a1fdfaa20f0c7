"""Whether a pilot lives, and whether a task it claimed is lost.

Two signals, each used for what it can tell:

- the **heartbeat**: every worker rewrites its pilot record every
  :data:`~autojob.execution.pilots.pool.HEARTBEAT` seconds. A fresh heartbeat
  means alive, with no scheduler query (a worker checks other pilots' claims
  often, and asking the scheduler each time would flood it). A stale one
  proves nothing on its own: a slow shared file system delays it too.
- the **scheduler's view** decides death: a pilot is dead once its job is no
  longer pending or running (squeue, qstat), since only then has the
  scheduler stopped every process of its allocation, on every node. Pilots
  with no scheduler (``--executor local``) are decided by the kernel: the
  worker's pid and start ticks, on this host.

A task claimed by a dead pilot is lost only if nothing of its run is left
where this host can see it: a worker killed with SIGKILL leaves its running
task script behind (it then records its own end), and a scheduler's job that
ended may leave processes that escaped its tracking. So a run started on this
host is taken over only once its script's process, its process group (the
script's session: its command and what that started) and the command record
of ``autojob run`` are all gone; on another host, once the scheduler says the
pilot's job ended. No task runs twice at the same time, and a task that
finished is never run again.

:func:`live_pilots` tells which pilots of a pool run or may still start; a
pool with work left and none of them is revived (:func:`.launch.revive`).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import SchedulerError
from autojob.execution.pilots.pool import HEARTBEAT, LOCAL_SILENCE, Pool, local_pilot_alive
from autojob.store.state import (
    State,
    TaskState,
    command_alive,
    group_alive,
    process_alive,
    read_record,
    this_host,
)

__all__ = ["Liveness", "live_pilots", "scheduler_live"]

logger = logging.getLogger(__name__)


def scheduler_live(executor: str, pilot_ids: list[str]) -> set[str]:
    """Those of ``pilot_ids`` the scheduler ``executor`` still runs or keeps pending.

    Raises:
        SchedulerError: the scheduler did not answer.
    """
    if executor == "slurm":
        from autojob.execution.slurm.accounting import live_jobs  # noqa: PLC0415

        return live_jobs(pilot_ids)
    if executor == "sge":
        from autojob.execution.sge.accounting import live_jobs as sge_live  # noqa: PLC0415

        return sge_live(pilot_ids)
    return set(pilot_ids)  # an executor autojob cannot ask: never taken for dead


class Liveness:
    """Answers whether pilots live, asking each scheduler at most once per ``ttl``."""

    def __init__(self, ttl: float = HEARTBEAT) -> None:
        self.ttl = ttl
        self._pools: dict[str, Pool] = {}
        self._known: dict[tuple[str, str], tuple[bool, float]] = {}
        #: pilots whose claims :meth:`lost` found lost, not yet handled by the caller
        self.dead: set[str] = set()

    def pool(self, directory: str) -> Pool:
        """The pool at ``directory`` (its settings read once)."""
        if directory not in self._pools:
            self._pools[directory] = Pool(Path(directory))
        return self._pools[directory]

    def dead_among(self, pool: Pool, records: list[dict[str, Any]]) -> list[str]:
        """The pilots of ``records`` (not ended) known dead, asking the scheduler once.

        A pilot whose heartbeat missed a beat is asked about: a dead one is
        found within about two heartbeats, with one query for all of them.
        """
        now = time.time()
        executor = pool.settings.executor
        if executor == "local":
            return [str(r["pilot"]) for r in records if not local_pilot_alive(r, now)]
        stale = [
            str(r["pilot"])
            for r in records
            if not (isinstance(b := r.get("heartbeat"), int | float) and now - b < 1.5 * HEARTBEAT)
        ]
        try:
            live = scheduler_live(executor, stale)
        except SchedulerError as exc:
            logger.warning("cannot tell whether pilots live: %s", exc.message)
            return []
        for pilot_id in stale:
            self._known[(str(pool.dir), pilot_id)] = (pilot_id in live, now)
        return [p for p in stale if p not in live]

    def alive(self, pool: Pool, pilot_id: str) -> bool:
        """Whether pilot ``pilot_id`` of ``pool`` lives (module docstring)."""
        now = time.time()
        key = (str(pool.dir), pilot_id)
        cached = self._known.get(key)
        if cached is not None and now - cached[1] < self.ttl:
            return cached[0]
        answer = self._ask(pool, pilot_id, now)
        self._known[key] = (answer, now)
        return answer

    def _ask(self, pool: Pool, pilot_id: str, now: float) -> bool:
        record = pool.pilot(pilot_id)
        if record is not None and record.get("ended") is not None:
            return False
        executor = pool.settings.executor
        if executor == "local":
            return record is not None and local_pilot_alive(record, now)
        beat = (record or {}).get("heartbeat")
        if isinstance(beat, int | float) and now - beat < 2 * HEARTBEAT:
            return True
        try:
            return pilot_id in scheduler_live(executor, [pilot_id])
        except SchedulerError as exc:
            logger.warning("cannot tell whether pilot %s lives: %s", pilot_id, exc.message)
            return True  # unsure: never taken for dead

    def lost(self, path: Path, state: TaskState) -> bool:
        """Whether the live-looking run of the task at ``path`` is lost (module docstring)."""
        claim = read_record(path / SETTINGS.QUEUED_FILE) or {}
        where, pilot_id = claim.get("pool"), claim.get("pilot")
        if not isinstance(where, str) or not isinstance(pilot_id, str):
            return False  # not a pilot's claim
        pool = self.pool(where)
        if self.alive(pool, pilot_id):
            return False
        here = (pool.pilot(pilot_id) or {}).get("host") == this_host()
        if state.state is State.RUNNING and here and _run_left(path):
            return False
        self.dead.add(pilot_id)
        return True


def live_pilots(pool: Pool, liveness: Liveness) -> set[str]:
    """The pool's pilots that run, or were submitted and may still start.

    A pilot that has not written its record yet is pending while its
    scheduler lists its job (local: while its process lives here; from another
    host, for :data:`.pool.LOCAL_SILENCE` after its submit). An unsure answer counts as live.
    """
    records = {str(r.get("pilot")): r for r in pool.pilots()}
    unended = [r for r in records.values() if r.get("ended") is None]
    dead = set(liveness.dead_among(pool, unended)) if unended else set()
    live = {str(r.get("pilot")) for r in unended} - dead
    waiting = [i for i in pool.submitted_pilots() if i not in records]
    if not waiting:
        return live
    executor = pool.settings.executor
    if executor != "local":
        try:
            return live | scheduler_live(executor, waiting)
        except SchedulerError:
            return live | set(waiting)
    now = time.time()
    recent = {
        str(job)
        for submit in pool.submits()
        if now - float(submit.get("time", 0)) < LOCAL_SILENCE
        for job in submit.get("job_ids", [])
    }
    return live | {i for i in waiting if i in recent or _local_pid_alive(i)}


def _local_pid_alive(pilot_id: str) -> bool:
    """Whether the local pilot ``host-pid`` (no record yet) still runs here."""
    host, _, pid = pilot_id.rpartition("-")
    return host == this_host() and pid.isdigit() and process_alive(int(pid))


def _run_left(path: Path) -> bool:
    """Whether a process of the task's run, started on this host, still lives.

    The task script's own process, or any process of its process group (a
    pilot starts each script in a session of its own, so its command and what
    that started stay in the group), or the command ``autojob run`` recorded.
    The pilot's record tells the host (a task script records the scheduler's
    name of the node, which may differ from this host's own name); on another
    host the scheduler has stopped what its job left, once the job ended.
    """
    started = read_record(path / SETTINGS.STARTED_FILE) or {}
    pid, ticks = started.get("pid"), started.get("start_ticks")
    if isinstance(pid, int) and (
        process_alive(pid, start_ticks=ticks if isinstance(ticks, int) else None)
        or group_alive(pid)
    ):
        return True
    return command_alive(os.fspath(path)) is not None
