"""Read and write a study's workflow files (``workflow.json``, ``parameterizations.json``).

Both are validated together on load (:class:`autojob.workflow.Workflow`): a
cycle, an unknown step or a reference to a step that is not a predecessor is a
:class:`~autojob.errors.MetadataError` naming the file and the field. The
reference implementation's spelling ``parametrizations.json`` is read when the
other file is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autojob import SETTINGS
from autojob.errors import MetadataError
from autojob.store.atomic import dump_json, read_json_object, write_atomic
from autojob.workflow import Step, Workflow, WorkflowGraph, find_cycle

__all__ = ["has_workflow", "load_workflow", "parameterization_path", "save_workflow"]


def parameterization_path(study_dir: Path) -> Path:
    """The parameterization file of a study (the legacy spelling if only it exists)."""
    path = study_dir / SETTINGS.PARAMETERIZATION_FILE
    legacy = study_dir / SETTINGS.LEGACY_PARAMETERIZATION_FILE
    return legacy if not path.is_file() and legacy.is_file() else path


def has_workflow(study_dir: Path) -> bool:
    """Whether the study has a workflow file."""
    return (study_dir / SETTINGS.WORKFLOW_FILE).is_file()


def _invalid(exc: ValidationError, path: Path, prefix: str = "") -> MetadataError:
    error = exc.errors()[0]
    loc = ".".join(str(p) for p in error["loc"] if p != "root")
    field = f"{prefix}.{loc}".strip(".") or None
    message = str(error["msg"]).removeprefix("Value error, ")
    return MetadataError(message, path=path, field=field, hint="fix the file, then run again")


def load_workflow(study_dir: Path) -> Workflow:
    """Load and check the workflow of the study in ``study_dir``.

    Raises:
        MissingFileError: the study has no workflow file.
        MetadataError: a file is corrupt, or the workflow is not a valid DAG.
    """
    graph_path = study_dir / SETTINGS.WORKFLOW_FILE
    steps_path = parameterization_path(study_dir)
    hint = "write it with 'autojob sweep' or by hand (see 'autojob workflow --help')"
    raw_graph = read_json_object(graph_path, missing_hint=hint)
    raw_steps = read_json_object(steps_path, missing_hint=hint)
    try:
        graph = WorkflowGraph.model_validate(raw_graph)
    except ValidationError as exc:
        cycle = _named_cycle(raw_graph, raw_steps)
        if cycle:
            raise MetadataError(
                f"the steps form a cycle: {cycle}",
                path=graph_path,
                hint="each step must follow only steps before it: remove one of these "
                "steps from the list of the step it follows",
            ) from exc
        raise _invalid(exc, graph_path) from exc
    steps: dict[str, Step] = {}
    for key, value in raw_steps.items():
        try:
            steps[key] = Step.model_validate(value)
        except ValidationError as exc:
            raise _invalid(exc, steps_path, key) from exc
    try:
        return Workflow(graph=graph, steps=steps)
    except ValidationError as exc:
        raise _invalid(exc, steps_path) from exc


def _named_cycle(raw_graph: dict[str, Any], raw_steps: dict[str, Any]) -> str | None:
    """A cycle of the graph, each step by its name and id; None if there is none."""
    graph = {
        str(step): [str(p) for p in before]
        for step, before in raw_graph.items()
        if isinstance(before, list)
    }
    cycle = find_cycle(graph)
    if not cycle:
        return None

    def named(step: str) -> str:
        entry = raw_steps.get(step)
        name = entry.get("name") if isinstance(entry, dict) else None
        return f"{name} ({step})" if isinstance(name, str) and name else step

    return " <- ".join(named(step) for step in cycle)


def _dump_steps(workflow: Workflow) -> dict[str, Any]:
    return {
        sid: step.model_dump(mode="json", exclude_defaults=False)
        for sid, step in workflow.steps.items()
    }


def save_workflow(study_dir: Path, workflow: Workflow) -> list[Path]:
    """Write the workflow files of a study atomically; return them."""
    graph_path = study_dir / SETTINGS.WORKFLOW_FILE
    steps_path = study_dir / SETTINGS.PARAMETERIZATION_FILE
    write_atomic(steps_path, dump_json(_dump_steps(workflow), steps_path))
    write_atomic(graph_path, dump_json(workflow.graph.model_dump(mode="json"), graph_path))
    return [steps_path, graph_path]
