"""Load tasks, task groups, studies and study groups from their directories.

Every failure names the file and field at fault. Strict mode (the default,
``SETTINGS.STRICT_MODE``) raises on inconsistencies between a metadata file and
the directories beside it; relaxed mode logs a warning and loads what it can.

Loading is linear in the size of the tree and does little besides reading
the files: paths are joined as strings (``f"{dir}/{name}"``; ``Path`` objects
and ``os.path.join`` cost more per task than opening a file), each metadata
file is opened once (a missing one is found by opening it, not by a ``stat``
first) and read with ``os.open`` and ``os.read``, each directory of the tree
above the tasks is opened once and the files inside it (and inside its task
directories) are opened by name from there, so the kernel does not walk the
whole path from the root for each file, and the task script is read only
where ``inputs.json`` has no ``scheduler_inputs`` section. Errors still name
their files by their full paths.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from autojob import SETTINGS
from autojob.bases.task_base import TaskBase
from autojob.errors import AutojobError, MetadataError
from autojob.plugins import get_task_class
from autojob.store.atomic import (
    parse_json_object,
    read_bytes_if_file_at,
    read_json_object,
    read_json_object_at,
)
from autojob.store.collector import collector_paused
from autojob.store.names import STAGING_PREFIX

__all__ = [
    "child_dirs_with",
    "inputs_sections",
    "invalid",
    "load_study",
    "load_study_group",
    "load_task",
    "load_task_group",
    "read_inputs_sections",
    "scheduler_inputs_of",
    "validate_task_document",
]

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", bound=TaskBase)
C = TypeVar("C")


def _strict(strict_mode: bool | None) -> bool:
    return SETTINGS.STRICT_MODE if strict_mode is None else strict_mode


def invalid(exc: ValidationError, path: Path, prefix: tuple[Any, ...] = ()) -> MetadataError:
    """Turn a pydantic error into a :class:`MetadataError` naming file and field."""
    first = exc.errors()[0]
    loc = first["loc"][len(prefix) :] if first["loc"][: len(prefix)] == prefix else first["loc"]
    field = ".".join(str(part) for part in loc) or None
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    got = first.get("input")
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
    return MetadataError(
        f"{first['msg']}; found {shown[:80]}{more}",
        path=path,
        field=field,
        hint="correct the value in the file (autojob never guesses at a broken value)",
    )


def read_inputs_sections(task_dir: str | Path) -> dict[str, Any]:
    """Read ``inputs.json`` as sections; a flat file is all ``task_inputs``."""
    path = f"{task_dir}/{SETTINGS.INPUTS_FILE}"
    return inputs_sections(read_json_object(path), path)


def inputs_sections(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The sections of the content ``data`` of ``inputs.json`` (at ``path``).

    A flat file (no ``task_inputs``) is all ``task_inputs``.

    Raises:
        MetadataError: a section is not an object.
    """
    if "task_inputs" not in data:
        return {"task_inputs": data}
    for section in ("task_inputs", "scheduler_inputs"):
        if section in data and not isinstance(data[section], dict):
            raise MetadataError(
                f"must be an object of named inputs; found {type(data[section]).__name__}",
                path=path,
                field=section,
                hint='write it as {"name": value, ...} (or {} for none)',
            )
    return data


def _task_class_for(cls: type[T], meta: dict[str, Any], path: str, strict: bool) -> type[T]:
    name = meta.get("task_class")
    if not isinstance(name, str) or not name:
        if strict:
            raise MetadataError(
                "no task class recorded, so magic mode cannot pick one",
                path=path,
                field="task_class",
                hint='set it (e.g. "task") or load with magic_mode=False',
            )
        logger.warning("%s: no task_class; loading as %s", path, cls.__name__)
        return cls
    try:
        return cast("type[T]", get_task_class(name))
    except AutojobError as exc:
        if strict:
            raise type(exc)(exc.message, path=path, field="task_class", hint=exc.hint) from exc
        logger.warning("%s: %s; loading as %s", path, exc.message, cls.__name__)
        return cls


def load_task(cls: type[T], src: str | Path, *, strict_mode: bool | None, magic: bool) -> T:
    """Load the task in ``src`` as ``cls`` (or the class it names, if ``magic``)."""
    path = os.fspath(src)
    return _load_task(cls, path, (None, path), None, _strict(strict_mode), magic)


