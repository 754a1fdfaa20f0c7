"""``autojob submit``: run tasks with an executor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autojob.cli.options import ExistingDir, executor_option

if TYPE_CHECKING:
    from autojob.execution.executor import Executor, Plan, Preview
    from autojob.execution.submit import Selected
    from autojob.store.state import State, TaskState

__all__ = ["submit"]

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


@click.command("submit")
@click.argument("paths", nargs=-1, type=ExistingDir)
@executor_option()
@click.option(
    "-j",
    "--max-parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Tasks run at once (default: the number of cores).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Run in this terminal with a progress bar; exit 1 if any task fails.",
)
@click.option("--dry-run", is_flag=True, help="Print what would run and change nothing.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(STATES),
    help="Submit tasks in these states (repeatable). Default: idle, and unknown "
    "(started, but whose process died without recording an end). queued and running "
    "are refused: a live run is never run twice.",
)
def submit(
    paths: tuple[Path, ...],
    executor: str | None,
    max_parallel: int | None,
    wait: bool,
    dry_run: bool,
    only: tuple[str, ...],
) -> None:
    """Run the tasks under PATHS (default: the current directory).

    Without --wait the tasks run in a background runner that outlives this
    terminal; follow them with 'autojob status PATH --watch'. Tasks already
    finished are never run again unless named with --only (their earlier run
    moves to autojob.history/). inputs.json is the source of truth: a task
    script autojob rendered is rendered again when inputs.json changed since;
    a script edited by hand is run as it is (see 'autojob render').
    """
    from autojob.execution.submit import (  # noqa: PLC0415
        DEFAULT_ONLY,
        nothing_to_submit,
        plan_submission,
    )
    from autojob.store.state import State  # noqa: PLC0415

    allowed = frozenset(State(s) for s in only) if only else DEFAULT_ONLY
    roots = list(paths) or [Path()]
    chosen, plan = plan_submission(
        roots, executor=executor, allowed=allowed, max_parallel=max_parallel, dry_run=dry_run
    )
    _say_scripts(plan.selected, dry_run)
    if dry_run and (plan.preview.columns or plan.selected):
        _print_preview(plan.preview)
        return
    if not plan.selected:
        click.echo(nothing_to_submit(allowed))
        return
    if wait:
        if _wait(chosen, plan, allowed):
            raise SystemExit(1)
        return
    done = chosen.submit(plan, allowed=allowed)
    click.echo(done.message)
    _left_to_others(len(plan.selected), done.count)
    for line in done.details:
        click.echo(line)
    if not chosen.asks_scheduler:
        click.echo("follow with: autojob status --watch " + " ".join(str(p) for p in paths))


def _say_scripts(selected: Sequence[Selected], dry_run: bool) -> None:
    """Tell which task scripts were rendered again from a changed inputs.json."""
    from autojob.store.task_script import ScriptState  # noqa: PLC0415

    again = [s.spec.path for s in selected if s.script and s.script.state is ScriptState.RENDERED]
    if again:
        verb = "would render" if dry_run else "rendered"
        shown = ", ".join(str(p) for p in again[:3]) + (", ..." if len(again) > 3 else "")
        click.echo(
            f"{verb} the task script of {len(again)} task(s) again, as their inputs "
            f"changed: {shown}"
        )


def _print_preview(preview: Preview) -> None:
    """Print a plan as a dry run shows it: a table, or each script and command."""
    if preview.columns:
        table = Table(title=preview.title, title_justify="left")
        for column in preview.columns:
            table.add_column(column, overflow="fold")
        for row in preview.rows:
            table.add_row(*row)
        Console().print(table)
    for comment, text in preview.blocks:
        click.echo(comment)
        click.echo(text)
    if preview.summary:
        click.echo(preview.summary)


def _left_to_others(selected: int, claimed: int) -> None:
    """Tell that another submit claimed some of the selected tasks first."""
    if claimed < selected:
        click.echo(
            f"{selected - claimed} of {selected} selected task(s) were claimed meanwhile by "
            "another autojob submit (or changed state) and are left to it: no task runs twice",
            err=True,
        )


def _wait(chosen: Executor, plan: Plan, allowed: frozenset[State]) -> int:
    """Run (or submit and follow) the plan with a progress bar; return how many failed."""
    from autojob.store.state import State  # noqa: PLC0415

    console = Console(stderr=True)
    counts: dict[str, int] = {}
    columns = (
        TextColumn("[bold]running"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("", total=len(plan.selected))

        def claimed(count: int) -> None:
            progress.update(bar, total=count)
            _left_to_others(len(plan.selected), count)

        def ended(_path: Path, state: TaskState) -> None:
            name = state.state.value
            counts[name] = counts.get(name, 0) + 1
            progress.update(
                bar, advance=1, description=", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            )

        try:
            results = chosen.run_here(plan, allowed=allowed, on_claimed=claimed, on_end=ended)
        except KeyboardInterrupt:
            chosen.stop_here()
            raise
        if results is None:
            done = chosen.submit(plan, allowed=allowed)
            progress.console.print(done.message)
            claimed(done.count)
            results = _follow(chosen, done.tasks, ended)
    good = sum(1 for s in results.values() if s.state is State.SUCCESS)
    click.echo(f"{good} of {len(results)} task(s) succeeded")
    return len(results) - good


def _follow(
    chosen: Executor, tasks: list[Path], ended: Callable[[Path, TaskState], None]
) -> dict[Path, TaskState]:
    """Ask the scheduler until every task has ended (and is accounted, where it accounts)."""
    import time  # noqa: PLC0415

    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.store.state import FINAL_STATES, read_state  # noqa: PLC0415

    done: dict[Path, TaskState] = {}
    while len(done) < len(tasks):
        states = {p: read_state(p) for p in tasks if p not in done}
        states.update(chosen.reconcile(list(states.items())))
        for path, state in states.items():
            if state.state in FINAL_STATES and (state.accounted or not chosen.accounts):
                done[path] = state
                ended(path, state)
        if len(done) < len(tasks):
            time.sleep(max(1.0, SETTINGS.SLURM_POLL_INTERVAL))
    return done
