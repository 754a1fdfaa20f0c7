"""Entry point of the ``autojob`` command.

Errors autojob raises (:mod:`autojob.errors`) are printed as one clear message
and exit with status 1 (2 for bad configuration); the traceback is shown only
with ``-v``.
"""

from __future__ import annotations

import sys
import traceback

import click

__all__ = ["main"]


def _verbose() -> bool:
    app = sys.modules.get("autojob.cli.app")
    return bool(app is not None and app.VERBOSITY[0])


def _report(exc: BaseException) -> None:
    if _verbose():
        traceback.print_exception(exc)
    click.secho(f"error: {exc}", fg="red", err=True)


def main(argv: list[str] | None = None) -> None:
    """Run the ``autojob`` command line."""
    from autojob.errors import AutojobError, ConfigError  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    try:
        from autojob.cli.app import cli  # noqa: PLC0415

        cli.main(args=args, prog_name="autojob", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
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
        _report(exc)
        click.echo("this is a bug in autojob; rerun with -v for the traceback", err=True)
        sys.exit(3)
