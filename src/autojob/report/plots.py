"""The plots of a report, drawn with matplotlib as inline SVG.

Each function returns the text of one ``<svg>`` element: text stays text
(searchable, scalable, small), and where a plot has more marks than
:data:`VECTOR_MARKS` its marks are drawn as one embedded PNG inside the SVG,
so a report of 100,000 tasks stays a few hundred kilobytes. No pyplot, no
global state: every figure is a :class:`matplotlib.figure.Figure` of its own.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from autojob.errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

    from autojob.next.advance import StepProgress
    from autojob.report.data import TaskTimes
    from autojob.report.sweep import SweepPoints

__all__ = [
    "STATE_COLOURS",
    "dag_svg",
    "memory_svg",
    "require_matplotlib",
    "runtime_svg",
    "started_first",
    "sweep_svg",
    "timeline_svg",
]

#: beyond this many marks, a plot's marks are rasterised (one PNG in the SVG)
VECTOR_MARKS = 2000
STATE_COLOURS = {
    "success": "#2ca02c",
    "failed": "#d62728",
    "timeout": "#9467bd",
    "oom": "#e377c2",
    "cancelled": "#bcbd22",
    "unknown": "#8c564b",
    "running": "#17becf",
    "queued": "#1f77b4",
    "idle": "#7f7f7f",
}
_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text as <text>, in the page's font
    "svg.hashsalt": "autojob",  # the same ids for the same plot: reproducible files
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def require_matplotlib() -> None:
    """Check that matplotlib can be imported.

    Raises:
        InputError: it is not installed; the message says how to get it.
    """
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError as exc:
        raise InputError(
            "the report's plots need matplotlib, which is not installed",
            hint="pip install 'autojob[report]' (or pip install matplotlib)",
        ) from exc


@contextmanager
def _figure(width: float = 7.5, height: float = 3.0) -> Iterator[Figure]:
    from matplotlib import rc_context  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    with rc_context(_STYLE):  # type: ignore[arg-type]
        yield Figure(figsize=(width, height), layout="constrained")


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _by_state(states: Sequence[str]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for i, state in enumerate(states):
        rows.setdefault(state, []).append(i)
    return rows


def _per_task(values: list[float], states: list[str], label: str, title: str) -> str:
    with _figure() as figure:
        axes = figure.add_subplot()
        dense = len(values) > VECTOR_MARKS
        for state, rows in _by_state(states).items():
            _marks(axes, rows, [values[i] for i in rows], state, dense)
        _whole_numbers(axes.xaxis)
        axes.set_xlabel("task, in the order they started")
        axes.set_ylabel(label)
        axes.set_title(title, loc="left")
        axes.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
        return _svg(figure)


def _marks(axes: Axes, xs: Sequence[float], ys: Sequence[float], state: str, dense: bool) -> None:
    """One mark per point, in the state's colour (a line of markers: fast to draw)."""
    axes.plot(
        xs,
        ys,
        linestyle="none",
        marker="o",
        markersize=1.5 if dense else 4,
        color=STATE_COLOURS.get(state, "black"),
        label=f"{state} ({len(xs)})",
        rasterized=dense,
    )


def _whole_numbers(axis: Axis) -> None:
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    axis.set_major_locator(MaxNLocator(integer=True))


def started_first(times: Sequence[TaskTimes]) -> list[TaskTimes]:
    """The attempts in the order they started (then by path), as the plots take them."""
    return sorted(times, key=lambda t: (t.started_at or 0.0, t.path))


def runtime_svg(times: Sequence[TaskTimes]) -> str | None:
    """Run time per attempt (start to end), or None if no attempt has run.

    ``times``, here and in :func:`memory_svg` and :func:`timeline_svg`: in the
    order of :func:`started_first` (sorted once for the three plots).
    """
    seconds = {t.path: t.run_seconds for t in times}
    return _per_task_svg(times, seconds, "run time (s)", "Run time per task")


def memory_svg(times: Sequence[TaskTimes]) -> str | None:
    """Peak memory per attempt from the scheduler's accounting, or None if none has it."""
    memory = {t.path: t.peak_memory_mb for t in times}
    return _per_task_svg(times, memory, "peak memory (MB)", "Peak memory per task")


def _per_task_svg(
    times: Sequence[TaskTimes], values: dict[str, float | None], label: str, title: str
) -> str | None:
    known = [t for t in times if values[t.path] is not None]
    if not known:
        return None
    shown = [float(values[t.path] or 0.0) for t in known]
    return _per_task(shown, [t.state for t in known], label, title)


