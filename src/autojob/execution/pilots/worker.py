"""The worker a pilot runs: claim tasks of its pool, run them, record them.

``python -m autojob.execution.pilots.worker POOL_DIR`` (a pilot's job script
runs it; ``AUTOJOB_PILOT_ID`` names the pilot, else it is ``host-pid``).

The worker goes through the pool's tasks (each pilot from another place, so
pilots seldom contend for one task's lock) and claims each one exactly as
``submit`` does, under the task's lock: a task still idle (or in the states
the submit allowed), or one whose pilot is dead and whose run left nothing
(:mod:`.liveness`). It runs up to ``per_pilot`` task scripts at once, each in
its own session, with the task's own time limit, and records what a task run
alone records (the task script's start and end, with the pilot's id as the
job id and ``pilot`` as the executor) plus its accounting (elapsed, CPU times,
maximum resident set, from ``wait4``) in ``SETTINGS.SCHEDULER_STATS_FILE``.

It claims a task only if it can finish before the pilot's end (less a
margin): by the task's ``time``, else by the longest run of the finished
tasks of its task group, else of its study. A pilot that stops because the
rest does not fit submits its successor, within the pool's budget.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import resource
import select
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.execution.claims import claim_and_hold, new_claim
from autojob.execution.local import record_run_end
from autojob.execution.pilots.liveness import Liveness
from autojob.execution.pilots.pool import (
    HEARTBEAT,
    NAME,
    POOL_VARIABLE,
    Pool,
    deadline_margin,
    pilot_file_name,
)
from autojob.execution.processes import send_signal, stop_runs
from autojob.store.atomic import write_atomic
from autojob.store.journal import note_changed
from autojob.store.run_files import record, remove_record
from autojob.store.state import FINAL_STATES, State, read_record, read_state, this_host
from autojob.store.state import process_start_ticks as start_ticks_of
from autojob.store.task_lock import task_lock

__all__ = ["Worker", "main"]

logger = logging.getLogger(__name__)
#: seconds a task past its time limit has between SIGTERM and SIGKILL
GRACE = 10.0
#: seconds a worker waits, when a task died of SIGTERM or SIGKILL, for the signal
#: that tells the pilot itself is being stopped (then the task is not failed)
ENDING_PATIENCE = 1.0
#: exit codes of a task script (or of what it ran) stopped by SIGTERM or SIGKILL
STOPPED = frozenset({-signal.SIGTERM, -signal.SIGKILL, 128 + signal.SIGTERM, 128 + signal.SIGKILL})
#: seconds between two looks at tasks other pilots hold
RECHECK = 1.0
#: the descriptor on which a task script finds its task's lock, held for it
LOCK_FD = 9
Task = tuple[Path, str, float | None]
#: why a pilot ended when it submits its successor (if work and budget are left):
#: out of time for the rest, at its end, or stopped by its scheduler
REPLACED = frozenset({"time", "walltime", "terminated"})


@dataclass
class Running:
    """A task script the worker has launched."""

    path: Path
    pid: int
    pidfd: int
    started: float
    limit: float | None  # seconds
    reason: str | None = None  # why the worker stops it (timeout)
    kill_at: float | None = None


class Worker:
    """Runs the tasks of one pool in one pilot (module docstring)."""

    def __init__(self, pool: Pool, pilot_id: str, *, index: int = 0) -> None:
        settings = pool.settings
        self.pool = pool
        self.pilot_id = pilot_id
        self.index = index
        self.slots = settings.per_pilot
        self.allowed = frozenset(State(s) for s in settings.allowed)
        self.started = time.time()
        seconds = settings.pilot_seconds
        self.deadline = None if seconds is None else self.started + seconds
        self.margin = deadline_margin(seconds)
        self.token = new_claim()
        self.liveness = Liveness()
        self.running: dict[int, Running] = {}
        self.done = 0
        self.stopping: str | None = None
        self.took: dict[str, float] = {}  # longest run seen, by task group and by study
        self._bash = shutil.which("bash") or "/bin/bash"
        self._env = {
            **os.environ,
            "AUTOJOB_EXECUTOR": NAME,
            "AUTOJOB_JOB_ID": pilot_id,
            "AUTOJOB_CLAIM": self.token,
            POOL_VARIABLE: str(pool.dir),
        }
        self._poll = select.poll()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._beat_at = 0.0
        self._claimed: list[Path] = []  # claims not yet noted in the status journals
        self._reaped: collections.deque[tuple[Running, int, float]] = collections.deque()
        self._lost: list[Running] = []  # runs stopped with this pilot, settled by _stop_all

    # -- the loop --------------------------------------------------------------

    def run(self) -> str:
        """Run until no task is left that this pilot may run; return why it stopped."""
        self._poll.register(self._wake_r, select.POLLIN)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGTERM, self._terminated)
        signal.signal(signal.SIGINT, self._terminated)
        self._heartbeat(force=True)
        why = self._loop()
        self._settle()
        self._stop_all(why)
        self._heartbeat(force=True, ended=why)
        return why

    def _loop(self) -> str:
        tasks = self.pool.tasks()
        start = (self.index * len(tasks)) // max(1, self.pool.settings.pilots)
        todo: collections.deque[Task] = collections.deque(tasks[start:] + tasks[:start])
        held: list[Task] = []
        later: list[Task] = []
        looked = time.monotonic()
        while True:
            if self.stopping:
                return self.stopping
            if self.pool.cancelled:
                return "cancelled"
            if self.deadline is not None and time.time() >= self.deadline:
                return "walltime"  # as a scheduler would end it (local pilots have none)
            while len(self.running) < self.slots and todo and not self.stopping:
                task = todo.popleft()
                outcome = self._try(task)
                if outcome == "held":
                    held.append(task)
                elif outcome == "later":
                    later.append(task)
            self._settle()
            if self.stopping:
                return self.stopping  # whatever work is left, or none
            if not todo and held and time.monotonic() - looked >= RECHECK:
                todo.extend(held)  # tasks other pilots held: one may have died
                held.clear()
                looked = time.monotonic()
                continue
            if not self.running and not todo:
                if later:
                    return "time"  # what is left does not fit before this pilot's end
                if not held:
                    return "done"
            self._wait(RECHECK if held or later else HEARTBEAT)

    def _try(self, task: Task) -> str:
        """Claim and launch ``task``: "run", "done" (nothing to do), "held", "later"."""
        path, script, limit = task
        if self.deadline is not None:
            need = limit if limit is not None else self._estimate(path)
            if time.time() + (need or 0.0) + self.margin > self.deadline:
                state = read_state(path)
                return "done" if state.state in FINAL_STATES else "later"
        extra = {"job_id": self.pilot_id, "pool": str(self.pool.dir), "pilot": self.pilot_id}
        lock = claim_and_hold(
            path, self.allowed, NAME, extra=extra, claim=self.token, reclaim=self.liveness.lost
        )
        if lock is not None:
            try:
                self._launch(path, script, limit, lock)
            finally:
                os.close(lock)  # the script holds the lock now, until its start is recorded
            self._claimed.append(path)
            self._replace_dead()
            return "run"
        state = read_state(path)
        if state.state in FINAL_STATES:
            self._learn(path, state.run_seconds())
            return "done"
        return "held" if state.state in (State.QUEUED, State.RUNNING) else "done"

    def _replace_dead(self) -> None:
        """Replace the pilots found dead (one replacement per pilot, by whoever is first)."""
        from autojob.execution.pilots.launch import replace_pilot  # noqa: PLC0415

        while self.liveness.dead:
            replace_pilot(self.pool, self.liveness.dead.pop())

    # -- estimates -------------------------------------------------------------

    def _estimate(self, path: Path) -> float | None:
        """The longest run seen in the task's group, else in its study (None: none seen)."""
        group = self.took.get(str(path.parent))
        return group if group is not None else self.took.get(str(path.parent.parent))

    def _learn(self, path: Path, seconds: float | None) -> None:
        """Note how long a run of the task at ``path`` took (None: not known)."""
        if seconds is None:
            return
        for key in (str(path.parent), str(path.parent.parent)):
            self.took[key] = max(seconds, self.took.get(key, 0.0))

    # -- launching and ending --------------------------------------------------

    def _launch(self, path: Path, script: str, limit: float | None, lock: int) -> None:
        """Start the task's script in a session of its own, handing it the task's lock.

        The script finds the lock on descriptor :data:`LOCK_FD` (``AUTOJOB_CLAIM_LOCK``)
        and releases it once its start is recorded: no one can claim the task
        in between, and the script need not take the lock and check its claim again.
        """
        handed = os.dup(lock) if lock == LOCK_FD else lock  # dup2 onto itself keeps cloexec
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(path / SETTINGS.STDOUT_FILE), flags, 0o666),
            (os.POSIX_SPAWN_OPEN, 2, str(path / SETTINGS.STDERR_FILE), flags, 0o666),
            (os.POSIX_SPAWN_DUP2, handed, LOCK_FD),
        ]
        env = {
            **self._env,
            "AUTOJOB_TASK_DIR": os.path.abspath(path),
            "AUTOJOB_CLAIM_LOCK": str(LOCK_FD),
        }
        try:
            pid = os.posix_spawn(
                self._bash, ["bash", str(path / script)], env, file_actions=actions, setsid=True
            )
        finally:
            if handed != lock:
                os.close(handed)
        pidfd = os.pidfd_open(pid)
        self._poll.register(pidfd, select.POLLIN)
        self.running[pidfd] = Running(path, pid, pidfd, time.monotonic(), limit)

    def _wait(self, most: float) -> None:
        """Wait for a task to end (or ``most`` seconds, or a signal); handle what happened."""
        now = time.monotonic()
        due = [r.kill_at or (r.started + r.limit) for r in self.running.values() if r.limit]
        left = [] if self.deadline is None else [max(0.0, self.deadline - time.time())]
        timeout = min([most, *left, *(max(0.0, d - now) for d in due)])
        for fd, _ in self._poll.poll(timeout * 1000):
            if fd == self._wake_r:
                self._drain_wakeups()
            elif fd in self.running:
                self._reap(self.running.pop(fd))
        self._enforce_limits()
        self._check_cancels()
        if self._heartbeat():
            self._watch_pilots()

    def _reap(self, run: Running) -> None:
        """Note how an ended script ended; :meth:`_settle` collects it and records its end.

        The script is left a zombie until then: its pid, and so its process
        group's id, stays its run's while what is left of the run is stopped.
        """
        self._poll.unregister(run.pidfd)
        os.close(run.pidfd)
        elapsed = time.monotonic() - run.started
        self._reaped.append((run, _exit_code(run.pid), elapsed))

    def _settle(self) -> None:
        """Record the ends and accounting of the scripts reaped (once the slots are refilled).

        A task's own end record is there already when its script ended by
        itself; what is written here (accounting, an end the script could not
        record) need not delay the next task's start. A script killed with
        this pilot (scancel, qdel) is left to :meth:`_stop_all`.
        """
        while self._reaped:
            run, code, elapsed = self._reaped.popleft()
            if run.reason is None and code in STOPPED and self._ending():
                self._lost.append(run)  # stopped with this pilot
                continue
            _, _, usage = os.wait4(run.pid, 0)
            if code or run.reason is not None or not (run.path / SETTINGS.ENDED_FILE).exists():
                record_run_end(run.path, code, run.reason, grace=GRACE)  # else its own end stands
            self._account(run.path, code, elapsed, usage)
            self.done += 1
            self._learn(run.path, elapsed)

    def _ending(self) -> bool:
        """Whether this pilot is being stopped (waiting a moment for the signal).

        A scheduler signals every process of the job at once, and a task may
        die a moment before the worker is told.
        """
        deadline = time.monotonic() + ENDING_PATIENCE
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.05)  # a signal ends the sleep, and its handler runs
        return self.stopping is not None

    def _account(self, path: Path, code: int, elapsed: float, usage: Any) -> None:
        """The task's accounting, as a scheduler would give it for a job of its own."""
        stats = {
            "job_id": self.pilot_id,
            "pilot": self.pilot_id,
            "pilot_executor": self.pool.settings.executor,
            "exit_code": code if code >= 0 else 128 - code,
            "elapsed_seconds": round(elapsed, 6),
            "user_seconds": usage.ru_utime,
            "system_seconds": usage.ru_stime,
            "max_rss_kb": usage.ru_maxrss,
            "host": this_host(),
        }
        with task_lock(path):
            write_atomic(path / SETTINGS.SCHEDULER_STATS_FILE, json.dumps(stats) + "\n")
            ended = path / SETTINGS.ENDED_FILE
            try:
                data = json.loads(ended.read_bytes())
            except (OSError, ValueError):
                return
            data["accounted"] = True
            write_atomic(ended, json.dumps(data) + "\n")

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for run in self.running.values():
            if run.kill_at is not None and now >= run.kill_at:
                send_signal(-run.pid, signal.SIGKILL)
                run.kill_at = None
            elif run.reason is None and run.limit is not None and now >= run.started + run.limit:
                run.reason = "timeout"
                run.kill_at = now + GRACE
                send_signal(-run.pid, signal.SIGTERM)

    def _check_cancels(self) -> None:
        """Stop the tasks ``autojob cancel`` marked (it cannot reach this host's processes)."""
        for run in self.running.values():
            if run.kill_at is None and (run.path / SETTINGS.CANCEL_FILE).exists():
                run.kill_at = time.monotonic() + GRACE
                send_signal(-run.pid, signal.SIGTERM)

    def _stop_all(self, why: str) -> None:
        """On the pilot's end: stop what still runs (SIGTERM, SIGKILL after the grace).

        A task stopped so records no end: its run is lost with the pilot, and
        another pilot claims it again once this one has recorded its end. So
        is a run whose script died with the pilot (:meth:`_settle`).

        A run's end is judged only once nothing of the run is left: its script
        records its end with a process of its own (``mv``) which may outlive
        it, as when a scheduler signals the processes of a job one by one and
        the script dies after starting it. Every process group of each run is
        stopped and waited for first (:func:`.processes.stop_runs`); a failed
        end recorded meanwhile is then lost with the pilot like any other.
        """
        stopped = list(self.running.values())
        if stopped:
            logger.warning(
                "pilot %s ends (%s): stopping %d task(s)", self.pilot_id, why, len(stopped)
            )
        for run in stopped:
            self._poll.unregister(run.pidfd)
            os.close(run.pidfd)
        self.running.clear()
        cancelled = self.pool.cancelled  # stopped by a cancel: their end says so
        runs = [(run, cancelled) for run in stopped] + [(run, False) for run in self._lost]
        self._lost = []
        if not runs:
            return
        left = stop_runs(
            [(run.path, read_state(run.path)) for run, _ in runs],
            grace=GRACE,
            known={run.path: [-run.pid] for run, _ in runs},
        )
        for run, by_cancel in runs:
            stuck = run.path in left  # in the kernel: an end it records later stands
            if stuck:
                logger.warning(
                    "pilot %s: a process of %s outlived SIGKILL", self.pilot_id, run.path
                )
            os.wait4(run.pid, os.WNOHANG if stuck else 0)
            if by_cancel:
                record_cancelled(run.path)
            else:
                lost_with_pilot(run.path)

    # -- signals and the heartbeat -------------------------------------------

    def _terminated(self, signum: int, _frame: object) -> None:
        self.stopping = "terminated" if signum == signal.SIGTERM else "interrupted"

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _watch_pilots(self) -> None:
        """Replace the other pilots of the pool found dead (each once, by whoever is first).

        Their claims are taken over when their tasks are tried again; the
        replacement keeps the pool's pilots at their number meanwhile.
        """
        from autojob.execution.pilots.launch import replace_pilot, replaced  # noqa: PLC0415

        done = replaced(self.pool)
        others = [
            r
            for r in self.pool.pilots()
            if r.get("ended") is None
            and r.get("pilot") != self.pilot_id
            and pilot_file_name(str(r.get("pilot"))) not in done
        ]
        for pilot_id in self.liveness.dead_among(self.pool, others) if others else []:
            replace_pilot(self.pool, pilot_id)

    def _heartbeat(self, *, force: bool = False, ended: str | None = None) -> bool:
        """Rewrite this pilot's record, once per heartbeat (``force``: now); whether it did."""
        now = time.time()
        if not force and now - self._beat_at < HEARTBEAT:
            return False
        self._beat_at = now
        note_changed(self._claimed)
        self._claimed.clear()
        self.pool.write_pilot(
            self.pilot_id,
            {
                "pilot": self.pilot_id,
                "executor": self.pool.settings.executor,
                "index": self.index,
                "host": this_host(),
                "pid": os.getpid(),
                "start_ticks": start_ticks_of(os.getpid()),
                "started": self.started,
                "deadline": self.deadline,
                "heartbeat": now,
                "done": self.done,
                "running": len(self.running),
                "ended": now if ended else None,
                "why": ended,
                "cpu_seconds": _own_cpu(),
            },
        )
        return True


