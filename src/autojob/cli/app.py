"""The ``autojob`` command group and its global options."""

from __future__ import annotations

import logging

import click
from rich.console import Console
from rich.logging import RichHandler

from autojob.__about__ import __version__
from autojob.cli.advance import advance
from autojob.cli.agent import agent
from autojob.cli.cancel import cancel
from autojob.cli.harvest import harvest
from autojob.cli.list_cmd import list_tasks
from autojob.cli.new import new
from autojob.cli.restart import restart
from autojob.cli.resubmit import resubmit
from autojob.cli.run_cmd import run
from autojob.cli.sketch import sketch
from autojob.cli.status import status
from autojob.cli.submit import submit
from autojob.cli.sweep import sweep
from autojob.cli.workflow import workflow

__all__ = ["VERBOSITY", "cli"]

#: the -v count of the running command, read by the entry point to decide
#: whether an error is shown with its traceback
VERBOSITY: list[int] = [0]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _configure_logging(verbose: int, quiet: int) -> None:
    level = logging.WARNING - 10 * verbose + 10 * quiet
    level = max(logging.DEBUG, min(logging.CRITICAL, level))
    handler = RichHandler(
        console=Console(stderr=True), show_time=False, show_path=verbose > 1, markup=False
    )
    root = logging.getLogger("autojob")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="autojob")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More output: -v info and tracebacks of errors, -vv debug.",
)
@click.option("-q", "--quiet", count=True, help="Less logging: -q logs errors only.")
def cli(verbose: int, quiet: int) -> None:
    """Create, run, harvest and advance jobs whose state lives in plain files.

    Every task is a directory with task.json (who it is), inputs.json (what it
    needs) and run.sh (what it runs). Start with 'autojob new --help'.
    """
    VERBOSITY[0] = verbose
    _configure_logging(verbose, quiet)


cli.add_command(new)
cli.add_command(list_tasks)
cli.add_command(run)
cli.add_command(submit)
cli.add_command(status)
cli.add_command(cancel)
cli.add_command(resubmit)
cli.add_command(sketch)
cli.add_command(agent)
cli.add_command(sweep)
cli.add_command(restart)
cli.add_command(advance)
cli.add_command(workflow)
cli.add_command(harvest)
