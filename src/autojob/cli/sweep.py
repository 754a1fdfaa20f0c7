"""``autojob sweep``: write a study from a parameter sweep specification."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from autojob.cli.options import ExistingDir

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
    help="Check the spec as the real run does and print the table of combinations; write nothing.",
)
def sweep(spec: Path, dest: Path, dry_run: bool) -> None:
    """Write the study SPEC describes: one task group per combination of parameters.

    SPEC is TOML (or YAML, by a .yaml/.yml suffix) with the keys: name (of the
    study), command ({param} is replaced by the shell-quoted value), task_class,
    inputs (fixed task inputs), scheduler (scheduler inputs), parameters (every
    combination of these lists), zip (lists taken side by side), label
    (template of task labels), study_template, task_group_template,
    task_template (directory names), step (the sweep's step name) and steps
    (workflow steps after the sweep: name, after, progression, task_class, set,
    references). A parameter name is a dotted path into inputs.json. Inputs,
    scheduler inputs, parameter names and the steps' set paths are checked as
    'autojob new --set' checks them (a typo is refused with its line and the
    nearest names), and --dry-run checks everything the real run checks.

    \b
    Example spec:
      name = "ecut"
      command = "python calc.py --ecut {ecut} --kpts {kpts}"
      [scheduler]
      time = "01:00:00"
      [parameters]
      ecut = [300, 400, 500]
      kpts = [4, 8]
    """
    from autojob.create import sweep as create  # noqa: PLC0415

    parsed = create.load_spec(spec)
    if dry_run:
        create.build_study(parsed)  # every check of the real run, writing nothing
        header, rows = create.table_rows(parsed)
        table = Table()
        for column in header:
            table.add_column(str(column))
        for row in rows:
            table.add_row(*(str(v) for v in row))
        console = Console()
        console.print(f"{len(rows)} combination(s) of {parsed.name}:")
        console.print(table)
        return
    study, path = create.write_sweep(parsed, dest)
    click.echo(f"created study {study.study_id} at {path} ({len(study.task_groups)} task groups)")
    if parsed.steps:
        click.echo(f"with a workflow of {len(parsed.steps) + 1} steps")
