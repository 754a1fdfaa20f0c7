"""Running a scheduler's commands: one place for timeouts, missing commands and errors."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autojob.errors import SchedulerError

__all__ = ["COMMAND_TIMEOUT", "SchedulerCommands", "run_scheduler_command"]

#: seconds a scheduler command may take to answer
COMMAND_TIMEOUT = 120.0


def run_scheduler_command(
    command: list[str],
    *,
    what: str,
    hint: str | None = None,
    cwd: Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
    missing_hint: str = "run autojob where the scheduler's commands are, or use --executor local",
    hint_for: Callable[[str], str | None] | None = None,
    unreachable_hint: str = "the scheduler may be down: try again",
) -> str:
    """Run a scheduler command and return its output.

    ``hint``: what to tell the user when it fails (else ``hint_for`` of its
    standard error); ``missing_hint`` when the command is not installed,
    ``unreachable_hint`` when it does not answer in ``timeout`` seconds.

    Raises:
        SchedulerError: it is missing, failed, or timed out; the error keeps
            the command, its output and exit status.
    """
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise SchedulerError(
            f"{what}: {command[0]} is not installed here",
            command=command,
            returncode=None,
            hint=hint or missing_hint,
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise SchedulerError(
            f"{what}: no answer in {timeout:g} s",
            command=command,
            returncode=None,
            hint=unreachable_hint,
            timed_out=True,
        ) from exc
    if done.returncode != 0:
        raise SchedulerError(
            what,
            command=command,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            hint=hint or (hint_for(done.stderr) if hint_for else None),
        )
    return done.stdout


@dataclass(frozen=True)
class SchedulerCommands:
    """How one scheduler's commands are run: what to tell the user when they fail."""

    #: when the command is not installed here
    missing_hint: str
    #: when it does not answer in time
    unreachable_hint: str
    #: a hint from the standard error of a failed command, or None
    hint_for: Callable[[str], str | None]

    def run(
        self,
        command: list[str],
        *,
        what: str,
        hint: str | None = None,
        cwd: Path | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> str:
        """Run one of the scheduler's commands and return its output.

        Raises:
            SchedulerError: it is missing, failed, or timed out.
        """
        return run_scheduler_command(
            command,
            what=what,
            hint=hint,
            cwd=cwd,
            timeout=timeout,
            missing_hint=self.missing_hint,
            hint_for=self.hint_for,
            unreachable_hint=self.unreachable_hint,
        )