def _exit_code(pid: int) -> int:
    """How the ended child ``pid`` ended, as :mod:`subprocess` says it; it stays unreaped."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    if info is None:  # (only with WNOHANG)
        raise ChildProcessError(f"process {pid} has not ended")
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _own_cpu() -> float:
    """CPU seconds the worker itself has used (its tasks apart)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def lost_with_pilot(path: Path) -> None:
    """Forget the failed end a task's script recorded as its pilot was stopped.

    A scheduler stopping a pilot signals every process of its job: a task's
    command may die of it while its script lives on to record the failure.
    That run was lost with its pilot, not failed: without its end it is
    claimed again (its start and output go to its history then). An end
    with exit code 0 stands: the task had finished.
    """
    with task_lock(path):
        ended = read_record(path / SETTINGS.ENDED_FILE)
        if ended is not None and ended.get("exit_code") != 0:
            remove_record(path, "ENDED_FILE")


def record_cancelled(path: Path) -> None:
    """Record a cancelled end for a task stopped by a cancel, unless it recorded its own."""
    with task_lock(path):
        if not (path / SETTINGS.ENDED_FILE).exists():
            record(path, "ENDED_FILE", {"exit_code": None, "reason": "cancelled"})


def pilot_identity() -> tuple[str, int]:
    """The running pilot's id (``AUTOJOB_PILOT_ID``, else ``host-pid``) and index."""
    pilot_id = os.environ.get("AUTOJOB_PILOT_ID") or f"{this_host()}-{os.getpid()}"
    index = os.environ.get("AUTOJOB_PILOT_INDEX", "0")
    return pilot_id, int(index) if index.isdigit() else 0


def main(argv: list[str] | None = None) -> int:
    """Entry of a pilot: ``python -m autojob.execution.pilots.worker POOL_DIR``."""
    from autojob.execution.pilots.launch import replace_pilot, revive  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    pool = Pool(Path(args[0]))
    pilot_id, index = pilot_identity()
    worker = Worker(pool, pilot_id, index=index)
    why = worker.run()
    logger.info("pilot %s ends (%s) after %d task(s)", pilot_id, why, worker.done)
    if why in REPLACED:
        replace_pilot(pool, pilot_id)
    if why != "interrupted":
        revive(pool, liveness=worker.liveness, ending=pilot_id)  # the last one left
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sys.exit(main())
