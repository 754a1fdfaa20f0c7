"""``autojob sketch`` (also ``sketchjob``): job scripts over a dataset's items, in batches."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from autojob.cli.output import json_option, print_json

__all__ = ["sketch", "sketchjob_main"]


def _name_values(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", ctx=ctx, param=param)
        pairs[name.strip()] = text
    return pairs


@click.command("sketch")
@click.argument("tool", type=click.Path(path_type=Path))
@click.argument("dataset")
@click.argument("output_root", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-n",
    "--nchunks",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Batches to split the items into (near-equal sizes).",
)
@click.option(
    "-b",
    "--backend",
    type=click.Choice(["bash", "docker", "singularity"]),
    default="bash",
    show_default=True,
    help="Where the agent runs.",
)
@click.option(
    "-i",
    "--image-name",
    default=None,
    help="Container image (docker, singularity); the agent must be on its PATH.",
)
@click.option(
    "-s",
    "--wrapper-script",
    "wrapper",
    type=click.Choice(["bash", "slurm-single", "slurm-multiple"]),
    default="bash",
    show_default=True,
    help="bash: one script; slurm-single: one SLURM job running every batch; "
    "slurm-multiple: a SLURM job array, one element per batch.",
)
@click.option("--cwl-backend", is_flag=True, help="TOOL is a CWL CommandLineTool run by cwltool.")
@click.option(
    "--output-directory",
    "output_directory",
    is_flag=True,
    help="TOOL takes --output-directory (jobarchitect 0.7.0's smart tools), not --output-path.",
)
@click.option(
    "--overlay-filter",
    default=None,
    metavar="NAME",
    help="Only items whose boolean overlay (or annotation) NAME is true.",
)
@click.option(
    "--sbatch",
    "sbatch",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_name_values,
    help="A SLURM option for the slurm wrappers and the study's tasks "
    "(e.g. --sbatch time=01:00:00 --sbatch partition=short); repeat as needed.",
)
@click.option(
    "--study",
    "study_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write an autojob study (one task per batch) at this new directory "
    "instead of printing the script.",
)
@json_option(
    "Print one JSON document (docs/json.md): the study written by --study, else the "
    "script with its batches."
)
def sketch(
    tool: Path,
    dataset: str,
    output_root: Path,
    nchunks: int,
    backend: str,
    image_name: str | None,
    wrapper: str,
    cwl_backend: bool,
    output_directory: bool,
    overlay_filter: str | None,
    sbatch: dict[str, str],
    study_dir: Path | None,
    as_json: bool,
) -> None:
    """Split DATASET's items into batches; print a job script running TOOL on each.

    Each batch becomes a call of the agent (_jobarchitect_agent), which runs
    'python TOOL --dataset-path DATASET --identifier ID --output-path OUT' per item,
    with OUT under OUTPUT_ROOT. The script exits non-zero if any item fails.
    """
    from autojob.datasets.sketch import (  # noqa: PLC0415
        SketchRequest,
        prepare_sketch,
        render_script,
        write_study,
    )

    request = SketchRequest.model_validate(
        {
            "tool_path": tool,
            "dataset": dataset,
            "output_root": output_root,
            "nchunks": nchunks,
            "backend": backend,
            "image_name": image_name,
            "wrapper": wrapper,
            "cwl_backend": cwl_backend,
            "output_directory": output_directory,
            "overlay_filter": overlay_filter,
            "sbatch": sbatch,
        }
    )
    plan = prepare_sketch(request)
    if study_dir is None:
        script = render_script(plan)
        if as_json:
            print_json(
                {"study": None, "script": script, "tasks": len(plan.batches), "items": plan.n_items}
            )
        else:
            click.echo(script, nl=False)
        return
    written = write_study(plan, study_dir)
    if as_json:
        print_json(
            {
                "study": str(written),
                "script": None,
                "tasks": len(plan.batches),
                "items": plan.n_items,
            }
        )
        return
    Console(stderr=True, soft_wrap=True).print(
        f"wrote the study [bold]{written}[/]: {len(plan.batches)} task(s), "
        f"{plan.n_items} item(s); run it with 'autojob submit {written}'",
        highlight=False,
    )


def sketchjob_main() -> None:
    """The ``sketchjob`` command: ``autojob sketch`` under its own name."""
    from autojob.cli.main import main  # noqa: PLC0415

    main(sys.argv[1:], command="sketch", prog_name="sketchjob")