def _load_task(
    cls: type[T],
    src: str,
    at: tuple[int | None, str],
    raw: bytes | None,
    strict: bool,
    magic: bool,
) -> T:
    """Load the task in ``src``; ``raw`` is its metadata file's content if already read.

    ``at`` is ``(dir_fd, name)``: ``src`` as opened, the name of the task
    directory relative to the open directory ``dir_fd`` (its task group's),
    or ``(None, src)``. Paths stay strings: a tree of N tasks would otherwise
    build and parse several ``Path`` objects per task, which costs more than
    reading its files.
    """
    dir_fd, name = at
    meta_path = f"{src}/{SETTINGS.TASK_METADATA_FILE}"
    if raw is None:
        meta = read_json_object(
            meta_path,
            missing_hint=f"a directory with {SETTINGS.INPUTS_FILE} but no metadata gets it "
            f"from 'autojob list {src}'",
        )
    else:
        meta = parse_json_object(raw, meta_path)
    if magic:
        cls = _task_class_for(cls, meta, meta_path, strict)
    inputs_file, outputs_file = SETTINGS.INPUTS_FILE, SETTINGS.OUTPUTS_FILE
    inputs_path = f"{src}/{inputs_file}"
    sections = inputs_sections(
        read_json_object_at(f"{name}/{inputs_file}", dir_fd, inputs_path), inputs_path
    )
    if sections.get("scheduler_inputs") is None:
        sections["scheduler_inputs"] = _script_directives(src, sections)
    outputs_path = f"{src}/{outputs_file}"
    outputs = read_bytes_if_file_at(f"{name}/{outputs_file}", dir_fd, outputs_path)
    document: dict[str, Any] = {
        **sections,
        "task_metadata": meta,
        "task_outputs": None if outputs is None else parse_json_object(outputs, outputs_path),
    }
    task = validate_task_document(cls, document, src)
    task.read_own_files(src)
    return task


def validate_task_document(cls: type[T], document: dict[str, Any], task_dir: str | Path) -> T:
    """Validate a task's sections (its files' contents) as ``cls``.

    Raises:
        MetadataError: naming the file of the section at fault and its field.
    """
    try:
        return cls.model_validate(document)
    except ValidationError as exc:
        head = exc.errors()[0]["loc"][0]
        if head == "task_metadata":
            raise invalid(
                exc, Path(task_dir, SETTINGS.TASK_METADATA_FILE), ("task_metadata",)
            ) from exc
        if head == "task_outputs":
            raise invalid(exc, Path(task_dir, SETTINGS.OUTPUTS_FILE), ("task_outputs",)) from exc
        raise invalid(exc, Path(task_dir, SETTINGS.INPUTS_FILE)) from exc


def scheduler_inputs_of(path: Path) -> dict[str, Any]:
    """A task's scheduler inputs: its ``inputs.json`` section, else its script's lines."""
    sections = read_inputs_sections(path)
    found = sections.get("scheduler_inputs")
    if found is None:
        return _script_directives(os.fspath(path), sections)
    return found if isinstance(found, dict) else {}


def _script_directives(src: str, sections: dict[str, Any]) -> dict[str, Any]:
    """Scheduler inputs read back from the ``#SBATCH`` and ``#$`` lines of the task script.

    Only for an ``inputs.json`` without a ``scheduler_inputs`` section (as
    python-autojob 0.0.2 writes it, or a flat one): autojob writes the section,
    even when empty, and renders the script's ``#SBATCH`` lines from it, so
    there the script holds nothing more and is not read.
    """
    from autojob.scheduler import read_sbatch_options  # noqa: PLC0415
    from autojob.sge_directives import read_sge_options  # noqa: PLC0415

    inputs = sections.get("task_inputs")
    name = inputs.get("task_script") if isinstance(inputs, dict) else None
    script = os.path.join(src, name if isinstance(name, str) else SETTINGS.DEFAULT_TASK_SCRIPT_FILE)
    try:
        with open(script, encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except OSError:
        return {}
    return {**read_sge_options(text, source=script), **read_sbatch_options(text)}


def _subdirectories(directory: str | int) -> list[str]:
    """The names of the subdirectories of ``directory`` (no symlinks, no staging), sorted.

    ``directory`` is a path or an open directory's descriptor.
    """
    with os.scandir(directory) as entries:
        return sorted(
            entry.name
            for entry in entries
            if not entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False)
        )


def child_dirs_with(directory: str | Path, file_name: str) -> list[Path]:
    """Return the subdirectories of ``directory`` holding ``file_name``, sorted."""
    top = os.fspath(directory)
    return [
        Path(top, name)
        for name in _subdirectories(top)
        if os.path.isfile(os.path.join(top, name, file_name))
    ]


#: how a directory is opened to read the files inside it by name
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY


def _open_directory(name: str, dir_fd: int | None, path: str) -> int | None:
    """A descriptor of the directory ``name`` (relative to ``dir_fd``), None where it went.

    Raises:
        MetadataError: it is there but cannot be read.
    """
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):  # removed or replaced since listed
            return None
        raise MetadataError(
            f"cannot read the directory: {exc.strerror}",
            path=path,
            hint="check its permissions",
        ) from exc


