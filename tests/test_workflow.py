"""Workflow models and files: DAG checks, references, composers, drawing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from autojob import SETTINGS
from autojob.errors import MetadataError
from autojob.store.workflow import load_workflow, save_workflow
from autojob.workflow import (
    COMPOSERS,
    Step,
    VariableReference,
    Workflow,
    WorkflowGraph,
    compose,
    find_cycle,
    to_dot,
    to_mermaid,
)

from .helpers import run

A, B, C = (str(uuid.uuid4()) for _ in range(3))


def write_files(study: Path, graph: dict[str, Any], steps: dict[str, Any]) -> None:
    study.mkdir(exist_ok=True)
    (study / SETTINGS.WORKFLOW_FILE).write_text(json.dumps(graph))
    (study / SETTINGS.PARAMETERIZATION_FILE).write_text(json.dumps(steps))


def three_steps() -> Workflow:
    return Workflow(
        graph=WorkflowGraph({A: [], B: [A], C: [A, B]}),
        steps={
            A: Step(name="relax"),
            B: Step(
                name="bands",
                parametrizations=[[VariableReference(set_path="e", get_path="outputs.energy")]],
            ),
            C: Step(
                name="summary",
                progression="dependent",
                parametrizations=[
                    [
                        VariableReference(set_path="command", constant="python sum.py"),
                        VariableReference(
                            set_path="pairs",
                            sources=[
                                {"path": "outputs.energy", "step": A},
                                {"path": "inputs.task_inputs.e", "step": B},
                            ],
                            composer="zip",
                        ),
                    ]
                ],
            ),
        },
    )


def test_a_workflow_round_trips_through_its_files(tmp_path: Path) -> None:
    flow = three_steps()
    save_workflow(tmp_path, flow)
    assert json.loads((tmp_path / SETTINGS.WORKFLOW_FILE).read_text()) == {
        A: [],
        B: [A],
        C: [A, B],
    }
    assert load_workflow(tmp_path) == flow
    assert flow.graph.order() == [A, B, C]
    assert flow.graph.successors(A) == [B, C]
    assert flow.graph.ancestors(C) == {A, B}


def test_the_reference_spelling_parametrizations_json_is_read(tmp_path: Path) -> None:
    save_workflow(tmp_path, three_steps())
    steps = (tmp_path / SETTINGS.PARAMETERIZATION_FILE).read_text()
    (tmp_path / SETTINGS.PARAMETERIZATION_FILE).unlink()
    (tmp_path / SETTINGS.LEGACY_PARAMETERIZATION_FILE).write_text(steps)
    assert load_workflow(tmp_path) == three_steps()


def test_a_cycle_is_refused_with_the_steps_on_it(tmp_path: Path) -> None:
    write_files(tmp_path, {A: [C], B: [A], C: [B]}, {A: {}, B: {}, C: {}})
    with pytest.raises(MetadataError, match="cycle") as info:
        load_workflow(tmp_path)
    message = str(info.value)
    assert str(tmp_path / SETTINGS.WORKFLOW_FILE) in message
    assert all(step in message for step in (A, B, C))
    assert find_cycle({A: [A]}) == [A, A]


def test_an_unknown_predecessor_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {A: [], B: [C]}, {A: {}, B: {}})
    with pytest.raises(MetadataError, match=f"follows unknown step.*{C}"):
        load_workflow(tmp_path)


def test_steps_and_parametrizations_must_match(tmp_path: Path) -> None:
    write_files(tmp_path, {A: [], B: [A]}, {A: {}})
    with pytest.raises(MetadataError, match=f"without a parametrization: {B}"):
        load_workflow(tmp_path)
    write_files(tmp_path, {A: []}, {A: {}, B: {}})
    with pytest.raises(MetadataError, match=f"not in the workflow graph: {B}"):
        load_workflow(tmp_path)


def test_a_reference_to_a_step_that_is_not_a_predecessor_is_refused(tmp_path: Path) -> None:
    ref = {"set_path": "x", "sources": [{"path": "outputs.x", "step": C}]}
    write_files(tmp_path, {A: [], B: [A], C: []}, {A: {}, B: {"parametrizations": [[ref]]}, C: {}})
    with pytest.raises(MetadataError, match=f"refers to step {C}, which is not a predecessor"):
        load_workflow(tmp_path)


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ({"set_path": "x", "get_path": "energy"}, "must start with 'inputs.', 'outputs.'"),
        ({"set_path": "x", "sources": [{"path": "results.e"}]}, "must start with"),
        ({"set_path": "x", "get_path": "outputs.e", "composer": "median"}, "unknown composer"),
        ({"set_path": "x"}, "exactly one of constant"),
        ({"set_path": "x", "constant": 1, "get_path": "outputs.e"}, "exactly one"),
        (
            {"set_path": "x", "sources": [{"path": "outputs.a"}, {"path": "outputs.b"}]},
            "several sources need a composer",
        ),
        ({"set_path": "a..b", "constant": 1}, "not a dotted path"),
    ],
)
def test_bad_references_are_refused_naming_the_step(
    tmp_path: Path, ref: dict[str, Any], match: str
) -> None:
    write_files(tmp_path, {A: [], B: [A]}, {A: {}, B: {"parametrizations": [[ref]]}})
    with pytest.raises(MetadataError) as info:
        load_workflow(tmp_path)
    assert info.value.path == tmp_path / SETTINGS.PARAMETERIZATION_FILE
    assert info.value.field is not None and info.value.field.startswith(B)
    assert match in str(info.value)


def test_an_independent_step_follows_one_step() -> None:
    with pytest.raises(ValidationError, match="independent step follows one step"):
        Workflow(
            graph=WorkflowGraph({A: [], B: [], C: [A, B]}), steps={A: Step(), B: Step(), C: Step()}
        )


def test_composers_combine_values() -> None:
    assert set(COMPOSERS) >= {"list", "concat", "sum", "mean", "min", "max", "join", "zip", "first"}
    assert compose(None, [5]) == 5
    assert compose("sum", [[1, 2, 3]]) == 6
    assert compose("mean", [[1, 2], [3]]) == 2
    assert compose("concat", [[1, 2], [3]]) == [1, 2, 3]
    assert compose("zip", [[1, 2], ["a", "b"]]) == [[1, "a"], [2, "b"]]
    assert compose("join", ["a", "b"]) == "a b"


def test_the_dag_draws_as_mermaid_and_dot() -> None:
    flow = three_steps()
    mermaid = to_mermaid(flow)
    assert mermaid.startswith("flowchart TD")
    assert mermaid.count("-->") == 3 and '"summary (dependent)"' in mermaid
    dot = to_dot(flow)
    assert dot.startswith("digraph workflow {") and dot.rstrip().endswith("}")
    assert f'"{A}" -> "{C}";' in dot and f'"{B}" -> "{C}";' in dot


def test_cli_show_and_check(tmp_path: Path) -> None:
    save_workflow(tmp_path, three_steps())
    (tmp_path / SETTINGS.STUDY_METADATA_FILE).write_text("{}")
    shown = run("workflow", "show", tmp_path, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "relax" in shown.stdout and "summary" in shown.stdout and "bands" in shown.stdout
    dot = run("workflow", "show", tmp_path, "--format", "dot", cwd=tmp_path)
    assert dot.stdout == to_dot(three_steps())
    assert run("workflow", "check", tmp_path, cwd=tmp_path).returncode == 0
    write_files(tmp_path, {A: [B], B: [A]}, {A: {}, B: {}})
    bad = run("workflow", "check", tmp_path, cwd=tmp_path)
    assert bad.returncode == 1
    assert "cycle" in bad.stderr and "Traceback" not in bad.stderr
