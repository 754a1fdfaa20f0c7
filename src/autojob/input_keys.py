"""Which keys ``inputs.json`` takes: typos are refused where inputs are written.

Everything autojob writes into ``inputs.json`` (``new --set``, ``restart
--set/--scheduler``, a sweep spec, the API's writers) is checked here against
the task class's fields and the scheduler inputs' fields (pure functions, no
I/O); reading a tree never is, so trees written earlier or by python-autojob
load as they are. The rules:

- a section must be one the task class declares (``task_inputs``,
  ``scheduler_inputs``, ...);
- a scheduler input must be a declared field (``time``, ``mem``, ...) or a
  long option of sbatch (:data:`autojob.scheduler.SBATCH_OPTIONS`); any other
  option is written out through ``extra_directives``;
- a memory amount needs a unit (sbatch reads ``mem=8`` as 8 megabytes);
- a task input of your own (a parameter your command reads) may take any name
  except one so close to a declared field that it looks like its typo
  (``comand``, ``max_attempt``);
- keys and values the task had already (``inherited``: an attempt copied from
  an older one) are not judged again.

Each refusal says what was meant (``difflib``'s close matches).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from autojob.bases.task_base import TaskBase
from autojob.errors import InputError
from autojob.scheduler import SBATCH_OPTIONS, SHORT_OPTIONS, SchedulerInputs, memory_without_unit

__all__ = [
    "KeyProblem",
    "check_input_document",
    "declared_sections",
    "document_problems",
    "missing_command",
    "path_problem",
]

#: sections of a task's model that are not sections of inputs.json
_NOT_INPUTS = frozenset({"task_metadata", "task_outputs"})
#: how close a task input must come to a declared field to be taken for its typo
_TYPO_CUTOFF = 0.8
_MEMORY_OPTIONS = frozenset({"mem", "mem-per-cpu", "mem-per-gpu"})


@dataclass(frozen=True)
class KeyProblem:
    """A key (or value) of ``inputs.json`` that is refused: where, why, what to do."""

    field: str
    message: str
    hint: str

    def error(self, prefix: str = "", path: str | Path | None = None) -> InputError:
        """The problem as an :class:`InputError` (``prefix``: what was given)."""
        return InputError(f"{prefix}{self.message}", path=path, field=self.field, hint=self.hint)


@functools.cache
def declared_sections(task_class: type[TaskBase]) -> tuple[str, ...]:
    """The sections of ``inputs.json`` that ``task_class`` declares (read once per class)."""
    return tuple(name for name in task_class.model_fields if name not in _NOT_INPUTS)


@functools.cache
def _section_model(task_class: type[TaskBase], section: str) -> type[BaseModel] | None:
    annotation = task_class.model_fields[section].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@functools.cache
def _field_names(model: type[BaseModel]) -> frozenset[str]:
    """A model's field names, read once (each task written asks for them)."""
    return frozenset(model.model_fields)


def _did_you_mean(word: str, choices: Sequence[str], cutoff: float = 0.6) -> list[str]:
    return difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)


