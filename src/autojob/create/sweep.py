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
import hashlib
import json
import os
import tomllib
from array import array
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from autojob import SETTINGS
from autojob.bases.input_files import InputFile
from autojob.bases.task_base import TaskBase
from autojob.errors import AutojobError, InputError
from autojob.store.atomic import read_json_object_if_file
from autojob.store.input_files import check_input_files
from autojob.store.json_stream import object_head
from autojob.store.names import render_template, template_fields
from autojob.store.task_lock import task_lock
from autojob.store.workflow import has_workflow, load_workflow, save_workflow
from autojob.store.write import stream_task_groups, write_study
from autojob.study import Study
from autojob.sweep import SHARE_LISTS, SpecKeyError, SweepSpec, build_study, step_id, sweep_groups
from autojob.task_group import TaskGroup
from autojob.workflow import Workflow, WorkflowGraph, split_set_path

__all__ = [
    "CombinationKeys",
    "SweepResult",
    "build_study",
    "check_combinations",
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


def _stripped_lines(text: str) -> Iterator[tuple[int, int, int]]:
    """Each line's number (1-based) and bounds without the white space around it.

    Bounds, not slices: a spec's long list of values, one line of megabytes,
    is never copied.
    """
    start, number, size = 0, 0, len(text)
    while start < size:
        number += 1
        end = text.find("\n", start)
        end = size if end < 0 else end
        first, last = start, end
        while first < last and text[first].isspace():
            first += 1
        while last > first and text[last - 1].isspace():
            last -= 1
        yield number, first, last
        start = end + 1


def toml_key_lines(text: str) -> dict[Loc, int]:
    """The first line (1-based) of every table and key of a TOML document."""
    lines: dict[Loc, int] = {}
    table: Loc = ()
    arrays: dict[Loc, int] = {}
    for number, first, last in _stripped_lines(text):
        if text.startswith("[[", first, last):
            close = text.find("]]", first, last)
            key = _key_parts(text[first + 2 : close if close >= 0 else last - 1])
            arrays[key] = arrays.get(key, -1) + 1
            table = (*key, arrays[key])
            lines.setdefault(key, number)
        elif text.startswith("[", first, last):
            close = text.find("]", first, last)
            table = _key_parts(text[first + 1 : close if close >= 0 else last - 1])
        elif (equals := text.find("=", first, last)) >= 0 and not text.startswith("#", first):
            lines.setdefault((*table, *_key_parts(text[first:equals])), number)
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


#: a spec's list of at least this many integers is held as an ``array("q")``
COMPACT_LENGTH = 1000
#: values moved from a list into its array at a time (the list shrinks as the array grows)
_MOVED = 10_000
_INT64 = range(-(2**63), 2**63)


def _compact_lists(data: dict[str, Any]) -> None:
    """Hold each long list of integers of ``parameters`` and ``zip`` in 8 bytes a value.

    A list of 200,000 integers parsed from the TOML takes 36 bytes a value (an
    int object and its pointer): what a growing sweep held longest. The array
    reads as the list did (same values, in order); a list holding anything
    but integers of 64 bits (booleans, floats, strings, big numbers) stays a list.
    """
    for table in ("parameters", "zip"):
        lists = data.get(table)
        if not isinstance(lists, dict):
            continue
        for name, values in lists.items():
            if type(values) is list and len(values) >= COMPACT_LENGTH and _int64s(values):
                lists[name] = _moved_into_array(values)


def _int64s(values: list[Any]) -> bool:
    """Whether every value is an ``int`` of 64 bits (not a bool: True is an int)."""
    return set(map(type, values)) == {int} and min(values) in _INT64 and max(values) in _INT64


def _moved_into_array(values: list[int]) -> array[int]:
    """The values as an array, taken from the front of the list (emptied) a chunk at a time.

    The list's integers are freed as the array grows, so both are never held whole.
    """
    compact = array("q")
    while values:
        compact.extend(values[:_MOVED])
        del values[:_MOVED]
    return compact


def parse_spec(text: str, path: Path) -> SweepSpec:
    """Validate the spec in ``text`` (read from ``path``).

    Raises:
        InputError: the text does not parse, or a key is unknown, mistyped or
            empty; the message names the key and its line.
    """
    data, lines = _parse_text(text, path)
    if not isinstance(data, dict):
        raise InputError("a sweep spec must be a table of keys", path=path)
    _compact_lists(data)
    try:
        return SweepSpec.model_validate(data, context={SHARE_LISTS: True})
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

    #: the study written (its task groups only if kept), or (when grown) holding the groups
    #: added: all of them if kept, else the first SAMPLE
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


class CombinationKeys:
    """A set of combination keys held as 8-byte digests, about 16 bytes a key.

    An open-addressing table of BLAKE2b digests (0 marks a free slot): the
    combinations of a study of a million tasks take 16 MB, not the hundreds
    a set of strings would. Two keys share a digest with a chance of about
    n²/2⁶⁵ (3e-8 for a million): the one would be taken for the other.
    """

    def __init__(self, expected: int = 0) -> None:
        """An empty set, sized to take ``expected`` keys without growing (a hint)."""
        size = 1024
        while size < 2 * expected:
            size *= 2
        self._slots = array("Q", [0]) * size
        self._count = 0

    @staticmethod
    def _digest(key: str) -> int:
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "little") or 1

    def _slot(self, digest: int) -> int:
        slots, size = self._slots, len(self._slots)
        index = digest % size
        while slots[index] not in (0, digest):
            index = (index + 1) % size
        return index

    def add(self, key: str) -> None:
        """Add ``key`` (once)."""
        digest = self._digest(key)
        index = self._slot(digest)
        if self._slots[index] == digest:
            return
        self._slots[index] = digest
        self._count += 1
        if 2 * self._count > len(self._slots):  # keep the table at most half full
            old, self._slots = self._slots, array("Q", [0]) * (2 * len(self._slots))
            for value in old:
                if value:
                    self._slots[self._slot(value)] = value

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        digest = self._digest(key)
        return self._slots[self._slot(digest)] == digest

    def __len__(self) -> int:
        return self._count


