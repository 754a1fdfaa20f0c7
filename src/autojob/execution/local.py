"""The local executor: run task scripts on this machine's cores.

A runner claims its tasks (``autojob.queued`` naming it), then runs up to
``max_parallel`` task scripts at once, each in its own directory and process
group, with standard output and error captured beside it. The task script
records its own start and end; the runner records an end only where the script
could not (killed at its time limit, cancelled, killed by a signal). Claims and
launches happen under each task's lock, so two runners never run one task.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from autojob import SETTINGS
from autojob.execution.claims import claim_tasks, new_claim, runner_identity
from autojob.store.run_files import record, remove_record
from autojob.store.state import FINAL_STATES, State, TaskState, read_state
from autojob.store.task_lock import task_lock

__all__ = ["LocalRunner", "RunSpec", "default_parallelism", "main", "write_job_file"]

logger = logging.getLogger(__name__)
GRACE_SECONDS = 10.0


def default_parallelism() -> int:
    """The cores this process may use (``SETTINGS.MAX_PARALLEL`` if set)."""
    if SETTINGS.MAX_PARALLEL:
        return SETTINGS.MAX_PARALLEL
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class RunSpec:
    """One task to run: its directory, script and time limit (seconds)."""

    path: Path
    script: str
    time_limit: float | None = None


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
        claimed = set(claim_tasks(paths, allowed, "local", claim=self.claim_token))
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
        """Run every claimed task; return the final state of each."""
        results: dict[Path, TaskState] = {}
        with ThreadPoolExecutor(max_workers=self.max_parallel) as pool:
            for spec, state in zip(self.specs, pool.map(self._run_one, self.specs), strict=True):
                results[spec.path] = state
        return results

    def stop(self) -> None:
        """Launch nothing more; stop running tasks and release queued ones."""
        self._stopping.set()
        with self._lock:
            children = list(self._children.items())
        for path, child in children:
            record(path, "CANCEL_FILE", {"by": "runner stopped"})
            _signal_group(child.pid, signal.SIGTERM)

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
            "AUTOJOB_EXECUTOR": "local",
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
            code = self._terminate(child)
        with self._lock:
            self._children.pop(spec.path, None)
        with task_lock(spec.path):
            names = set(os.listdir(spec.path))
            if reason is None and SETTINGS.CANCEL_FILE in names:
                reason = "cancelled"
            if reason is None and SETTINGS.ENDED_FILE in names and code == 0:
                return TaskState(State.SUCCESS, exit_code=0)  # the script recorded it
            if reason is not None or SETTINGS.ENDED_FILE not in names:
                exit_code = code if code >= 0 else 128 - code
                record(spec.path, "ENDED_FILE", {"exit_code": exit_code, "reason": reason})
            return read_state(spec.path)

    def _terminate(self, child: subprocess.Popen[bytes]) -> int:
        _signal_group(child.pid, signal.SIGTERM)
        try:
            return child.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            _signal_group(child.pid, signal.SIGKILL)
            return child.wait()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# -- the background runner process ----------------------------------------


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
