"""``autojob advance``: create the next workflow steps' tasks after a task succeeded."""

from __future__ import annotations

from pathlib import Path

import click

from autojob.cli.options import ExistingDir, executor_option
from autojob.cli.output import json_option, print_json, shown_path, submission_json

__all__ = ["advance"]


@click.command("advance")
@click.argument("task_dir", type=ExistingDir)
@click.option("--submit", "do_submit", is_flag=True, help="Submit the tasks created.")
@executor_option("Where --submit runs them")
@click.option("--dry-run", is_flag=True, help="Say which steps follow; change nothing.")
@json_option()
def advance(
    task_dir: Path, do_submit: bool, executor: str | None, dry_run: bool, as_json: bool
) -> None:
    """Record the succeeded task in TASK_DIR and create the next steps' tasks.

    The task's id is added to its study's record.txt (once). Each step after
    the task's step in workflow.json then creates its tasks as
    parameterizations.json says: an independent step at once, for this task;
    a dependent step once every task of the steps before it is recorded.
    Running advance again creates nothing twice. Task scripts call it when
    their command succeeds. A task (or study) holding autojob.stop is refused.
    """
    from autojob.cli.restart import submit_new_tasks  # noqa: PLC0415
    from autojob.execution.executor import chosen_executor  # noqa: PLC0415
    from autojob.next.advance import advance as move_on  # noqa: PLC0415

    if do_submit:  # refused before anything is created
        executor = chosen_executor(executor).name
    result = move_on(task_dir, dry_run=dry_run)
    submitting = do_submit and bool(result.created)
    if as_json:
        done = submit_new_tasks(result.created, executor, result.study_dir) if submitting else None
        print_json(
            {
                "task": str(result.task_dir),
                "study": str(result.study_dir),
                "step": result.step,
                "recorded": result.recorded,
                "created": [str(p) for p in result.created],
                "existing": [str(p) for p in result.existing],
                "waiting": result.waiting,
                "submission": submission_json(done),
            }
        )
        return
    if result.recorded:
        click.echo(f"recorded {result.task_dir.name} in {result.study_dir.name}")
    for path in result.created:
        click.echo(f"created task {path.name} at {shown_path(path)}")
    for path in result.existing:
        click.echo(f"already created: {shown_path(path)}")
    for line in result.waiting:
        click.echo(line)
    if not result.created and not result.waiting and not result.existing:
        click.echo("no step follows this task's step" if result.step else "no workflow")
    if submitting:
        done = submit_new_tasks(result.created, executor, result.study_dir)
        click.echo("; ".join([done.message, *done.details]))
