"""``autojob restart``: a new attempt of one task, changed as asked, maybe submitted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from autojob.cli.options import ExistingDir

__all__ = ["restart", "submit_new_tasks"]


def submit_new_tasks(
    tasks: Sequence[Path], executor: str | None, root: Path, max_parallel: int | None = None
) -> str:
    """Submit new (idle) tasks with an executor; return what was done, in words."""
    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.execution import submit as run  # noqa: PLC0415
    from autojob.store.state import State  # noqa: PLC0415

    name = run.check_executor(executor or SETTINGS.DEFAULT_EXECUTOR)
    idle = frozenset({State.IDLE})
    selected = run.select_tasks(list(tasks), idle)
    if not selected:
        return "nothing to submit"
    if name == "slurm":
        jobs = run.slurm_arrays(
            selected,
            allowed=idle,
            max_parallel=max_parallel,
            batch_root=run.slurm_batch_root(root),
            dry_run=False,
        )
        ids = ", ".join(j.job_id or "?" for j in jobs)
        return f"submitted {len(selected)} task(s) to SLURM: {ids}"
    pid, claimed, log = run.start_background(
        run.plan(selected), max_parallel=max_parallel, allowed=idle
    )
    return f"submitted {claimed} task(s) to a local runner (pid {pid}); log: {log}"


@click.command("restart")
@click.argument("task_dir", type=ExistingDir)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change an input of the new attempt: a dotted path into inputs.json, a bare "
    "key meaning task_inputs (as in 'autojob new'). Repeatable.",
)
@click.option(
    "--scheduler",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a scheduler input (time=02:00:00, mem=8G). Repeatable.",
)
@click.option("--label", default=None, help="Label of the new attempt (default: the old one).")
@click.option(
    "--carry-over-limit",
    default=None,
    metavar="SIZE",
    help="Leave behind carried-over files larger than this (500K, 20M, 1G); a "
    "directory counts by its total size.",
)
@click.option("--submit", "do_submit", is_flag=True, help="Submit the new attempt at once.")
@click.option(
    "--executor",
    default=None,
    help="Where --submit runs it (default: SETTINGS.DEFAULT_EXECUTOR).",
)
def restart(
    task_dir: Path,
    assignments: tuple[str, ...],
    scheduler: tuple[str, ...],
    label: str | None,
    carry_over_limit: str | None,
    do_submit: bool,
    executor: str | None,
) -> None:
    """Create a new attempt of the task in TASK_DIR, in the same task group.

    The new attempt copies the inputs (with the changes given), carries over the
    files named by files_to_carry_over and files_to_copy, and is linked to the
    old attempt (tag restart-of:ID, field previous_attempt); the files named by
    files_to_delete are then removed from the old directory. No entry is ever
    followed through a symbolic link out of the task directory: such entries
    are left behind (carried over) or kept (deleted), with a warning. A task
    directory holding autojob.stop is never restarted.

    \b
    Examples:
      autojob restart study/Cu/j123456789 --scheduler time=04:00:00 --submit
      autojob restart study/Cu/j123456789 --set ecut=500 --carry-over-limit 100M
    """
    from autojob.next.restart import parse_size, restart_task  # noqa: PLC0415

    limit = parse_size(carry_over_limit) if carry_over_limit is not None else None
    made = restart_task(
        task_dir,
        assignments=list(assignments),
        scheduler=list(scheduler),
        size_limit=limit,
        label=label,
    )
    click.echo(f"created task {made.task_id} at {made.new} (a new attempt of {made.old.name})")
    for path in made.deleted:
        click.echo(f"deleted {path} (files_to_delete)")
    if do_submit:
        click.echo(submit_new_tasks([made.new], executor, made.new.parent))