def timeline_svg(times: Sequence[TaskTimes], now: float) -> str | None:
    """Each attempt from its start to its end (or now, while it runs), coloured by state."""
    ran = [t for t in times if t.started_at is not None]
    if not ran:
        return None
    origin = min(t.started_at or 0.0 for t in ran)
    with _figure(height=min(6.0, 2.0 + 0.15 * len(ran))) as figure:
        axes = figure.add_subplot()
        dense = len(ran) > VECTOR_MARKS
        for state, rows in _by_state([t.state for t in ran]).items():
            # one line per state, its runs separated by NaN: one artist, however many runs
            xs: list[float] = []
            ys: list[float] = []
            for i in rows:
                start = (ran[i].started_at or origin) - origin
                xs += (start, (ran[i].ended_at or now) - origin, math.nan)
                ys += (i, i, math.nan)
            axes.plot(
                xs,
                ys,
                color=STATE_COLOURS.get(state, "black"),
                linewidth=1 if dense else 4,
                solid_capstyle="butt",
                label=f"{state} ({len(rows)})",
                rasterized=dense,
            )
        axes.invert_yaxis()
        _whole_numbers(axes.yaxis)
        axes.set_xlabel("seconds since the first start")
        axes.set_ylabel("task")
        axes.set_title("Timeline", loc="left")
        axes.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
        return _svg(figure)


def sweep_svg(sweep: SweepPoints) -> str:
    """An output against a parameter, one mark per task, coloured by state."""
    with _figure(width=6.0, height=3.5) as figure:
        axes = figure.add_subplot()
        dense = len(sweep.points) > VECTOR_MARKS
        for state, rows in _by_state([p[2] for p in sweep.points]).items():
            xs = [sweep.points[i][0] for i in rows]
            _marks(axes, xs, [sweep.points[i][1] for i in rows], state, dense)
        axes.set_xlabel(sweep.spec.parameter)
        axes.set_ylabel(sweep.spec.output)
        axes.set_title(f"{sweep.spec.output} against {sweep.spec.parameter}", loc="left")
        axes.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
        return _svg(figure)


def _layers(steps: Sequence[StepProgress]) -> dict[str, int]:
    """Each step's column: the length of the longest path from a first step."""
    by_name = {s.name: s for s in steps}
    depth: dict[str, int] = {}

    def column(name: str, seen: frozenset[str]) -> int:
        if name not in depth:
            before = [p for p in by_name[name].after if p in by_name and p not in seen]
            depth[name] = 1 + max((column(p, seen | {name}) for p in before), default=-1)
        return depth[name]

    for step in steps:
        column(step.name, frozenset())
    return depth


def _fraction(step: StepProgress) -> float:
    total = step.expected if step.expected is not None else step.groups
    return min(1.0, step.done / total) if total else 0.0


def dag_svg(steps: Sequence[StepProgress], title: str) -> str:
    """A workflow's steps as boxes (filled as far as each has come) and its edges."""
    if not steps:
        raise InputError(f"{title} has no steps", hint="check it with autojob workflow check")
    columns = _layers(steps)
    rows: dict[int, int] = {}
    where: dict[str, tuple[float, float]] = {}
    for step in steps:
        column = columns[step.name]
        where[step.name] = (column * 3.0, -rows.get(column, 0) * 1.5)
        rows[column] = rows.get(column, 0) + 1
    width = 1.8 + 1.2 * (max(columns.values()) + 1)
    with _figure(width=min(12.0, width * 1.3), height=1.2 + 0.9 * max(rows.values())) as figure:
        axes = figure.add_subplot()
        _draw_edges(axes, steps, where)
        for step in steps:
            _draw_step(axes, step, where[step.name])
        axes.set_title(title, loc="left")
        axes.set_axis_off()
        axes.set_aspect("equal", adjustable="datalim")
        axes.autoscale_view()
        axes.margins(0.15)
        return _svg(figure)


def _draw_edges(
    axes: Axes, steps: Sequence[StepProgress], where: dict[str, tuple[float, float]]
) -> None:
    for step in steps:
        x, y = where[step.name]
        for before in step.after:
            if before in where:
                bx, by = where[before]
                axes.annotate(
                    "",
                    xy=(x - 1.0, y),
                    xytext=(bx + 1.0, by),
                    arrowprops={"arrowstyle": "->", "color": "#555555"},
                )


def _draw_step(axes: Axes, step: StepProgress, centre: tuple[float, float]) -> None:
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    x, y = centre
    done = _fraction(step)
    colour = STATE_COLOURS["success"] if done >= 1 else STATE_COLOURS["running"]
    axes.add_patch(Rectangle((x - 1.0, y - 0.45), 2.0, 0.9, facecolor="white", edgecolor="#333"))
    if done:
        axes.add_patch(Rectangle((x - 1.0, y - 0.45), 2.0 * done, 0.9, facecolor=colour, alpha=0.5))
    total = step.expected if step.expected is not None else step.groups
    axes.text(x, y + 0.12, step.name, ha="center", va="center", fontweight="bold")
    axes.text(x, y - 0.22, f"{step.done}/{total or '?'} done", ha="center", va="center")
