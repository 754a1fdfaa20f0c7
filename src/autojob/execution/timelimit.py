"""Run a command under a time limit: the engine of ``autojob run``.

The command is stopped a little before the job's own limit, so that the job
script still has time to record its state, copy files back or queue a restart
before the scheduler kills it. The time kept in reserve (the *buffer*) is read
as in python-autojob 0.0.2: ``0 <= buffer < 1`` is a fraction of the limit,
``buffer >= 1`` a number of seconds.

The command runs in a new session (so in its own process group, and away from
the terminal's job control). The signals a scheduler or a user sends to this
process (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2) are passed on to that whole
group. At the deadline the group gets SIGTERM, then SIGKILL after a grace
period. Exit codes follow the shell and GNU ``timeout``: the command's own code,
128+N for a command killed by signal N, 124 for a timeout, 126 for a command
that cannot be executed and 127 for one that is not found.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from autojob.errors import InputError
from autojob.store.run_files import record, remove_record
from autojob.store.state import group_alive, process_start_ticks, this_host

__all__ = [
    "FORWARDED_SIGNALS",
    "NOT_EXECUTABLE",
    "NOT_FOUND",
    "TIMED_OUT",
    "run_seconds",
    "run_with_time_limit",
]

logger = logging.getLogger(__name__)

#: exit code when the command was stopped at its time limit (as GNU timeout)
TIMED_OUT = 124
#: exit code when the command exists but cannot be executed (as a shell)
NOT_EXECUTABLE = 126
#: exit code when the command is not found (as a shell)
NOT_FOUND = 127
#: the signals received by this process that are passed on to the command
FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
)

_BUFFER_HINT = (
    "give 0 <= buffer < 1 for a fraction of the time limit to keep in reserve, "
    "or buffer >= 1 for a number of seconds shorter than the limit"
)


def run_seconds(limit: datetime.timedelta | None, buffer: float) -> float | None:
    """Seconds the command may run: the limit less the buffer.

    Args:
        limit: The time limit; ``None`` for none.
        buffer: Time to keep in reserve: a fraction of ``limit`` if
            ``0 <= buffer < 1``, else a number of seconds.

    Returns:
        ``limit * (1 - buffer)`` or ``limit - buffer`` in seconds; ``None``
        without a limit.

    Raises:
        InputError: The buffer is negative or not a number, or it leaves no time.
    """
    if not math.isfinite(buffer) or buffer < 0:
        raise InputError(
            f"the buffer must be a number >= 0, not {buffer}", field="buffer", hint=_BUFFER_HINT
        )
    if limit is None:
        return None
    total = limit.total_seconds()
    seconds = total * (1 - buffer) if buffer < 1 else total - buffer
    if seconds <= 0:
        raise InputError(
            f"a buffer of {buffer:g} leaves no time to run in a limit of {total:g} s",
            field="buffer",
            hint=_BUFFER_HINT,
        )
    return seconds


def run_with_time_limit(
    command: Sequence[str],
    *,
    limit: datetime.timedelta | None,
    buffer: float,
    grace: float = 10.0,
) -> int:
    """Run ``command`` and stop it when its time, less the buffer, is up.

    Args:
        command: The program and its arguments (no shell is involved).
        limit: The time limit (e.g. the job's ``--time``); ``None`` for none.
        buffer: Time to keep in reserve before ``limit``: a fraction of it if
            ``0 <= buffer < 1``, else seconds. See :func:`run_seconds`.
        grace: Seconds between SIGTERM and SIGKILL at the deadline.

    Returns:
        The command's exit code (128+N if signal N killed it), 124 if it was
        stopped at the deadline, 126 if it cannot be executed, 127 if it is not
        found.

    Raises:
        InputError: The command is empty, the buffer or grace period is invalid,
            or the buffer leaves no time to run.
    """
    if isinstance(command, str):
        raise InputError(
            f"the command must be a list of arguments, not the string {command!r}",
            field="command",
            hint="split a command line with shlex.split()",
        )
    if not command:
        raise InputError("no command to run", field="command", hint="name a program to run")
    if not math.isfinite(grace) or grace < 0:
        raise InputError(
            f"the grace period must be a number of seconds >= 0, not {grace}",
            field="grace",
            hint="give the seconds to wait between SIGTERM and SIGKILL, e.g. 10",
        )
    seconds = run_seconds(limit, buffer)
    argv = [os.fspath(arg) for arg in command]
    with _Forwarder() as forwarder:
        try:
            child = subprocess.Popen(argv, start_new_session=True)
        except OSError as exc:
            return _launch_failed(argv[0], exc)
        forwarder.attach(child.pid)
        in_task = _note_command(child.pid)
        if seconds is None:
            logger.info("running %s without a time limit", shlex.join(argv))
        else:
            logger.info("running %s; stopping it after %.1f s", shlex.join(argv), seconds)
        try:
            return _wait(child, seconds, grace)
        except BaseException:
            _signal_group(child.pid, signal.SIGKILL)  # never leave it running behind us
            raise
        finally:
            forwarder.detach()
            if in_task and not group_alive(child.pid):
                remove_record(Path.cwd(), "COMMAND_FILE")


def _note_command(pid: int) -> bool:
    """In a task directory, record the session the command runs in; True if done.

    Cancel and the time limits of runners then stop the command's whole
    session too, and no command runs a task again while any of it is left
    (see :func:`autojob.store.state.command_alive`). Task scripts export
    ``AUTOJOB_TASK_ID`` and run in their task's directory.
    """
    if not os.environ.get("AUTOJOB_TASK_ID"):
        return False
    data = {"pgid": pid, "start_ticks": process_start_ticks(pid), "host": this_host()}
    try:
        record(Path.cwd(), "COMMAND_FILE", data)
    except OSError as exc:
        logger.warning("cannot record the command's session: %s", exc)
        return False
    return True


def _wait(child: subprocess.Popen[bytes], seconds: float | None, grace: float) -> int:
    """Wait for the child until the deadline, stop it there; return its exit code."""
    if seconds is None:
        code = child.wait()
    else:
        try:
            code = child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            _stop(child, seconds, grace)
            return TIMED_OUT
    return code if code >= 0 else 128 - code


def _stop(child: subprocess.Popen[bytes], seconds: float, grace: float) -> None:
    """SIGTERM the command's group, then SIGKILL it after ``grace`` seconds."""
    logger.warning("time limit reached after %.1f s: sending SIGTERM to the command", seconds)
    _signal_group(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        logger.warning("the command is still running after %g s: sending SIGKILL", grace)
        _signal_group(child.pid, signal.SIGKILL)
        child.wait()
    else:
        _signal_group(child.pid, signal.SIGKILL)  # whatever it started and left behind


def _launch_failed(program: str, exc: OSError) -> int:
    """Say why ``program`` did not start, as a shell would; return its exit code."""
    if isinstance(exc, FileNotFoundError):
        found = os.path.lexists(program) if os.sep in program else shutil.which(program)
        if found:  # then what is missing is the interpreter its #! line names
            logger.error("%s: cannot run it: the interpreter in its #! line is not found", program)
        else:
            logger.error("%s: command not found", program)
        return NOT_FOUND
    logger.error("%s: cannot run it: %s", program, exc.strerror or exc)
    return NOT_EXECUTABLE


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, signum)


class _Forwarder:
    """Pass the signals this process receives on to a child's process group.

    Handlers are installed before the child starts, so that a signal arriving
    while it starts is held and delivered once it runs rather than killing this
    process and orphaning the child. Python runs signal handlers in the main
    thread only; elsewhere nothing is installed and nothing is forwarded.
    """

    def __init__(self) -> None:
        self._pgid: int | None = None
        self._pending: list[int] = []
        self._done = False
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _Forwarder:
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED_SIGNALS:
                self._saved[signum] = signal.signal(signum, self._handle)
        else:
            logger.debug("not in the main thread: signals are not forwarded")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()
        for signum, handler in self._saved.items():
            if handler is not None:  # None: installed outside Python, cannot be restored
                signal.signal(signum, handler)
        self._saved.clear()

    def attach(self, pgid: int) -> None:
        """Forward to process group ``pgid`` from now on, and what arrived before."""
        self._pgid = pgid
        pending, self._pending = self._pending, []
        for signum in pending:
            _signal_group(pgid, signum)

    def detach(self) -> None:
        """Stop forwarding: the child has been reaped and its group id may be reused."""
        self._done = True

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._done:
            return
        if self._pgid is None:
            self._pending.append(signum)
        else:
            _signal_group(self._pgid, signum)
