"""``autojob status --watch``: a live view of a tree, redrawn in place.

Each refresh reads the status index (the tasks changed since the last one,
and those queued or running), asks the schedulers about their tasks once, and
draws: a progress bar per study and per workflow step, the counts per state,
the newest failures with their cause, an estimate of the time left from
the run times of the tasks that ended, and the pilots of each pool. As
``status`` does, it first gives new pilots to a pool with work left and no
live pilot (within its budget), so a study run by pilots goes on while it is
watched. Ctrl-C stops it, leaving the last view on the terminal, with exit
status 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from autojob.cli.status import COLOURS

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from autojob.report.data import Estimate, Failure, ReportData
    from autojob.store.status_index import StatusReport

__all__ = ["watch_status"]

BAR_WIDTH = 30


def watch_status(
    path: Path,
    *,
    interval: float,
    rescan: bool,
    failures: int,
    table: Callable[[StatusReport], RenderableType] | None = None,
) -> None:
    """Redraw the view of the tasks under ``path`` every ``interval`` seconds until Ctrl-C.

    ``failures``: how many of the newest failures to list; ``table``: draws
    a table of the status report too (``status --by``).

    Raises:
        AutojobError: ``path`` holds no task (before anything is drawn).
    """
    from rich.console import Console, Group  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    from autojob.cli.pilot_view import pilot_tables  # noqa: PLC0415
    from autojob.report.data import gather  # noqa: PLC0415

    def view(rescan: bool = False) -> RenderableType:
        data = gather(path, rescan=rescan, tails=False)
        parts = [render(data, failures)]
        if table is not None:
            parts.append(table(data.status))
        parts += pilot_tables(data.status.root)  # revives pools left with work and no pilot
        return Group(*parts)

    try:
        with Live(view(rescan), console=Console(), auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(view(), refresh=True)
    except KeyboardInterrupt:
        return


def render(data: ReportData, failures: int) -> RenderableType:
    """The whole view of one refresh."""
    from rich.console import Group  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    parts: list[RenderableType] = [
        Text(f"autojob status --watch {data.root}", style="bold"),
        _progress(data),
        _counts(data),
        Text(_estimate_text(data.estimate())),
    ]
    shown = [f for f in data.failures if f.newest][:failures]
    if shown:
        parts.append(_failures(data, shown))
    if data.note:
        parts.append(Text(data.note, style="yellow"))
    clock = time.strftime("%H:%M:%S", time.localtime(data.generated_at))
    parts.append(Text(f"{len(data.status)} task(s) at {clock}; Ctrl-C to stop", style="dim"))
    return Group(*parts)


def _bar(done: int, total: int, style: str = "green") -> RenderableType:
    from rich.progress_bar import ProgressBar  # noqa: PLC0415

    return ProgressBar(total=max(total, 1), completed=done, width=BAR_WIDTH, complete_style=style)


def _progress(data: ReportData) -> Table:
    """A bar per study (task groups whose newest attempt ended) and per workflow step."""
    from rich.table import Table  # noqa: PLC0415

    table = Table(box=None, show_header=True, title_justify="left", pad_edge=False)
    table.add_column("study / workflow step")
    table.add_column("progress")
    table.add_column("done", justify="right")
    for study in data.studies:
        troubled = any(study.counts.get(s) for s in ("failed", "timeout", "oom", "unknown"))
        table.add_row(
            study.name,
            _bar(study.done, study.total, "yellow" if troubled else "green"),
            f"{study.done}/{study.total}",
        )
    for flow in data.workflows:
        if flow.error:
            table.add_row(f"  workflow of {flow.study}", flow.error, "")
            continue
        for step in flow.steps:
            total = step.expected if step.expected is not None else step.groups
            table.add_row(
                f"  {flow.study} > {step.name}", _bar(step.done, total or 0), _of(step.done, total)
            )
    return table


def _of(done: int, total: int | None) -> str:
    return f"{done}/{total if total is not None else '?'}"


def _counts(data: ReportData) -> RenderableType:
    from rich.text import Text  # noqa: PLC0415

    from autojob.store.state import STATE_ORDER  # noqa: PLC0415

    text = Text()
    for state in STATE_ORDER:
        if data.counts.get(state):
            text.append(f"{state} {data.counts[state]}", style=COLOURS[state])
            text.append("   ")
    replaced = sum(data.attempt_counts.values()) - sum(data.counts.values())
    if replaced:
        text.append(f"(+{replaced} earlier attempt(s))", style="dim")
    return text


def _estimate_text(estimate: Estimate) -> str:
    if not estimate.running and not estimate.waiting:
        return "nothing left to run"
    left = f"{estimate.running} running, {estimate.waiting} waiting"
    if estimate.seconds is None or estimate.mean_run is None:
        return f"{left}; time left: estimated once a task has ended"
    return (
        f"{left}; about {_duration(estimate.seconds)} left "
        f"(mean run {_duration(estimate.mean_run)}, {max(1, estimate.running)} at once)"
    )


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _failures(data: ReportData, shown: list[Failure]) -> Table:
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.store.run_files import tail  # noqa: PLC0415

    total = sum(1 for f in data.failures if f.newest)
    table = Table(title=f"newest failures ({len(shown)} of {total})", title_justify="left")
    for column in ("task", "state", "exit", "cause"):
        table.add_column(column, overflow="fold")
    for failure in shown:
        cause = failure.cause
        if cause == failure.state:  # no cause recorded: the last line of its stderr tells
            cause = tail(data.root / failure.path / SETTINGS.STDERR_FILE, 1) or cause
        table.add_row(
            failure.path,
            Text(failure.state, style=COLOURS[failure.state]),
            "" if failure.exit_code is None else str(failure.exit_code),
            cause,
        )
    return table
