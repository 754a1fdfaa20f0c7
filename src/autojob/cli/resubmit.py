"""``autojob resubmit``: new attempts of tasks that ended badly, and submit them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from autojob.cli.options import (
    ExistingDir,
    calc_set_assignments,
    calc_set_option,
    executor_option,
)
from autojob.cli.output import json_option, print_json, shown_path, submissions_json

if TYPE_CHECKING:
    from autojob.execution.executor import Submission

__all__ = ["resubmit"]

CAUSES = ["timeout", "oom", "failed", "node_fail", "preempted", "cancelled", "unknown"]
DEFAULT_CAUSES = ("timeout", "oom", "failed", "node_fail", "preempted")


@click.command("resubmit")
@click.argument("paths", nargs=-1, required=True, type=ExistingDir)
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(CAUSES),
    help="Restart tasks that ended so (repeatable). Default: " + ", ".join(DEFAULT_CAUSES) + ".",
)
@click.option(
    "--time-factor", type=float, default=1.0, show_default=True, help="Multiply the time limit."
)
@click.option(
    "--mem-factor",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply the memory asked for.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change an input of the new attempts (as in 'autojob new').",
)
@calc_set_option("the new attempts")
@executor_option(
    "Where the new attempts run",
    default="where each old attempt ran (SETTINGS.DEFAULT_EXECUTOR where not recorded)",
)
@click.option(
    "-j", "--max-parallel", type=click.IntRange(min=1), default=None, help="Tasks run at once."
)
@click.option("--dry-run", is_flag=True, help="List what would be restarted; change nothing.")
@click.option("--no-submit", is_flag=True, help="Create the new attempts but do not submit them.")
@click.option(
    "--auto",
    is_flag=True,
    help="An automatic restart (task scripts use it): only within each task's budget "
    "(max_attempts), with its own restart_time_factor and restart_max_time.",
)
@json_option()
def resubmit(
    paths: tuple[Path, ...],
    only: tuple[str, ...],
    time_factor: float,
    mem_factor: float,
    assignments: tuple[str, ...],
    calc_set: tuple[str, ...],
    executor: str | None,
    max_parallel: int | None,
    dry_run: bool,
    no_submit: bool,
    auto: bool,
    as_json: bool,
) -> None:
    """Restart the tasks under PATHS whose newest attempt ended badly.

    Each gets a new attempt in the same task group, with its inputs, carried-over
    files and scaled resources, submitted on its own: to the executor the old
    attempt ran on (as recorded with it), unless --executor is given.

    A task directory holding an autojob.stop file is never restarted.

    \b
    Examples:
      autojob new --label hello --set command='echo hello'
      autojob submit --wait
      autojob resubmit . --only timeout --time-factor 2
      autojob resubmit . --only oom --mem-factor 1.5 --dry-run
      autojob resubmit . --only failed --no-submit --json
    """
    from autojob.execution.executor import chosen_executor  # noqa: PLC0415
    from autojob.execution.submit import submit_tasks  # noqa: PLC0415
    from autojob.next.resubmit import by_executor, plan_resubmission, within_budget  # noqa: PLC0415
    from autojob.next.resubmit import resubmit as make_attempts  # noqa: PLC0415
    from autojob.store.state import State  # noqa: PLC0415

    default = chosen_executor(executor).name  # an unknown name is refused before any change
    attempts = plan_resubmission(list(paths), list(only or DEFAULT_CAUSES))
    refused: list[dict[str, str]] = []
    report: dict[str, object] = {"dry_run": dry_run, "refused": refused, "restarts": []}
    say = _Say(as_json, report)
    if auto:
        allowed = []
        for attempt in attempts:
            ok, why = within_budget(attempt)
            say(f"{'restarting' if ok else 'not restarting'} {shown_path(attempt.old)}: {why}")
            if ok:
                allowed.append(attempt)
            else:
                refused.append({"path": str(attempt.old), "why": why})
        attempts = allowed
    if not attempts:
        say("nothing to restart: no newest attempt ended in " + ", ".join(only or DEFAULT_CAUSES))
        say.done()
        return
    for attempt in attempts:
        extra = attempt.reason not in (None, attempt.state.value)
        why = attempt.state.value + (f" ({attempt.reason})" if extra else "")
        say(f"{'would restart' if dry_run else 'restarting'} {shown_path(attempt.old)} ({why})")
    if not dry_run:
        attempts = make_attempts(
            attempts,
            time_factor=time_factor,
            mem_factor=mem_factor,
            assignments=[*assignments, *calc_set_assignments(calc_set)],
            auto=auto,
        )
    report["restarts"] = [
        {
            "path": str(a.old),
            "state": a.state.value,
            "reason": a.reason,
            "new": None if a.new is None else str(a.new),
        }
        for a in attempts
    ]
    new = [a.new for a in attempts if a.new is not None]
    for path in new:
        say(f"created task {path.name} at {shown_path(path)}")
    done: list[Submission] = []
    if new and not no_submit:
        for name, group in by_executor(attempts, executor, default).items():
            submitted = submit_tasks(
                group,
                executor=name,
                allowed=frozenset({State.IDLE}),
                max_parallel=max_parallel,
                root=paths[0],
            )
            say(submitted.message, *submitted.details)
            done.append(submitted)
    report["submission"] = submissions_json(done)
    say.done()


class _Say:
    """Lines for people, or (with --json) the report printed at the end instead."""

    def __init__(self, as_json: bool, report: dict[str, object]) -> None:
        self.as_json = as_json
        self.report = report

    def __call__(self, *lines: str) -> None:
        if not self.as_json:
            for line in lines:
                click.echo(line)

    def done(self) -> None:
        if self.as_json:
            print_json(self.report)
