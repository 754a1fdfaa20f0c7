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
def list_tasks(path: Path, as_json: bool) -> None:
    """List the tasks under PATH (default: the current directory).

    Directories holding inputs.json but no task.json are tasks too: they get
    their task.json now (an existing one is never overwritten). Broken tasks are
    listed with the reason, and the exit status is then 1.
    """
    from autojob.create.listing import list_tree  # noqa: PLC0415

    listing = list_tree(path)
    if as_json:
        for row in listing.rows:
            click.echo(json.dumps(row.as_dict(), ensure_ascii=False))
    else:
        _print_table(listing.rows, path)
    for created in listing.created:
        click.echo(f"created {created}", err=True)
    if listing.broken:
        click.echo(f"{listing.broken} broken task(s); see the error column", err=True)
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
