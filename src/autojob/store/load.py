"""Load tasks, task groups, studies and study groups from their directories.

Every failure names the file and field at fault. Strict mode (the default,
``SETTINGS.STRICT_MODE``) raises on inconsistencies between a metadata file and
the directories beside it; relaxed mode logs a warning and loads what it can.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from autojob import SETTINGS
from autojob.bases.task_base import TaskBase
from autojob.errors import AutojobError, MetadataError
from autojob.plugins import get_task_class
from autojob.store.atomic import read_json_object
from autojob.store.names import STAGING_PREFIX

__all__ = [
    "child_dirs_with",
    "invalid",
    "load_study",
    "load_study_group",
    "load_task",
    "load_task_group",
    "read_inputs_sections",
    "validate_task_document",
]

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", bound=TaskBase)


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


def read_inputs_sections(task_dir: Path) -> dict[str, Any]:
    """Read ``inputs.json`` as sections; a flat file is all ``task_inputs``."""
    path = Path(task_dir, SETTINGS.INPUTS_FILE)
    data = read_json_object(path)
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


def _task_class_for(cls: type[T], meta: dict[str, Any], path: Path, strict: bool) -> type[T]:
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


def load_task(cls: type[T], src: Path, *, strict_mode: bool | None, magic: bool) -> T:
    """Load the task in ``src`` as ``cls`` (or the class it names, if ``magic``)."""
    strict = _strict(strict_mode)
    meta_path = Path(src, SETTINGS.TASK_METADATA_FILE)
    meta = read_json_object(
        meta_path,
        missing_hint=f"a directory with {SETTINGS.INPUTS_FILE} but no metadata gets it "
        f"from 'autojob list {src}'",
    )
    if magic:
        cls = _task_class_for(cls, meta, meta_path, strict)
    sections = read_inputs_sections(src)
    if not sections.get("scheduler_inputs"):
        sections["scheduler_inputs"] = _script_directives(src, sections)
    outputs_path = Path(src, SETTINGS.OUTPUTS_FILE)
    outputs = read_json_object(outputs_path) if outputs_path.is_file() else None
    document: dict[str, Any] = {
        **sections,
        "task_metadata": meta,
        "task_outputs": outputs,
    }
    return validate_task_document(cls, document, Path(src))


def validate_task_document(cls: type[T], document: dict[str, Any], task_dir: Path) -> T:
    """Validate a task's sections (its files' contents) as ``cls``.

    Raises:
        MetadataError: naming the file of the section at fault and its field.
    """
    try:
        return cls.model_validate(document)
    except ValidationError as exc:
        head = exc.errors()[0]["loc"][0]
        if head == "task_metadata":
            raise invalid(exc, task_dir / SETTINGS.TASK_METADATA_FILE, ("task_metadata",)) from exc
        if head == "task_outputs":
            raise invalid(exc, task_dir / SETTINGS.OUTPUTS_FILE, ("task_outputs",)) from exc
        raise invalid(exc, task_dir / SETTINGS.INPUTS_FILE) from exc


def _script_directives(src: Path, sections: dict[str, Any]) -> dict[str, Any]:
    """Scheduler inputs read back from the ``#SBATCH`` lines of the task script."""
    from autojob.scheduler import read_sbatch_options  # noqa: PLC0415

    inputs = sections.get("task_inputs")
    name = inputs.get("task_script") if isinstance(inputs, dict) else None
    script = Path(src, name if isinstance(name, str) else SETTINGS.DEFAULT_TASK_SCRIPT_FILE)
    try:
        text = script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return dict(read_sbatch_options(text))


