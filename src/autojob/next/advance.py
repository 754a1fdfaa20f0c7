"""Carry a study's workflow forward from a task that succeeded (``autojob advance``).

The task is added to the study's ``record.txt`` (once), then each step that
follows the task's step creates its tasks:

- an ``independent`` step creates one task group per parametrization for the
  task's group, named ``<step>.<group>``, its inputs filled from the task;
- a ``dependent`` step waits until every task group of every step it depends
  on (directly or not) has a task in ``record.txt`` and, for independent steps
  among them, until all their task groups exist; then it creates its task
  groups once, named ``<step>``, filled from the recorded tasks of its
  predecessor steps (a list of values per source).

Everything happens under the study's workflow lock, and a task group that
exists already is never created again: running advance twice, or many times
at once, creates each task group once.

An advance costs time in what it reads and writes, not in the size of the
study: the record is searched, not parsed (it is read whole only for a
dependent step, when the task group it last found not done, kept in
``record.waiting``, is done: see :data:`WAITING_FILE`); each new task group
appears complete or not at all, and all those of one advance are listed in
``study.json`` together (:mod:`autojob.store.study_list`: a large study's list
is rewritten only once its pending ids reach a share of it); staging
directories left by dead writers are looked for when the list is rewritten. A
crash mid-advance leaves the task recorded and some of its next task groups
made: running advance again makes the others.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autojob import SETTINGS
from autojob.bases.task_base import TaskBase
from autojob.errors import AutojobError, InputError, MetadataError
from autojob.next.restart import check_not_stopped
from autojob.plugins import get_task_class
from autojob.store.atomic import (
    dump_json,
    locked,
    read_json_object,
    read_json_object_if_file,
    write_atomic,
)
from autojob.store.completed_tasks import append_record, in_record, read_record
from autojob.store.load import read_inputs_sections
from autojob.store.state import State, read_state
from autojob.store.study_list import list_task_groups
from autojob.store.walk import is_task_path, list_directory, skipped_prefixes
from autojob.store.workflow import has_workflow, load_workflow
from autojob.store.write import remove_abandoned_stages, write_task_group
from autojob.task_group import TaskGroup
from autojob.workflow import Source, Step, VariableReference, Workflow, compose, split_set_path

__all__ = [
    "Advance",
    "GroupInfo",
    "StepProgress",
    "advance",
    "find_study",
    "study_groups",
    "workflow_progress",
]

logger = logging.getLogger(__name__)

#: beside ``record.txt``: per dependent step, the task group its last search
#: found not done (``{step_id: group directory name}``). It is a hint, checked
#: before it is trusted, so that a step waiting on N tasks does not list the
#: study at each of their N advances; deleting it loses nothing.
WAITING_FILE = "record.waiting"


@dataclass
class GroupInfo:
    """A task group of a study: its step and its attempts (oldest first)."""

    path: Path
    step: str | None
    tasks: list[tuple[str, Path]] = field(default_factory=list)  # (task id, directory)

    def recorded(self, record: set[str]) -> Path | None:
        """The newest attempt in the record, if any."""
        done = [path for task_id, path in self.tasks if task_id in record]
        return done[-1] if done else None


@dataclass
class Advance:
    """What advance did for one task."""

    task_dir: Path
    study_dir: Path
    step: str | None = None
    recorded: bool = False
    created: list[Path] = field(default_factory=list)  # new task directories
    existing: list[Path] = field(default_factory=list)  # task groups made before
    waiting: list[str] = field(default_factory=list)  # why dependent steps wait
    group_ids: list[str] = field(default_factory=list)  # of the task groups created


@dataclass
class StepProgress:
    """How far one step of a workflow has come."""

    step: str
    name: str
    progression: str
    after: list[str]
    groups: int
    done: int
    expected: int | None


def find_study(task_dir: Path) -> Path | None:
    """The study directory of a task in a structured tree, else None."""
    group, study = task_dir.parent, task_dir.parent.parent
    if (group / SETTINGS.TASK_GROUP_METADATA_FILE).is_file() and (
        study / SETTINGS.STUDY_METADATA_FILE
    ).is_file():
        return study
    return None


def _task_meta(task_dir: Path) -> dict[str, Any] | None:
    try:
        with open(task_dir / SETTINGS.TASK_METADATA_FILE, "rb") as stream:
            data = json.loads(stream.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _group_dirs(study_dir: Path, *, newest_first: bool = False) -> Iterator[str]:
    """The task group directories of a study, sorted by name (as a walk lists them).

    Each is checked as it is taken, so a search that stops early checks few.
    """
    _, subdirs = list_directory(os.fspath(study_dir))
    group_file = SETTINGS.TASK_GROUP_METADATA_FILE
    names = reversed(subdirs) if newest_first else iter(subdirs)
    folders = (os.path.join(study_dir, name) for name in names)
    return (f for f in folders if os.path.isfile(os.path.join(f, group_file)))


def _group_info(folder: str, default_step: str | None) -> GroupInfo:
    """A task group's attempts: its tasks whose metadata is readable and has an id."""
    attempts = []
    for name in list_directory(folder)[1]:
        path = os.path.join(folder, name)
        meta = _task_meta(Path(path))
        if meta and isinstance(meta.get("task_id"), str):
            step = meta.get("workflow_step_id") or default_step
            attempts.append((str(meta.get("date_created", "")), meta["task_id"], path, step))
    attempts.sort()
    step = attempts[0][3] if attempts else None
    return GroupInfo(Path(folder), step, [(t, Path(p)) for _, t, p, _ in attempts])


