"""``autojob resubmit``: new attempts of tasks that ended badly, and submit them."""

from __future__ import annotations

from pathlib import Path

import click

from autojob.cli.options import (
    ExistingDir,
    calc_set_assignments,
    calc_set_option,
    executor_option,
)

__all__ = ["resubmit"]

CAUSES = ["timeout", "oom", "failed", "node_fail", "preempted", "cancelled", "unknown"]
DEFAULT_CAUSES = ("timeout", "oom", "failed", "node_fail", "preempted")


@click.command("resubmit")
@click.argument("paths", nargs=-1, required=True, type=ExistingDir)
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(CAUSES),
    help="Restart tasks that ended so (repeatable). Default: " + ", ".join(DEFAULT_CAUSES) + ".",
)
@click.option(
    "--time-factor", type=float, default=1.0, show_default=True, help="Multiply the time limit."
)
@click.option(
    "--mem-factor",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply the memory asked for.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change an input of the new attempts (as in 'autojob new').",
)
@calc_set_option("the new attempts")
@executor_option("Where the new attempts run")
@click.option(
    "-j", "--max-parallel", type=click.IntRange(min=1), default=None, help="Tasks run at once."
)
@click.option("--dry-run", is_flag=True, help="List what would be restarted; change nothing.")
@click.option("--no-submit", is_flag=True, help="Create the new attempts but do not submit them.")
@click.option(
    "--auto",
    is_flag=True,
    help="An automatic restart (task scripts use it): only within each task's budget "
    "(max_attempts), with its own restart_time_factor and restart_max_time.",
)
def resubmit(
    paths: tuple[Path, ...],
    only: tuple[str, ...],
    time_factor: float,
    mem_factor: float,
    assignments: tuple[str, ...],
    calc_set: tuple[str, ...],
    executor: str | None,
    max_parallel: int | None,
    dry_run: bool,
    no_submit: bool,
    auto: bool,
) -> None:
    """Restart the tasks under PATHS whose newest attempt ended badly.

    Each gets a new attempt in the same task group, with its inputs, carried-over
    files and scaled resources, submitted on its own.

    A task directory holding an autojob.stop file is never restarted.

    \b
    Examples:
      autojob new --label hello --set command='echo hello'
      autojob submit --wait
      autojob resubmit . --only timeout --time-factor 2
      autojob resubmit . --only oom --mem-factor 1.5 --dry-run
    """
    from autojob.execution.executor import chosen_executor  # noqa: PLC0415
    from autojob.execution.submit import submit_tasks  # noqa: PLC0415
    from autojob.next.resubmit import plan_resubmission, within_budget  # noqa: PLC0415
    from autojob.next.resubmit import resubmit as make_attempts  # noqa: PLC0415
    from autojob.store.state import State  # noqa: PLC0415

    executor = chosen_executor(executor).name
    attempts = plan_resubmission(list(paths), list(only or DEFAULT_CAUSES))
    if auto:
        allowed = []
        for attempt in attempts:
            ok, why = within_budget(attempt)
            click.echo(f"{'restarting' if ok else 'not restarting'} {attempt.old}: {why}")
            if ok:
                allowed.append(attempt)
        attempts = allowed
    if not attempts:
        click.echo(
            "nothing to restart: no newest attempt ended in " + ", ".join(only or DEFAULT_CAUSES)
        )
        return
    for attempt in attempts:
        extra = attempt.reason not in (None, attempt.state.value)
        why = attempt.state.value + (f" ({attempt.reason})" if extra else "")
        click.echo(f"{'would restart' if dry_run else 'restarting'} {attempt.old} ({why})")
    if dry_run:
        return
    made = make_attempts(
        attempts,
        time_factor=time_factor,
        mem_factor=mem_factor,
        assignments=[*assignments, *calc_set_assignments(calc_set)],
        auto=auto,
    )
    new = [a.new for a in made if a.new is not None]
    for path in new:
        click.echo(f"created task {path.name} at {path}")
    if no_submit:
        return
    done = submit_tasks(
        new,
        executor=executor,
        allowed=frozenset({State.IDLE}),
        max_parallel=max_parallel,
        root=paths[0],
    )
    click.echo(done.message)
    for line in done.details:
        click.echo(line)
