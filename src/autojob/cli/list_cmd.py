"""``autojob list``: the tasks under a directory, structured or not."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from autojob.cli.options import ExistingDir
from autojob.cli.output import TABLE_ROWS, all_option, more_rows, print_json_lines, shown_path

if TYPE_CHECKING:
    from autojob.create.listing import TaskRow

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
#: below this terminal width the table leaves out the command (autojob show tells it)
WIDE = 120
#: the columns of the table, with their rich options: long texts are cut with an ellipsis
COLUMNS: dict[str, dict[str, object]] = {
    "task": {},
    "label": {"overflow": "ellipsis", "ratio": 1},
    "state": {},
    "run time": {"justify": "right"},
    "exit": {"justify": "right"},
    "cause": {"overflow": "ellipsis", "ratio": 1},
    "path": {"overflow": "ellipsis", "ratio": 2},
    "command": {"overflow": "ellipsis", "ratio": 2},
}


@click.command("list")
@click.argument("path", type=ExistingDir, default=Path())
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON Lines, one task a line, as the tasks are read (see docs/json.md).",
)
@all_option()
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
    show_all: bool,
) -> None:
    """List the tasks under PATH (default: the current directory).

    Each task is shown with its state, run time (from its start to its end, or
    so far), exit code, cause (why it ended so: timeout, cancelled, a
    scheduler's cause, or what is odd about it), path (relative to the current
    directory where shorter) and command (on a terminal of 120 columns or
    more), one line a task. States come from the status index ('autojob
    status'), so listing a large tree stays fast. The table shows the first
    50 tasks and counts the rest by state; --all shows every one. --json
    prints every task, one JSON object a line, as they are read. 'autojob
    show TASK' tells everything about one task.

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
    from autojob.create.listing import iter_rows  # noqa: PLC0415
    from autojob.store.state import State  # noqa: PLC0415

    if repair:
        from autojob.next.repair import repair_ids  # noqa: PLC0415

        for line in repair_ids(path).lines:
            click.echo(f"repaired {line}", err=True)
    created: list[Path] = []
    rows = iter_rows(
        path, states={State(s) for s in states}, label=label, failed=failed, created=created
    )
    broken: list[TaskRow] = []
    kept = (_note_broken(row, broken) for row in rows)
    count = print_json_lines(r.as_dict() for r in kept) if as_json else _table(kept, path, show_all)
    if not count:
        from autojob.store.walk import has_tasks, no_tasks_error  # noqa: PLC0415

        if not has_tasks(path):
            raise no_tasks_error([path])
    for made in created:
        click.echo(f"created {made}", err=True)
    if broken:
        click.echo(f"{len(broken)} broken task(s):", err=True)
        for row in broken:
            click.echo(f"  {shown_path(row.path)}: {row.error}", err=True)
        raise SystemExit(1)


def _note_broken(row: TaskRow, broken: list[TaskRow]) -> TaskRow:
    if row.error:
        broken.append(row)
    return row


def _table(rows: Iterable[TaskRow], root: Path, show_all: bool) -> int:
    """Print the table of the rows (the first :data:`TABLE_ROWS` unless ``show_all``).

    Returns how many rows there were.
    """
    from rich import box  # noqa: PLC0415
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    shown: list[TaskRow] = []
    states: Counter[str] = Counter()
    for row in rows:
        states[row.state or "?"] += 1
        if show_all or len(shown) < TABLE_ROWS:
            shown.append(row)
    total = sum(states.values())
    if not total:
        return 0
    console = Console()
    wide = console.width >= WIDE
    table = Table(
        title=f"{total} task(s) under {shown_path(root)}",
        title_justify="left",
        box=box.SIMPLE_HEAD if not wide else box.HEAVY_HEAD,
        pad_edge=wide,
        show_edge=wide,
    )
    cells = [_cells(row) for row in shown]
    names = _shown_columns(wide, shown)
    widths = _fitted(cells, names, console.width, edges=wide)
    for name in names:
        options = dict(COLUMNS[name])
        if name in widths:  # cut to fit: each row stays one line
            options["width"] = widths[name]
        elif "ratio" not in options:  # a short column is never cut
            options["min_width"] = max(len(name), *(len(c[name]) for c in cells))
        table.add_column(name, no_wrap=True, **options)  # type: ignore[arg-type]
    for row, row_cells in zip(shown, cells, strict=True):
        table.add_row(
            *(_markup(row, name, _cut(row_cells[name], widths.get(name))) for name in names)
        )
    console.print(table)
    more = more_rows(len(shown), total)
    if more:
        counts = ", ".join(f"{state} {n:,}" for state, n in states.most_common())
        click.echo(f"{more}; by state: {counts}")
    return total


def _shown_columns(wide: bool, rows: list[TaskRow]) -> list[str]:
    """The columns that fit the terminal.

    On a narrow one: no command, no cause where no task has one, and no label
    where each label is part of its task's path already.
    """
    names = list(COLUMNS)
    if wide:
        return names
    names.remove("command")
    if not any(row.cause for row in rows):
        names.remove("cause")
    if all(not row.label or row.label in Path(row.path).parts for row in rows):
        names.remove("label")
    return names


def _cells(row: TaskRow) -> dict[str, str]:
    """Every cell of a row, by column, as plain text."""
    return {
        "task": row.task_id or "?",
        "label": "" if row.error else row.label,
        "state": row.state or "",
        "run time": duration(row.run_seconds),
        "exit": _text(row.exit_code),
        "cause": row.cause or "",
        "path": shown_path(row.path),
        "command": row.error or _short(row.command or ""),
    }


def _markup(row: TaskRow, name: str, text: str) -> str:
    """A cell's text as rich markup: escaped; a broken task's error in red."""
    from rich.markup import escape  # noqa: PLC0415

    return f"[red]{escape(text)}[/red]" if name == "command" and row.error else escape(text)


def _fitted(
    cells: list[dict[str, str]], names: list[str], width: int, *, edges: bool
) -> dict[str, int]:
    """The widths of the columns to cut (label, cause, path, command) so rows fit ``width``.

    Empty when every row fits whole. The short columns keep their width; the
    others share what is left by their ratio, none wider than its longest cell.
    Each column takes its padding and a separator (the edges too, when drawn).
    """
    needed = {name: max(len(name), *(len(c[name]) for c in cells)) for name in names}
    cut = [name for name in names if "ratio" in COLUMNS[name]]
    frame = 3 * len(names) + 1 if edges else 3 * (len(names) - 1)
    room = width - frame - sum(needed[name] for name in names if name not in cut)
    if sum(needed[name] for name in cut) <= room:
        return {}
    widths: dict[str, int] = {}
    while cut:  # the columns that need less than their share take only that
        ratio = {name: int(str(COLUMNS[name]["ratio"])) for name in cut}
        share = {name: room * ratio[name] // sum(ratio.values()) for name in cut}
        small = [name for name in cut if needed[name] <= share[name]]
        if not small:
            widths.update({name: max(share[name], len(name)) for name in cut})
            break
        for name in small:
            widths[name] = needed[name]
            room -= needed[name]
            cut.remove(name)
    return widths


def _cut(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` with an ellipsis: a path keeps its end, other texts their start."""
    if width is None or len(text) <= width:
        return text
    if "/" in text and " " not in text:
        return "…" + text[len(text) - width + 1 :]
    return text[: width - 1] + "…"


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
