"""Write tasks, task groups, studies and study groups as directories.

Whole trees are built inside a hidden staging directory next to their final
place and then renamed into it, so a tree appears complete or not at all; a
failure (a bad template, a full disk) removes the staging directory. After a
new directory is in place, its id is added to the parent's metadata file under
that file's lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from autojob import SETTINGS
from autojob.errors import AutojobError, TreeError
from autojob.input_keys import check_input_document
from autojob.store.atomic import (
    dump_json,
    dump_model,
    read_json_object,
    register_child,
    write_atomic,
)
from autojob.store.journal import note_changed
from autojob.store.load import read_inputs_sections
from autojob.store.names import STAGING_PREFIX, NameBook, check_dest, check_task_file
from autojob.store.paths import carry_over, relative_inside
from autojob.store.render import render_task_script
from autojob.store.state import process_alive, this_host
from autojob.store.task_script import SCRIPT_MODE, sources_digest, stamped
from autojob.task_group import TaskGroup

if TYPE_CHECKING:
    from autojob.bases.task_base import TaskBase
    from autojob.study import Study
    from autojob.study_group import StudyGroup

__all__ = [
    "carry_over_files",
    "create_task_group_tree",
    "create_task_tree",
    "relative_inside",
    "write_study",
    "write_study_group",
    "write_task_files",
]

logger = logging.getLogger(__name__)
FILE_MODE = 0o666


# -- files of one task -----------------------------------------------------


def _task_documents(
    task: TaskBase, folder: str, inherited: Mapping[str, Any] | None = None
) -> list[tuple[str, str, int]]:
    """Serialise a task's files, all before any is written.

    Its inputs are checked first (:mod:`autojob.input_keys`); ``inherited``:
    the sections of the task it was copied from, which are not judged again.
    The script is stamped with what it was rendered from
    (:mod:`autojob.store.task_script`).
    """
    script = check_task_file(task.task_inputs.task_script, folder, source="task_inputs.task_script")
    sections = task.input_sections()
    check_input_document(type(task), sections, inherited)
    inputs = os.path.join(folder, SETTINGS.INPUTS_FILE)
    meta = os.path.join(folder, SETTINGS.TASK_METADATA_FILE)
    inputs_text = dump_json(sections, inputs)
    meta_text = dump_model(task.task_metadata, meta)
    sources = sources_digest(inputs_text.encode("utf-8"), meta_text.encode("utf-8"))
    return [
        (inputs, inputs_text, FILE_MODE),
        (os.path.join(folder, script), stamped(render_task_script(task), sources), SCRIPT_MODE),
        # task.json last: its presence is what makes a directory a task
        (meta, meta_text, FILE_MODE),
    ]


def _sections_in(dest: Path) -> dict[str, Any] | None:
    try:
        return read_inputs_sections(dest)
    except AutojobError:
        return None


def write_task_files(task: TaskBase, dest: Path) -> list[Path]:
    """Write ``inputs.json``, the task script and ``task.json`` into ``dest``.

    Each file replaces any old one atomically; keys the old ``inputs.json``
    held are not judged again. Returns the files written.
    """
    documents = _task_documents(task, os.fspath(dest), _sections_in(dest))
    for path, text, mode in documents:
        write_atomic(Path(path), text, mode=mode)
    return [Path(path) for path, _, _ in documents]


def _write_new(path: str | Path, text: str, mode: int = FILE_MODE) -> None:
    """Create a new file (never replacing one); ``mode`` is masked by the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _write_metadata(folder: str, file_name: str, model: BaseModel) -> None:
    path = os.path.join(folder, file_name)
    _write_new(path, dump_json(model.model_dump(mode="json"), path))


# -- staging -----------------------------------------------------------------


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """Yield a hidden directory inside ``dest``, removed afterwards."""
    if not dest.is_dir():
        raise TreeError(
            "destination is not a directory",
            path=dest,
            hint="create it first, or pass an existing directory",
        )
    check_dest(dest)
    _remove_abandoned_stages(dest)
    try:
        prefix = f"{STAGING_PREFIX}{this_host()}-{os.getpid()}-"
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=dest))
    except OSError as exc:
        raise AutojobError(f"cannot create a directory: {exc.strerror}", path=dest) from exc
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _remove_abandoned_stages(dest: Path) -> None:
    """Remove staging directories left by writers on this host that died.

    A writer killed before it published leaves its hidden staging directory
    (named after its host and pid); nothing in it was ever visible.
    """
    try:
        names = [n for n in os.listdir(dest) if n.startswith(STAGING_PREFIX)]
    except OSError:
        return
    for name in names:
        owner, _, rest = name[len(STAGING_PREFIX) :].rpartition("-")[0].rpartition("-")
        if owner == this_host() and rest.isdigit() and not process_alive(int(rest)):
            logger.info("removing %s, left by a writer that died", dest / name)
            shutil.rmtree(dest / name, ignore_errors=True)