def _load_children(
    directory: str, dir_fd: int, file_name: str, load: Callable[[str, int, bytes], C]
) -> list[C]:
    """``load(path, fd, bytes of file_name)`` of each subdirectory holding ``file_name``.

    In sorted order, as :func:`child_dirs_with` finds them; where the file is
    missing (or not a file) the directory is skipped. Each subdirectory is
    opened once and ``fd`` is its descriptor, open while ``load`` runs, so that
    the files inside are found from it rather than from the root (see
    :func:`autojob.store.atomic.read_bytes_if_file_at`).
    """
    found = []
    for name in _subdirectories(dir_fd):
        path = f"{directory}/{name}"
        child_fd = _open_directory(name, dir_fd, path)
        if child_fd is None:
            continue
        try:
            raw = read_bytes_if_file_at(file_name, child_fd, f"{path}/{file_name}")
            if raw is not None:
                found.append(load(path, child_fd, raw))
        finally:
            os.close(child_fd)
    return found


def _ids_listed(data: dict[str, Any], key: str, path: str) -> list[str]:
    ids = data.pop(key, [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise MetadataError(
            "must be a list of id strings",
            path=path,
            field=key,
            hint=f"list the ids of the directories inside {os.path.dirname(path)}",
        )
    return ids


def _match_children(
    listed: list[str],
    children: dict[str, M],
    path: str,
    key: str,
    strict: bool,
    owned: set[str],
) -> list[M]:
    """Order loaded children as listed; report listed-but-missing and unlisted ones.

    An unlisted child in ``owned`` names this parent in its own metadata: it
    was written, and the writer stopped (or is still busy) before adding it to
    the list, so it belongs here and is no error. Linear in the children.
    """
    if len(listed) == len(children) and listed == list(children):
        return list(children.values())  # the common case: found as listed, in that order
    known = set(listed)
    twice: list[str] = []
    if len(known) < len(listed):  # an id listed more than once is loaded once
        twice = [i for i, n in Counter(listed).items() if n > 1]
        listed = list(dict.fromkeys(listed))
    missing = [i for i in listed if i not in children]
    unlisted = [i for i in children if i not in known]
    late = [i for i in unlisted if i in owned]
    if late:
        logger.info("%s: %d id(s) not listed yet: %s", path, len(late), ", ".join(late[:5]))
    unlisted = [i for i in unlisted if i not in owned]
    listed = [*listed, *late]
    for problem, ids in (
        ("listed more than once", twice),
        ("listed but not found on disk", missing),
        ("found on disk but not listed", unlisted),
    ):
        if not ids:
            continue
        message = f"{len(ids)} id(s) {problem}: {', '.join(ids[:5])}"
        if strict:
            raise MetadataError(
                message,
                path=path,
                field=key,
                hint="make the list match the subdirectories, or load with "
                "strict_mode=False to load what is there",
            )
        logger.warning("%s: %s", path, message)
    return [children[i] for i in listed if i in children] + [children[i] for i in unlisted]


def _check_parent_ids(
    child: dict[str, Any], parent: dict[str, Any], fields: tuple[str, ...], path: str
) -> None:
    """Warn where a child names another parent; the parent's ids win on load.

    Trees written by python-autojob 0.0.2 carry such mismatches by
    construction, so they are reported, not refused.
    """
    for field in fields:
        if field in child and child[field] != parent.get(field):
            logger.warning(
                "%s: %s is %r but its parent has %r; using the parent's",
                path,
                field,
                child[field],
                parent.get(field),
            )


def _load_parent(
    cls: type[M],
    src: str,
    *,
    metadata_file: str,
    key: str,
    children: list[tuple[str, Any, tuple[Any, ...], str]],
    id_field: str,
    strict: bool,
    raw: bytes | None = None,
    linked_by: tuple[str, ...] = (),
) -> M:
    """Load a parent whose metadata lists its children's ids under ``key``.

    ``children`` holds, per child directory, the child's id, the loaded child,
    the ids it holds of its parents (``id_field`` first, then the rest of
    ``linked_by``) and the child's metadata file (for messages); each child
    must name this parent. ``raw`` is the content of the parent's metadata
    file if already read; it is parsed after the children loaded.

    A parent links its children when built (sets its ids on them, and they on
    theirs). ``linked_by`` names the parent's fields that linking sets on its
    children: where every child holds them already, as in any tree autojob
    wrote, the parent is built without linking, which would only walk the
    whole subtree again (each level of the tree once more).
    """
    path = f"{src}/{metadata_file}"
    data = read_json_object(path) if raw is None else parse_json_object(raw, path)
    listed = _ids_listed(data, key, path)
    loaded: dict[str, Any] = {}
    owned: set[str] = set()
    parent_id = data.get(id_field)
    for child_id, child, held, child_file in children:
        named = held[0]
        if named != parent_id:
            _check_parent_ids({id_field: named}, data, (id_field,), child_file)
        loaded[child_id] = child
        if named is not None and named == parent_id:
            owned.add(child_id)
    data[key] = _match_children(listed, loaded, path, key, strict, owned)
    try:
        parent = cls.model_validate(data, context=_LINKED if linked_by else None)
    except ValidationError as exc:
        raise invalid(exc, Path(path)) from exc
    if linked_by:
        ids = tuple(getattr(parent, field) for field in linked_by)
        if any(held != ids for _, _, held, _ in children):
            parent.link()  # type: ignore[attr-defined]
    return parent


#: the validation context telling a study or study group not to link its children
_LINKED = {"linked": True}


def load_task_group(cls: type[M], src: str | Path, *, strict_mode: bool | None) -> M:
    """Load a task group and its tasks (each in the class its metadata names)."""
    path = os.fspath(src)
    with collector_paused(), _opened(path) as dir_fd:
        return _load_task_group(cls, path, dir_fd, None, _strict(strict_mode))


@contextlib.contextmanager
def _opened(directory: str) -> Iterator[int]:
    """The open directory ``directory`` (a missing one raises ``FileNotFoundError``)."""
    dir_fd = os.open(directory, _DIRECTORY_FLAGS)
    try:
        yield dir_fd
    finally:
        os.close(dir_fd)


def _load_task_group(cls: type[M], src: str, dir_fd: int, raw: bytes | None, strict: bool) -> M:
    """Load the task group in ``src`` (open as ``dir_fd``); its tasks are read from there."""
    from autojob.tasks.task import Task  # noqa: PLC0415

    name = SETTINGS.TASK_METADATA_FILE
    children = []
    for task_name in _subdirectories(dir_fd):
        task_dir = f"{src}/{task_name}"
        meta_path = f"{task_dir}/{name}"
        task_raw = read_bytes_if_file_at(f"{task_name}/{name}", dir_fd, meta_path)
        if task_raw is None:
            continue
        task = _load_task(Task, task_dir, (dir_fd, task_name), task_raw, strict, True)
        meta = task.task_metadata
        children.append((meta.task_id, task, (meta.task_group_id,), meta_path))
    return _load_parent(
        cls,
        src,
        metadata_file=SETTINGS.TASK_GROUP_METADATA_FILE,
        key="tasks",
        children=children,
        id_field="task_group_id",
        strict=strict,
        raw=raw,
    )


def load_study(cls: type[M], src: str | Path, *, strict_mode: bool | None) -> M:
    """Load a study, its task groups and their tasks."""
    path = os.fspath(src)
    with collector_paused(), _opened(path) as dir_fd:
        return _load_study(cls, path, dir_fd, None, _strict(strict_mode))


def _load_study(cls: type[M], src: str, dir_fd: int, raw: bytes | None, strict: bool) -> M:
    from autojob.task_group import TaskGroup  # noqa: PLC0415

    name = SETTINGS.TASK_GROUP_METADATA_FILE

    def load_group(group_dir: str, group_fd: int, group_raw: bytes) -> tuple[Any, ...]:
        group = _load_task_group(TaskGroup, group_dir, group_fd, group_raw, strict)
        held = (group.study_id, group.study_group_id)
        return (group.task_group_id, group, held, f"{group_dir}/{name}")

    return _load_parent(
        cls,
        src,
        metadata_file=SETTINGS.STUDY_METADATA_FILE,
        key="task_groups",
        children=_load_children(src, dir_fd, name, load_group),
        id_field="study_id",
        strict=strict,
        raw=raw,
        linked_by=("study_id", "study_group_id"),
    )


def load_study_group(cls: type[M], src: str | Path, *, strict_mode: bool | None) -> M:
    """Load a study group and every study in it."""
    from autojob.study import Study  # noqa: PLC0415

    strict = _strict(strict_mode)
    top = os.fspath(src)
    name = SETTINGS.STUDY_METADATA_FILE

    def load_one(study_dir: str, study_fd: int, study_raw: bytes) -> tuple[Any, ...]:
        study = _load_study(Study, study_dir, study_fd, study_raw, strict)
        return (study.study_id, study, (study.study_group_id,), f"{study_dir}/{name}")

    with collector_paused(), _opened(top) as dir_fd:
        return _load_parent(
            cls,
            top,
            metadata_file=SETTINGS.STUDY_GROUP_METADATA_FILE,
            key="studies",
            children=_load_children(top, dir_fd, name, load_one),
            id_field="study_group_id",
            strict=strict,
            linked_by=("study_group_id",),
        )
