"""``autojob render``: render task scripts again from their inputs.json."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from autojob.cli.options import ExistingDir
from autojob.cli.output import shown_path

__all__ = ["render"]


@click.command("render")
@click.argument("paths", nargs=-1, type=ExistingDir)
@click.option(
    "--force",
    is_flag=True,
    help="Replace scripts edited or written by hand as well (their edits are lost).",
)
@click.option("--dry-run", is_flag=True, help="Check and say what would change; write nothing.")
def render(paths: tuple[Path, ...], force: bool, dry_run: bool) -> None:
    """Render the task script of every task under PATHS again from its inputs.json.

    inputs.json is the source of truth: 'autojob submit' renders a task's script
    again by itself when inputs.json (or task.json) changed since autojob rendered
    it, and this command does so on demand (after a change of template, say).
    A script autojob rendered ends with a '# autojob-rendered' line; a script
    edited by hand since, or written by hand, is kept (and listed) unless
    --force. Queued and running tasks are left alone. Keys inputs.json must not
    hold are refused here as where tasks are created.

    \b
    Examples:
      autojob new --label hello --set command='echo hello'
      sed -i 's/echo hello/echo bonjour/' hello/inputs.json
      autojob render hello --dry-run
      autojob render hello
      echo 'echo by hand' >> hello/run.sh
      autojob render . --force
    """
    from autojob import SETTINGS  # noqa: PLC0415
    from autojob.create.render import render_scripts  # noqa: PLC0415
    from autojob.store.task_script import ScriptState  # noqa: PLC0415

    done = render_scripts(list(paths) or [Path()], force=force, dry_run=dry_run)
    would = "would be " if dry_run else ""
    for report in done.reports:
        if report.state in (ScriptState.RENDERED, ScriptState.WRITTEN):
            click.echo(f"{shown_path(report.path)}: {would}{report.state.value}")
        elif report.kept:
            stale = f" (and {SETTINGS.INPUTS_FILE} changed since)" if report.stale else ""
            click.echo(f"{shown_path(report.path)}: {report.state.value}{stale}")
    for path in done.live:
        click.echo(f"{shown_path(path)}: left alone: the task is queued or running")
    for path, why in done.errors:
        click.echo(f"{shown_path(path)}: not rendered: {why}", err=True)
    counts = Counter(report.state for report in done.reports)
    changes = (ScriptState.RENDERED, ScriptState.WRITTEN)
    parts = [
        f"{n} {would if state in changes else ''}{state.value.split(':')[0]}"
        for state, n in counts.items()
    ]
    click.echo(f"{len(done.reports)} task script(s): {', '.join(parts) or 'none'}")
    if any(report.kept for report in done.reports):
        click.echo("scripts kept are the user's: 'autojob render --force PATH' replaces them")
    if done.errors:
        raise SystemExit(1)
