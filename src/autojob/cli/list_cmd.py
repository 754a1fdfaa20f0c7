"""``autojob list``: the tasks under a directory, structured or not."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from autojob.cli.options import ExistingDir

__all__ = ["list_tasks"]

STATES = [
    "idle",
    "queued",
    "running",
    "success",
    "failed",
    "timeout",
    "oom",
    "cancelled",
    "unknown",
]


@click.command("list")
@click.argument("path", type=ExistingDir, default=Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines, one task a line.")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATES),
    help="Only tasks in this state (repeatable).",
)
@click.option(
    "--label",
    "label",
    metavar="GLOB",
    default=None,
    help="Only tasks whose label matches GLOB (e.g. 'relax-*').",
)
@click.option(
    "--failed",
    is_flag=True,
    help="Only the tasks that need attention: the newest attempt of each task group "
    "(and each task outside groups) that is failed, timeout, oom or unknown.",
)
@click.option(
    "--repair",
    is_flag=True,
    help="First repair the ids of task directories copied or moved by hand: a copy "
    "gets a new task id, a moved task is relinked to the task group it sits in.",
)
def list_tasks(
    path: Path,
    as_json: bool,
    states: tuple[str, ...],
    label: str | None,
    failed: bool,
    repair: bool,
) -> None:
    """List the tasks under PATH (default: the current directory).

    Each task is shown with its state, run time (from its start to its end, or
    so far), exit code and cause (why it ended so: timeout, cancelled, a
    scheduler's cause, or what is odd about it). States come from the status
    index ('autojob status'), so listing a large tree stays fast. --json
    prints the same fields, one task a line. 'autojob show TASK' tells
    everything about one task.

    Directories holding inputs.json but no task.json are tasks too: they get
    their task.json now (an existing one is never overwritten). Broken tasks are
    listed with the reason, and the exit status is then 1.

    With --repair, tasks sharing a task id (cp -r TASK copy) and tasks naming
    another task group than the one they sit in (mv TASK other_group/), which
    harvest and status report, are repaired first: the task in the group its
    metadata names (else the oldest) keeps the id, each copy gets a new one and
    joins its group's task list; a moved task takes the ids of the group it
    sits in. Each change is printed.

    \b
    Examples:
      autojob new --label hello --set command='echo hello'
      autojob list
      autojob list . --json
    """
    from autojob.create.listing import list_tree  # noqa: PLC0415
    from autojob.store.state import State  # noqa: PLC0415

    if repair:
        from autojob.next.repair import repair_ids  # noqa: PLC0415

        for line in repair_ids(path).lines:
            click.echo(f"repaired {line}", err=True)
    listing = list_tree(path, states={State(s) for s in states}, label=label, failed=failed)
    if not listing.rows and not listing.broken:
        from autojob.store.walk import has_tasks, no_tasks_error  # noqa: PLC0415

        if not has_tasks(path):
            raise no_tasks_error([path])
    if as_json:
        for row in listing.rows:
            click.echo(json.dumps(row.as_dict(), ensure_ascii=False))
    else:
        _print_table(listing.rows, path)
    for created in listing.created:
        click.echo(f"created {created}", err=True)
    if listing.broken:
        click.echo(f"{listing.broken} broken task(s):", err=True)
        for row in listing.rows:
            if row.error:
                click.echo(f"  {row.rel_path}: {row.error}", err=True)
        raise SystemExit(1)


def _print_table(rows: list, root: Path) -> None:  # type: ignore[type-arg]
    console = Console()
    table = Table(title=f"{len(rows)} task(s) under {root}", title_justify="left")
    table.add_column("task", overflow="fold", min_width=10)
    table.add_column("label", overflow="fold", min_width=5)
    table.add_column("state", no_wrap=True)
    table.add_column("run time", justify="right", no_wrap=True)
    table.add_column("exit", justify="right", no_wrap=True)
    table.add_column("cause", overflow="fold", min_width=10)
    table.add_column("path", overflow="fold")
    table.add_column("command", overflow="fold")
    for row in rows:
        state = (row.state or "", duration(row.run_seconds), _text(row.exit_code), row.cause or "")
        if row.error:
            table.add_row(row.task_id or "?", "", *state, row.rel_path, f"[red]{row.error}[/red]")
        else:
            table.add_row(row.task_id, row.label, *state, row.rel_path, _short(row.command or ""))
    console.print(table)


def _short(command: str, width: int = 30) -> str:
    """A command cut to ``width`` characters ('autojob show' and --json give it whole)."""
    return command if len(command) <= width else command[: width - 1] + "…"


def _text(value: object) -> str:
    return "" if value is None else str(value)


def duration(seconds: float | None) -> str:
    """A run time as people read it: ``4.2 s``, ``12:05``, ``3:02:10``, ``2 d 03:00:00``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{days} d {hours:02d}:{minutes:02d}:{secs:02d}" if days else clock
