"""``autojob new``: create a task, task group, study or study group."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from autojob.cli.options import DirPath, ExistingDir
from autojob.cli.output import json_option, print_json, shown_path
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
    type=DirPath,
    default=None,
    help="Where to create it (default: the current directory; with --from, beside "
    "the source), created with its parents if missing. For --type task_group, the "
    "study to add it to.",
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
    "directories). Default: the label (with the new id appended where that name "
    "is taken), or the new id without a label; a task added to a task group is "
    "named by its id.",
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
    "--copy",
    "copies",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Copy FILE (relative to the current directory; a directory too) into the new "
    "task under its own name. Repeatable. A missing file is refused before anything "
    "is written.",
)
@click.option(
    "--link",
    "links",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Like --copy, but put a symbolic link to FILE's absolute path into the task.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --from: clone a task even while it is queued or running (its files "
    "may be half-written).",
)
@json_option()
def new(
    kind: Kind,
    dest: Path | None,
    src: Path | None,
    name_template: str | None,
    assignments: tuple[str, ...],
    label: str | None,
    copies: tuple[Path, ...],
    links: tuple[Path, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Create a new task, task group, study or study group directory.

    Directories are named by the label (a study's or study group's name), so
    the next command can name them; tasks added to a task group are named by
    their id. An existing name gets the id appended. A new task (or task
    group) needs a command: --set command='...'. A missing --dest is created
    (with its parents, as mkdir -p does) and said so.

    \b
    Examples:
      autojob new --type study_group --label screening
      autojob new --type study --dest screening --label relax
      autojob new --type task_group --dest screening/relax --label Cu --set command='python calc.py'
      autojob new --from screening/relax/Cu/*/ --set scheduler_inputs.time=02:00:00
      autojob new --dest runs/today --label hello --set command='echo hello' --json
    """
    from autojob.bases.input_files import InputFile  # noqa: PLC0415
    from autojob.create import new as create  # noqa: PLC0415  (keeps --help fast)

    if kind in ("study", "study_group") and (src or assignments or copies or links):
        raise InputError(
            f"--from and --set apply to tasks, not to a {kind} (as do --copy and --link)"
        )
    where = dest if dest is not None else Path()
    missing = dest is not None and not dest.exists()
    files = [InputFile(source=Path.cwd() / f, target=f.name) for f in copies]
    files += [InputFile(source=Path.cwd() / f, target=f.name, link=True) for f in links]
    fields = [*(["--copy"] * len(copies)), *(["--link"] * len(links))]
    create.check_files(files, fields)
    made: list[tuple[str, str, Path]] = []
    if kind == "study_group":
        sg, path = create.new_study_group(where, label=label, name_template=name_template)
        made.append(("study_group", sg.study_group_id, path))
    elif kind == "study":
        study, path = create.new_study(where, label=label, name_template=name_template)
        made.append(("study", study.study_id, path))
    elif kind == "task_group":
        group, path = create.new_task_group(
            where,
            label=label,
            assignments=list(assignments),
            name_template=name_template,
            src=src,
            force=force,
            files=files,
        )
        task = group.tasks[0]
        made.append(("task_group", group.task_group_id, path))
        made.append(("task", task.task_metadata.task_id, path / task.task_metadata.task_id))
    elif src is not None:
        task, path = create.clone_task(
            src,
            dest=dest,
            label=label,
            assignments=list(assignments),
            name_template=name_template,
            force=force,
            files=files,
        )
        made.append(("task", task.task_metadata.task_id, path))
    else:
        task, path = create.new_task(
            where,
            label=label,
            assignments=list(assignments),
            name_template=name_template,
            files=files,
        )
        made.append(("task", task.task_metadata.task_id, path))
    _say(made, dest if missing else None, as_json)


def _say(made: list[tuple[str, str, Path]], new_dest: Path | None, as_json: bool) -> None:
    """Tell what was created: the missing destination, then each directory."""
    if as_json:
        print_json(
            {
                "created": [{"kind": k, "id": i, "path": str(p)} for k, i, p in made],
                "created_dest": None if new_dest is None else str(new_dest),
            }
        )
        return
    if new_dest is not None:
        click.echo(f"created the directory {shown_path(new_dest)} (--dest did not exist)")
    for kind, item_id, path in made:
        click.echo(f"created {kind.replace('_', ' ')} {item_id} at {shown_path(path)}")
