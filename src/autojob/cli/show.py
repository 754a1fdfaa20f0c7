"""``autojob show``: everything known about one task."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import RenderableType

    from autojob.harvest.show import TaskView
    from autojob.store.state import TaskState

__all__ = ["show"]


@click.command("show")
@click.argument("task")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for scripts).")
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Last lines of the task's output and error output to show.",
)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path(),
    help="Where to look for a task given by its id [default: the current directory].",
)
def show(task: str, as_json: bool, lines: int, root: Path) -> None:
    """Show everything known about one TASK: a task directory, or a task id.

    Its metadata and inputs; its state with when it was queued, started and
    ended, where it ran and for how long; the earlier runs kept in
    autojob.history/; every attempt of its task group with its state; the
    scheduler's accounting; its outputs and problems; and the last lines of
    autojob.out and autojob.err. --json prints the task's harvest record
    (as in an archive) with "directory", "output" (the last lines),
    "state.run_seconds" and "attempts.states" added.
    """
    from autojob.harvest.show import find_task, show_task  # noqa: PLC0415

    view = show_task(find_task(task, root), lines=lines)
    if as_json:
        click.echo(json.dumps(view.as_dict(), indent=2, ensure_ascii=False))
        return
    from rich.console import Console  # noqa: PLC0415

    console = Console()
    for part in _parts(view):
        console.print(part)


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _state_line(state: TaskState) -> str:
    from autojob.cli.list_cmd import duration  # noqa: PLC0415

    words = [state.state.value]
    if state.exit_code is not None:
        words.append(f"exit {state.exit_code}")
    if state.reason and state.reason != state.state.value:
        words.append(state.reason)
    took = duration(state.run_seconds())
    if took:
        words.append(f"run time {took}")
    return ", ".join(words)


def _parts(view: TaskView) -> list[RenderableType]:
    from rich.text import Text  # noqa: PLC0415

    record, state = view.record, view.state
    meta = record.metadata
    parts: list[RenderableType] = [
        Text(f"task {meta.get('task_id') or '?'}  {meta.get('label') or ''}", style="bold"),
        _fields(
            {
                "directory": str(view.path),
                "class": meta.get("task_class"),
                "task group": meta.get("task_group_id"),
                "study": meta.get("study_id"),
                "tags": ", ".join(meta.get("tags") or []) or None,
                "created": meta.get("date_created"),
            }
        ),
        Text("state", style="bold"),
        _fields(
            {
                "now": _state_line(state),
                "detail": state.detail,
                "queued": _when(state.queued_at) if state.queued_at else None,
                "started": _when(state.started_at)
                + (f" on {state.host}" if state.host else "")
                + (f" (pid {state.pid})" if state.pid else ""),
                "ended": _when(state.ended_at),
                "executor": state.executor,
                "job id": state.job_id,
            }
        ),
    ]
    parts += _history(record.history)
    parts += _attempts(view)
    parts += _block("inputs", record.inputs)
    parts += _block("accounting", record.scheduler)
    parts += _block("outputs", record.outputs)
    if record.problems:
        parts += _block("problems", [p.model_dump() for p in record.problems])
    for name, text in (("autojob.out", view.stdout), ("autojob.err", view.stderr)):
        parts.append(Text(f"last lines of {name}", style="bold"))
        parts.append(Text(text or "(empty)", style="" if text else "dim"))
    return parts


def _fields(values: dict[str, Any]) -> RenderableType:
    from rich.table import Table  # noqa: PLC0415

    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(overflow="fold")
    for key, value in values.items():
        if value not in (None, ""):
            table.add_row(f"  {key}", str(value))
    return table


def _history(history: list[dict[str, Any]]) -> list[RenderableType]:
    from rich.table import Table  # noqa: PLC0415

    from autojob.store.state import TaskState  # noqa: PLC0415

    if not history:
        return []
    table = Table(title="earlier runs of this task (autojob.history/)", title_justify="left")
    for column in ("run", "state", "started", "ended"):
        table.add_column(column)
    for run in history:
        values = [run.get(name) for name in ("state", "exit_code", "reason")]
        state = TaskState.from_row([*values, None, run.get("started_at"), run.get("ended_at")])
        table.add_row(
            str(run.get("run")), _state_line(state), _when(state.started_at), _when(state.ended_at)
        )
    return [table]


def _attempts(view: TaskView) -> list[RenderableType]:
    from rich.table import Table  # noqa: PLC0415

    from autojob.cli.list_cmd import duration  # noqa: PLC0415

    if len(view.attempts) < 2:
        return []
    table = Table(
        title=f"attempts of its task group ({view.path.parent.name}), oldest first",
        title_justify="left",
    )
    for column in ("#", "task", "state", "exit", "run time", "cause"):
        table.add_column(column)
    for number, (path, state) in enumerate(view.attempts, start=1):
        mark = " (this one)" if path == view.path else ""
        table.add_row(
            str(number),
            path.name + mark,
            state.state.value,
            "" if state.exit_code is None else str(state.exit_code),
            duration(state.run_seconds()),
            state.detail or state.reason or "",
        )
    return [table]


def _block(title: str, value: object) -> list[RenderableType]:
    from rich.text import Text  # noqa: PLC0415

    if not value:
        return []
    return [Text(title, style="bold"), Text(json.dumps(value, indent=2, ensure_ascii=False))]
