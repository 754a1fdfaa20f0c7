"""``autojob list``: the tasks under a directory, structured or not."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from autojob.cli.options import ExistingDir

__all__ = ["list_tasks"]


@click.command("list")
@click.argument("path", type=ExistingDir, default=Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines, one task a line.")
@click.option(
    "--repair",
    is_flag=True,
    help="First repair the ids of task directories copied or moved by hand: a copy "
    "gets a new task id, a moved task is relinked to the task group it sits in.",
)
def list_tasks(path: Path, as_json: bool, repair: bool) -> None:
    """List the tasks under PATH (default: the current directory).

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

    if repair:
        from autojob.next.repair import repair_ids  # noqa: PLC0415

        for line in repair_ids(path).lines:
            click.echo(f"repaired {line}", err=True)
    listing = list_tree(path)
    if not listing.rows:
        from autojob.store.walk import no_tasks_error  # noqa: PLC0415

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
    for column in ("task", "label", "task group", "command", "path"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if row.error:
            table.add_row(row.task_id or "?", "", "", f"[red]{row.error}[/red]", row.rel_path)
        else:
            table.add_row(
                row.task_id,
                row.label,
                row.task_group_id or "",
                row.command or "",
                row.rel_path,
            )
    console.print(table)
