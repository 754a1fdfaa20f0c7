"""``autojob restart``: a new attempt of one task, changed as asked, maybe submitted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from autojob.cli.options import (
    ExistingDir,
    calc_set_assignments,
    calc_set_option,
    executor_option,
)
from autojob.cli.output import json_option, print_json, shown_path, submission_json

if TYPE_CHECKING:
    from autojob.execution.executor import Submission

__all__ = ["restart", "submit_new_tasks"]


def submit_new_tasks(
    tasks: Sequence[Path], executor: str | None, root: Path, max_parallel: int | None = None
) -> Submission:
    """Submit new (idle) tasks with an executor; return what was done."""
    from autojob.execution.submit import submit_tasks  # noqa: PLC0415
    from autojob.store.state import State  # noqa: PLC0415

    return submit_tasks(
        list(tasks),
        executor=executor,
        allowed=frozenset({State.IDLE}),
        max_parallel=max_parallel,
        root=root,
    )


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
    help="Change a scheduler input (time=02:00:00, mem=8G): a declared field or a "
    "long option of sbatch, checked as 'autojob new --set' checks them. Repeatable.",
)
@calc_set_option("the new attempt")
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
    "--force",
    is_flag=True,
    help="Restart a task even while it is queued or running: its files may be "
    "half-written, and nothing is deleted from it (files_to_delete stay).",
)
@executor_option("Where --submit runs it")
@json_option()
def restart(
    task_dir: Path,
    assignments: tuple[str, ...],
    scheduler: tuple[str, ...],
    calc_set: tuple[str, ...],
    label: str | None,
    carry_over_limit: str | None,
    do_submit: bool,
    force: bool,
    executor: str | None,
    as_json: bool,
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
      autojob new --label Cu --name-template '{label}' --set command='echo relaxing'
      autojob restart Cu --scheduler time=04:00:00 --submit
      autojob restart Cu --set command='echo again' --carry-over-limit 100M --json
    """
    from autojob.execution.executor import chosen_executor  # noqa: PLC0415
    from autojob.next.restart import parse_size, restart_task  # noqa: PLC0415

    if do_submit:  # refused before anything is created
        executor = chosen_executor(executor).name
    limit = parse_size(carry_over_limit) if carry_over_limit is not None else None
    made = restart_task(
        task_dir,
        assignments=[*assignments, *calc_set_assignments(calc_set)],
        scheduler=list(scheduler),
        size_limit=limit,
        label=label,
        force=force,
    )
    if as_json:
        done = submit_new_tasks([made.new], executor, made.new.parent) if do_submit else None
        print_json(
            {
                "task_id": made.task_id,
                "path": str(made.new),
                "previous": str(made.old),
                "deleted": [str(p) for p in made.deleted],
                "submission": submission_json(done),
            }
        )
        return
    click.echo(
        f"created task {made.task_id} at {shown_path(made.new)} (a new attempt of {made.old.name})"
    )
    for path in made.deleted:
        click.echo(f"deleted {shown_path(path)} (files_to_delete)")
    if do_submit:
        done = submit_new_tasks([made.new], executor, made.new.parent)
        click.echo("; ".join([done.message, *done.details]))