def _publish(staged: Path, final: Path) -> Path:
    """Move a finished directory into place; never replace an existing one."""
    if os.path.lexists(final):
        raise TreeError(
            f"{final.name!r} already exists",
            path=final.parent,
            hint="choose another name template, or add {i} to it",
        )
    os.rename(staged, final)
    return final


def _copy_mode(src: Path | None, dest: Path) -> None:
    if src is not None:
        with contextlib.suppress(OSError):
            os.chmod(dest, os.stat(src).st_mode & 0o7777)


# -- naming ----------------------------------------------------------------


def _task_context(task: TaskBase) -> dict[str, Any]:
    return task.task_metadata.model_dump(mode="json")


def _group_context(group: TaskGroup) -> dict[str, Any]:
    context = _task_context(group.tasks[0]) if group.tasks else {}
    context.update(group.model_dump(mode="json", exclude={"tasks"}))
    return context


def _study_context(model: Study | StudyGroup) -> dict[str, Any]:
    context = model.model_dump(mode="json")
    context["label"] = context.get("name", "")
    return context


def _name_task(names: NameBook, template: str | None, task: TaskBase) -> str:
    if template is None:
        return names.claim_plain(task.task_metadata.task_id)
    return names.claim(template, _task_context(task))


def _name_group(names: NameBook, template: str | None, group: TaskGroup) -> str:
    if template is None:
        return names.claim_plain(group.task_group_id)
    return names.claim(template, _group_context(group))


def _name_study(names: NameBook, template: str | None, study: Study) -> str:
    if template is None:
        return names.claim_plain(study.study_id)
    return names.claim(template, _study_context(study))


# -- carrying files over ---------------------------------------------------


def carry_over_files(
    src: Path,
    dest: Path,
    files: list[str] | None,
    *,
    size_limit: float | None = None,
    script: str | None = None,
) -> list[Path]:
    """Copy ``files`` (relative names; directories too) from ``src`` into ``dest``.

    Never outside ``src``: see :func:`autojob.store.paths.carry_over`. Missing
    files, files (and directories, by their total size) larger than
    ``size_limit`` bytes, links leading out of ``src`` and autojob's own files
    of the task (``script``: the new task's script) are left behind with a
    warning; an entry inside a directory carried already is not copied twice.
    Returns the copies made.
    """
    reserved = _own_files() | ({script} if script else set())
    return carry_over(src, dest, files or [], size_limit=size_limit, reserved=reserved).copied


def _own_files() -> frozenset[str]:
    """The names of a task's files that a new task gets anew, never carried over."""
    names = {
        SETTINGS.TASK_METADATA_FILE,
        SETTINGS.INPUTS_FILE,
        SETTINGS.QUEUED_FILE,
        SETTINGS.STARTED_FILE,
        SETTINGS.ENDED_FILE,
        SETTINGS.CANCEL_FILE,
        SETTINGS.STDOUT_FILE,
        SETTINGS.STDERR_FILE,
        SETTINGS.SCHEDULER_STATS_FILE,
        SETTINGS.HISTORY_DIR,
        SETTINGS.DEFAULT_TASK_SCRIPT_FILE,
    }
    return frozenset(names)


# -- writing trees ---------------------------------------------------------


def _write_task_dir(
    task: TaskBase,
    folder: str,
    *,
    src: Path | None = None,
    files_to_carry_over: list[str] | None = None,
    carry_over_limit: float | None = None,
    inherited: Mapping[str, Any] | None = None,
) -> None:
    documents = _task_documents(task, folder, inherited)  # refused before anything is made
    os.mkdir(folder)
    if src is not None:
        _copy_mode(src, Path(folder))
        carry_over_files(
            src,
            Path(folder),
            files_to_carry_over,
            size_limit=carry_over_limit,
            script=task.task_inputs.task_script,
        )
    for path, text, mode in documents:
        _write_new(path, text, mode)


def _write_group_dir(
    group: TaskGroup,
    folder: str,
    task_template: str | None,
    inherited: Mapping[str, Any] | None = None,
) -> None:
    os.mkdir(folder)
    _write_metadata(folder, SETTINGS.TASK_GROUP_METADATA_FILE, group)
    names = NameBook(Path(folder), empty=True)
    for task in group.tasks:
        folder_of_task = os.path.join(folder, _name_task(names, task_template, task))
        _write_task_dir(task, folder_of_task, inherited=inherited)


def _write_study_dir(
    study: Study,
    folder: str,
    task_group_template: str | None,
    task_template: str | None,
) -> None:
    os.mkdir(folder)
    _write_metadata(folder, SETTINGS.STUDY_METADATA_FILE, study)
    names = NameBook(Path(folder), empty=True)
    for group in study.task_groups:
        name = _name_group(names, task_group_template, group)
        _write_group_dir(group, os.path.join(folder, name), task_template)