def existing_combinations(study_dir: Path, spec: SweepSpec) -> CombinationKeys:
    """The combinations of ``spec`` that the study holds already (as keys of their values).

    A task group's ``parameters`` in its ``task_group.json`` name its
    combination; a group without them (written by an older autojob) counts with
    the values its tasks' ``inputs.json`` hold at the parameters' paths.
    """
    names = spec.names()
    listed = object_head(study_dir / SETTINGS.STUDY_METADATA_FILE, "task_groups").count
    keys = CombinationKeys(expected=listed)  # not doubled (and copied) as it fills
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
        for values in found:
            keys.add(_key(values, names))
    return keys


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


def check_combinations(spec: SweepSpec, base: Path) -> int:
    """Check every combination as the real run does, writing nothing; return how many.

    Each combination is built, its inputs and input files checked (a missing
    or unsafe file refused), and dropped before the next: a spec of a million
    combinations is checked in the memory of one.

    Raises:
        InputError: a combination gives an invalid value or a key autojob refuses.
        AutojobError: an input file is missing or unsafe.
    """
    count = 0
    for index, group in sweep_groups(spec):
        if spec.files:
            _files_of(spec, index, group, base)
        count += 1
    return count


def check_files(spec: SweepSpec, base: Path) -> None:
    """Refuse the spec's input files that are missing or unsafe (as a run would)."""
    check_combinations(spec, base)


def write_sweep(spec: SweepSpec, dest: Path, *, base: Path | None = None) -> tuple[Study, Path]:
    """Write the study of ``spec`` inside ``dest``, or add what it lacks if it exists.

    Returns the study written (when grown: holding the task groups added) and
    its directory; :func:`sweep_into` says more.
    """
    result = sweep_into(spec, dest, base=base, keep=True)
    return result.study, result.path