def child_dirs_with(directory: Path, file_name: str) -> list[Path]:
    """Return the subdirectories of ``directory`` holding ``file_name``, sorted."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(STAGING_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            if os.path.isfile(os.path.join(entry.path, file_name)):
                found.append(Path(entry.path))
    return sorted(found)


def _ids_listed(data: dict[str, Any], key: str, path: Path) -> list[str]:
    ids = data.pop(key, [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise MetadataError(
            "must be a list of id strings",
            path=path,
            field=key,
            hint=f"list the ids of the directories inside {path.parent}",
        )
    return ids


def _match_children(
    listed: list[str],
    children: dict[str, M],
    path: Path,
    key: str,
    strict: bool,
    owned: set[str],
) -> list[M]:
    """Order loaded children as listed; report listed-but-missing and unlisted ones.

    An unlisted child in ``owned`` names this parent in its own metadata: it
    was written, and the writer stopped (or is still busy) before adding it to
    the list, so it belongs here and is no error.
    """
    missing = [i for i in listed if i not in children]
    unlisted = [i for i in children if i not in listed]
    late = [i for i in unlisted if i in owned]
    if late:
        logger.info("%s: %d id(s) not listed yet: %s", path, len(late), ", ".join(late[:5]))
    unlisted = [i for i in unlisted if i not in owned]
    listed = [*listed, *late]
    for problem, ids in (
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
    child: dict[str, Any], parent: dict[str, Any], fields: tuple[str, ...], path: Path
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
    src: Path,
    *,
    metadata_file: str,
    key: str,
    children: list[tuple[str, Any, Path]],
    id_field: str,
    strict: bool,
) -> M:
    """Load a parent whose metadata lists its children's ids under ``key``.

    ``children`` holds, per child directory, the child's id, the loaded child,
    and the child's metadata file (for messages); each child must name this
    parent through ``id_field``.
    """
    path = Path(src, metadata_file)
    data = read_json_object(path)
    listed = _ids_listed(data, key, path)
    loaded: dict[str, Any] = {}
    owned: set[str] = set()
    for child_id, child, child_file in children:
        parent_id = _parent_id_of(child, id_field)
        _check_parent_ids({id_field: parent_id}, data, (id_field,), child_file)
        loaded[child_id] = child
        if parent_id is not None and parent_id == data.get(id_field):
            owned.add(child_id)
    data[key] = _match_children(listed, loaded, path, key, strict, owned)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, path) from exc


def _parent_id_of(child: Any, id_field: str) -> Any:
    meta = getattr(child, "task_metadata", child)
    return getattr(meta, id_field)


def load_task_group(cls: type[M], src: Path, *, strict_mode: bool | None) -> M:
    """Load a task group and its tasks (each in the class its metadata names)."""
    from autojob.tasks.task import Task  # noqa: PLC0415

    strict = _strict(strict_mode)
    name = SETTINGS.TASK_METADATA_FILE
    tasks = [
        Task.from_directory(task_dir, strict_mode=strict, magic_mode=True)
        for task_dir in child_dirs_with(src, name)
    ]
    children = [
        (t.task_metadata.task_id, t, Path(src, t.task_metadata.task_id, name)) for t in tasks
    ]
    return _load_parent(
        cls,
        src,
        metadata_file=SETTINGS.TASK_GROUP_METADATA_FILE,
        key="tasks",
        children=children,
        id_field="task_group_id",
        strict=strict,
    )


def load_study(cls: type[M], src: Path, *, strict_mode: bool | None) -> M:
    """Load a study, its task groups and their tasks."""
    from autojob.task_group import TaskGroup  # noqa: PLC0415

    strict = _strict(strict_mode)
    name = SETTINGS.TASK_GROUP_METADATA_FILE
    children = []
    for group_dir in child_dirs_with(src, name):
        group = TaskGroup.from_directory(group_dir, strict_mode=strict)
        children.append((group.task_group_id, group, group_dir / name))
    return _load_parent(
        cls,
        src,
        metadata_file=SETTINGS.STUDY_METADATA_FILE,
        key="task_groups",
        children=children,
        id_field="study_id",
        strict=strict,
    )


def load_study_group(cls: type[M], src: Path, *, strict_mode: bool | None) -> M:
    """Load a study group and every study in it."""
    from autojob.study import Study  # noqa: PLC0415

    strict = _strict(strict_mode)
    name = SETTINGS.STUDY_METADATA_FILE
    children = []
    for study_dir in child_dirs_with(src, name):
        study = Study.from_directory(study_dir, strict_mode=strict)
        children.append((study.study_id, study, study_dir / name))
    return _load_parent(
        cls,
        src,
        metadata_file=SETTINGS.STUDY_GROUP_METADATA_FILE,
        key="studies",
        children=children,
        id_field="study_group_id",
        strict=strict,
    )
