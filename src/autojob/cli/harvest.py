"""``autojob harvest``: collect the results of every task under a directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from autojob.cli.options import ExistingDir
from autojob.cli.output import json_option, print_json, progress_console, shown_path

if TYPE_CHECKING:
    from autojob.harvest import HarvestSummary

__all__ = ["harvest"]

FORMATS = ["json", "jsonl", "csv", "parquet"]
STATES = [
    "success",
    "failed",
    "timeout",
    "oom",
    "cancelled",
    "unknown",
    "running",
    "queued",
    "idle",
]
#: problems listed after a relaxed harvest
SHOWN_PROBLEMS = 10
#: tasks between two refreshes of the progress display
REFRESH_EVERY = 250


@click.command("harvest")
@click.argument("path", type=ExistingDir, default=Path())
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The archive to write [default: archive.json, or archive.<format>].",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Archive format [default: by the suffix of --output, else json].",
)
@click.option(
    "--strict/--relaxed",
    default=False,
    show_default=True,
    help="Stop at the first broken file, or record each problem on its task and go on.",
)
@click.option(
    "--where",
    "conditions",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Keep tasks whose dotted FIELD equals VALUE (outputs.converged=true, "
    "label=relax); also FIELD!=VALUE, FIELD<VALUE, <=, >, >= (numbers: "
    "'outputs.energy<-3.5') and FIELD~GLOB ('label~relax-*'). A field not at the "
    "top of the record is looked up in metadata, then outputs; a task without it is "
    "left out, and a field no task has is warned about. Repeat to require several.",
)
@click.option(
    "--state",
    "states",
    type=click.Choice(STATES),
    multiple=True,
    help="Keep tasks in this state; repeat for several.",
)
@click.option(
    "--harvester",
    "harvesters",
    multiple=True,
    metavar="NAME",
    help="Run these harvesters on every task [default: each installed harvester on "
    "the task classes it declares].",
)
@click.option("--magic", is_flag=True, help="Also validate each task as the class it names.")
@click.option(
    "--full", is_flag=True, help="Read every task again, ignoring the cache of the last harvest."
)
@click.option(
    "--verify",
    is_flag=True,
    help="Check every watched file of the tasks the cache holds (files rewritten in place), "
    "not only their directories; done anyway when the last such check is "
    "HARVEST_VERIFY_AGE old.",
)
@json_option("Print what was archived as one JSON document (see docs/json.md).")
def harvest(
    path: Path,
    output: Path | None,
    fmt: str | None,
    strict: bool,
    conditions: tuple[str, ...],
    states: tuple[str, ...],
    harvesters: tuple[str, ...],
    magic: bool,
    full: bool,
    verify: bool,
    as_json: bool,
) -> None:
    """Archive the metadata, inputs, outputs and state of every task under PATH.

    Writes archive.json (JSON, one task per line) by default; JSON Lines
    streams; CSV flattens nested fields into dotted columns; Parquet needs
    pyarrow. The archive is replaced only when the harvest completes. A cache
    beside it makes the next harvest of PATH re-read only the tasks that changed.
    The progress bar is drawn on a terminal only.

    \b
    Examples:
      autojob new --label hello --set command='echo hello'
      autojob submit --wait
      autojob harvest
      autojob harvest . -o results.csv --state success
      autojob harvest . -f jsonl --where label=hello
      autojob harvest --json
    """
    from autojob.harvest import archive, default_archive, parse_condition  # noqa: PLC0415
    from autojob.harvest.cache import cache_path, previous_count  # noqa: PLC0415

    where = [parse_condition(c) for c in conditions]
    target = output if output is not None else default_archive(fmt)
    console = progress_console()
    with _progress(console, previous_count(cache_path(target))) as tick:
        summary = archive(
            path,
            target,
            fmt=fmt,
            strict=strict,
            magic=magic,
            harvesters=list(harvesters) or None,
            where=where,
            states=states,
            incremental=not full,
            verify=verify,
            progress=tick,
        )
    if as_json:
        _warn_unmatched(summary)
        print_json(_as_json(summary, target))
    else:
        _report(Console(), summary, target)


def _as_json(summary: HarvestSummary, target: Path) -> dict[str, object]:
    """What --json prints of a harvest."""
    return {
        "archive": str(target),
        "tasks": summary.tasks,
        "states": dict(summary.states),
        "read": summary.reread,
        "unchanged": summary.cached,
        "checked": summary.checked,
        "left_out": summary.seen - summary.tasks,
        "seconds": round(summary.seconds, 3),
        "unmatched": [
            {"condition": str(condition), "field": condition.field, "closest": close}
            for condition, close in summary.unmatched
        ],
        "problem_count": summary.problem_count,
        "problems": [{"task": rel, **problem} for rel, problem in summary.problems],
    }


class _Ticker:
    """Counts tasks read and refreshes a progress display now and then."""

    def __init__(self, progress: Progress, total: int | None) -> None:
        self.progress = progress
        self.task = progress.add_task("harvesting", total=total, last="")
        self.count = 0

    def __call__(self, tasks: int, last: str) -> None:
        before = self.count
        self.count += tasks
        if self.count // REFRESH_EVERY != before // REFRESH_EVERY:
            self.progress.update(self.task, completed=self.count, last=last)

    def __enter__(self) -> _Ticker:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.update(self.task, completed=self.count, last="")
        self.progress.stop()


def _progress(console: Console, total: int | None) -> _Ticker:
    """A progress display: a bar when the last harvest told how many tasks to expect.

    Without a cache beside the archive, a spinner and a count.
    """
    columns = [SpinnerColumn(), TextColumn("harvesting: {task.completed} task(s) read")]
    if total:
        columns[1:] = [BarColumn(), TextColumn("{task.completed}/{task.total} task(s)")]
    progress = Progress(
        *columns,
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[last]}", justify="left"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    return _Ticker(progress, total)


def _checked(summary: HarvestSummary) -> str:
    if summary.checked == "directories":
        return " (by their directories; --verify checks every file)"
    if summary.checked == "files":
        return " (every file checked)"
    return ""


def _warn_unmatched(summary: HarvestSummary) -> None:
    """Warn (on standard error) of --where fields no task has."""
    for condition, close in summary.unmatched:
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        Console(stderr=True).print(
            f"warning: --where {condition}: no task has the field {condition.field}{hint}",
            style="yellow",
            markup=False,
        )


def _report(console: Console, summary: HarvestSummary, target: Path) -> None:
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary.states.items()))
    console.print(
        f"{summary.tasks} task(s) archived to {shown_path(target)}"
        + (f" ({states})" if states else "")
        + f"; {summary.reread} read from disk, {summary.cached} unchanged since the last "
        f"harvest{_checked(summary)}, in {summary.seconds:.2f} s"
    )
    if summary.seen > summary.tasks:
        console.print(f"{summary.seen - summary.tasks} task(s) left out by --where/--state")
    _warn_unmatched(summary)
    if not summary.problem_count:
        return
    table = Table(
        title=f"{summary.problem_count} problem(s), recorded on their tasks in the archive "
        "(shared task ids: here only)",
        title_justify="left",
        title_style="yellow",
    )
    for column in ("task", "file", "field", "problem"):
        table.add_column(column, overflow="fold")
    for rel, problem in summary.problems[:SHOWN_PROBLEMS]:
        table.add_row(
            rel, problem.get("path") or "", problem.get("field") or "", problem["message"]
        )
    console.print(table)
    if summary.problem_count > SHOWN_PROBLEMS:
        console.print(f"... and {summary.problem_count - SHOWN_PROBLEMS} more; see the archive")
