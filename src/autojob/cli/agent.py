"""``autojob agent`` (also ``_jobarchitect_agent``): run a tool on dataset items."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from autojob.datasets.provenance import AgentSummary, ItemRecord

__all__ = ["agent", "agent_main", "analyse_by_ids_main"]


@click.command("agent")
@click.option(
    "--tool_path",
    "--tool-path",
    "tool_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The smart tool (or CWL tool).",
)
@click.option(
    "--input_dataset_path",
    "--input-dataset-path",
    "dataset",
    required=True,
    help="Path or URI of the input dtool dataset.",
)
@click.option(
    "--output_root",
    "--output-root",
    "output_root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Outputs go to OUTPUT_ROOT/<item relpath>.",
)
@click.option("--cwl-backend", is_flag=True, help="Run TOOL (a CWL CommandLineTool) via cwltool.")
@click.option(
    "--output-directory",
    "output_directory",
    is_flag=True,
    help="Give the smart tool --output-directory OUTPUT_ROOT/<item relpath> (a "
    "directory the agent creates), as jobarchitect 0.7.0 did, instead of --output-path.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Items processed at once.",
)
@click.option(
    "--preload",
    is_flag=True,
    help="Start Python and open the dataset once, then fork a child per item "
    "that runs the smart tool as a script (much faster for short tools).",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the run's summary with every item's provenance to this file.",
)
@click.option(
    "--freeze-output",
    default=None,
    metavar="NAME",
    help="When every item succeeded, freeze the output root as a new dtool dataset NAME beside it.",
)
@click.argument("identifiers", nargs=-1)
def agent(
    tool_path: Path,
    dataset: str,
    output_root: Path,
    cwl_backend: bool,
    output_directory: bool,
    jobs: int,
    preload: bool,
    record: Path | None,
    freeze_output: str | None,
    identifiers: tuple[str, ...],
) -> None:
    """Run the tool on each item IDENTIFIER of the dataset (all items if none given).

    Items whose outputs are complete from an earlier run are skipped. A failing
    item is reported with its standard error; the others still run, and the
    exit status is 1.
    """
    from autojob.datasets.agent import AgentRequest, run_agent  # noqa: PLC0415

    request = AgentRequest(
        tool_path=tool_path,
        dataset=dataset,
        output_root=output_root,
        identifiers=identifiers,
        cwl_backend=cwl_backend,
        output_directory=output_directory,
        jobs=jobs,
        preload=preload,
        record=record,
        freeze_output=freeze_output,
    )
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    # drawn on a terminal only: a job's log gets no progress bar
    progress = Progress(
        TextColumn("agent"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, auto_refresh=False, disable=not console.is_terminal,
    )  # fmt: skip
    # no refresh thread: --preload forks, and a fork must not copy a held lock
    with progress:
        bar = progress.add_task("items", total=len(identifiers) or None)

        def advance(item: ItemRecord, skipped: bool) -> None:
            progress.advance(bar)
            progress.refresh()

        summary = run_agent(request, on_done=advance)
    _report(console, summary, freeze=freeze_output is not None)
    if summary.failures:
        sys.exit(1)


def _report(console: Console, summary: AgentSummary, *, freeze: bool) -> None:
    for item in summary.failures:
        console.print(
            f"[red]failed[/] item {item.identifier} ({item.relpath}): the tool exited "
            f"with status {item.exit_code}",
            markup=True,
        )
        tail = item.stderr_tail.strip()
        if tail:
            console.print(tail, markup=False)
    colour = "red" if summary.failures else "green"
    console.print(
        f"[{colour}]{summary.n_items} item(s): {summary.n_run} run, "
        f"{summary.n_skipped} skipped (complete), {summary.n_failed} failed[/]",
        markup=True,
    )
    if freeze and summary.failures:
        console.print("outputs not frozen: some items failed", markup=False)
    elif summary.frozen_output_uri:
        console.print(f"outputs frozen as {summary.frozen_output_uri}", markup=False)


def analyse_by_ids_main() -> None:
    """``_analyse_by_ids``, jobarchitect 0.7.0's name of its agent: tools get --output-directory."""
    from autojob.cli.main import main  # noqa: PLC0415

    main(["--output-directory", *sys.argv[1:]], command="agent", prog_name="_analyse_by_ids")


def agent_main() -> None:
    """The ``_jobarchitect_agent`` command: ``autojob agent`` under its own name."""
    from autojob.cli.main import main  # noqa: PLC0415

    main(sys.argv[1:], command="agent", prog_name="_jobarchitect_agent")