def study_groups(study_dir: Path, default_step: str | None) -> list[GroupInfo]:
    """Every task group of a study with its step, sorted by directory name."""
    return [_group_info(folder, default_step) for folder in _group_dirs(study_dir)]


def _an_undone_group(
    study_dir: Path, steps: set[str], default_step: str | None, record: set[str]
) -> GroupInfo | None:
    """A task group of ``steps`` with nothing recorded, found cheaply, or None.

    Groups are read newest name first and the search stops at the first undone
    one: while a sweep runs, that is found at once, so each advance costs little
    until the last tasks finish.
    """
    for folder in _group_dirs(study_dir, newest_first=True):
        info = _group_info(folder, default_step)
        if info.step in steps and info.recorded(record) is None:
            return info
    return None


def _waiting_hints(study_dir: Path) -> dict[str, Any]:
    """The hint file's steps and groups; an unreadable or odd file is no hint."""
    try:
        data = read_json_object_if_file(study_dir / WAITING_FILE)
    except AutojobError:
        return {}
    return data or {}


def _still_undone(
    study_dir: Path, step_id: str, steps: set[str], default_step: str | None
) -> GroupInfo | None:
    """The group the last search found not done for ``step_id``, if it still is.

    Only a positive answer is trusted, and only after checking it: the group
    exists, belongs to one of ``steps`` and none of its attempts is in the
    record (searched, not read into a set). Anything else sends the caller to
    the full search.
    """
    name = _waiting_hints(study_dir).get(step_id)
    if not isinstance(name, str) or not name or name != os.path.basename(name):
        return None
    folder = os.path.join(study_dir, name)
    if name.startswith(skipped_prefixes()) or not os.path.isfile(
        os.path.join(folder, SETTINGS.TASK_GROUP_METADATA_FILE)
    ):
        return None
    info = _group_info(folder, default_step)
    if info.step not in steps or not info.tasks:
        return None
    if any(in_record(study_dir, task_id) for task_id, _ in info.tasks):
        return None
    return info


def _remember_undone(study_dir: Path, step_id: str, undone: GroupInfo | None) -> None:
    """Keep (or forget) the group found not done, for the next advance of ``step_id``."""
    hints = _waiting_hints(study_dir)
    name = undone.path.name if undone is not None else None
    if hints.get(step_id) == name:
        return
    if name is None:
        hints.pop(step_id, None)
    else:
        hints[step_id] = name
    path = study_dir / WAITING_FILE
    if hints:
        write_atomic(path, dump_json(hints))
    else:
        path.unlink(missing_ok=True)


