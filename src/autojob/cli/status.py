"""``autojob status``: how the tasks under a directory are doing."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from itertools import compress, islice, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from autojob.cli.options import ExistingDir
from autojob.cli.output import (
    TABLE_ROWS,
    all_option,
    json_objects,
    more_rows,
    print_json_streamed,
    shown_path,
)
from autojob.cli.pilot_view import pilot_tables, pilots_json

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from autojob.next.advance import StepProgress
    from autojob.store.state import TaskState
    from autojob.store.status_index import StatusReport

__all__ = ["status"]

By = Literal["study", "task_group", "state"]
COLOURS = {
    "success": "green",
    "failed": "red",
    "timeout": "magenta",
    "oom": "magenta",
    "cancelled": "yellow",
    "unknown": "bright_red",
    "running": "cyan",
    "queued": "blue",
    "idle": "white",
}
TROUBLE = ("failed", "timeout", "oom", "unknown")


@click.command("status")
@click.argument("path", type=ExistingDir, default=Path())
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document (for scripts; see docs/json.md), its task lists "
    "written as they are read. Not with --watch.",
)
@click.option(
    "--by",
    type=click.Choice(["study", "task_group", "state"]),
    default=None,
    help="Rows of the table: per study (default when there are studies), task group or state.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="A live view, redrawn every --interval seconds until Ctrl-C: a progress bar per "
    "study and workflow step, counts per state, the newest failures and the time left.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option("--rescan", is_flag=True, help="Walk the whole tree instead of trusting the index.")
@click.option(
    "--failed",
    "show_failed",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many failed tasks to list with the tail of their error output.",
)
@all_option("task group")
def status(
    path: Path,
    as_json: bool,
    by: By | None,
    watch: bool,
    interval: float,
    rescan: bool,
    show_failed: int,
    show_all: bool,
) -> None:
    """Count the tasks under PATH by state, per study or task group.

    Attempts in a task group are its history: the newest attempt decides the
    group's state, and every count (tables and --json "counts") is one state
    per task group; the earlier attempts are counted apart ("attempts"). The
    first call walks the tree and keeps an index under PATH/.autojob/ (none
    when PATH is a task directory: its own files are read); later calls re-read
    only what changed. Attempts that share a task id (a copied task directory)
    or name another task group (moved by hand) are listed as problems;
    'autojob list PATH --repair' fixes them. --by task_group lists the first
    50 task groups unless --all.

    \b
    Examples:
      autojob new --label hello --set command='echo hello'
      autojob submit --wait
      autojob status
      autojob status . --by task_group --failed 20
      autojob status --json
      autojob status --watch --interval 1
    """
    if as_json and watch:
        raise click.UsageError(
            "give either --json (one document, for scripts) or --watch (a live view for "
            "people), not both; to poll from a script, run 'autojob status --json' in a loop",
            click.get_current_context(),
        )
    if as_json:
        from autojob.store.collector import collector_paused  # noqa: PLC0415

        with collector_paused():  # the tasks' values are printed a column at a time
            report, note = _collect(path, rescan)
            print_json_streamed({**_as_json(report), "note": note})
        return
    if watch:
        from autojob.cli.watch import watch_status  # noqa: PLC0415

        chosen = by  # --by adds the table of those rows under the bars
        watch_status(
            path,
            interval=interval,
            rescan=rescan,
            failures=show_failed,
            table=None if chosen is None else lambda report: _table(report, chosen, show_all),
        )
        return
    from rich.console import Console  # noqa: PLC0415  (rich only when a table is shown)

    from autojob.store.collector import collector_paused  # noqa: PLC0415

    with collector_paused():  # the counts go over columns of every task
        shown = _render(*_collect(path, rescan), by, show_failed, show_all)
    Console().print(shown)


def _collect(path: Path, rescan: bool) -> tuple[StatusReport, str | None]:
    """The report from the files, brought up to date with the scheduler."""
    from autojob.execution.track import refresh_from_scheduler  # noqa: PLC0415
    from autojob.store.status_index import collect  # noqa: PLC0415
    from autojob.store.walk import no_tasks_error  # noqa: PLC0415

    report = collect(path, rescan=rescan)
    if not len(report):
        raise no_tasks_error([path])
    return report, refresh_from_scheduler(report, force=rescan)


def group_states(
    report: StatusReport, newest: Sequence[int] | None = None
) -> dict[str, tuple[str, int]]:
    """Per task group: the newest attempt's state and the number of attempts.

    ``newest``: the rows of the newest attempts (:func:`newest_rows`), if known already.
    """
    names, states, attempts = group_columns(report, newest)
    return dict(zip(names, zip(states, attempts, strict=True), strict=True))


def group_columns(
    report: StatusReport, newest: Sequence[int] | None = None
) -> tuple[list[str], list[str], list[int]]:
    """The task groups in path order, their newest attempt's state, and their attempts.

    Taken from the columns in C: what prints 100,000 task groups as JSON.
    """
    col, rows = report.columns, _newest(report, newest)
    every = len(rows) == len(report)  # one row per group: every row is the newest
    groups = col["group"] if every else list(map(col["group"].__getitem__, rows))
    states = col["state"] if every else list(map(col["state"].__getitem__, rows))
    if None not in groups and all(map(operator.le, groups, islice(groups, 1, None))):
        names, chosen = groups, states  # in order already (rows in path order, as a scan writes)
    else:
        grouped = compress(range(len(groups)), map(operator.is_not, groups, repeat(None)))
        order = sorted(grouped, key=groups.__getitem__)
        names, chosen = list(map(groups.__getitem__, order)), list(map(states.__getitem__, order))
    if every:
        return names, chosen, [1] * len(names)
    sizes = Counter(col["group"])  # counted in C
    return names, chosen, list(map(sizes.__getitem__, names))


def current_counts(
    report: StatusReport, by: str | None = None, newest: Sequence[int] | None = None
) -> Counter[tuple[Any, str]]:
    """Tasks per (``by`` column value, state), one per task group: its newest attempt.

    Tasks outside task groups count each. Earlier attempts are history and
    are counted apart (:func:`replaced_counts`).
    """
    states, rows = report.columns["state"], _newest(report, newest)
    every = len(rows) == len(report)  # every row is the newest of its group: none picked
    if by is None:
        return Counter(zip(repeat(None), states if every else map(states.__getitem__, rows)))
    keys = report.columns[by]
    if every and keys and keys.count(keys[0]) == len(keys):  # one study, say: no pairs built
        return Counter({(keys[0], state): n for state, n in Counter(states).items()})
    if every:
        return Counter(zip(keys, states, strict=True))  # in C
    return Counter(zip(map(keys.__getitem__, rows), map(states.__getitem__, rows), strict=True))


def tally(values: list[Any]) -> Counter[Any]:
    """``Counter(values)``, in C; a column of one value (one study, say) by one comparison."""
    if values and values.count(values[0]) == len(values):
        return Counter({values[0]: len(values)})
    return Counter(values)


def state_counts(
    report: StatusReport, newest: Sequence[int] | None = None
) -> tuple[Counter[str], Counter[str]]:
    """Per state: the tasks (one per task group, its newest attempt), and every attempt.

    Counted in C, once when every row is its group's newest (the two are the same then).
    """
    states, rows = report.columns["state"], _newest(report, newest)
    attempts = tally(states)
    if len(rows) == len(report):
        return attempts, attempts
    return Counter(map(states.__getitem__, rows)), attempts


def replaced_counts(report: StatusReport, newest: Sequence[int] | None = None) -> Counter[str]:
    """Earlier attempts (replaced by a newer one in their task group), per state."""
    if len(_newest(report, newest)) == len(report):
        return Counter()  # every row is the newest attempt of its group: nothing counted
    current, every = state_counts(report, newest)
    return every - current


def _newest(report: StatusReport, newest: Sequence[int] | None) -> Sequence[int]:
    from autojob.store.status_index import newest_rows  # noqa: PLC0415

    return newest_rows(report) if newest is None else newest


def _as_json(report: StatusReport) -> dict[str, Any]:
    """The document --json prints; its lists of tasks and task groups are generators."""
    newest = _newest(report, None)
    counts, attempts = state_counts(report, newest)
    tasks: Iterator[str] = json_objects(*report.dict_columns(report.path_order(), coded=True))
    return {
        "root": str(report.root),
        "source": report.source,
        "counts": dict(counts),
        "attempt_counts": dict(attempts),
        "replaced_counts": dict(attempts - counts),
        "tasks": tasks,
        "task_groups": json_objects(("path", "state", "attempts"), group_columns(report, newest)),
        "workflows": {
            study: [asdict(row) for row in rows] if isinstance(rows, list) else {"error": rows}
            for study, rows in _workflows(report).items()
        },
        "problems": [{"path": path, "problem": text} for path, text in report.problems],
        "pilots": pilots_json(report.root),
    }


def _workflows(report: StatusReport) -> dict[str, list[StepProgress] | str]:
    """Per study with a workflow: the progress of each step (or why it is unreadable)."""
    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.errors import AutojobError  # noqa: PLC0415

    found: dict[str, list[StepProgress] | str] = {}
    studies = set(report.columns["study"])  # in C
    studies.discard(None)
    for study in sorted(studies):
        folder = report.root / study
        if (folder / SETTINGS.WORKFLOW_FILE).is_file():  # store.workflow's has_workflow
            # imported only for a workflow: it is most of what status imports
            from autojob.next.advance import workflow_progress  # noqa: PLC0415

            try:
                found[study] = workflow_progress(folder)
            except AutojobError as exc:
                found[study] = str(exc).splitlines()[0]
    return found


def _workflow_tables(report: StatusReport) -> list[RenderableType]:
    """A table of steps and their progress per study with a workflow."""
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    tables: list[RenderableType] = []
    for study, rows in _workflows(report).items():
        name = report.root.name if study == "." else study
        if isinstance(rows, str):
            tables.append(Text(f"workflow of {name}: {rows}", style="red"))
            continue
        table = Table(title=f"workflow of {name}", title_justify="left")
        for column in ("step", "progression", "after", "task groups", "done"):
            table.add_column(
                column, justify="right" if column in ("task groups", "done") else "left"
            )
        for row in rows:
            total = row.expected if row.expected is not None else row.groups
            style = "green" if total and row.done >= total else None
            table.add_row(
                row.name,
                row.progression,
                ", ".join(row.after) or "-",
                str(row.groups),
                Text(f"{row.done}/{total or '?'}", style=style or ""),
            )
        tables.append(table)
    return tables


def _render(
    report: StatusReport, note: str | None, by: By | None, show_failed: int, show_all: bool = False
) -> RenderableType:
    from rich.console import Group  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from autojob.store.state import STATE_ORDER  # noqa: PLC0415

    if by is None:
        by = "study" if any(report.columns["study"]) else "state"
    newest = _newest(report, None)  # once, for every count below
    parts: list[RenderableType] = [_table(report, by, show_all, newest)]
    parts += _workflow_tables(report)
    parts += pilot_tables(report.root)
    # earlier attempts are history: only the newest attempt of a group needs attention
    trouble, total = _first_trouble(report, newest, show_failed)
    if trouble:
        rows = [(report.value("path", r), report.state_of(r)) for r in trouble]
        parts.append(_trouble(report.root, rows, total))
    if report.problems:
        parts.append(_problems(report))
    replaced = replaced_counts(report, newest)
    if replaced:
        shown = ", ".join(
            f"{state} {replaced[state]}" for state in STATE_ORDER if state in replaced
        )
        parts.append(
            Text(
                f"{sum(replaced.values())} earlier attempt(s) replaced by a newer one in their "
                f"task group, not counted above: {shown}",
                style="dim",
            )
        )
    parts.append(Text(_read_again(report), style="dim"))
    if note:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)


def _first_trouble(
    report: StatusReport, newest: Sequence[int], shown: int
) -> tuple[list[int], int]:
    """The first ``shown`` newest attempts that need attention (in path order), and their number.

    Where every row is its group's newest attempt, they are counted in C and
    the first found without going through the others.
    """
    from autojob.store.status_index import newest_rows  # noqa: PLC0415

    states = report.columns["state"]
    if len(newest) == len(report):
        total = sum(map(states.count, TROUBLE))
        order = report.path_order()
        wanted = map(set(TROUBLE).__contains__, map(states.__getitem__, order))
        return list(islice(compress(order, wanted), shown)), total
    rows = newest_rows(report, list(report.rows_where(TROUBLE)))
    trouble = [r for r in rows if states[r] in TROUBLE]
    return trouble[:shown], len(trouble)


def _read_again(report: StatusReport) -> str:
    """How many tasks were read this time, and where from."""
    text = f"{len(report)} task(s); {report.reread} read from disk ({report.source})"
    if report.from_journal:
        text += f"; {report.from_journal} of them from the copies of their end in the journal"
    return text


def _problems(report: StatusReport, shown: int = 10) -> Text:
    """Tasks sharing an id or sitting in another group than they name, and the fix."""
    from rich.text import Text  # noqa: PLC0415

    found = report.problems
    lines = [f"{len(found)} problem(s) with task ids:"]
    lines += [f"  {shown_path(report.root / path)}: {text}" for path, text in found[:shown]]
    if len(found) > shown:
        lines.append(f"  ... and {len(found) - shown} more")
    lines.append(f"  fix: autojob list {shown_path(report.root)} --repair")
    return Text("\n".join(lines), style="red")


def _table(
    report: StatusReport, by: By, show_all: bool = False, newest: Sequence[int] | None = None
) -> Table:
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from autojob.store.state import STATE_ORDER  # noqa: PLC0415

    table = Table(title=f"status of {shown_path(report.root)}", title_justify="left")
    if by == "state":
        table.add_column("state")
        table.add_column("tasks", justify="right")
        table.add_column("attempts", justify="right")
        counts, every = state_counts(report, newest)  # every: every attempt
        for state in (s for s in STATE_ORDER if s in every):
            table.add_row(
                Text(state, style=COLOURS[state]), str(counts.get(state, 0)), str(every[state])
            )
        return table
    if by == "task_group":
        table.add_column("task group")
        table.add_column("state")
        table.add_column("attempts", justify="right")
        groups = group_states(report, newest)
        for group in sorted(groups)[: None if show_all else TABLE_ROWS]:
            state, attempts = groups[group]
            table.add_row(group, Text(state, style=COLOURS[state]), str(attempts))
        more = more_rows(len(table.rows), len(groups), "task group(s)")
        if more:
            table.add_row(Text(more, style="dim"), "", "")
        loose = sum(1 for g in report.columns["group"] if g is None)
        if loose:
            table.add_row(Text(f"({loose} task(s) outside task groups)", style="dim"), "", "")
        return table
    table.add_column("study")
    per: dict[str, Counter[str]] = {}
    for (study, state), count in current_counts(report, "study", newest).items():
        per.setdefault(_study_name(report, study), Counter())[state] += count
    per_study: Counter[str] = Counter()
    for study, count in tally(report.columns["study"]).items():
        per_study[_study_name(report, study)] += count
    states = [s for s in STATE_ORDER if any(s in counts for counts in per.values())]
    for state in states:
        table.add_column(state, justify="right", style=COLOURS[state])
    table.add_column("total", justify="right")
    table.add_column("attempts", justify="right", style="dim")
    for study, counts in sorted(per.items()):
        table.add_row(
            study,
            *[str(counts.get(s, "")) for s in states],
            str(sum(counts.values())),
            str(per_study[study]),
        )
    return table


def _study_name(report: StatusReport, study: str | None) -> str:
    return report.root.name if study == "." else study or "(no study)"


def _trouble(root: Path, entries: list[tuple[str, TaskState]], total: int) -> Table:
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.store.run_files import tail  # noqa: PLC0415

    table = Table(
        title=f"{total} task(s) need attention"
        + (f" (first {len(entries)})" if total > len(entries) else ""),
        title_justify="left",
    )
    for column in ("task", "state", "exit", "why / last lines of stderr"):
        table.add_column(column, overflow="fold")
    for path, st in entries:
        why = st.detail or st.reason or tail(root / path / SETTINGS.STDERR_FILE, 3)
        table.add_row(
            shown_path(root / path),
            Text(st.state.value, style=COLOURS[st.state.value]),
            "" if st.exit_code is None else str(st.exit_code),
            why,
        )
    return table
