"""``autojob workflow``: look at a study's workflow (draw it, check it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click
from rich.console import Console
from rich.tree import Tree

from autojob.cli.options import ExistingDir
from autojob.cli.output import json_option, print_json

if TYPE_CHECKING:
    from autojob.next.advance import StepProgress
    from autojob.workflow import Workflow

__all__ = ["workflow"]

Format = Literal["tree", "mermaid", "dot"]


@click.group("workflow")
def workflow() -> None:
    """Look at the workflow of a study (workflow.json and parameterizations.json)."""


def _tree(flow: Workflow, progress: dict[str, StepProgress]) -> Tree:
    root = Tree("workflow", guide_style="dim")
    shown: set[str] = set()

    def add(parent: Tree, sid: str) -> None:
        row = progress.get(sid)
        counts = f" {row.done}/{row.expected or row.groups} done" if row else ""
        text = f"[bold]{flow.label(sid)}[/] [dim]{flow.progression_of(sid)}[/]{counts}"
        if sid in shown:
            parent.add(f"{flow.label(sid)} [dim](see above)[/]")
            return
        shown.add(sid)
        node = parent.add(text)
        for nxt in flow.graph.successors(sid):
            add(node, nxt)

    for sid in flow.graph.roots():
        add(root, sid)
    return root


@workflow.command("show")
@click.argument("study", type=ExistingDir, default=Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "mermaid", "dot"]),
    default="tree",
    show_default=True,
    help="A tree in the terminal, or text for Mermaid or Graphviz (dot -Tsvg).",
)
@json_option("Print the steps and their progress as one JSON document (see docs/json.md).")
def show(study: Path, fmt: Format, as_json: bool) -> None:
    """Draw the workflow of STUDY, with the progress of each step.

    \b
    Example spec (chain.toml):
      name = "chain"
      command = "echo {x}"
      [parameters]
      x = [1, 2]
      [[steps]]
      name = "total"
      after = ["sweep"]
      progression = "dependent"
      set = { command = "echo done" }

    \b
    Examples:
      autojob sweep chain.toml
      autojob workflow show chain
      autojob workflow show chain --format mermaid
      autojob workflow show chain --json
      autojob workflow check chain
      autojob workflow show chain --format dot | dot -Tsvg > workflow.svg   # needs: graphviz
    """
    from autojob.next.advance import workflow_progress  # noqa: PLC0415
    from autojob.store.workflow import load_workflow  # noqa: PLC0415
    from autojob.workflow import to_dot, to_mermaid  # noqa: PLC0415

    flow = load_workflow(study)
    if as_json:
        rows = {row.step: row for row in workflow_progress(study)}
        print_json(
            {"study": str(study), "steps": [_step_json(flow, sid, rows) for sid in flow.steps]}
        )
    elif fmt == "mermaid":
        click.echo(to_mermaid(flow), nl=False)
    elif fmt == "dot":
        click.echo(to_dot(flow), nl=False)
    else:
        progress = {row.step: row for row in workflow_progress(study)}
        Console().print(_tree(flow, progress))


def _step_json(flow: Workflow, sid: str, rows: dict[str, StepProgress]) -> dict[str, object]:
    """One step of ``workflow show --json``: its place in the DAG and its progress."""
    row = rows.get(sid)
    return {
        "id": sid,
        "name": flow.label(sid),
        "progression": flow.progression_of(sid),
        "after": list(flow.graph.predecessors(sid)),
        "next": list(flow.graph.successors(sid)),
        "task_groups": None if row is None else row.groups,
        "done": None if row is None else row.done,
        "expected": None if row is None else row.expected,
    }


@workflow.command("check")
@click.argument("study", type=ExistingDir, default=Path())
def check(study: Path) -> None:
    """Check the workflow files of STUDY: a DAG of known steps with valid references."""
    from autojob.store.workflow import load_workflow  # noqa: PLC0415

    flow = load_workflow(study)
    click.echo(f"workflow of {study}: {len(flow.steps)} step(s), no cycle, references valid")