def _default_step(workflow: Workflow) -> str | None:
    roots = workflow.graph.roots()
    return roots[0] if len(roots) == 1 else None


# -- values ----------------------------------------------------------------


def _document(task_dir: Path, source: Source) -> tuple[Any, Path]:
    if source.document == "outputs":
        path = task_dir / SETTINGS.OUTPUTS_FILE
        hint = "the task's command writes its outputs there as a JSON object"
        return read_json_object(path, missing_hint=hint), path
    if source.document == "metadata":
        path = task_dir / SETTINGS.TASK_METADATA_FILE
        return read_json_object(path), path
    return read_inputs_sections(task_dir), task_dir / SETTINGS.INPUTS_FILE


def read_source(task_dir: Path, source: Source) -> Any:
    """The value at ``source.path`` in a task's inputs or outputs.

    Raises:
        MetadataError: the file is missing or broken, or the path does not exist.
    """
    node, path = _document(task_dir, source)
    for depth, key in enumerate(source.keys):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            where = ".".join(source.keys[: depth + 1])
            raise MetadataError(
                f"has no {where!r} (asked for by a workflow step as {source.path!r})",
                path=path,
                field=where,
                hint="write that value in the task's outputs, or fix the step's "
                f"source in {SETTINGS.PARAMETERIZATION_FILE}",
            )
    return node


def _value(
    ref: VariableReference,
    step_id: str,
    workflow: Workflow,
    pick: dict[str, list[Path]],
    dependent: bool,
) -> Any:
    if ref.is_constant:
        return ref.constant
    values = []
    for source in ref.sources:
        dirs = pick[workflow.source_step(step_id, source)]
        found = [read_source(d, source) for d in dirs]
        values.append(found if dependent else found[0])
    try:
        return compose(ref.composer, values)
    except (TypeError, ValueError, IndexError, ArithmeticError) as exc:
        raise InputError(
            f"composer {ref.composer!r} cannot combine the values of {ref.set_path}: {exc}",
            field=ref.set_path,
        ) from exc


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    node = document
    *parents, last = split_set_path(path)
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError(f"{part} is not a section; cannot set {path}", field=path)
        node = child
    node[last] = value


def _new_task(
    workflow: Workflow,
    step_id: str,
    refs: list[VariableReference],
    pick: dict[str, list[Path]],
    tags: list[str],
) -> TaskBase:
    step = workflow.steps[step_id]
    document: dict[str, Any] = {}
    for ref in refs:
        _set(
            document,
            ref.set_path,
            _value(ref, step_id, workflow, pick, step.progression == "dependent"),
        )
    meta = document.setdefault("task_metadata", {})
    meta.setdefault("label", workflow.label(step_id))
    meta["workflow_step_id"] = step_id
    meta["tags"] = [*meta.get("tags", []), *tags]
    try:
        return get_task_class(step.task_class).model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InputError(
            f"step {workflow.label(step_id)}: the new task's inputs are invalid: {error['msg']}",
            field=".".join(str(p) for p in error["loc"]),
            hint=f"fix the step in {SETTINGS.PARAMETERIZATION_FILE}",
        ) from exc


# -- creating ------------------------------------------------------------


def _group_names(step: Step, base: str) -> list[str]:
    if len(step.parametrizations) == 1:
        return [base]
    return [f"{base}-{k}" for k in range(len(step.parametrizations))]


def _study_ids(task_dir: Path) -> dict[str, Any]:
    """The study's ids as the task's group holds them (a small file, not ``study.json``)."""
    data = read_json_object(task_dir.parent / SETTINGS.TASK_GROUP_METADATA_FILE)
    if not data.get("study_id"):
        data = read_json_object(task_dir.parent.parent / SETTINGS.STUDY_METADATA_FILE)
    return {key: data.get(key) for key in ("study_id", "study_group_id")}


