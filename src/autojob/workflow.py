"""Workflows: a DAG of steps, and what each step creates (pure models, no I/O).

A study's workflow is two files. ``workflow.json`` maps each step id to the
ids of its predecessor steps (a directed acyclic graph, :class:`WorkflowGraph`);
``parameterizations.json`` maps each step id to a :class:`Step`: the task class
of the tasks it creates, its ``progression`` and its ``parametrizations``.

- ``independent``: one new set of tasks per finished task of the predecessor step.
- ``dependent``: one set of tasks once every task of the predecessor steps is done.

Each parametrization (a list of :class:`VariableReference`) is one new task; a
reference sets a dotted path in the new task's inputs (a bare key means
``task_inputs``, as ``autojob new --set``) from a constant, from a path in a
predecessor task's ``inputs`` or ``outputs``, or from several of them combined
by a named composer (:data:`COMPOSERS`). A dependent step sees, for each
source, the list of values over every task of the source step.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    field_validator,
    model_serializer,
    model_validator,
)

from autojob.ids import Uuid, check_uuid

__all__ = [
    "COMPOSERS",
    "DOCUMENTS",
    "Progression",
    "Source",
    "Step",
    "VariableReference",
    "Workflow",
    "WorkflowGraph",
    "compose",
    "find_cycle",
    "split_set_path",
    "to_dot",
    "to_mermaid",
]

Progression = Literal["independent", "dependent"]
#: the documents of a predecessor task a source path may start with
DOCUMENTS = ("inputs", "outputs", "metadata")


def _flatten(values: Iterable[Any]) -> list[Any]:
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _join(values: list[Any]) -> str:
    return " ".join(str(v) for v in _flatten(values))


#: composers by name: each takes the list of source values (one per source;
#: a list of values per source for a dependent step) and returns one value
COMPOSERS: dict[str, Callable[[list[Any]], Any]] = {
    "list": lambda values: values,
    "concat": _flatten,
    "first": lambda values: _flatten(values)[0],
    "sum": lambda values: sum(_flatten(values)),
    "mean": lambda values: statistics.fmean(_flatten(values)),
    "min": lambda values: min(_flatten(values)),
    "max": lambda values: max(_flatten(values)),
    "join": _join,
    "zip": lambda values: [list(row) for row in zip(*values, strict=True)],
}


def compose(name: str | None, values: list[Any]) -> Any:
    """Combine source values with the composer ``name`` (None: the one value)."""
    if name is None:
        return values[0]
    return COMPOSERS[name](values)


def split_set_path(path: str) -> tuple[str, ...]:
    """Split a dotted path into ``inputs.json``; a bare key means ``task_inputs``."""
    parts = tuple(path.split("."))
    return ("task_inputs", *parts) if len(parts) == 1 else parts


def _check_dotted(value: str, what: str) -> str:
    parts = value.split(".")
    if not value or not all(p.strip() for p in parts):
        msg = f"{value!r} is not a dotted path ({what})"
        raise ValueError(msg)
    return value


class Source(BaseModel):
    """Where a value comes from: a path in a predecessor task's inputs or outputs.

    ``path`` starts with ``inputs`` (the sections of ``inputs.json``),
    ``outputs`` (``outputs.json``) or ``metadata`` (``task.json``):
    ``outputs.energy``, ``inputs.task_inputs.ecut``. ``step``: the predecessor step (needed only
    when the step has several predecessors).
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    step: Uuid | None = None

    @field_validator("path")
    @classmethod
    def _known_document(cls, value: str) -> str:
        _check_dotted(value, "a source")
        head, _, rest = value.partition(".")
        if head not in DOCUMENTS or not rest:
            msg = f"{value!r} must start with 'inputs.', 'outputs.' or 'metadata.' and name a key"
            raise ValueError(msg)
        return value

    @property
    def document(self) -> str:
        """``inputs`` or ``outputs``."""
        return self.path.partition(".")[0]

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys below the document."""
        return tuple(self.path.split("."))[1:]


def _from_task_path(path: list[str]) -> str:
    """A path into a dumped task (the reference implementation's form) as a source path."""
    head, rest = (path[0], path[1:]) if path else ("", [])
    if head == "task_outputs":
        return ".".join(["outputs", *rest])
    if head == "task_metadata":
        return ".".join(["metadata", *rest])
    return ".".join(["inputs", *path])


def _reference_form(data: dict[str, Any]) -> dict[str, Any]:
    """A reference written by the reference implementation (lists of keys) in this form."""
    converted: dict[str, Any] = {"set_path": ".".join(data["set_path"])}
    if data.get("get_path"):
        converted["get_path"] = _from_task_path(data["get_path"])
    elif data.get("get_paths"):
        converted["sources"] = [{"path": _from_task_path(p)} for p in data["get_paths"]]
    else:
        converted["constant"] = data.get("constant")
    if isinstance(data.get("composer"), str):
        converted["composer"] = data["composer"]
    return converted


class VariableReference(BaseModel):
    """Sets ``set_path`` of a new task's inputs from a constant or from sources.

    Exactly one of ``constant``, ``get_path`` (one source, shorthand for
    ``sources=[{"path": get_path}]``) or ``sources`` is given; several sources
    need a ``composer``. The reference implementation's form (``set_path`` and
    ``get_path`` as lists of keys into the dumped task, ``get_paths``) is read too.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _lists_of_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("set_path"), list):
            return _reference_form(data)
        return data

    set_path: str
    constant: Any = None
    get_path: str | None = None
    sources: list[Source] = Field(default_factory=list)
    composer: str | None = None

    @field_validator("set_path")
    @classmethod
    def _dotted(cls, value: str) -> str:
        return _check_dotted(value, "set_path")

    @field_validator("composer")
    @classmethod
    def _known_composer(cls, value: str | None) -> str | None:
        if value is not None and value not in COMPOSERS:
            msg = f"unknown composer {value!r}: use one of {', '.join(COMPOSERS)}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_origin(self) -> Self:
        if self.get_path is not None:
            if self.sources:
                msg = "give get_path or sources, not both"
                raise ValueError(msg)
            self.sources = [Source(path=self.get_path)]
            self.get_path = None
        given = ("constant" in self.model_fields_set) + bool(self.sources)
        if given != 1:
            msg = f"{self.set_path}: give exactly one of constant, get_path or sources"
            raise ValueError(msg)
        if len(self.sources) > 1 and self.composer is None:
            msg = f"{self.set_path}: several sources need a composer"
            raise ValueError(msg)
        return self

    @model_serializer(mode="plain")
    def _only_what_is_given(self) -> dict[str, Any]:
        data: dict[str, Any] = {"set_path": self.set_path}
        if self.is_constant:
            data["constant"] = self.constant
            return data
        data["sources"] = [s.model_dump(exclude_none=True) for s in self.sources]
        if self.composer is not None:
            data["composer"] = self.composer
        return data

    @property
    def is_constant(self) -> bool:
        """Whether the value is a constant."""
        return not self.sources


def _one_empty_parametrization() -> list[list[VariableReference]]:
    return [[]]


class Step(BaseModel):
    """A workflow step: what it creates (``parameterizations.json`` values).

    The reference implementation's field spelling ``parametrizations`` is the
    one used here; ``parameterizations`` is read as well.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    workflow_step_id: Uuid | None = Field(
        default=None, description="the step's id (written by the reference implementation)"
    )
    task_class: str = "task"
    progression: Progression = "independent"
    parametrizations: list[list[VariableReference]] = Field(
        default_factory=_one_empty_parametrization, min_length=1
    )

    @model_validator(mode="before")
    @classmethod
    def _other_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict) and "parameterizations" in data:
            data = dict(data)
            data.setdefault("parametrizations", data.pop("parameterizations"))
        return data

    def references(self) -> Iterable[VariableReference]:
        """Every reference of every parametrization."""
        return (ref for refs in self.parametrizations for ref in refs)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """Return one cycle of ``graph`` (step -> predecessors) as a path, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for prev in graph.get(node, []):
            if state.get(prev) == 1:
                return [*path[path.index(prev) :], prev]
            if prev not in state and (found := visit(prev)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in graph:
        if start not in state and (found := visit(start)):
            return found
    return None


class WorkflowGraph(RootModel[dict[Uuid, list[Uuid]]]):
    """``workflow.json``: each step id mapped to its predecessor step ids (a DAG)."""

    @model_validator(mode="after")
    def _a_dag(self) -> Self:
        for step, before in self.root.items():
            unknown = [p for p in before if p not in self.root]
            if unknown:
                msg = f"step {step} follows unknown step(s) {', '.join(unknown)}"
                raise ValueError(msg)
        cycle = find_cycle(self.root)
        if cycle:
            msg = f"the steps form a cycle: {' <- '.join(cycle)}"
            raise ValueError(msg)
        return self

    def predecessors(self, step: str) -> list[str]:
        """The steps ``step`` follows."""
        return list(self.root.get(step, []))

    def successors(self, step: str) -> list[str]:
        """The steps that follow ``step``."""
        return [s for s, before in self.root.items() if step in before]

    def roots(self) -> list[str]:
        """Steps without predecessors (created by hand or by a sweep)."""
        return [s for s, before in self.root.items() if not before]

    def ancestors(self, step: str) -> set[str]:
        """Every step ``step`` depends on, directly or not."""
        seen: set[str] = set()
        todo = self.predecessors(step)
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(self.predecessors(node))
        return seen

    def order(self) -> list[str]:
        """The steps in an order where predecessors come first."""
        done: list[str] = []
        while len(done) < len(self.root):
            done.extend(
                s for s, before in self.root.items() if s not in done and set(before) <= set(done)
            )
        return done


class Workflow(BaseModel):
    """A study's whole workflow: the graph and the step of each node, checked together."""

    graph: WorkflowGraph
    steps: dict[Uuid, Step]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        nodes, described = set(self.graph.root), set(self.steps)
        if nodes - described:
            msg = f"step(s) without a parametrization: {', '.join(sorted(nodes - described))}"
            raise ValueError(msg)
        if described - nodes:
            msg = f"step(s) not in the workflow graph: {', '.join(sorted(described - nodes))}"
            raise ValueError(msg)
        for step_id, step in self.steps.items():
            self._check_step(step_id, step)
        return self

    def _check_step(self, step_id: str, step: Step) -> None:
        before = self.graph.predecessors(step_id)
        label = step.name or step_id
        if step.progression == "independent" and len(before) > 1:
            msg = f"step {label}: an independent step follows one step, not {len(before)}"
            raise ValueError(msg)
        for ref in step.references():
            for source in ref.sources:
                if source.step is None and len(before) != 1:
                    msg = (
                        f"step {label}: source {source.path!r} must name its step "
                        f"(the step follows {len(before)} steps)"
                    )
                    raise ValueError(msg)
                if source.step is not None and source.step not in before:
                    msg = (
                        f"step {label}: source {source.path!r} refers to step "
                        f"{source.step}, which is not a predecessor of the step"
                    )
                    raise ValueError(msg)

    def source_step(self, step_id: str, source: Source) -> str:
        """The step a source of ``step_id`` reads from."""
        return source.step or self.graph.predecessors(step_id)[0]

    def step_of_name(self, name: str) -> str | None:
        """The id of the step called ``name`` (or with that id)."""
        if name in self.steps:
            return name
        found = [sid for sid, step in self.steps.items() if step.name == name]
        if found:
            return found[0]
        try:
            normal = check_uuid(name)
        except ValueError:
            return None
        return normal if normal in self.steps else None

    def label(self, step_id: str) -> str:
        """The name of a step, or its id."""
        return self.steps[step_id].name or step_id

    def progression_of(self, step_id: str) -> str:
        """How a step makes its tasks, as every view shows it.

        ``start`` for a step without predecessors (its tasks are made by hand
        or by a sweep, whatever its ``progression`` field says), else its
        ``progression``.
        """
        return self.steps[step_id].progression if self.graph.predecessors(step_id) else "start"


def _node(step_id: str) -> str:
    return "s" + step_id.replace("-", "")[:12]


def _text(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def to_mermaid(workflow: Workflow) -> str:
    """The workflow as a Mermaid flowchart."""
    lines = ["flowchart TD"]
    for sid in workflow.graph.order():
        label = f"{workflow.label(sid)} ({workflow.progression_of(sid)})".replace('"', "#quot;")
        lines.append(f'    {_node(sid)}["{label}"]')
    for sid in workflow.graph.order():
        lines.extend(f"    {_node(p)} --> {_node(sid)}" for p in workflow.graph.predecessors(sid))
    return "\n".join(lines) + "\n"


def to_dot(workflow: Workflow) -> str:
    """The workflow as a Graphviz DOT digraph."""
    lines = ["digraph workflow {", "    rankdir=TB;"]
    for sid in workflow.graph.order():
        label = _text(workflow.label(sid)) + "\\n" + workflow.progression_of(sid)
        lines.append(f'    "{sid}" [label="{label}"];')
    for sid in workflow.graph.order():
        lines.extend(f'    "{p}" -> "{sid}";' for p in workflow.graph.predecessors(sid))
    return "\n".join([*lines, "}"]) + "\n"
