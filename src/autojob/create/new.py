"""Create one new task, task group, study or study group on disk.

These back ``autojob new``; each returns the new model and its directory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from autojob import SETTINGS
from autojob.bases.input_files import InputFile
from autojob.bases.task_base import TaskBase
from autojob.create.assignments import apply_assignments
from autojob.errors import InputError
from autojob.ids import new_id, now
from autojob.input_keys import missing_command
from autojob.plugins import get_task_class
from autojob.store.discovery import Kind, ensure_task_metadata, kind_of
from autojob.store.input_files import check_input_files
from autojob.store.state import State, read_state
from autojob.store.write import (
    create_task_group_tree,
    create_task_tree,
    write_study,
    write_study_group,
)
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup

__all__ = [
    "check_files",
    "check_not_live",
    "clone_task",
    "new_study",
    "new_study_group",
    "new_task",
    "new_task_group",
]

logger = logging.getLogger(__name__)


def _fresh_task(label: str | None, assignments: list[str]) -> TaskBase:
    task_class = get_task_class(SETTINGS.DEFAULT_TASK)
    task = task_class.model_validate({"task_metadata": {"label": label or ""}})
    task = apply_assignments(task, assignments)
    if missing_command(task_class, task.input_sections()):
        raise InputError(
            "a task needs a command to run (task_inputs.command)",
            field="task_inputs.command",
            hint="give it with --set command='python calc.py'",
        )
    return task


def check_files(files: Sequence[InputFile], fields: Sequence[str] | None = None) -> None:
    """Refuse input files that are missing or would land outside a new task (or on its files).

    Checked against the default task script; a task naming another script is
    checked again when written.
    """
    if files:
        check_input_files(files, script=SETTINGS.DEFAULT_TASK_SCRIPT_FILE, fields=fields)


def _refuse_task_in(dest: Path) -> None:
    kind = kind_of(dest)
    if kind in (Kind.STUDY, Kind.STUDY_GROUP):
        raise InputError(
            f"is a {kind.value.replace('_', ' ')}; tasks belong in task groups",
            path=dest,
            field="--dest",
            hint="use --type task_group to add a task group with its first task",
        )


def check_not_live(src: Path, action: str, *, force: bool = False) -> bool:
    """Refuse ``action`` of a task that is queued or running, unless ``force``.

    Returns whether it is (with ``force``): then its files may be half-written
    and nothing may be deleted from it.

    Raises:
        InputError: the task is queued or running and ``force`` is not given.
    """
    state = read_state(src)
    if state.state not in (State.QUEUED, State.RUNNING):
        return False
    if not force:
        raise InputError(
            f"not {action}: the task is {state.state.value}",
            path=src,
            hint="wait for it to end, cancel it ('autojob cancel PATH'), or give --force to "
            "copy it as it is now (its files may be half-written; nothing is deleted from it)",
        )
    logger.warning(
        "%s: %s while %s (--force): nothing is deleted from it", src, action, state.state.value
    )
    return True


def load_source(src: Path, option: str | None = None) -> TaskBase:
    """The task in ``src``; ``option`` names the option that gave it, for errors."""
    if kind_of(src) is not Kind.TASK:
        raise InputError(
            "is not a task directory (a task is a directory holding "
            f"{SETTINGS.INPUTS_FILE}; this one has neither it nor {SETTINGS.TASK_METADATA_FILE})",
            path=src,
            field=option,
            hint="give the directory of a task ('autojob list PATH' lists them)",
        )
    ensure_task_metadata(src)
    from autojob.tasks.task import Task  # noqa: PLC0415

    return Task.from_directory(src, magic_mode=True)


def as_new_attempt(
    source: TaskBase,
    label: str | None,
    assignments: list[str],
    *,
    previous: Path | None = None,
    resume: bool = False,
) -> TaskBase:
    """Copy ``source`` as a new task: new id and dates, same group.

    ``previous``: the directory of ``source``, from which its class prepares the
    copy (``TaskBase.prepare_attempt``); ``resume``: the copy continues its run
    (a calculation starts from the last geometry reached).
    """
    task = apply_assignments(source.model_copy(deep=True), assignments)
    if previous is not None:
        task.prepare_attempt(previous, source, resume=resume)
    meta = task.task_metadata
    meta.task_id = new_id("j")
    meta.date_created = meta.last_updated = now()
    meta.uri = None
    if label is not None:
        meta.label = label
    task.task_outputs = None
    return task


def new_task(
    dest: Path,
    *,
    label: str | None = None,
    assignments: list[str] | None = None,
    name_template: str | None = None,
    files: Sequence[InputFile] = (),
) -> tuple[TaskBase, Path]:
    """Create a task in ``dest`` (joining the group if ``dest`` is a task group).

    ``files``: input files copied (or linked) into it.

    Raises:
        InputError: ``dest`` is a study or study group, where tasks belong in
            task groups.
    """
    _refuse_task_in(dest)
    task = _fresh_task(label, assignments or [])
    path = create_task_tree(task, dest, name_template=name_template, files=files, by_label=True)
    return task, path


def clone_task(
    src: Path,
    *,
    dest: Path | None = None,
    label: str | None = None,
    assignments: list[str] | None = None,
    name_template: str | None = None,
    force: bool = False,
    files: Sequence[InputFile] = (),
) -> tuple[TaskBase, Path]:
    """Clone the task in ``src``: inputs, scheduler inputs, carried-over files (and ``files``).

    The clone goes beside ``src`` unless ``dest`` is given; in a structured
    tree it joins the source's task group. A queued or running ``src`` is
    refused unless ``force`` (see :func:`check_not_live`).
    """
    check_not_live(src, "cloned", force=force)
    source = load_source(src, "--from")
    task = as_new_attempt(source, label, assignments or [], previous=src)
    target = dest if dest is not None else src.parent
    _refuse_task_in(target)
    path = create_task_tree(
        task,
        target,
        src=src,
        files_to_carry_over=source.task_inputs.files_to_carry_over,
        name_template=name_template,
        files=files,
        by_label=True,
        inherited=source.input_sections(),
    )
    return task, path


def new_task_group(
    study_dir: Path,
    *,
    label: str | None = None,
    assignments: list[str] | None = None,
    name_template: str | None = None,
    src: Path | None = None,
    force: bool = False,
    files: Sequence[InputFile] = (),
) -> tuple[TaskGroup, Path]:
    """Create a task group holding its first task inside the study ``study_dir``.

    With ``src``, the first task is a clone of that task directory (without its
    carried-over files); ``files`` are copied (or linked) into the task.
    """
    if kind_of(study_dir) is not Kind.STUDY:
        raise InputError(
            f"is not a study (no {SETTINGS.STUDY_METADATA_FILE})",
            path=study_dir,
            field="--dest",
            hint="create one with 'autojob new --type study' and pass its directory",
        )
    inherited = None
    if src is not None:
        check_not_live(src, "cloned", force=force)
        source = load_source(src, "--from")
        inherited = source.input_sections()
        task = as_new_attempt(source, label, assignments or [], previous=src)
        task.task_metadata.task_group_id = new_id("c")
    else:
        task = _fresh_task(label, assignments or [])
    group = TaskGroup.from_task(task)
    path = create_task_group_tree(
        group,
        study_dir,
        name_template=name_template,
        files=files,
        by_label=True,
        inherited=inherited,
    )
    return group, path


def new_study(
    dest: Path, *, label: str | None = None, name_template: str | None = None
) -> tuple[Study, Path]:
    """Create an empty study in ``dest`` (registered if ``dest`` is a study group)."""
    study = Study(name=label or "")
    return study, write_study(study, dest, study_template=name_template, by_label=True)


def new_study_group(
    dest: Path, *, label: str | None = None, name_template: str | None = None
) -> tuple[StudyGroup, Path]:
    """Create an empty study group in ``dest``."""
    group = StudyGroup(name=label or "")
    path = write_study_group(group, dest, study_group_template=name_template, by_label=True)
    return group, path