def sweep_into(
    spec: SweepSpec,
    dest: Path,
    *,
    base: Path | None = None,
    keep: bool = False,
    on_group: Callable[[TaskGroup], object] | None = None,
) -> SweepResult:
    """Write the study of ``spec`` inside ``dest``, or add what it lacks if it exists.

    ``base``: the directory the paths of ``files`` are relative to (default:
    the spec file's directory when the spec was read by :func:`load_spec`, else
    the current directory). Each combination is built, checked (its inputs and
    input files) and written before the next is built, in a staging directory:
    a new study appears once every combination is written, and the groups
    added to an existing study are renamed into it once all are written, so a
    refused combination leaves nothing behind, and a million combinations take
    the memory of one. ``keep``: also keep the task groups in the returned
    study (memory then grows with the combinations); else a grown study keeps
    the first :data:`SAMPLE`, to say what was added. ``on_group``: called with
    each group written, as it is.
    """
    base = base if base is not None else spec.base or Path()
    existing = study_dir_of(spec, dest)
    kept: list[TaskGroup] = []
    files: dict[str, list[InputFile]] = {}  # of the group being written only
    count = [0]

    def written(groups: Iterator[tuple[int, TaskGroup]]) -> Iterator[TaskGroup]:
        for index, group in groups:
            if spec.files:
                files.clear()
                files[group.tasks[0].task_metadata.task_id] = _files_of(spec, index, group, base)
            count[0] += 1
            if keep or (existing is not None and len(kept) < SAMPLE):
                kept.append(group)
            if on_group is not None:
                on_group(group)
            yield group

    def files_of(task: TaskBase) -> list[InputFile]:
        return files.get(task.task_metadata.task_id, [])

    if existing is not None:
        with _study_lock(existing):
            return _grow(spec, existing, written, files_of, kept)
    study = Study(name=spec.name)
    path = write_study(
        study,
        dest,
        study_template=spec.study_template,
        task_group_template=spec.task_group_template,
        task_template=spec.task_template,
        files=files_of,
        tasks=written(sweep_groups(spec)),
    )
    study.task_groups = kept
    workflow = spec.workflow()
    if workflow is not None:
        save_workflow(path, workflow)
    return SweepResult(study, path, added=count[0])


#: the task groups a sweep keeps to show what it wrote, unless asked to keep all
SAMPLE = 10

Written = Callable[[Iterator[tuple[int, TaskGroup]]], Iterator[TaskGroup]]


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


def _grow(
    spec: SweepSpec,
    study_dir: Path,
    written: Written,
    files_of: Callable[[TaskBase], list[InputFile]],
    kept: list[TaskGroup],
) -> SweepResult:
    """Add the spec's missing combinations and steps to the study in ``study_dir``.

    The combinations are taken one at a time; the study's are known by an
    8-byte digest each (:class:`CombinationKeys`).
    """
    data = object_head(study_dir / SETTINGS.STUDY_METADATA_FILE, "task_groups").members
    if data.get("name") != spec.name:
        raise InputError(
            f"the study there is named {data.get('name')!r}, not {spec.name!r}",
            path=study_dir,
            field="name",
            hint="give the spec the study's name, or write it elsewhere (--dest)",
        )
    study_id = data.get("study_id")
    have = existing_combinations(study_dir, spec)
    workflow, added_steps = _merged_workflow(spec, study_dir)
    names, there = spec.names(), [0]

    def is_there(values: dict[str, Any]) -> bool:
        found = _key(values, names) in have
        there[0] += found
        return found

    added = stream_task_groups(
        study_dir,
        written(sweep_groups(spec, skip=is_there)),
        task_group_template=spec.task_group_template,
        task_template=spec.task_template,
        files=files_of,
    )
    if added_steps and workflow is not None:
        save_workflow(study_dir, workflow)
    study = Study(name=spec.name, task_groups=kept)
    study.study_id = study_id or study.study_id
    return SweepResult(
        study, study_dir, added=added, grown=True, existing=there[0], added_steps=added_steps
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
    spec: SweepSpec, existing: Container[str] | None = None
) -> tuple[list[str], Iterator[list[Any]]]:
    """The header and rows of the table of combinations (``--dry-run``).

    The rows are made one at a time, as they are taken. With ``existing``
    (the combinations a study holds), a last column says which are there and
    which a run would add.
    """
    header = ["#", "label", *spec.names(), *([""] if existing is not None else [])]
    names = spec.names()

    def rows() -> Iterator[list[Any]]:
        for i, values in enumerate(spec.iter_combinations()):
            row = [i, spec.label_of(values, i), *values.values()]
            if existing is not None:
                row.append("exists" if _key(values, names) in existing else "new")
            yield row

    return header, rows()
