"""Option types shared by commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = [
    "DirPath",
    "ExistingDir",
    "calc_set_assignments",
    "calc_set_option",
    "complete_executors",
    "executor_option",
]

#: a directory that must exist
ExistingDir = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
#: a directory that may not exist yet
DirPath = click.Path(file_okay=False, dir_okay=True, path_type=Path)

F = TypeVar("F", bound=Callable[..., Any])

#: the entry-point group of executors (``autojob.execution.executor.EXECUTOR_GROUP``),
#: named here so that completing --executor imports no executor module
EXECUTOR_ENTRY_POINTS = "autojob.executor"


class _ExecutorOption(click.Option):
    """``--executor``, whose help lists the executors installed (read when shown)."""

    def __init__(self, *args: Any, lead: str, default_text: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lead = lead
        self.default_text = default_text

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """List the executors only when help is shown (no entry points read otherwise)."""
        from autojob.execution.executor import described_executors  # noqa: PLC0415

        names = described_executors()
        self.help = f"{self.lead}: {', '.join(names)}. Default: {self.default_text}."
        return super().get_help_record(ctx)


def complete_executors(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The names of the executors installed (for shell completion: no executor is imported)."""
    from importlib.metadata import entry_points  # noqa: PLC0415

    from click.shell_completion import CompletionItem  # noqa: PLC0415

    names = sorted({ep.name for ep in entry_points(group=EXECUTOR_ENTRY_POINTS)})
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def executor_option(
    lead: str = "Where tasks run", default: str = "SETTINGS.DEFAULT_EXECUTOR"
) -> Callable[[F], F]:
    """The ``--executor NAME`` option; ``lead`` starts its help text, ``default`` ends it."""
    return click.option(
        "--executor",
        default=None,
        metavar="NAME",
        cls=_ExecutorOption,
        lead=lead,
        shell_complete=complete_executors,
        default_text=default,
    )


def calc_set_option(what: str) -> Callable[[F], F]:
    """The ``--calc-set KEY=VALUE`` option (python-autojob's ``--calc-mod``)."""
    return click.option(
        "--calc-set",
        "calc_set",
        multiple=True,
        metavar="KEY=VALUE",
        help=f"Change a calculator parameter of {what} (a calculation): the same as "
        "--set calculation_inputs.calc_params.KEY=VALUE. Repeatable.",
    )


def calc_set_assignments(items: tuple[str, ...]) -> list[str]:
    """``--calc-set`` items as ``--set`` assignments into ``calc_params``."""
    return [f"calculation_inputs.calc_params.{item.strip()}" for item in items]
