"""``submit --pilots N``: the options of packed execution, and the submit they make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from autojob.execution.executor import Plan, Submission
    from autojob.store.state import State

__all__ = ["PilotOptions", "pilot_options", "submit_with_pilots"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class PilotOptions:
    """The values of the pilot options of one submit."""

    pilots: int | None
    pilot_time: str | None
    max_pilots: int | None
    pilot_hours: float | None

    @property
    def given(self) -> bool:
        """Whether any pilot option was given."""
        return any(v is not None for v in (self.pilots, self.pilot_time, self.max_pilots,
                                           self.pilot_hours))  # fmt: skip


def pilot_options(command: F) -> F:
    """Add ``--pilots``, ``--pilot-time``, ``--max-pilots`` and ``--pilot-hours``."""
    for option in reversed(
        [
            click.option(
                "--pilots",
                type=click.IntRange(min=1),
                default=None,
                help="Submit N pilot jobs (one array) per resource group instead of one job "
                "per task: each claims tasks of the tree and runs -j of them at once.",
            ),
            click.option(
                "--pilot-time",
                default=None,
                metavar="TIME",
                help="Each pilot's time limit (SLURM's forms: 02:00:00, 1-00:00:00). A pilot "
                "claims only tasks that fit before it ends.",
            ),
            click.option(
                "--max-pilots",
                type=click.IntRange(min=1),
                default=None,
                help="Budget: pilots submitted in all, those that replace pilots out of time "
                "included (default: --pilots, none replaced).",
            ),
            click.option(
                "--pilot-hours",
                type=click.FloatRange(min=0, min_open=True),
                default=None,
                help="Budget: pilot-hours (pilots times --pilot-time) submitted in all.",
            ),
        ]
    ):
        command = option(command)
    return command


def submit_with_pilots(
    roots: list[Path],
    options: PilotOptions,
    *,
    executor: str | None,
    per_pilot: int | None,
    allowed: frozenset[State],
    dry_run: bool,
    wait: bool,
    as_json: bool = False,
) -> bool:
    """Plan the pools of ``roots``, print them (``dry_run``) or submit them and say so.

    ``as_json``: say it as one JSON document (docs/json.md). Returns True (the
    submit is done).
    """
    from autojob.errors import InputError  # noqa: PLC0415
    from autojob.execution.executor import chosen_executor  # noqa: PLC0415
    from autojob.execution.pilots import (  # noqa: PLC0415
        PilotRequest,
        lost_to_a_dead_pilot,
        plan_pilots,
        submit_planned_pilots,
    )
    from autojob.execution.pilots.pool import Budget  # noqa: PLC0415
    from autojob.execution.submit import check_only, select_tasks  # noqa: PLC0415
    from autojob.timefmt import parse_slurm_time  # noqa: PLC0415

    pilots = options.pilots or 1
    seconds = None
    if options.pilot_time is not None:
        limit = parse_slurm_time(options.pilot_time, field="--pilot-time")
        seconds = None if limit is None else limit.total_seconds()
    if options.pilot_hours is not None and seconds is None:
        raise InputError(
            "--pilot-hours needs --pilot-time", field="--pilot-hours",
            hint="give each pilot a time with --pilot-time",
        )  # fmt: skip
    if options.max_pilots is not None and options.max_pilots < pilots:
        raise InputError(
            f"--max-pilots {options.max_pilots} is fewer than --pilots {pilots}",
            field="--max-pilots",
            hint="give at least as many as --pilots",
        )
    if wait:
        raise click.UsageError("--wait cannot follow pilots: follow them with 'autojob status'")
    check_only(allowed)
    chosen = chosen_executor(executor)
    selected = select_tasks(roots, allowed, dry_run=dry_run, also=lost_to_a_dead_pilot())
    budget = Budget(options.max_pilots or pilots, options.pilot_hours)
    request = PilotRequest(pilots, per_pilot or 1, seconds, budget)
    plan = plan_pilots(chosen, selected, request, root=roots[0], allowed=allowed)
    done = None if dry_run or not selected else submit_planned_pilots(plan)
    if as_json:
        _say_json(plan, done, allowed, chosen.name, dry_run)
    else:
        _say(plan, done, allowed)
    return True


def _say_json(
    plan: Plan, done: Submission | None, allowed: frozenset[State], executor: str, dry_run: bool
) -> None:
    """What ``_say`` says, as ``submit --pilots --json`` prints it."""
    from autojob.cli.output import print_json_streamed, submission_json  # noqa: PLC0415
    from autojob.cli.submit import _preview_json  # noqa: PLC0415
    from autojob.execution.pilots import PoolPlan  # noqa: PLC0415
    from autojob.execution.submit import nothing_to_submit  # noqa: PLC0415

    pools = [
        {
            "pool": str(p.pool.dir),
            "tasks": len(p.tasks),
            "pilots": p.settings.pilots,
            "tasks_per_pilot": p.settings.per_pilot,
            "pilot_seconds": p.settings.pilot_seconds,
            "budget": {
                "max_pilots": p.settings.budget.max_pilots,
                "pilot_hours": p.settings.budget.pilot_hours,
            },
            "command": p.command(),
        }
        for p in plan.jobs
        if isinstance(p, PoolPlan)
    ]
    report: dict[str, object] = {
        "executor": plan.executor,
        "pilot_executor": executor,
        "dry_run": dry_run,
        "selected": len(plan.selected),
        "pools": pools,
    }
    if done is not None:
        report |= submission_json(done) or {}
    elif plan.selected:
        report |= _preview_json(plan)
    else:
        report |= {"submitted": 0, "message": nothing_to_submit(allowed)}
    print_json_streamed(report)


def _say(plan: Plan, done: Submission | None, allowed: frozenset[State]) -> None:
    from autojob.cli.output import print_plan_preview  # noqa: PLC0415
    from autojob.execution.submit import nothing_to_submit  # noqa: PLC0415

    if done is not None:
        click.echo(done.message)
        for line in done.details:
            click.echo(line)
    elif plan.selected:
        print_plan_preview(plan, show_all=False)
    else:
        click.echo(nothing_to_submit(allowed))
