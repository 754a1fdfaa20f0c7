"""``autojob submit``: run tasks with an executor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from autojob.cli.options import ExistingDir, executor_option
from autojob.cli.output import (
    all_option,
    json_option,
    print_json_streamed,
    print_plan_preview,
    progress_console,
    shown_path,
    submission_json,
)
from autojob.cli.pilot_options import PilotOptions, pilot_options, submit_with_pilots

if TYPE_CHECKING:
    from collections.abc import Iterator

    from autojob.execution.executor import Executor, Plan
    from autojob.execution.submit import Selected
    from autojob.store.state import State, TaskState

__all__ = ["submit"]

STATES = [
    "idle",
    "queued",
    "running",
    "success",
    "failed",
    "timeout",
    "oom",
    "cancelled",
    "unknown",
]


@click.command("submit")
@click.argument("paths", nargs=-1, type=ExistingDir)
@executor_option()
@click.option(
    "-j",
    "--max-parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Tasks run at once (default: the number of cores).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Run in this terminal with a progress bar, following the automatic restarts "
    "the tasks make; exit 1 if the newest attempt of any task fails. Ctrl-C cancels the "
    "tasks not ended yet (a second Ctrl-C kills them at once).",
)
@click.option("--dry-run", is_flag=True, help="Print what would run and change nothing.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(STATES),
    help="Submit tasks in these states (repeatable). Default: idle, and unknown "
    "(started, but whose process died without recording an end). queued and running "
    "are refused: a live run is never run twice.",
)
@all_option()
@json_option()
@pilot_options
def submit(
    paths: tuple[Path, ...],
    executor: str | None,
    max_parallel: int | None,
    wait: bool,
    dry_run: bool,
    only: tuple[str, ...],
    show_all: bool,
    as_json: bool,
    **pilots: Any,
) -> None:
    """Run the tasks under PATHS (default: the current directory).

    Without --wait the tasks run in a background runner that outlives this
    terminal; follow them with 'autojob status PATH --watch'. Tasks already
    finished are never run again unless named with --only (their earlier run
    moves to autojob.history/). inputs.json is the source of truth: a task
    script autojob rendered is rendered again when inputs.json changed since;
    a script edited by hand is run as it is (see 'autojob render').

    With --wait, a task that restarts itself (auto_restart, after its time
    limit) is followed to its newest attempt, which decides whether it
    succeeded. The first Ctrl-C says what it waits for: the tasks not ended yet
    are cancelled (SIGTERM, SIGKILL after the grace period) and nothing more
    starts; a second Ctrl-C kills them at once. While --wait waits for tasks
    that run elsewhere (a scheduler's jobs, restarts in a background runner),
    Ctrl-C stops waiting and prints how to follow or cancel them.

    --dry-run prints each job script once (one per job array of a scheduler)
    or, for the local executor, a table of the first 50 tasks (--all: every
    one). --json prints what was (or would be) submitted as one JSON document
    (docs/json.md); the progress bar of --wait is drawn on a terminal only.

    \b
    Examples:
      autojob new --label hello --set command='echo hello'
      autojob submit --dry-run
      autojob submit --wait -j 2
      autojob submit . --only success
      autojob submit . --only success --dry-run --json
    """
    from autojob.execution.submit import (  # noqa: PLC0415
        DEFAULT_ONLY,
        nothing_to_submit,
        plan_submission,
    )
    from autojob.store.state import State  # noqa: PLC0415

    allowed = frozenset(State(s) for s in only) if only else DEFAULT_ONLY
    roots = list(paths) or [Path()]
    chosen_pilots = PilotOptions(**pilots)
    if chosen_pilots.given and submit_with_pilots(
        roots, chosen_pilots, executor=executor, per_pilot=max_parallel, allowed=allowed,
        dry_run=dry_run, wait=wait, as_json=as_json,
    ):  # fmt: skip
        return
    chosen, plan = plan_submission(
        roots, executor=executor, allowed=allowed, max_parallel=max_parallel, dry_run=dry_run
    )
    again = _rendered_again(plan.selected)
    report: dict[str, object] = {"executor": plan.executor, "dry_run": dry_run}
    report["rendered_again"] = [str(p) for p in again]
    if not as_json:
        _say_scripts(again, dry_run)
    if dry_run and (plan.preview.columns or plan.selected):
        if as_json:
            print_json_streamed({**report, **_preview_json(plan)})
        else:
            print_plan_preview(plan, show_all)
        return
    if not plan.selected:
        _finish(report | {"selected": 0, "submitted": 0}, nothing_to_submit(allowed), as_json)
        return
    report["selected"] = len(plan.selected)
    if wait:
        failed = _wait(chosen, plan, allowed, report, as_json)
        if as_json:
            print_json_streamed(report)
        if failed:
            raise SystemExit(1)
        return
    done = chosen.submit(plan, allowed=allowed)
    _left_to_others(len(plan.selected), done.count)
    report |= submission_json(done) or {}
    if as_json:
        print_json_streamed(report)
        return
    click.echo(done.message)
    for line in done.details:
        click.echo(line)
    if not chosen.asks_scheduler:
        click.echo("follow with: autojob status --watch " + " ".join(str(p) for p in paths))


def _finish(report: dict[str, object], message: str, as_json: bool) -> None:
    """Print the closing message, or the report with it."""
    if as_json:
        print_json_streamed(report | {"message": message})
    else:
        click.echo(message)


def _preview_json(plan: Plan) -> dict[str, object]:
    """A dry run as --json prints it: the tasks (streamed), the table or the scripts."""
    preview = plan.preview
    tasks: Iterator[dict[str, object]] = (
        {"path": str(s.spec.path), "state": s.state.state.value, "command": s.command}
        for s in plan.selected
    )
    return {
        "selected": len(plan.selected),
        "summary": preview.summary or preview.title,
        "scripts": [{"comment": comment, "text": text} for comment, text in preview.blocks],
        "tasks": tasks,
    }


def _rendered_again(selected: Sequence[Selected]) -> list[Path]:
    """The tasks whose script is rendered again from a changed inputs.json."""
    from autojob.store.task_script import ScriptState  # noqa: PLC0415

    return [s.spec.path for s in selected if s.script and s.script.state is ScriptState.RENDERED]


def _say_scripts(again: Sequence[Path], dry_run: bool) -> None:
    """Tell which task scripts were rendered again from a changed inputs.json."""
    if again:
        verb = "would render" if dry_run else "rendered"
        shown = ", ".join(shown_path(p) for p in again[:3]) + (", ..." if len(again) > 3 else "")
        click.echo(
            f"{verb} the task script of {len(again)} task(s) again, as their inputs "
            f"changed: {shown}"
        )


def _left_to_others(selected: int, claimed: int) -> None:
    """Tell that another submit claimed some of the selected tasks first."""
    if claimed < selected:
        click.echo(
            f"{selected - claimed} of {selected} selected task(s) were claimed meanwhile by "
            "another autojob submit (or changed state) and are left to it: no task runs twice",
            err=True,
        )


def _wait(
    chosen: Executor, plan: Plan, allowed: frozenset[State], report: dict[str, object],
    as_json: bool,
) -> int:  # fmt: skip
    """Run (or submit and follow) the plan with a progress bar; return how many failed.

    The automatic restarts the tasks make (a new attempt after a timeout) are
    followed too: a task counts by its newest attempt. The bar is drawn on a
    terminal only; what happened is added to ``report`` (printed by --json).
    """
    from autojob.store.state import State  # noqa: PLC0415

    console = progress_console()
    counts: dict[str, int] = {}
    columns = (
        TextColumn("[bold]running"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    before = _attempts_before(plan)
    with Progress(
        *columns, console=console, transient=False, disable=not console.is_terminal
    ) as progress:
        bar = progress.add_task("", total=len(plan.selected))
        interrupts = _Interrupts(progress.console)

        def claimed(count: int) -> None:
            progress.update(bar, total=count)
            interrupts.running = count
            _left_to_others(len(plan.selected), count)

        def ended(_path: Path, state: TaskState) -> None:
            name = state.state.value
            counts[name] = counts.get(name, 0) + 1
            interrupts.running -= 1
            progress.update(
                bar, advance=1, description=", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            )

        with interrupts:
            try:
                results = chosen.run_here(plan, allowed=allowed, on_claimed=claimed, on_end=ended)
            except KeyboardInterrupt:
                chosen.stop_here()
                raise
            if results is None:
                done = chosen.submit(plan, allowed=allowed)
                report |= submission_json(done) or {}
                progress.console.print(done.message)
                claimed(done.count)
                interrupts.elsewhere = done.tasks
                results = _follow(chosen, done.tasks, ended)
            newest, restarts = _follow_restarts(
                chosen, results, before, ended, progress, bar, interrupts
            )
    good = sum(1 for s in newest.values() if s.state is State.SUCCESS)
    after = f" (after {restarts} automatic restart(s); see 'autojob status')" if restarts else ""
    click.echo(f"{good} of {len(newest)} task(s) succeeded{after}", err=as_json)
    report.setdefault("submitted", len(newest))
    report |= {
        "succeeded": good,
        "failed": len(newest) - good,
        "restarts": restarts,
        "results": [
            {"path": str(path), "state": state.state.value, "exit_code": state.exit_code}
            for path, state in newest.items()
        ],
    }
    return len(newest) - good


class _Interrupts:
    """Ctrl-C while waiting: say what happens and what a second Ctrl-C does.

    While tasks run in this process, the first Ctrl-C cancels them (SIGTERM,
    SIGKILL after the grace period), waiting until nothing of them is left,
    and a second kills them at once. While waiting for tasks that run
    elsewhere (a scheduler's jobs, automatic restarts in a background runner),
    Ctrl-C stops waiting and tells how to follow or cancel them.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.running = 0
        #: tasks followed that run without this process (None: they run here)
        self.elsewhere: list[Path] | None = None
        self.count = 0
        self._previous: object = None

    def __enter__(self) -> _Interrupts:
        import signal  # noqa: PLC0415

        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            return self  # started ignoring Ctrl-C (in the background): keep ignoring it
        try:
            self._previous = signal.signal(signal.SIGINT, self._interrupted)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        import signal  # noqa: PLC0415

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def _interrupted(self, signum: int, frame: object) -> None:
        self.count += 1
        self.console.print(
            self.message(), style="yellow", markup=False, highlight=False, soft_wrap=True
        )
        raise KeyboardInterrupt

    def message(self) -> str:
        """What this Ctrl-C does."""
        from autojob.execution.local import GRACE_SECONDS  # noqa: PLC0415

        if self.elsewhere is not None:
            if not self.elsewhere:
                return "Ctrl-C: stopped waiting"
            import os  # noqa: PLC0415

            above = _quoted(Path(os.path.commonpath([p.parent for p in self.elsewhere])))
            listed = len(self.elsewhere) <= 5
            these = " ".join(_quoted(p) for p in self.elsewhere) if listed else above
            return (
                f"Ctrl-C: stopped waiting for {len(self.elsewhere)} task(s) that run on without "
                f"this command\n  follow them: autojob status --watch {above}"
                f"\n  cancel them: autojob cancel {these}"
            )
        if self.count == 1:
            return (
                f"Ctrl-C: cancelling the {max(self.running, 0)} task(s) not ended yet: none "
                f"more is started, running ones get SIGTERM (SIGKILL after {GRACE_SECONDS:g} s); "
                "waiting until nothing of them is left. Press Ctrl-C again to kill them now."
            )
        return "Ctrl-C again: killing what is left of them now (SIGKILL)"


def _quoted(path: Path) -> str:
    import shlex  # noqa: PLC0415

    return shlex.quote(str(path))


def _attempts_before(plan: Plan) -> dict[Path, frozenset[str]]:
    """The directories in each selected task's task group now (restarts come later)."""
    import os  # noqa: PLC0415

    groups = {s.spec.path.parent for s in plan.selected}
    found = {}
    for group in groups:
        try:
            found[group] = frozenset(os.listdir(group))
        except OSError:
            found[group] = frozenset()
    return found


def _follow_restarts(
    chosen: Executor,
    results: dict[Path, TaskState],
    before: dict[Path, frozenset[str]],
    ended: Callable[[Path, TaskState], None],
    progress: Progress,
    bar: TaskID,
    interrupts: _Interrupts,
) -> tuple[dict[Path, TaskState], int]:
    """Follow the automatic restarts of the tasks that ended badly, and theirs.

    Returns the newest attempt of each task run (its path and state), and how
    many restarts were followed.
    """
    from autojob.next.resubmit import restarts_of  # noqa: PLC0415
    from autojob.store.state import State, read_state  # noqa: PLC0415

    newest = dict(results)
    followed = 0
    while True:
        # a task script restarts its task after a timeout, and submits the
        # restart before it exits: a restart still idle was made by hand
        made = {
            new: origin
            for origin, (path, state) in enumerate(newest.items())
            if state.state is State.TIMEOUT
            for new in restarts_of(path, besides=before.get(path.parent, frozenset()))[-1:]
            if read_state(new).state is not State.IDLE
        }
        if not made:
            return newest, followed
        followed += len(made)
        for new in made:
            progress.console.print(
                f"following the automatic restart {new}", soft_wrap=True, highlight=False
            )
        progress.update(bar, total=(progress.tasks[0].total or 0) + len(made))
        interrupts.elsewhere = list(made)
        states = _follow(chosen, list(made), ended)
        olds = list(newest)
        for new, origin in made.items():
            del newest[olds[origin]]
            newest[new] = states[new]


def _settled(state: TaskState, accounts: bool) -> bool:
    """Whether a task followed has ended for good (or its run was lost)."""
    from autojob.store.state import FINAL_STATES, State  # noqa: PLC0415

    if state.state in FINAL_STATES:
        return state.accounted or not accounts
    # a lost run: its process died without an end, or its runner before starting it
    return state.state is State.UNKNOWN or (state.state is State.IDLE and bool(state.detail))


def _follow(
    chosen: Executor, tasks: list[Path], ended: Callable[[Path, TaskState], None]
) -> dict[Path, TaskState]:
    """Ask the executor until every task has ended (and is accounted, where it accounts)."""
    import time  # noqa: PLC0415

    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.store.state import read_state  # noqa: PLC0415

    done: dict[Path, TaskState] = {}
    pause = max(1.0, SETTINGS.SLURM_POLL_INTERVAL) if chosen.asks_scheduler else 0.5
    while len(done) < len(tasks):
        states = {p: read_state(p) for p in tasks if p not in done}
        states.update(chosen.reconcile(list(states.items())))
        for path, state in states.items():
            if _settled(state, chosen.accounts):
                done[path] = state
                ended(path, state)
        if len(done) < len(tasks):
            time.sleep(pause)
    return done
