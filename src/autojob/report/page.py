"""One self-contained HTML page: the summary, the plots, the DAGs, the pilots, the failures.

The page needs no network: its style and script are inline, every plot is an
inline SVG (a dense plot's marks as an embedded PNG), and its
Content-Security-Policy forbids loading anything else. It is written
atomically: a reader sees the old page or the new one.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2

from autojob.errors import AutojobError
from autojob.report.data import TROUBLE, ReportData, gather
from autojob.report.pilots import pilot_section
from autojob.report.plots import (
    STATE_COLOURS,
    dag_svg,
    memory_svg,
    require_matplotlib,
    runtime_svg,
    started_first,
    sweep_svg,
    timeline_svg,
)
from autojob.report.sweep import FieldReader, PlotSpec, SweepPoints, Sweeps
from autojob.store.atomic import write_atomic
from autojob.store.collector import collector_paused
from autojob.store.state import STATE_ORDER

__all__ = ["Written", "render_page", "write_report"]

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Written:
    """What :func:`write_report` wrote."""

    path: Path
    tasks: int
    failures: int
    plots: int
    workflows: int
    size: int  # bytes
    seconds: float
    plot_reads: int = 0  # tasks whose plotted fields were read from their files
    plot_cached: int = 0  # tasks whose plotted fields came from the cache beside the page
    plot_harvested: int = 0  # tasks whose plotted fields came from a harvest's cache


def write_report(
    root: Path,
    output: Path,
    plots: Sequence[PlotSpec] = (),
    *,
    rescan: bool = False,
    archive: Path | None = None,
) -> Written:
    """Write the report of the tasks under ``root`` to ``output`` (HTML).

    ``plots``: sweep plots, each an output against a parameter, read from the
    tasks' records; the plotted fields are cached beside ``output``
    (:mod:`autojob.report.sweep`). ``archive``: the archive of a harvest of
    ``root``, whose cache gives the fields of the tasks unchanged since.

    Raises:
        InputError: matplotlib is missing, or a plot names a field no task has.
        AutojobError: ``root`` holds no task, or ``output`` cannot be written
            (nothing is left half-written).
    """
    started = time.perf_counter()
    require_matplotlib()
    if output.is_dir():
        raise AutojobError(
            "is a directory", path=output, hint="give the report's file name, e.g. report.html"
        )
    if not output.parent.is_dir():
        raise AutojobError(
            "no such directory",
            path=output.parent,
            hint="create it first, or write the report elsewhere (--output)",
        )
    fields = FieldReader(root, list(plots), output, archive) if plots else None
    visit = None if fields is None else fields.visitor
    # the status walk reads the plotted fields of each task it lists: one pass over the tree,
    # keeping a line per task (and making no garbage cycles: the collector would walk them)
    with collector_paused() if visit is not None else contextlib.nullcontext():
        data = gather(root, rescan=rescan, visit=visit)
    sweeps = fields.points(data.status) if fields is not None else Sweeps([])
    page, counted = render_page(data, sweeps.plots, pilot_section(root))
    write_atomic(output, page)
    sweeps.keep()
    return Written(
        output,
        len(data.status),
        len(data.failures),
        counted,
        len(data.workflows),
        len(page.encode()),
        time.perf_counter() - started,
        sweeps.read,
        sweeps.cached,
        sweeps.harvested,
    )


def render_page(
    data: ReportData, sweeps: list[SweepPoints], pilots: Sequence[dict[str, Any]] = ()
) -> tuple[str, int]:
    """The page's HTML, and how many plots it holds (``pilots``: :func:`pilot_section`)."""
    now = data.generated_at
    times = started_first(data.times)
    plots = [
        {"id": name, "svg": svg}
        for name, svg in (
            ("runtime", runtime_svg(times)),
            ("memory", memory_svg(times)),
            ("timeline", timeline_svg(times, now)),
        )
        if svg is not None
    ]
    notes = []
    if not any(p["id"] == "memory" for p in plots):
        notes.append(
            "Peak memory is known only for tasks a scheduler accounted (SLURM's MaxRSS, "
            "Grid Engine's maxvmem, in job_stats.json); none here has it."
        )
    drawn_sweeps = [
        {
            "svg": sweep_svg(s),
            "caption": f"{len(s.points)} task(s)"
            + (f"; {s.missing} without both fields as numbers" if s.missing else ""),
        }
        for s in sweeps
    ]
    workflows = [
        {
            "study": view.study,
            "error": view.error,
            "steps": view.steps,
            "svg": None if view.error else dag_svg(view.steps, f"workflow of {view.study}"),
        }
        for view in data.workflows
    ]
    html = _template().render(
        name=data.root.name,
        root=str(data.root),
        generated=_when(now),
        colours=STATE_COLOURS,
        states=[s for s in STATE_ORDER if data.attempt_counts.get(s)],
        counts=data.counts,
        attempt_counts=data.attempt_counts,
        studies=data.studies,
        task_groups=data.task_groups,
        run_time=_duration(data.run_seconds),
        cpu_hours="not accounted" if data.cpu_hours is None else f"{data.cpu_hours:.2f}",
        plots=plots,
        plot_notes=notes,
        sweeps=drawn_sweeps,
        workflows=workflows,
        # attributes, not dict keys: the template's f.path then needs no fallback lookup
        failures=[SimpleNamespace(**vars(f), ended=_when(f.ended_at)) for f in data.failures],
        failure_states=[s for s in TROUBLE if any(f.state == s for f in data.failures)],
        pilots=list(pilots),
    )
    return html, len(plots) + len(drawn_sweeps) + len(workflows)


def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("autojob", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return environment.get_template(TEMPLATE)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d} ({seconds / 3600:.2f} h)"
