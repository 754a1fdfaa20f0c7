"""The ``autojob`` command group and its global options."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

from autojob.__about__ import __version__

__all__ = ["VERBOSITY", "add_verbosity_options", "cli", "start_logging"]

#: the -v count of the running command, read by the entry point to decide
#: whether an error is shown with its traceback
VERBOSITY: list[int] = [0]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: each command's name, and the module and attribute holding it: a command's
#: module, and what it imports, is loaded only when the command runs or its
#: help is shown, so a command (and --version) pays for its own imports alone
COMMANDS: dict[str, tuple[str, str]] = {
    "new": ("autojob.cli.new", "new"),
    "list": ("autojob.cli.list_cmd", "list_tasks"),
    "show": ("autojob.cli.show", "show"),
    "run": ("autojob.cli.run_cmd", "run"),
    "submit": ("autojob.cli.submit", "submit"),
    "render": ("autojob.cli.render", "render"),
    "status": ("autojob.cli.status", "status"),
    "cancel": ("autojob.cli.cancel", "cancel"),
    "resubmit": ("autojob.cli.resubmit", "resubmit"),
    "sketch": ("autojob.cli.sketch", "sketch"),
    "agent": ("autojob.cli.agent", "agent"),
    "sweep": ("autojob.cli.sweep", "sweep"),
    "restart": ("autojob.cli.restart", "restart"),
    "advance": ("autojob.cli.advance", "advance"),
    "workflow": ("autojob.cli.workflow", "workflow"),
    "harvest": ("autojob.cli.harvest", "harvest"),
    "completion": ("autojob.cli.completion", "completion"),
    "report": ("autojob.cli.report", "report"),
}


class _Commands(MutableMapping[str, click.Command]):
    """A group's commands by name, each imported from its module when first looked up."""

    def __init__(self, where: dict[str, tuple[str, str]]) -> None:
        self._where = dict(where)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, attribute = self._where[name]  # KeyError: no such command
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                msg = f"{module}.{attribute} is not a click command"
                raise TypeError(msg)
            add_verbosity_options(command)
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._loaded and name not in self._where:
            raise KeyError(name)
        self._loaded.pop(name, None)
        self._where.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._where
        yield from (name for name in self._loaded if name not in self._where)

    def __len__(self) -> int:
        return len(self._where.keys() | self._loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._where or name in self._loaded


class _LazyGroup(click.Group):
    """A click group whose commands are imported when first looked up (:data:`COMMANDS`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(COMMANDS)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Complete command names without importing the commands (then options as click does)."""
        from click.shell_completion import CompletionItem  # noqa: PLC0415

        names = [name for name in self.list_commands(ctx) if name.startswith(incomplete)]
        return [
            *(CompletionItem(name) for name in names),
            *click.Command.shell_complete(self, ctx, incomplete),
        ]


class _RichOnFirstRecord(logging.Handler):
    """Logs through rich's handler, made (and rich imported) at the first record.

    Most commands log nothing, and importing rich takes longer than starting
    Python: a command that logs nothing does not pay for it.
    """

    def __init__(self, show_path: bool) -> None:
        super().__init__()
        self.show_path = show_path
        self.rich: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.rich is None:
            from rich.console import Console  # noqa: PLC0415
            from rich.logging import RichHandler  # noqa: PLC0415

            self.rich = RichHandler(
                console=Console(stderr=True),
                show_time=False,
                show_path=self.show_path,
                markup=False,
            )
        self.rich.emit(record)


#: -v and -q counted so far, before the command name and after it
_COUNTS = {"verbose": 0, "quiet": 0}
VERBOSE_HELP = "More output: -v info and tracebacks of errors, -vv debug."
QUIET_HELP = "Less logging: -q logs errors only."


def _count_more(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """-v or -q given after a command's name: add to those given before it."""
    if value and param.name in _COUNTS:
        _COUNTS[param.name] += value
        start_logging(**_COUNTS)


def add_verbosity_options(command: click.Command) -> None:
    """Give ``command`` (and a group's subcommands) the options -v and -q.

    They may come after the command's name as well as before it
    (``autojob sweep x.toml -v``); both places add up.
    """
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            sub = command.get_command(click.Context(command), name)
            if sub is not None:
                add_verbosity_options(sub)
    if any(p.name == "verbose" for p in command.params):
        return
    command.params += [
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_count_more,
            help=VERBOSE_HELP,
        ),
        click.Option(
            ["-q", "--quiet"], count=True, expose_value=False, callback=_count_more, help=QUIET_HELP
        ),
    ]


def start_logging(verbose: int = 0, quiet: int = 0) -> None:
    """Set up logging (and the traceback of errors) for ``verbose`` -v and ``quiet`` -q."""
    _COUNTS.update(verbose=verbose, quiet=quiet)
    VERBOSITY[0] = verbose
    _configure_logging(verbose, quiet)


def _configure_logging(verbose: int, quiet: int) -> None:
    level = logging.WARNING - 10 * verbose + 10 * quiet
    level = max(logging.DEBUG, min(logging.CRITICAL, level))
    root = logging.getLogger("autojob")
    root.handlers[:] = [_RichOnFirstRecord(show_path=verbose > 1)]
    root.setLevel(level)
    root.propagate = False


@click.group(cls=_LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="autojob")
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.option("-q", "--quiet", count=True, help=QUIET_HELP)
def cli(verbose: int, quiet: int) -> None:
    """Create, run, harvest and advance jobs whose state lives in plain files.

    Every task is a directory with task.json (who it is), inputs.json (what it
    needs) and run.sh (what it runs, rendered from inputs.json). Start with
    'autojob new --help'. -v and -q may also follow the command's name.
    """
    start_logging(verbose, quiet)