def _create(task: TaskBase, result: Advance, name: str, src: Path | None) -> Path:
    """Write the task in a new task group ``name`` of the study (listed later)."""
    template = name.replace("{", "{{").replace("}", "}}")
    if src is not None:
        task.follow(src)  # e.g. a calculation starts from where its predecessor ended
    copy = list(task.task_inputs.files_to_copy)
    ids = _study_ids(result.task_dir)
    group = TaskGroup(label=task.task_metadata.label, tasks=[task], **ids)
    carry = src if copy else None
    folder = write_task_group(
        group,
        result.study_dir,
        name_template=template,
        src=carry,
        files_to_carry_over=copy,
        tidy=False,
    )
    result.group_ids.append(group.task_group_id)
    return folder / task.task_metadata.task_id


def _make_step(
    result: Advance,
    workflow: Workflow,
    step_id: str,
    base: str,
    pick: dict[str, list[Path]],
    src: Path | None,
) -> None:
    step = workflow.steps[step_id]
    trigger = f"advanced-from:{result.task_dir.name}"
    for refs, name in zip(step.parametrizations, _group_names(step, base), strict=True):
        if (result.study_dir / name).exists():
            result.existing.append(result.study_dir / name)
            continue
        task = _new_task(workflow, step_id, refs, pick, [trigger])
        result.created.append(_create(task, result, name, src))


def _step_dir_name(workflow: Workflow, step_id: str) -> str:
    return workflow.steps[step_id].name or step_id


def _expected(workflow: Workflow, step_id: str, count: dict[str | None, int]) -> int | None:
    before = workflow.graph.predecessors(step_id)
    runs = len(workflow.steps[step_id].parametrizations)
    if not before:
        return None
    if workflow.steps[step_id].progression == "dependent":
        return runs
    return count.get(before[0], 0) * runs


def _why_waiting(
    workflow: Workflow, step_id: str, groups: list[GroupInfo], record: set[str]
) -> str | None:
    count: dict[str | None, int] = {}
    for group in groups:
        count[group.step] = count.get(group.step, 0) + 1
    ancestors = workflow.graph.ancestors(step_id)
    for ancestor in (s for s in workflow.graph.order() if s in ancestors):
        mine = [g for g in groups if g.step == ancestor]
        label = workflow.label(ancestor)
        expected = _expected(workflow, ancestor, count)
        if not mine or (expected is not None and len(mine) < expected):
            return f"step {label}: {len(mine)} of {expected or '?'} task group(s) exist"
        undone = [g for g in mine if g.recorded(record) is None]
        if undone:
            return f"step {label}: {len(undone)} of {len(mine)} task group(s) not done"
    return None


def _advance_step(
    result: Advance, workflow: Workflow, step_id: str, record_of: Callable[[], set[str]]
) -> None:
    step = workflow.steps[step_id]
    if step.progression == "independent":
        base = f"{_step_dir_name(workflow, step_id)}.{result.task_dir.parent.name}"
        own = {result.step or "": [result.task_dir]}
        _make_step(result, workflow, step_id, base, own, result.task_dir)
        return
    made = [result.study_dir / n for n in _group_names(step, _step_dir_name(workflow, step_id))]
    if all(path.exists() for path in made):
        result.existing.extend(made)  # made before: no need to look at the groups
        return
    ancestors = workflow.graph.ancestors(step_id)
    default = _default_step(workflow)
    undone = _still_undone(result.study_dir, step_id, ancestors, default)
    if undone is None:
        record = record_of()
        undone = _an_undone_group(result.study_dir, ancestors, default, record)
        _remember_undone(result.study_dir, step_id, undone)
    if undone is not None:
        label = workflow.label(undone.step or "")
        result.waiting.append(
            f"{workflow.label(step_id)} waits: step {label}: {undone.path.name} not done"
        )
        return
    record = record_of()
    groups = study_groups(result.study_dir, _default_step(workflow))
    why = _why_waiting(workflow, step_id, groups, record)
    if why is not None:
        result.waiting.append(f"{workflow.label(step_id)} waits: {why}")
        return
    pick: dict[str, list[Path]] = {}
    for before in workflow.graph.predecessors(step_id):
        found = [g.recorded(record) for g in groups if g.step == before]
        pick[before] = [p for p in found if p is not None]
    # the files_to_copy of the new task come from the task that completed the wait
    _make_step(result, workflow, step_id, _step_dir_name(workflow, step_id), pick, result.task_dir)


