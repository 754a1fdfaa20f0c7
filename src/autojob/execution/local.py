"""The local executor: run task scripts on this machine's cores.

A runner claims its tasks (``autojob.queued`` naming it), then runs up to
``max_parallel`` task scripts at once, each in its own directory and process
group, with standard output and error captured beside it. The task script
records its own start and end; the runner records an end only where the script
could not (killed at its time limit, cancelled, killed by a signal). Claims and
launches happen under each task's lock, so two runners never run one task.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from autojob import SETTINGS
from autojob.errors import AutojobError, InputError
from autojob.execution.claims import claim_tasks, new_claim, runner_identity
from autojob.execution.executor import EndListener, Executor, Plan, Preview, Submission
from autojob.execution.processes import send_signal, stop_runs
from autojob.execution.submit import RunSpec
from autojob.store.run_files import record, remove_record
from autojob.store.state import FINAL_STATES, State, TaskState, read_state
from autojob.store.task_lock import task_lock

if TYPE_CHECKING:
    from autojob.execution.submit import Selected

__all__ = [
    "LocalExecutor",
    "LocalRunner",
    "RunSpec",
    "default_parallelism",
    "main",
    "record_run_end",
    "runner_log_dir",
    "start_background",
    "write_job_file",
]

logger = logging.getLogger(__name__)
GRACE_SECONDS = 10.0
#: the name of this executor, recorded with every task it runs
NAME = "local"


def default_parallelism() -> int:
    """The cores this process may use (``SETTINGS.MAX_PARALLEL`` if set)."""
    if SETTINGS.MAX_PARALLEL:
        return SETTINGS.MAX_PARALLEL
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


Listener = Callable[[Path, TaskState], None]


class LocalRunner:
    """Runs claimed tasks; ``on_end`` is called as each one ends."""

    def __init__(
        self,
        specs: Sequence[RunSpec],
        *,
        max_parallel: int | None = None,
        on_end: Listener | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        self.specs = list(specs)
        self.max_parallel = max_parallel or default_parallelism()
        self.on_end = on_end
        self.grace = grace
        self.identity = runner_identity()
        self.claim_token = new_claim()
        self._stopping = threading.Event()
        self._children: dict[Path, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    # -- claiming ----------------------------------------------------------

    def claim(self, allowed: frozenset[State]) -> list[RunSpec]:
        """Mark each task whose state is still in ``allowed`` as queued by us."""
        paths = (s.path for s in self.specs)
        claimed = set(claim_tasks(paths, allowed, NAME, claim=self.claim_token))
        self.specs = [s for s in self.specs if s.path in claimed]
        return self.specs

    def _still_ours(self, spec: RunSpec) -> bool:
        path = spec.path / SETTINGS.QUEUED_FILE
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return False
        names = set(os.listdir(spec.path))
        if {SETTINGS.STARTED_FILE, SETTINGS.ENDED_FILE} & names:
            return False
        return bool(data.get("runner") == self.identity)

    # -- running -----------------------------------------------------------

    def run(self) -> dict[Path, TaskState]:
        """Run every claimed task; return the final state of each.

        An exception in this thread (Ctrl-C: KeyboardInterrupt) stops the
        runner first (:meth:`stop`), so it returns within the grace period
        rather than when the running tasks end by themselves.
        """
        results: dict[Path, TaskState] = {}
        pool = ThreadPoolExecutor(max_workers=self.max_parallel)
        try:
            futures = [pool.submit(self._run_one, spec) for spec in self.specs]
            for spec, future in zip(self.specs, futures, strict=True):
                results[spec.path] = future.result()
        except BaseException:
            self.stop()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results

    def stop(self) -> None:
        """Launch nothing more; stop running tasks (cancelled) and release queued ones.

        Every process of each running task gets SIGTERM, then SIGKILL after the
        grace period; returns once nothing of them is left. An interrupt
        meanwhile (a second Ctrl-C) sends SIGKILL at once, then is raised.
        """
        self._stopping.set()
        with self._lock:
            children = list(self._children.items())
        for path, _ in children:
            record(path, "CANCEL_FILE", {"by": "runner stopped"})
        known = {path: [-child.pid] for path, child in children}
        try:
            stop_runs([(p, read_state(p)) for p, _ in children], grace=self.grace, known=known)
        except KeyboardInterrupt:  # asked again: no more grace
            stop_runs([(p, read_state(p)) for p, _ in children], grace=0.0, known=known)
            raise

    def _run_one(self, spec: RunSpec) -> TaskState:
        child = self._launch(spec)
        state = read_state(spec.path) if child is None else self._wait(spec, child)
        if self.on_end is not None:
            self.on_end(spec.path, state)
        return state

    def _launch(self, spec: RunSpec) -> subprocess.Popen[bytes] | None:
        with task_lock(spec.path):
            if not self._still_ours(spec):
                return None
            if self._stopping.is_set():
                remove_record(spec.path, "QUEUED_FILE")
                return None
            if (spec.path / SETTINGS.CANCEL_FILE).exists():
                record(spec.path, "ENDED_FILE", {"exit_code": None, "reason": "cancelled"})
                return None
            child = self._popen(spec)
        with self._lock:
            self._children[spec.path] = child
        return child

    def _popen(self, spec: RunSpec) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "AUTOJOB_TASK_DIR": os.path.abspath(spec.path),
            "AUTOJOB_EXECUTOR": NAME,
            "AUTOJOB_CLAIM": self.claim_token,
        }
        with (
            open(spec.path / SETTINGS.STDOUT_FILE, "wb") as out,
            open(spec.path / SETTINGS.STDERR_FILE, "wb") as err,
        ):
            return subprocess.Popen(
                ["bash", spec.script],
                cwd=spec.path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )

    def _wait(self, spec: RunSpec, child: subprocess.Popen[bytes]) -> TaskState:
        reason = None
        try:
            code = child.wait(timeout=spec.time_limit)
        except subprocess.TimeoutExpired:
            reason = "timeout"
            code = self._terminate(spec, child)
        with self._lock:
            self._children.pop(spec.path, None)
        return record_run_end(spec.path, code, reason, grace=self.grace)

    def _terminate(self, spec: RunSpec, child: subprocess.Popen[bytes]) -> int:
        """Stop a task past its time limit: its script's group and its command's session."""
        send_signal(-child.pid, signal.SIGTERM)
        try:
            code = child.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            send_signal(-child.pid, signal.SIGKILL)
            code = child.wait()
        stop_runs([(spec.path, read_state(spec.path))], grace=self.grace)  # what is left
        return code


def record_run_end(path: Path, code: int, reason: str | None, *, grace: float) -> TaskState:
    """Record the end of a task script that exited with ``code``; return the task's state.

    ``code`` as :mod:`subprocess` gives it (negative: killed by that signal);
    ``reason``: why the launcher stopped it (``timeout``), None if it ended by
    itself. A script that recorded its own end keeps it (a cancel that came
    after it ended changes nothing); a script that died first has what it
    started stopped too, so the end recorded is the end of everything of the run.
    """
    if reason is None and not (path / SETTINGS.ENDED_FILE).exists():
        stop_runs([(path, read_state(path))], grace=grace)
    with task_lock(path):
        names = set(os.listdir(path))
        if reason is None and SETTINGS.CANCEL_FILE in names and SETTINGS.ENDED_FILE not in names:
            reason = "cancelled"  # (a script that recorded its own end ended by itself)
        if reason is None and SETTINGS.ENDED_FILE in names and code == 0:
            return TaskState(State.SUCCESS, exit_code=0)  # the script recorded it
        if reason is not None or SETTINGS.ENDED_FILE not in names:
            exit_code = code if code >= 0 else 128 - code
            record(path, "ENDED_FILE", {"exit_code": exit_code, "reason": reason})
        return read_state(path)


def _shown_limit(selected: Selected) -> str:
    """The task's time limit as its inputs give it, and the margin added, said plainly."""
    from autojob.timefmt import format_slurm_time, parse_slurm_time  # noqa: PLC0415

    limit = selected.spec.time_limit
    if limit is None:
        return ""
    given = (selected.scheduler or {}).get("time")
    asked = parse_slurm_time(str(given)) if given not in (None, "") else None
    if asked is None:
        return format_slurm_time(datetime.timedelta(seconds=limit))
    shown = str(given)
    if format_slurm_time(asked) != shown:  # 90 is minutes: say so
        shown += f" ({format_slurm_time(asked)})"
    extra = limit - asked.total_seconds()
    if extra > 0:
        shown += f", +{extra:g} s for the task to start its automatic restart"
    return shown


