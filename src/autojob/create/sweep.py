"""Read sweep specifications (TOML or YAML) and write the studies they describe.

The study of a spec is built by :func:`autojob.sweep.build_study` (no I/O).
Where the spec's study exists already, :func:`write_sweep` adds only the
combinations (and workflow steps) it lacks and leaves every existing task as
it is: a combination is known by its parameter values, recorded in each task
group's ``task_group.json`` (or, for groups written before that record, read
from their tasks' ``inputs.json``).

Errors in a spec name the key and the line: YAML through the node marks of
PyYAML's composer, TOML through a scan of its table headers and keys
(``tomllib`` keeps no positions).
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from autojob import SETTINGS
from autojob.bases.input_files import InputFile
from autojob.errors import AutojobError, InputError
from autojob.store.atomic import read_json_object, read_json_object_if_file
from autojob.store.input_files import check_input_files
from autojob.store.names import render_template, template_fields
from autojob.store.task_lock import task_lock
from autojob.store.workflow import has_workflow, load_workflow, save_workflow
from autojob.store.write import add_task_groups, write_study
from autojob.study import Study
from autojob.sweep import SpecKeyError, SweepSpec, build_study, step_id, sweep_groups
from autojob.task_group import TaskGroup
from autojob.workflow import Workflow, WorkflowGraph, split_set_path

__all__ = [
    "SweepResult",
    "build_study",
    "check_files",
    "existing_combinations",
    "load_spec",
    "parse_spec",
    "study_dir_of",
    "sweep_into",
    "table_rows",
    "toml_key_lines",
    "write_sweep",
]

Loc = tuple[str | int, ...]
YAML_SUFFIXES = (".yaml", ".yml")


# -- where a key is --------------------------------------------------------


def _key_parts(text: str) -> tuple[str, ...]:
    """Split a TOML key on the dots outside quotes (``a."b.c"`` is two parts)."""
    parts, current, quote = [], "", ""
    for char in text.strip():
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return (*parts, current.strip())


def toml_key_lines(text: str) -> dict[Loc, int]:
    """The first line (1-based) of every table and key of a TOML document."""
    lines: dict[Loc, int] = {}
    table: Loc = ()
    arrays: dict[Loc, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            key = _key_parts(line[2 : line.find("]]")])
            arrays[key] = arrays.get(key, -1) + 1
            table = (*key, arrays[key])
            lines.setdefault(key, number)
        elif line.startswith("["):
            table = _key_parts(line[1 : line.find("]")])
        elif "=" in line and not line.startswith("#"):
            lines.setdefault((*table, *_key_parts(line.split("=", 1)[0])), number)
            continue
        else:
            continue
        lines.setdefault(table, number)
    return lines


def _yaml_key_lines(node: yaml.Node, prefix: Loc = ()) -> dict[Loc, int]:
    lines: dict[Loc, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            lines[path] = key.start_mark.line + 1
            lines.update({k: v for k, v in _yaml_key_lines(value, path).items() if k != path})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_yaml_key_lines(item, (*prefix, index)))
    return lines


def _line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


# -- reading ------------------------------------------------------------


def _parse_text(text: str, path: Path) -> tuple[Any, dict[Loc, int]]:
    if path.suffix.lower() in YAML_SUFFIXES:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise InputError(f"{where}not valid YAML ({exc})", path=path) from exc
        return data, _yaml_key_lines(node) if node is not None else {}
    try:
        return tomllib.loads(text), toml_key_lines(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            f"not valid TOML: {exc}",
            path=path,
            hint="a .yaml or .yml file is read as YAML, anything else as TOML",
        ) from exc


def parse_spec(text: str, path: Path) -> SweepSpec:
    """Validate the spec in ``text`` (read from ``path``).

    Raises:
        InputError: the text does not parse, or a key is unknown, mistyped or
            empty; the message names the key and its line.
    """
    data, lines = _parse_text(text, path)
    if not isinstance(data, dict):
        raise InputError("a sweep spec must be a table of keys", path=path)
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc: Loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SpecKeyError):
            loc = cause.loc  # raised with the path of keys from the top
        if error["type"] == "extra_forbidden":
            problem = "unknown key"
        else:
            problem = str(error["msg"]).removeprefix("Value error, ")
        line = _line_of(lines, loc)
        where = f"line {line}: " if line is not None else ""
        raise InputError(
            f"{where}{problem}",
            path=path,
            field=".".join(str(p) for p in loc) or None,
            hint=getattr(cause, "hint", None)
            or "see 'autojob sweep --help' for the keys a spec takes",
        ) from exc


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep spec file (YAML by suffix, else TOML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the spec: {exc}", path=path) from exc
    return parse_spec(text, path).read_from(path)


# -- building --------------------------------------------------------------


@dataclass
class SweepResult:
    """What :func:`sweep_into` did: the study, its directory and what it added."""

    #: the study written (its task groups only if kept), or (when grown) the groups added to it
    study: Study
    path: Path
    added: int = 0  #: the task groups written
    grown: bool = False  #: whether the study existed already
    existing: int = 0  #: combinations of the spec that were there already
    added_steps: list[str] = field(default_factory=list)


def study_dir_of(spec: SweepSpec, dest: Path) -> Path | None:
    """The directory of the spec's study if it exists already (a study to grow).

    A study template numbered with ``{i}`` (or naming the study by its new id)
    gives a new study on every run: None then.
    """
    if set(template_fields(spec.study_template)) & {"i", "study_id"}:
        return None
    name = render_template(spec.study_template, {"name": spec.name, "label": spec.name})
    path = dest / name
    if not os.path.lexists(path):
        return None
    if not (path / SETTINGS.STUDY_METADATA_FILE).is_file():
        raise InputError(
            f"{name!r} exists and is not a study (no {SETTINGS.STUDY_METADATA_FILE})",
            path=path,
            hint="give the spec another name, or another --dest",
        )
    return path


def _normal(value: Any) -> Any:
    """A value as JSON compares it: 4.0 and 4 are one value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    return value


