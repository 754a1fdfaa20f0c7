"""``autojob new``: create a task, task group, study or study group."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from autojob.cli.options import ExistingDir
from autojob.errors import InputError

__all__ = ["new"]

Kind = Literal["task", "task_group", "study", "study_group"]


@click.command("new")
@click.option(
    "--type",
    "kind",
    default="task",
    show_default=True,
    type=click.Choice(["task", "task_group", "study", "study_group"]),
    help="What to create.",
)
@click.option(
    "-d",
    "--dest",
    type=ExistingDir,
    default=None,
    help="Where to create it (default: the current directory; with --from, beside "
    "the source). For --type task_group, the study to add it to.",
)
@click.option(
    "--from",
    "src",
    type=ExistingDir,
    default=None,
    help="Clone this task directory: its inputs, scheduler inputs and the files "
    "named by its files_to_carry_over.",
)
@click.option(
    "--name-template",
    default=None,
    help="Directory name from metadata fields, e.g. '{label}-{i}' ({i} numbers "
    "directories). Default: the new id.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set an input: a dotted path into inputs.json, a bare key meaning "
    "task_inputs (command='python calc.py', scheduler_inputs.time=01:00:00). "
    "Values are parsed as JSON where they parse. A key the task class or sbatch "
    "does not take is refused with the nearest names; an option sbatch does not "
    "list goes in scheduler_inputs.extra_directives='[\"--name=value\"]'; a "
    "memory needs a unit (8G). Repeatable.",
)
@click.option("--label", default=None, help="Label of the task (name of a study or study group).")
@click.option(
    "--force",
    is_flag=True,
    help="With --from: clone a task even while it is queued or running (its files "
    "may be half-written).",
)
def new(
    kind: Kind,
    dest: Path | None,
    src: Path | None,
    name_template: str | None,
    assignments: tuple[str, ...],
    label: str | None,
    force: bool,
) -> None:
    """Create a new task, task group, study or study group directory.

    A new task (or task group) needs a command: --set command='...'.

    \b
    Examples:
      autojob new --type study_group --label screening
      autojob new --type study --dest screening --label relax
      autojob new --type task_group --dest screening/relax --set command='python calc.py'
      autojob new --from screening/relax/c123456789/j123456789 --set scheduler_inputs.time=02:00:00
    """
    from autojob.create import new as create  # noqa: PLC0415  (keeps --help fast)

    if kind in ("study", "study_group") and (src or assignments):
        raise InputError(f"--from and --set apply to tasks, not to a {kind}")
    where = dest if dest is not None else Path()
    if kind == "study_group":
        sg, path = create.new_study_group(where, label=label, name_template=name_template)
        _say("study group", sg.study_group_id, path)
    elif kind == "study":
        study, path = create.new_study(where, label=label, name_template=name_template)
        _say("study", study.study_id, path)
    elif kind == "task_group":
        group, path = create.new_task_group(
            where,
            label=label,
            assignments=list(assignments),
            name_template=name_template,
            src=src,
            force=force,
        )
        _say("task group", group.task_group_id, path)
        task = group.tasks[0]
        _say("task", task.task_metadata.task_id, path / task.task_metadata.task_id)
    elif src is not None:
        task, path = create.clone_task(
            src,
            dest=dest,
            label=label,
            assignments=list(assignments),
            name_template=name_template,
            force=force,
        )
        _say("task", task.task_metadata.task_id, path)
    else:
        task, path = create.new_task(
            where,
            label=label,
            assignments=list(assignments),
            name_template=name_template,
        )
        _say("task", task.task_metadata.task_id, path)


def _say(kind: str, item_id: str, path: Path) -> None:
    click.echo(f"created {kind} {item_id} at {path}")
