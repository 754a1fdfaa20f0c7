"""``autojob sweep``: write a study from a parameter sweep specification."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from autojob.cli.options import ExistingDir
from autojob.cli.output import (
    TABLE_ROWS,
    all_option,
    json_option,
    more_rows,
    print_json_streamed,
    shown_path,
)

if TYPE_CHECKING:
    from autojob.create.sweep import SweepResult
    from autojob.task_group import TaskGroup

__all__ = ["sweep"]


@click.command("sweep")
@click.argument(
    "spec", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="SPEC"
)
@click.option(
    "-d",
    "--dest",
    type=ExistingDir,
    default=Path(),
    help="Where to write the study (a study group adds it). Default: here.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the spec as the real run does, print the table of combinations (marking "
    "those an existing study has) and check the input files; write nothing.",
)
@all_option("combination")
@json_option("Print the study written (or with --dry-run the combinations) as JSON (docs/json.md).")
def sweep(spec: Path, dest: Path, dry_run: bool, show_all: bool, as_json: bool) -> None:
    """Write the study SPEC describes: one task group per combination of parameters.

    SPEC is TOML (or YAML, by a .yaml/.yml suffix) with the keys: name (of the
    study), command ({param} is replaced by the shell-quoted value), task_class,
    inputs (fixed task inputs), scheduler (scheduler inputs), parameters (every
    combination of these lists), zip (lists taken side by side), label
    (template of task labels), files (input files copied into every task),
    study_template, task_group_template, task_template (directory names), step
    (the sweep's step name) and steps (workflow steps after the sweep: name,
    after, progression, task_class, set, references). A parameter name is a
    dotted path into inputs.json.

    files lists paths relative to SPEC, or tables {src, dest, link}: dest is
    the path inside the task (default: the file's name), link = true links
    instead of copying; src and dest may hold {param}, {label} and {i}
    (src = "structures/{ecut}.traj"). A missing file is refused, naming the
    file and the combination, before anything is written.

    When the study exists already (run again after adding values), only the
    combinations it lacks (and new steps) are added; existing tasks are never
    touched. --dry-run marks which combinations exist and which are new.
    Inputs, scheduler inputs, parameter names and the steps' set paths are
    checked as 'autojob new --set' checks them (a typo is refused with its line
    and the nearest names), and --dry-run checks everything the real run checks.
    Its table shows the first 50 combinations unless --all.

    \b
    Example spec (ecut.toml):
      name = "ecut"
      command = "python calc.py --ecut {ecut} --kpts {kpts}"
      files = ["calc.py"]
      [scheduler]
      time = "01:00:00"
      [parameters]
      ecut = [300, 400, 500]
      kpts = [4, 8]

    \b
    Examples:
      echo 'import sys; print(sys.argv[1:])' > calc.py
      autojob sweep ecut.toml --dry-run
      autojob sweep ecut.toml
      autojob sweep ecut.toml --dry-run --json
    """
    from autojob.create.sweep import (  # noqa: PLC0415
        check_combinations,
        existing_combinations,
        load_spec,
        study_dir_of,
        sweep_into,
        table_rows,
    )

    parsed = load_spec(spec)
    if dry_run:
        check_combinations(parsed, spec.parent)  # every check of the real run, writing nothing
        study_dir = study_dir_of(parsed, dest)
        existing = existing_combinations(study_dir, parsed) if study_dir else None
        header, rows = table_rows(parsed, existing)
        if as_json:
            keys = [str(c) or "status" for c in header]
            combinations = (dict(zip(keys, row, strict=True)) for row in rows)
            print_json_streamed(
                {"study": parsed.name, "dry_run": True, "combinations": combinations}
            )
        else:
            _print_combinations(parsed.name, header, rows, show_all)
        return
    summaries: list[dict[str, object]] = []  # what --json prints of each group written
    result = sweep_into(
        parsed, dest, base=spec.parent, on_group=_summarised(summaries) if as_json else None
    )
    if as_json:
        _print_json(result, summaries)
        return
    study, path, groups = result.study, shown_path(result.path), result.study.task_groups
    if not result.grown:
        click.echo(f"created study {study.study_id} at {path} ({result.added} task groups)")
        if parsed.steps:
            click.echo(f"with a workflow of {len(parsed.steps) + 1} steps")
        return
    if result.added:
        labels = ", ".join(group.label for group in groups[:10])
        labels += f", ... ({result.added - 10} more)" if result.added > 10 else ""
        click.echo(
            f"added {result.added} task group(s) to study {study.study_id} at {path}: {labels} "
            f"({result.existing} combination(s) there already, left as they are)"
        )
    else:
        click.echo(f"nothing to add: all {result.existing} combination(s) are in {path} already")
    if result.added_steps:
        click.echo(f"added step(s): {', '.join(result.added_steps)}")


def _print_combinations(
    name: str, header: Sequence[object], rows: Iterable[Sequence[object]], show_all: bool
) -> None:
    """The table of combinations (the first :data:`TABLE_ROWS` unless ``show_all``).

    The rows are taken one at a time: those not shown are counted, not kept.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table()
    for column in header:
        table.add_column(str(column))
    total = 0
    for row in rows:
        total += 1
        if show_all or total <= TABLE_ROWS:
            table.add_row(*(str(v) for v in row))
    console = Console()
    console.print(f"{total} combination(s) of {name}:")
    console.print(table)
    more = more_rows(len(table.rows), total, "combination(s)")
    if more:
        click.echo(more)


def _summarised(summaries: list[dict[str, object]]) -> Callable[[TaskGroup], None]:
    """A callback keeping what --json prints of each group written (ids and label only)."""

    def keep(group: TaskGroup) -> None:
        tasks = [t.task_metadata.task_id for t in group.tasks]
        summaries.append({"id": group.task_group_id, "label": group.label, "tasks": tasks})

    return keep


def _print_json(result: SweepResult, summaries: list[dict[str, object]]) -> None:
    """What a sweep wrote, as --json prints it (its task groups streamed)."""
    study = result.study
    groups: Iterator[dict[str, object]] = iter(summaries)
    print_json_streamed(
        {
            "study_id": study.study_id,
            "path": str(result.path),
            "grown": result.grown,
            "existing": result.existing,
            "added_steps": result.added_steps,
            "task_groups": groups,
        }
    )