def _key(values: Mapping[str, Any], names: Sequence[str]) -> str:
    return json.dumps([_normal(values[n]) for n in names], sort_keys=True)


_MISSING = object()


def _value_at(document: dict[str, Any], name: str) -> Any:
    """The value of the parameter ``name`` (a dotted path) in an ``inputs.json``."""
    parts = split_set_path(name)
    if parts[0] == "task_inputs" and "task_inputs" not in document:
        parts = parts[1:]  # a flat inputs.json holds the task inputs at its top
    node: Any = document
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _values_of_tasks(group_dir: Path, spec: SweepSpec) -> list[dict[str, Any]]:
    """The combinations the tasks of a group hold in their inputs (tasks of the sweep's step)."""
    names = spec.names()
    sweep_step = step_id(spec.step) if spec.steps else None
    found = []
    for entry in os.scandir(group_dir):
        if not entry.is_dir(follow_symlinks=False):
            continue
        inputs = read_json_object_if_file(os.path.join(entry.path, SETTINGS.INPUTS_FILE))
        meta = read_json_object_if_file(os.path.join(entry.path, SETTINGS.TASK_METADATA_FILE))
        step = (meta or {}).get("workflow_step_id")
        if inputs is None or step not in (None, sweep_step):
            continue  # not a task, or a task of a later step
        values = {n: _value_at(inputs, n) for n in names}
        if _MISSING not in values.values():
            found.append(values)
    return found


def existing_combinations(study_dir: Path, spec: SweepSpec) -> set[str]:
    """The combinations of ``spec`` that the study holds already (as keys of their values).

    A task group's ``parameters`` in its ``task_group.json`` name its
    combination; a group without them (written by an older autojob) counts with
    the values its tasks' ``inputs.json`` hold at the parameters' paths.
    """
    names = spec.names()
    keys: set[str] = set()
    for entry in os.scandir(study_dir):
        meta = os.path.join(entry.path, SETTINGS.TASK_GROUP_METADATA_FILE)
        if not entry.is_dir(follow_symlinks=False):
            continue
        data = read_json_object_if_file(meta)
        if data is None:
            continue
        recorded = data.get("parameters")
        if isinstance(recorded, dict):
            found = [recorded] if set(names) <= set(recorded) else []
        else:
            found = _values_of_tasks(Path(entry.path), spec)
        keys.update(_key(values, names) for values in found)
    return keys