def _study_of(task_dir: Path) -> Path:
    study = find_study(task_dir)
    if study is None:
        raise InputError(
            "is not a task of a study (task group and study metadata above it)",
            path=task_dir,
            hint="workflows need a structured tree: study > task group > task",
        )
    return study


def _check_success(task_dir: Path) -> None:
    state = read_state(task_dir)
    if state.state is not State.SUCCESS:
        raise InputError(
            f"the task has not succeeded (it is {state.state.value})",
            path=task_dir,
            hint="advance moves on from tasks that succeeded; restart the others",
        )


def advance(task_dir: Path, *, dry_run: bool = False) -> Advance:
    """Record the task (once) and create the tasks of the steps after its step.

    Raises:
        InputError: the task has not succeeded, is stopped, or is not in a study.
        MetadataError: the workflow files or a source task's files are broken.
    """
    task_dir = Path(os.path.realpath(task_dir))
    if not is_task_path(task_dir):
        raise InputError(
            f"is not a task directory (a task is a directory holding {SETTINGS.INPUTS_FILE})",
            path=task_dir,
            hint="give the directory of a task that succeeded",
        )
    check_not_stopped(task_dir, "advanced")
    study = _study_of(task_dir)
    _check_success(task_dir)
    result = Advance(task_dir, study)
    meta = _task_meta(task_dir) or {}
    task_id = meta.get("task_id")
    if not isinstance(task_id, str):
        raise MetadataError("no task_id", path=task_dir / SETTINGS.TASK_METADATA_FILE)
    with locked(study / SETTINGS.WORKFLOW_FILE):
        if not dry_run and not in_record(study, task_id):
            append_record(study, task_id)
            result.recorded = True
        if not has_workflow(study):
            return result
        try:
            _advance_steps(result, meta, dry_run)
        finally:  # the groups made are listed, even when a later one failed
            if list_task_groups(study, result.group_ids):
                remove_abandoned_stages(study)  # a listing, as seldom as the rewrite
    return result


def _advance_steps(result: Advance, meta: dict[str, Any], dry_run: bool) -> None:
    """Create the tasks of the steps after the task's step (under the workflow lock)."""
    study, task_dir = result.study_dir, result.task_dir
    record_of = functools.cache(lambda: set(read_record(study)))  # read once, if needed
    workflow = load_workflow(study)
    result.step = meta.get("workflow_step_id") or _default_step(workflow)
    if result.step not in workflow.steps:
        raise MetadataError(
            f"the task's step {result.step} is not a step of the workflow",
            path=task_dir / SETTINGS.TASK_METADATA_FILE,
            field="workflow_step_id",
            hint=f"fix it, or add the step to {SETTINGS.WORKFLOW_FILE}",
        )
    for successor in workflow.graph.successors(result.step):
        if dry_run:
            result.waiting.append(f"would advance {workflow.label(successor)}")
            continue
        _advance_step(result, workflow, successor, record_of)


def workflow_progress(study_dir: Path) -> list[StepProgress]:
    """Per step: task groups created, done (in the record), and expected."""
    workflow = load_workflow(study_dir)
    groups = study_groups(study_dir, _default_step(workflow))
    record = set(read_record(study_dir))
    count: dict[str | None, int] = {}
    for group in groups:
        count[group.step] = count.get(group.step, 0) + 1
    rows = []
    for step_id in workflow.graph.order():
        mine = [g for g in groups if g.step == step_id]
        rows.append(
            StepProgress(
                step=step_id,
                name=workflow.label(step_id),
                progression=workflow.progression_of(step_id),
                after=[workflow.label(p) for p in workflow.graph.predecessors(step_id)],
                groups=len(mine),
                done=sum(g.recorded(record) is not None for g in mine),
                expected=_expected(workflow, step_id, count) or (len(mine) or None),
            )
        )
    return rows
