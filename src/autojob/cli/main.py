"""Entry point of the ``autojob`` command.

Errors autojob raises (:mod:`autojob.errors`) are printed as one clear message
and exit with status 1 (2 for bad configuration); the traceback is shown only
with ``-v``. SIGTERM (what ``kill``, a scheduler's time limit and ``timeout``
send) takes the path Ctrl-C takes: the command stops where it is, removes its
temporary files and staging directories, and exits with status 143; a second
SIGTERM meanwhile ends it at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import traceback
from collections.abc import Iterator
from types import FrameType

import click

__all__ = ["Terminated", "main"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is so that it cleans up as after Ctrl-C."""


#: set once SIGTERM arrived: a library that wraps the Terminated raised inside
#: it (pydantic's serializers do) must not make it look like a bug
_SIGTERM_SEEN: list[bool] = []


def _terminate(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
    _SIGTERM_SEEN.append(True)
    raise Terminated


@contextlib.contextmanager
def _sigterm_cleans_up() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the command runs, then restore it."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, Terminated):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _verbose() -> bool:
    app = sys.modules.get("autojob.cli.app")
    return bool(app is not None and app.VERBOSITY[0])


def _report(exc: BaseException) -> None:
    if _verbose():
        traceback.print_exception(exc)
    click.secho(f"error: {exc}", fg="red", err=True)


def _run(args: list[str], command: str | None, prog_name: str) -> None:
    from autojob.cli.app import cli, start_logging  # noqa: PLC0415

    if command is None:
        cli.main(args=args, prog_name=prog_name, standalone_mode=False)
        return
    start_logging()
    cli.commands[command].main(args=args, prog_name=prog_name, standalone_mode=False)


def main(
    argv: list[str] | None = None, *, command: str | None = None, prog_name: str = "autojob"
) -> None:
    """Run the ``autojob`` command line.

    ``command``: run only this command of ``autojob``, under the name
    ``prog_name`` (``sketchjob`` is ``autojob sketch``).
    """
    from autojob.errors import AutojobError, ConfigError  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    try:
        with _sigterm_cleans_up():
            _run(args, command, prog_name)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        if _terminated(exc):
            click.echo("terminated", err=True)
            sys.exit(143)
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        _report(exc)
        sys.exit(2)
    except AutojobError as exc:
        _report(exc)
        sys.exit(1)
    except OSError as exc:
        _report(exc)
        sys.exit(1)
    except Exception as exc:  # a bug: say so plainly, keep the traceback for -v
        if _SIGTERM_SEEN:  # Terminated, wrapped into another exception on its way up
            click.echo("terminated", err=True)
            sys.exit(143)
        _report(exc)
        click.echo("this is a bug in autojob; rerun with -v for the traceback", err=True)
        sys.exit(3)
