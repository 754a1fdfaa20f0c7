"""``autojob cancel``: stop queued and running tasks."""

from __future__ import annotations

from pathlib import Path

import click

from autojob.cli.options import ExistingDir
from autojob.cli.output import json_option, print_json, shown_path
from autojob.cli.pilot_view import cancel_pools_under, stop_pools

__all__ = ["cancel"]


@click.command("cancel")
@click.argument("paths", nargs=-1, required=True, type=ExistingDir)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds a running task has to stop after SIGTERM before SIGKILL.",
)
@json_option()
def cancel(paths: tuple[Path, ...], grace: float, as_json: bool) -> None:
    """Cancel the queued and running tasks under PATHS; mark them cancelled.

    \b
    Examples:
      autojob new --label slow --set command='sleep 60'
      autojob submit
      autojob cancel . --grace 5 --json
    """
    from autojob.execution.cancel import cancel_tasks  # noqa: PLC0415
    from autojob.execution.submit import iter_task_dirs  # noqa: PLC0415

    pools = cancel_pools_under(list(paths))  # first: their pilots claim nothing more
    done = cancel_tasks(iter_task_dirs(paths, dry_run=True), grace=grace)
    pilots = stop_pools(pools, grace=grace)
    if as_json:
        cancelled = [{"path": str(p), "was": was.value} for p, was in done]
        print_json({"cancelled": cancelled, "pilots_stopped": pilots})
        return
    for path, before in done:
        click.echo(f"cancelled {shown_path(path)} (was {before.value})")
    if pilots:
        click.echo(f"stopped {len(pilots)} pilot(s): {', '.join(pilots)}")
    if not done and not pilots:
        click.echo("nothing to cancel: no task under the paths is queued or running")
