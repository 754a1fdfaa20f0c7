"""Option types shared by commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["DirPath", "ExistingDir", "calc_set_assignments", "calc_set_option", "executor_option"]

#: a directory that must exist
ExistingDir = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
#: a directory that may not exist yet
DirPath = click.Path(file_okay=False, dir_okay=True, path_type=Path)

F = TypeVar("F", bound=Callable[..., Any])


class _ExecutorOption(click.Option):
    """``--executor``, whose help lists the executors installed (read when shown)."""

    def __init__(self, *args: Any, lead: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lead = lead

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """List the executors only when help is shown (no entry points read otherwise)."""
        from autojob.execution.executor import described_executors  # noqa: PLC0415

        names = described_executors()
        self.help = f"{self.lead}: {', '.join(names)}. Default: SETTINGS.DEFAULT_EXECUTOR."
        return super().get_help_record(ctx)


def executor_option(lead: str = "Where tasks run") -> Callable[[F], F]:
    """The ``--executor NAME`` option; ``lead`` starts its help text."""
    return click.option("--executor", default=None, metavar="NAME", cls=_ExecutorOption, lead=lead)


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