def _either(words: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _normal(option: str) -> str:
    return option.strip().lstrip("-").replace("_", "-")


@functools.cache
def _scheduler_names() -> dict[str, str]:
    """Every spelling of a declared scheduler field, mapped to its field name."""
    names: dict[str, str] = {}
    for name, info in SchedulerInputs.model_fields.items():
        names[name] = name
        names[_normal(info.alias or name)] = name
    return names


def _scheduler_key_problem(key: str, value: Any, present: Mapping[str, Any]) -> KeyProblem | None:
    field = f"scheduler_inputs.{key}"
    option = _normal(key)
    known = option in SBATCH_OPTIONS or key in _scheduler_names() or option in _scheduler_names()
    if not known:
        if key in present:
            return None
        fields = [n for n in SchedulerInputs.model_fields if n != "extra_directives"]
        close = _did_you_mean(key, fields) + _did_you_mean(option, sorted(SBATCH_OPTIONS))
        if key in SHORT_OPTIONS:
            close.insert(0, SHORT_OPTIONS[key].replace("-", "_"))
        meant = f"; did you mean {_either(list(dict.fromkeys(close)))}?" if close else ""
        return KeyProblem(
            field,
            f"{key!r} is neither a scheduler input nor a long option of sbatch{meant}",
            f"scheduler inputs are {', '.join(fields)} and the long options of sbatch; "
            "write any other option out as scheduler_inputs.extra_directives, e.g. "
            '["--container-image=ubuntu"]',
        )
    if option in _MEMORY_OPTIONS and memory_without_unit(value) and present.get(key) != value:
        amount = str(value).strip()
        return KeyProblem(
            field,
            f"{amount} has no unit, and sbatch would read it as {amount} megabytes",
            f"write {amount}G for gigabytes, or {amount}M for megabytes",
        )
    return None


def _input_key_problem(
    task_class: type[TaskBase], section: str, key: str, present: Mapping[str, Any]
) -> KeyProblem | None:
    model = _section_model(task_class, section)
    if model is None or key in _field_names(model) or key in present:
        return None
    close = _did_you_mean(key, list(model.model_fields), _TYPO_CUTOFF)
    if not close:
        return None  # a parameter of the user's own
    meant = _either([f"{section}.{name}" for name in close])
    return KeyProblem(
        f"{section}.{key}",
        f"{key!r} is not an input of task class {_class_name(task_class)!r}; did you mean {meant}?",
        "an input of your own may take any name but one this close to a declared "
        f"input ({', '.join(model.model_fields)}): give it another name",
    )


def _class_name(task_class: type[TaskBase]) -> str:
    return task_class.__name__.lower()


def _section_problem(
    task_class: type[TaskBase], section: str, value: Any, have: Mapping[str, Any]
) -> KeyProblem | None:
    if not isinstance(value, Mapping):
        return None  # the model's validation says what a section must be
    model = _section_model(task_class, section) if section != "scheduler_inputs" else None
    if model is not None:  # a declared input is fine whatever its value: judge the others
        fields = _field_names(model)
        value = {key: item for key, item in value.items() if key not in fields}
    for key, item in value.items():
        problem = path_problem(task_class, (section, str(key)), item, have)
        if problem is not None:
            return problem
    return None


def path_problem(
    task_class: type[TaskBase],
    path: Sequence[str],
    value: Any,
    present: Mapping[str, Any] | None = None,
) -> KeyProblem | None:
    """What is wrong with setting ``path`` (section, key, ...) to ``value``, if anything.

    ``present``: the sections the task has already; what is there is not
    judged again.
    """
    have = present or {}
    section = path[0]
    sections = declared_sections(task_class)
    if section not in sections:
        if section in have:
            return None
        close = _did_you_mean(section, sections) or [s for s in sections if s.startswith(section)]
        meant = f"; did you mean {_either(close)}?" if close else ""
        return KeyProblem(
            ".".join(path),
            f"{section!r} is not a section of inputs.json for task class "
            f"{_class_name(task_class)!r}{meant}",
            f"its sections are {', '.join(sections)}; a bare key means task_inputs",
        )
    if len(path) == 1:
        return _section_problem(task_class, section, value, have)
    inside = have.get(section)
    inside = inside if isinstance(inside, Mapping) else {}
    if section == "scheduler_inputs":
        return _scheduler_key_problem(path[1], value if len(path) == 2 else None, inside)
    return _input_key_problem(task_class, section, path[1], inside)


def document_problems(
    task_class: type[TaskBase],
    sections: Mapping[str, Any],
    inherited: Mapping[str, Any] | None = None,
) -> list[KeyProblem]:
    """Every problem of the ``inputs.json`` sections of a task about to be written."""
    problems = []
    for section, content in sections.items():
        problem = path_problem(task_class, (section,), content, inherited)
        if problem is not None:
            problems.append(problem)
    return problems


def check_input_document(
    task_class: type[TaskBase],
    sections: Mapping[str, Any],
    inherited: Mapping[str, Any] | None = None,
    *,
    prefix: str = "",
    path: str | Path | None = None,
) -> None:
    """Refuse the sections of a task about to be written if a key is wrong.

    ``path``: the ``inputs.json`` the sections come from, if any.

    Raises:
        InputError: naming the first key at fault and what was meant.
    """
    problems = document_problems(task_class, sections, inherited)
    if problems:
        raise problems[0].error(prefix, path)


def missing_command(task_class: type[TaskBase], sections: Mapping[str, Any]) -> bool:
    """Whether a task of ``task_class`` with these sections lacks the command it needs."""
    if not task_class.REQUIRES_COMMAND:
        return False
    inputs = sections.get("task_inputs")
    command = inputs.get("command") if isinstance(inputs, Mapping) else None
    return not (isinstance(command, str) and command.strip())
