"""``autojob report``: one self-contained HTML page about the tasks under a directory."""

from __future__ import annotations

from pathlib import Path

import click

from autojob.cli.options import ExistingDir

__all__ = ["report"]


@click.command("report")
@click.argument("path", type=ExistingDir, default=Path())
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write (replaced atomically).",
)
@click.option(
    "--plot",
    "plots",
    multiple=True,
    metavar="OUTPUT:PARAM",
    help="Also plot a result against the parameter swept, e.g. outputs.energy:cutoff "
    "(dotted fields of the harvest records; a bare name is looked up in metadata, "
    "outputs, then task_inputs). Repeat for several plots.",
)
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="For --plot: the archive of an earlier 'autojob harvest' of PATH, whose cache "
    "gives the fields of the tasks unchanged since [default: archive.json, where "
    "'autojob harvest' writes it].",
)
@click.option("--rescan", is_flag=True, help="Walk the whole tree instead of trusting the index.")
def report(
    path: Path, output: Path, plots: tuple[str, ...], archive: Path | None, rescan: bool
) -> None:
    """Write one HTML page about the tasks under PATH, to open in any browser.

    The page holds everything it shows (no network needed, nothing loaded
    from elsewhere): a summary (studies, task groups, attempts, counts per
    state, time spent, CPU-hours where a scheduler accounted them), the run
    time and peak memory of each task, a timeline coloured by state, the
    results of a sweep (--plot), each workflow's DAG coloured by each step's
    progress, and a table of the tasks that failed, timed out or ran out of
    memory (cause, exit code, last lines of stderr, path), to sort and filter.
    It is built from the status index (as 'autojob status' keeps it) and,
    for --plot, from the cache of the last harvest (--archive) for the tasks
    unchanged since, else from the tasks' files (only those the fields are
    in: metadata, inputs, outputs); the plotted fields are cached beside the
    page (.NAME.plot-cache.json), so the next report reads again only the
    tasks that changed. The plots need matplotlib: pip install
    'autojob[report]'.

    \b
    Examples:
      autojob new --label hello --set command='echo hello'
      autojob submit --wait
      autojob report
      autojob report . --output status.html
    """
    from rich.console import Console  # noqa: PLC0415

    from autojob.harvest import default_archive  # noqa: PLC0415
    from autojob.report import parse_plot, write_report  # noqa: PLC0415

    if archive is not None and not plots:
        raise click.UsageError("--archive is only used with --plot")
    specs = [parse_plot(text) for text in plots]
    harvested = archive if archive is not None else default_archive()
    written = write_report(path, output, specs, rescan=rescan, archive=harvested)
    fields = (
        f" (plotted fields: {written.plot_reads} task(s) read, {written.plot_cached} cached, "
        f"{written.plot_harvested} from the harvest cache)"
        if specs
        else ""
    )
    Console(stderr=True).print(
        f"wrote {written.path} ({written.size / 1024:.0f} KiB): {written.tasks} task(s), "
        f"{written.failures} failed, {written.plots} plot(s){fields}, {written.workflows} "
        f"workflow(s) in {written.seconds:.1f} s",
        highlight=False,
    )
    if archive is not None and not written.plot_harvested and written.plot_reads:
        Console(stderr=True).print(
            f"note: no task's fields came from the harvest cache of {archive}: there is none "
            "beside it, or it is of another tree or other harvesters, or every task changed "
            "since",
            style="yellow",
            highlight=False,
        )
