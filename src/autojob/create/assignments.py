"""Change a task's inputs by ``KEY=VALUE`` assignments (``autojob new --set``).

``KEY`` is a dotted path into the sections of ``inputs.json``; a bare key means
``task_inputs`` (``command=...`` sets ``task_inputs.command``;
``scheduler_inputs.time=01:00:00`` sets a scheduler input). ``VALUE`` is parsed
as JSON when it parses (``4``, ``true``, ``["a.txt"]``), else kept as a string;
a field that wants a string gets the text as written. A key the task class
does not take is refused (:mod:`autojob.input_keys`).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import ValidationError

from autojob.bases.task_base import TaskBase
from autojob.errors import InputError
from autojob.input_keys import path_problem

__all__ = ["Assignment", "apply_assignments", "parse_assignment"]

T = TypeVar("T", bound=TaskBase)
Assignment = tuple[tuple[str, ...], Any, str]


def parse_assignment(text: str) -> Assignment:
    """Split ``KEY=VALUE`` into a path of keys, the parsed value and the raw text."""
    key, sep, raw = text.partition("=")
    parts = tuple(key.strip().split("."))
    if not sep or not all(part.strip() for part in parts):
        raise InputError(
            f"{text!r} is not KEY=VALUE",
            hint="write e.g. command='python calc.py' or scheduler_inputs.time=01:00:00",
        )
    if len(parts) == 1:
        parts = ("task_inputs", *parts)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return parts, value, raw


def _set_path(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = document
    for depth, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(path[: depth + 1])
            raise InputError(f"{where} is not a section; cannot set {'.'.join(path)}")
        node = child
    node[path[-1]] = value


def apply_assignments(task: T, assignments: list[str]) -> T:
    """Return a copy of ``task`` with the assignments applied and validated.

    Raises:
        InputError: an assignment is malformed or gives a field a wrong value.
    """
    document: dict[str, Any] = task.input_sections()
    document["task_metadata"] = task.task_metadata.model_dump(mode="json")
    for text in assignments:
        path, value, raw = parse_assignment(text)
        if path[0] in ("task_metadata", "task_outputs"):
            raise InputError(
                f"{path[0]} is not a section of inputs.json",
                hint="use --label for the label; ids are set by autojob",
            )
        problem = path_problem(type(task), path, value, document)
        if problem is not None:
            raise problem.error(f"--set {text!r}: ")
        _set_path(document, path, value)
        try:
            type(task).model_validate(document)
        except ValidationError as exc:
            if value != raw:  # the field may want the text as written
                _set_path(document, path, raw)
                try:
                    type(task).model_validate(document)
                    continue
                except ValidationError:
                    pass
            error = exc.errors()[0]
            raise InputError(
                f"--set {text!r}: {error['msg']}",
                field=".".join(str(p) for p in error["loc"]),
            ) from exc
    return type(task).model_validate(document)