def _files_by_task(spec: SweepSpec, study: Study, base: Path) -> dict[str, list[InputFile]]:
    """The input files of each task, checked: refused before anything is written."""
    numbered = {_key(v, spec.names()): i for i, v in enumerate(spec.iter_combinations())}
    files: dict[str, list[InputFile]] = {}
    if not spec.files:
        return files
    for group in study.task_groups:
        values = group.model_extra["parameters"] if group.model_extra else {}
        index = numbered[_key(values, spec.names())]
        files[group.tasks[0].task_metadata.task_id] = _files_of(spec, index, group, base)
    return files


def _files_of(spec: SweepSpec, index: int, group: TaskGroup, base: Path) -> list[InputFile]:
    """The input files of the task of combination ``index``, checked."""
    values = group.model_extra["parameters"] if group.model_extra else {}
    found = spec.files_of(values, index, base)
    check_input_files(
        found,
        script=group.tasks[0].task_inputs.task_script,
        fields=[f"files.{k}" for k in range(len(found))],
        where=f"combination {index} ({group.label})",
    )
    return found


def check_files(spec: SweepSpec, base: Path) -> None:
    """Refuse the spec's input files that are missing or unsafe (as a run would)."""
    _files_by_task(spec, build_study(spec), base)


def write_sweep(spec: SweepSpec, dest: Path, *, base: Path | None = None) -> tuple[Study, Path]:
    """Write the study of ``spec`` inside ``dest``, or add what it lacks if it exists.

    Returns the study written (when grown: holding the task groups added) and
    its directory; :func:`sweep_into` says more.
    """
    result = sweep_into(spec, dest, base=base, keep=True)
    return result.study, result.path


def sweep_into(
    spec: SweepSpec, dest: Path, *, base: Path | None = None, keep: bool = False
) -> SweepResult:
    """Write the study of ``spec`` inside ``dest``, or add what it lacks if it exists.

    ``base``: the directory the paths of ``files`` are relative to (default:
    the spec file's directory when the spec was read by :func:`load_spec`, else
    the current directory). Each combination is built, checked (its inputs and
    input files) and written before the next is built, in a staging directory
    that appears as the study once every combination is written: a refused
    combination leaves nothing behind, and a new study of a million
    combinations takes the memory of one. ``keep``: also keep the task groups
    in the returned study (memory then grows with the combinations).
    """
    base = base if base is not None else spec.base or Path()
    existing = study_dir_of(spec, dest)
    if existing is not None:
        with _study_lock(existing):
            return _grow(spec, existing, base)
    study = Study(name=spec.name)
    kept: list[TaskGroup] = []
    files: dict[str, list[InputFile]] = {}  # of the group being written only
    written = [0]

    def groups() -> Iterator[TaskGroup]:
        for index, group in sweep_groups(spec):
            written[0] += 1
            if spec.files:
                files.clear()
                files[group.tasks[0].task_metadata.task_id] = _files_of(spec, index, group, base)
            if keep:
                kept.append(group)
            yield group

    path = write_study(
        study,
        dest,
        study_template=spec.study_template,
        task_group_template=spec.task_group_template,
        task_template=spec.task_template,
        files=lambda task: files.get(task.task_metadata.task_id, ()),
        tasks=groups(),
    )
    study.task_groups = kept
    workflow = spec.workflow()
    if workflow is not None:
        save_workflow(path, workflow)
    return SweepResult(study, path, added=written[0])


