"""``autojob run``: run a command under the job's time limit, less a buffer."""

from __future__ import annotations

import datetime
import logging
import shlex
from pathlib import Path

import click

from autojob.errors import InputError

__all__ = ["run"]

logger = logging.getLogger(__name__)


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "--time-limit",
    metavar="TIME",
    default=None,
    help="The time limit in any form sbatch --time takes, e.g. 90 (minutes), "
    "1:30:00, 2-12:00:00 or UNLIMITED.",
)
@click.option(
    "-t",
    "--time-source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="SCRIPT",
    help="Read the time limit from this job script's '#SBATCH --time' line. "
    "Default: the task script (run.sh) if it is in the current directory; "
    "without either, there is no limit.",
)
@click.option(
    "-b",
    "--buffer",
    type=float,
    default=0.05,
    show_default=True,
    metavar="B",
    help="Time to keep in reserve before the limit: 0 <= B < 1 is a fraction of the "
    "limit, B >= 1 a number of seconds.",
)
@click.option(
    "--grace",
    type=float,
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between SIGTERM and SIGKILL when the time is up.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(
    ctx: click.Context,
    time_limit: str | None,
    time_source: Path | None,
    buffer: float,
    grace: float,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND and stop it before the job's time limit runs out.

    COMMAND gets the limit less the buffer; then it is sent SIGTERM, and SIGKILL
    after the grace period, so that the rest of the job script can still save
    its state. SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 sent to autojob are
    passed on to COMMAND and everything it started.

    The exit status is COMMAND's own (128+N if signal N killed it), 124 if it
    was stopped at the limit, 126 if it cannot be run, 127 if it is not found.
    Put the options for autojob first; everything from COMMAND on is COMMAND's.
    A single quoted COMMAND with spaces is split like a shell would.

    \b
    Example job script (run.sh):
      #!/bin/bash
      #SBATCH --time=00:10:00

    \b
    Examples:
      autojob run --time-limit 1:00:00 --buffer 300 'python3 -c "print(42)"'
      autojob run -t run.sh -- sleep 1
    """
    from autojob.execution.timelimit import run_with_time_limit  # noqa: PLC0415

    if time_limit is not None and time_source is not None:
        raise click.UsageError("give either --time-limit or --time-source, not both", ctx)
    if command[0].startswith("-"):
        raise click.UsageError(f"No such option: {command[0]}", ctx)
    limit = _limit(time_limit, time_source)
    code = run_with_time_limit(_argv(command), limit=limit, buffer=buffer, grace=grace)
    raise SystemExit(code)


def _limit(time_limit: str | None, time_source: Path | None) -> datetime.timedelta | None:
    """The limit from --time-limit, --time-source or the default task script."""
    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.timefmt import parse_slurm_time, time_from_script  # noqa: PLC0415

    if time_limit is not None:
        return parse_slurm_time(time_limit, field="--time-limit")
    if time_source is not None:
        limit = time_from_script(time_source)
        if limit is None:
            logger.warning("%s sets no time limit: running without one", time_source)
        return limit
    default = Path(SETTINGS.DEFAULT_TASK_SCRIPT_FILE)
    if default.is_file():
        limit = time_from_script(default)
        logger.info("time limit from %s: %s", default, limit or "none")
        return limit
    logger.info("no --time-limit, --time-source or %s: running without a time limit", default)
    return None


def _argv(command: tuple[str, ...]) -> list[str]:
    """COMMAND as arguments; a single argument holding spaces is split like a shell."""
    if len(command) != 1 or not any(char.isspace() for char in command[0]):
        return list(command)
    try:
        argv = shlex.split(command[0])
    except ValueError as exc:
        raise InputError(
            f"cannot split the command {command[0]!r}: {exc}",
            field="COMMAND",
            hint="close the quotes, or give the program and its arguments separately",
        ) from exc
    if not argv:
        raise InputError("the command is empty", field="COMMAND", hint="name a program to run")
    return argv