def _refuse_dependencies(selected: Sequence[Selected]) -> None:
    """Refuse tasks that wait for a scheduler's job: a runner has no job ids to wait for.

    Run here, such a task would start at once, before the job it waits for
    has ended; it is refused rather than its dependency dropped.
    """
    for s in selected:
        value = (s.scheduler or {}).get("dependency")
        if value:
            raise InputError(
                f"scheduler_inputs.dependency {value!r}: the {NAME} executor cannot wait for "
                "a scheduler's job, and would start this task at once",
                path=s.spec.path / SETTINGS.INPUTS_FILE,
                field="scheduler_inputs.dependency",
                hint="submit it with the scheduler that runs the job it waits for "
                "(--executor slurm or sge), or remove the dependency to run it here",
            )


class LocalExecutor(Executor):
    """Runs tasks on this machine's cores: a runner process outside the terminal.

    ``submit`` starts a detached runner (:func:`start_background`) that claims
    the tasks and runs up to ``max_parallel`` at once; ``run_here`` runs them in
    this process instead (``submit --wait``). The task files are the whole
    truth, so there is no scheduler to ask.
    """

    name = NAME
    summary = "this machine's cores"
    asks_scheduler = False

    def __init__(self) -> None:
        self._runner: LocalRunner | None = None

    def plan(self, selected: Sequence[Selected], *, max_parallel: int | None, root: Path) -> Plan:
        """One runner for every task, ``max_parallel`` (default: the cores) at once.

        Raises:
            InputError: a task waits for a scheduler's job
                (``scheduler_inputs.dependency``), which a runner cannot do.
        """
        _refuse_dependencies(selected)
        parallel = max_parallel or default_parallelism()
        rows: list[tuple[str, ...]] = [
            (
                str(s.spec.path),
                s.state.state.value,
                _shown_limit(s),
                s.command or "",
            )
            for s in selected
        ]
        preview = Preview(
            title=f"{len(selected)} task(s) would run with the {NAME} executor, {parallel} at once",
            columns=("task directory", "state", "time limit", "command"),
            rows=rows,
        )
        return Plan(NAME, list(selected), parallel, preview=preview)

    def submit(self, plan: Plan, *, allowed: frozenset[State]) -> Submission:
        """Start a background runner that claims and runs the plan's tasks."""
        specs = [s.spec for s in plan.selected]
        pid, claimed, log = start_background(specs, max_parallel=plan.max_parallel, allowed=allowed)
        return Submission(
            count=claimed,
            message=f"submitted {claimed} task(s) to a local runner "
            f"(pid {pid}, {plan.max_parallel} at once)",
            details=[f"runner log: {log}"],
        )

    def run_here(
        self, plan: Plan, *, allowed: frozenset[State], on_claimed: Callable[[int], None],
        on_end: EndListener,
    ) -> dict[Path, TaskState]:  # fmt: skip
        """Claim and run the plan's tasks in this process."""
        runner = LocalRunner(
            [s.spec for s in plan.selected], max_parallel=plan.max_parallel, on_end=on_end
        )
        self._runner = runner
        on_claimed(len(runner.claim(allowed)))
        try:
            return runner.run()  # stopped by Ctrl-C, and SIGTERM in the command line
        finally:
            self._runner = None

    def stop_here(self) -> None:
        """Stop the runner of :meth:`run_here`."""
        if self._runner is not None:
            self._runner.stop()

    def cancel(self, tasks: Sequence[tuple[Path, TaskState]], *, grace: float) -> list[Path]:
        """Stop every process of each running task here (queued ones never launch).

        The task script's group and the command's own session get SIGTERM, then
        SIGKILL after ``grace``; returns the tasks of which something is left.
        """
        return stop_runs([(p, s) for p, s in tasks if s.state is State.RUNNING], grace=grace)


