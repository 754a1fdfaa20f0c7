"""``autojob submit``: run tasks with an executor."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autojob.cli.options import ExistingDir

if TYPE_CHECKING:
    from autojob.execution.local import RunSpec
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
@click.option(
    "--executor",
    default=None,
    help="Where tasks run: 'local' (this machine's cores) or 'slurm' (job arrays). "
    "Default: SETTINGS.DEFAULT_EXECUTOR.",
)
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
    "(started, but whose process died without recording an end).",
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
    moves to autojob.history/).
    """
    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.execution import submit as run  # noqa: PLC0415
    from autojob.store.state import State  # noqa: PLC0415

    executor = run.check_executor(executor or SETTINGS.DEFAULT_EXECUTOR)
    allowed = frozenset(State(s) for s in only) if only else run.DEFAULT_ONLY
    selected = run.select_tasks(list(paths) or [Path()], allowed, dry_run=dry_run)
    if executor == "slurm":
        _submit_slurm(run, selected, allowed, max_parallel, list(paths) or [Path()], dry_run, wait)
        return
    parallel = max_parallel or run.default_parallelism()
    if dry_run:
        _print_plan(selected, executor, parallel)
        return
    if not selected:
        click.echo("nothing to submit: no task under the paths is " + " or ".join(sorted(allowed)))
        return
    specs = run.plan(selected)
    if not wait:
        pid, claimed, log = run.start_background(specs, max_parallel=parallel, allowed=allowed)
        click.echo(f"submitted {claimed} task(s) to a local runner (pid {pid}, {parallel} at once)")
        _left_to_others(len(specs), claimed)
        click.echo(f"runner log: {log}")
        click.echo("follow with: autojob status --watch " + " ".join(str(p) for p in paths))
        return
    bad = _run_with_progress(specs, parallel, allowed)
    if bad:
        raise SystemExit(1)


def _submit_slurm(
    run: Any,
    selected: list[Selected],
    allowed: frozenset[State],
    max_parallel: int | None,
    paths: list[Path],
    dry_run: bool,
    wait: bool,
) -> None:

    if not selected:
        click.echo("nothing to submit: no task under the paths is " + " or ".join(sorted(allowed)))
        return
    batch_root = run.slurm_batch_root(paths[0])
    jobs = run.slurm_arrays(
        selected, allowed=allowed, max_parallel=max_parallel, batch_root=batch_root, dry_run=dry_run
    )
    if dry_run:
        for job in jobs:
            click.echo(f"# {len(job.tasks)} task(s): {shlex.join(job.command())}")
            click.echo(job.script())
        click.echo(
            f"{sum(len(j.tasks) for j in jobs)} task(s) would go in {len(jobs)} sbatch call(s)"
        )
        return
    tasks = [path for job in jobs for _, path in job.elements()]
    ids = ", ".join(j.job_id or "?" for j in jobs)
    click.echo(f"submitted {len(tasks)} task(s) in {len(jobs)} job array(s): {ids}")
    _left_to_others(len(selected), len(tasks))
    if wait and _wait_slurm(tasks):
        raise SystemExit(1)


def _left_to_others(selected: int, claimed: int) -> None:
    """Tell that another submit claimed some of the selected tasks first."""
    if claimed < selected:
        click.echo(
            f"{selected - claimed} of {selected} selected task(s) were claimed meanwhile by "
            "another autojob submit (or changed state) and are left to it: no task runs twice",
            err=True,
        )


def _wait_slurm(tasks: list[Path]) -> int:
    """Poll until every task has ended; return how many did not succeed."""
    import time  # noqa: PLC0415

    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.execution.slurm import reconcile  # noqa: PLC0415
    from autojob.store.state import FINAL_STATES, State, read_state  # noqa: PLC0415

    console = Console(stderr=True)
    columns = (TextColumn("[bold]waiting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("", total=len(tasks))
        while True:
            states = {p: read_state(p) for p in tasks}
            states.update(reconcile(list(states.items())))
            done = [s for s in states.values() if s.state in FINAL_STATES and s.accounted]
            progress.update(bar, completed=len(done))
            if len(done) == len(tasks):
                break
            time.sleep(max(1.0, SETTINGS.SLURM_POLL_INTERVAL))
    good = sum(1 for s in states.values() if s.state is State.SUCCESS)
    click.echo(f"{good} of {len(tasks)} task(s) succeeded")
    return len(tasks) - good


def _run_with_progress(specs: list[RunSpec], parallel: int, allowed: frozenset[State]) -> int:
    from autojob.execution.local import LocalRunner  # noqa: PLC0415
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
        bar = progress.add_task("", total=len(specs))

        def ended(_path: Path, state: TaskState) -> None:
            name = state.state.value
            counts[name] = counts.get(name, 0) + 1
            progress.update(
                bar, advance=1, description=", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            )

        runner = LocalRunner(specs, max_parallel=parallel, on_end=ended)
        claimed = runner.claim(allowed)
        progress.update(bar, total=len(claimed))
        _left_to_others(len(specs), len(claimed))
        try:
            results = runner.run()
        except KeyboardInterrupt:
            runner.stop()
            raise
    good = sum(1 for s in results.values() if s.state is State.SUCCESS)
    click.echo(f"{good} of {len(results)} task(s) succeeded")
    return len(results) - good


def _print_plan(selected: list[Selected], executor: str, parallel: int) -> None:
    table = Table(
        title=f"{len(selected)} task(s) would run with the {executor} executor, {parallel} at once",
        title_justify="left",
    )
    for column in ("task directory", "state", "time limit", "command"):
        table.add_column(column, overflow="fold")
    for item in selected:
        limit = "" if item.spec.time_limit is None else f"{item.spec.time_limit:g} s"
        table.add_row(str(item.spec.path), item.state.state.value, limit, item.command or "")
    Console().print(table)