def write_study(
    study: Study,
    dest: Path,
    *,
    study_template: str | None = None,
    task_group_template: str | None = None,
    task_template: str | None = None,
) -> Path:
    """Write ``study`` as a new directory in ``dest`` and return it.

    When ``dest`` is a study group, the study joins it.
    """
    parent_meta = dest / SETTINGS.STUDY_GROUP_METADATA_FILE
    if parent_meta.is_file():
        study.study_group_id = read_json_object(parent_meta).get("study_group_id")
    study.link()
    name = _name_study(NameBook(dest), study_template, study)
    with _staging(dest) as stage:
        _write_study_dir(study, os.path.join(stage, name), task_group_template, task_template)
        final = _publish(stage / name, dest / name)
    note_changed([final])
    if parent_meta.is_file():
        register_child(parent_meta, "studies", study.study_id)
    return final


def write_study_group(
    study_group: StudyGroup,
    dest: Path,
    *,
    study_group_template: str | None = None,
    study_template: str | None = None,
    task_group_template: str | None = None,
    task_template: str | None = None,
) -> Path:
    """Write ``study_group`` as a new directory in ``dest`` and return it."""
    study_group.link()
    if study_group_template is None:
        name = NameBook(dest).claim_plain(study_group.study_group_id)
    else:
        name = NameBook(dest).claim(study_group_template, _study_context(study_group))
    with _staging(dest) as stage:
        folder = os.path.join(stage, name)
        os.mkdir(folder)
        _write_metadata(folder, SETTINGS.STUDY_GROUP_METADATA_FILE, study_group)
        names = NameBook(Path(folder), empty=True)
        for study in study_group.studies:
            study_folder = os.path.join(folder, _name_study(names, study_template, study))
            _write_study_dir(study, study_folder, task_group_template, task_template)
        final = _publish(Path(folder), dest / name)
    note_changed([final])
    return final


def _adopt_parent_ids(task: TaskBase, group_meta: Path) -> None:
    data = read_json_object(group_meta)
    meta = task.task_metadata
    for field in ("task_group_id", "study_id", "study_group_id"):
        if field in data:
            setattr(meta, field, data[field])


def create_task_tree(
    task: TaskBase,
    dest: Path,
    *,
    src: Path | None = None,
    files_to_carry_over: list[str] | None = None,
    name_template: str | None = None,
    carry_over_limit: float | None = None,
    inherited: Mapping[str, Any] | None = None,
) -> Path:
    """Create a directory for ``task`` in ``dest`` and write its files.

    When ``dest`` is a task group, the task takes the group's ids and is added
    to the group's ``tasks``. With ``src`` (a task directory), the files named
    by ``files_to_carry_over`` are copied from it (files over
    ``carry_over_limit`` bytes stay behind) and its permissions reused.
    ``inherited``: the input sections of the task this one copies (a new
    attempt), whose keys are not judged again.

    Returns:
        The new task directory.
    """
    dest = Path(dest)
    group_meta = dest / SETTINGS.TASK_GROUP_METADATA_FILE
    if group_meta.is_file():
        _adopt_parent_ids(task, group_meta)
    name = _name_task(NameBook(dest), name_template, task)
    with _staging(dest) as stage:
        folder = os.path.join(stage, name)
        _write_task_dir(
            task,
            folder,
            src=src,
            files_to_carry_over=files_to_carry_over,
            carry_over_limit=carry_over_limit,
            inherited=inherited,
        )
        final = _publish(stage / name, dest / name)
    note_changed([final])
    if group_meta.is_file():
        register_child(group_meta, "tasks", task.task_metadata.task_id)
    return final


def create_task_group_tree(
    task: TaskBase | TaskGroup,
    dest: Path,
    *,
    src: Path | None = None,
    name_template: str | None = None,
    task_template: str | None = None,
    inherited: Mapping[str, Any] | None = None,
) -> Path:
    """Create a task group directory in ``dest`` and return it.

    Given a :class:`TaskGroup`, the group is written with all its tasks. Given
    a task, as in the reference implementation, only the group's directory and
    metadata (listing that task) are written; ``create_task_tree`` then writes
    the task into it. When ``dest`` is a study, the group takes the study's ids
    and is added to the study's ``task_groups``. ``inherited``: as for
    :func:`create_task_tree`.
    """
    dest = Path(dest)
    group = task if isinstance(task, TaskGroup) else TaskGroup.from_task(task)
    study_meta = dest / SETTINGS.STUDY_METADATA_FILE
    if study_meta.is_file():
        data = read_json_object(study_meta)
        group.study_id = data.get("study_id")
        group.study_group_id = data.get("study_group_id")
        group.link()
    name = _name_group(NameBook(dest), name_template, group)
    with _staging(dest) as stage:
        folder = os.path.join(stage, name)
        if isinstance(task, TaskGroup):
            _write_group_dir(group, folder, task_template, inherited)
        else:
            os.mkdir(folder)
            _write_metadata(folder, SETTINGS.TASK_GROUP_METADATA_FILE, group)
        _copy_mode(src.parent if src else None, stage / name)
        final = _publish(stage / name, dest / name)
    note_changed([final])
    if study_meta.is_file():
        register_child(study_meta, "task_groups", group.task_group_id)
    return final