# -- the background runner process ----------------------------------------


def runner_log_dir() -> Path:
    """Where background runners write their logs."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base, "autojob", "runners")
    path.mkdir(parents=True, exist_ok=True)
    return path


def start_background(
    specs: Sequence[RunSpec], *, max_parallel: int | None, allowed: frozenset[State]
) -> tuple[int, int, Path]:
    """Start a detached runner for ``specs``; return its pid, tasks claimed, log.

    The runner survives the terminal closing (own session, no terminal I/O).
    """
    logs = runner_log_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fd, job_name = tempfile.mkstemp(prefix=f"job-{stamp}-", suffix=".json", dir=logs)
    os.close(fd)
    write_job_file(Path(job_name), specs, max_parallel or default_parallelism(), allowed)
    log_path = Path(job_name).with_suffix(".log")
    read_end, write_end = os.pipe()
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", __name__, job_name, str(write_end)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        answer = ready.read().strip()
    if not answer.isdigit():
        raise AutojobError(
            f"the background runner (pid {child.pid}) failed to start",
            path=log_path,
            hint="read its log for the reason",
        )
    return child.pid, int(answer), log_path


def write_job_file(
    path: Path, specs: Sequence[RunSpec], max_parallel: int, allowed: frozenset[State]
) -> None:
    """Write what a background runner must run."""
    data = {
        "max_parallel": max_parallel,
        "allowed": sorted(allowed),
        "tasks": [{**asdict(s), "path": str(s.path)} for s in specs],
    }
    path.write_text(json.dumps(data), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Entry of the background runner: ``python -m autojob.execution.local JOB FD``.

    Claims the tasks, reports how many on file descriptor FD (then closes it,
    so the submitting command can return), and runs them.
    """
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    allowed = frozenset(State(s) for s in job["allowed"])
    specs = [RunSpec(Path(t["path"]), t["script"], t["time_limit"]) for t in job["tasks"]]
    runner = LocalRunner(specs, max_parallel=job["max_parallel"])
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    claimed = runner.claim(allowed)
    with os.fdopen(int(args[1]), "w") as ready:
        ready.write(f"{len(claimed)}\n")
    Path(args[0]).unlink(missing_ok=True)
    results = runner.run()
    failed = sum(1 for s in results.values() if s.state in FINAL_STATES - {State.SUCCESS})
    logger.info("runner %s done: %d tasks, %d not successful", os.getpid(), len(results), failed)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sys.exit(main())