@contextlib.contextmanager
def _study_lock(study_dir: Path) -> Iterator[None]:
    """Hold the lock of the study's directory: sweeps growing one study take turns."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(task_lock(study_dir, timeout=_GROW_WAIT))
        except AutojobError as exc:
            raise AutojobError(
                f"another 'autojob sweep' has been adding to this study for over {_GROW_WAIT:g} s",
                path=study_dir,
                hint="wait for it to finish, then run again: only what is still missing is added",
            ) from exc
        yield


_GROW_WAIT = 600.0


def _grow(spec: SweepSpec, study_dir: Path, base: Path) -> SweepResult:
    """Add the spec's missing combinations and steps to the study in ``study_dir``."""
    data = read_json_object(study_dir / SETTINGS.STUDY_METADATA_FILE)
    if data.get("name") != spec.name:
        raise InputError(
            f"the study there is named {data.get('name')!r}, not {spec.name!r}",
            path=study_dir,
            field="name",
            hint="give the spec the study's name, or write it elsewhere (--dest)",
        )
    have = existing_combinations(study_dir, spec)
    missing = [i for i, v in enumerate(spec.combinations()) if _key(v, spec.names()) not in have]
    workflow, added_steps = _merged_workflow(spec, study_dir)
    study = build_study(spec, only=set(missing))
    if study.task_groups:
        add_task_groups(
            study_dir,
            study.task_groups,
            task_group_template=spec.task_group_template,
            task_template=spec.task_template,
            files=_files_by_task(spec, study, base),
        )
    if added_steps and workflow is not None:
        save_workflow(study_dir, workflow)
    study.study_id = data.get("study_id", study.study_id)
    there = len(spec.combinations()) - len(missing)
    added = len(study.task_groups)
    return SweepResult(
        study, study_dir, added=added, grown=True, existing=there, added_steps=added_steps
    )


def _merged_workflow(spec: SweepSpec, study_dir: Path) -> tuple[Workflow | None, list[str]]:
    """The study's workflow with the spec's new steps, and their names.

    Raises:
        InputError: a step the study has is defined differently in the spec,
            or the spec adds steps to a study written without any.
    """
    new = spec.workflow()
    if new is None:
        return None, []
    if not has_workflow(study_dir):
        raise InputError(
            "the study was written without steps; its tasks belong to no workflow step",
            path=study_dir,
            field="steps",
            hint="write a study with steps under another name, or remove [[steps]] from the spec",
        )
    old = load_workflow(study_dir)
    for sid, step in old.steps.items():
        if sid in new.steps and (
            step.model_dump(mode="json") != new.steps[sid].model_dump(mode="json")
            or sorted(old.graph.root[sid]) != sorted(new.graph.root[sid])
        ):
            raise InputError(
                f"step {step.name!r} differs from the study's",
                path=study_dir / SETTINGS.PARAMETERIZATION_FILE,
                field="steps",
                hint="a grown study keeps its steps: change the step under a new name",
            )
    added = [sid for sid in new.steps if sid not in old.steps]
    if not added:
        return old, []
    graph = WorkflowGraph({**old.graph.root, **{sid: new.graph.root[sid] for sid in added}})
    merged = Workflow(graph=graph, steps={**old.steps, **{sid: new.steps[sid] for sid in added}})
    return merged, [new.steps[sid].name for sid in added]


def table_rows(
    spec: SweepSpec, existing: set[str] | None = None
) -> tuple[list[str], list[Sequence[Any]]]:
    """The header and rows of the table of combinations (``--dry-run``).

    With ``existing`` (the combinations a study holds), a last column says
    which are there and which a run would add.
    """
    header = ["#", "label", *spec.names()]
    rows: list[Sequence[Any]] = [
        [i, spec.label_of(values, i), *values.values()]
        for i, values in enumerate(spec.combinations())
    ]
    if existing is not None:
        header.append("")
        for row, values in zip(rows, spec.combinations(), strict=True):
            there = _key(values, spec.names()) in existing
            row.append("exists" if there else "new")  # type: ignore[attr-defined]
    return header, rows
