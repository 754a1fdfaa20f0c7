"""Find tasks in any tree, structured or not.

What a task directory is, and which directories are walked, is
:mod:`autojob.store.walk`'s. A task directory that has inputs but no metadata (a
hand-made or copied directory, the unstructured mode) gets its ``task.json``
created, never by overwriting one that exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from autojob import SETTINGS
from autojob.errors import AutojobError, MetadataError
from autojob.store.atomic import AtomicFile, dump_json, read_json_object, register_child
from autojob.store.walk import walk_task_dirs

__all__ = [
    "Kind",
    "TaskDir",
    "discover_tasks",
    "ensure_task_metadata",
    "kind_of",
]

logger = logging.getLogger(__name__)


class Kind(StrEnum):
    """What a directory is, by the metadata file it holds."""

    STUDY_GROUP = "study_group"
    STUDY = "study"
    TASK_GROUP = "task_group"
    TASK = "task"
    PLAIN = "directory"


def kind_of(directory: Path) -> Kind:
    """Return what ``directory`` is (a task if it has metadata or inputs)."""
    checks = (
        (SETTINGS.STUDY_GROUP_METADATA_FILE, Kind.STUDY_GROUP),
        (SETTINGS.STUDY_METADATA_FILE, Kind.STUDY),
        (SETTINGS.TASK_GROUP_METADATA_FILE, Kind.TASK_GROUP),
        (SETTINGS.TASK_METADATA_FILE, Kind.TASK),
        (SETTINGS.INPUTS_FILE, Kind.TASK),
    )
    for name, kind in checks:
        if os.path.isfile(os.path.join(directory, name)):
            return kind
    return Kind.PLAIN


@dataclass(frozen=True)
class TaskDir:
    """A task directory found by discovery."""

    path: Path
    has_metadata: bool
    #: the entries of the directory when it was found (saves listing it again)
    names: frozenset[str] = frozenset()


def discover_tasks(root: Path) -> Iterator[TaskDir]:
    """Yield every task directory under ``root`` (``root`` included), sorted.

    Raises:
        AutojobError: ``root`` does not exist or is not a directory.
    """
    if not root.is_dir():
        raise AutojobError(
            "not a directory" if root.exists() else "no such directory",
            path=root,
            hint="give the directory of a task, task group, study or study group",
        )
    meta = SETTINGS.TASK_METADATA_FILE
    for top, _, names, _, _ in walk_task_dirs(os.fspath(root)):
        yield TaskDir(Path(top), meta in names, frozenset(names))


def ensure_task_metadata(task_dir: Path, *, task_class: str | None = None) -> bool:
    """Create ``task.json`` for a task directory that has inputs but no metadata.

    The task takes its group's ids when its parent is a task group, and the
    directory's name as its label. Returns True when a file was created;
    an existing file is never touched.
    """
    from autojob.tasks.task import TaskMetadata  # noqa: PLC0415

    target = task_dir / SETTINGS.TASK_METADATA_FILE
    if target.exists():
        return False
    label = task_dir.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    fields: dict[str, object] = {
        "label": label,
        "task_class": task_class or SETTINGS.DEFAULT_TASK,
    }
    group_file = task_dir.parent / SETTINGS.TASK_GROUP_METADATA_FILE
    if group_file.is_file():
        group = read_json_object(group_file)
        for key in ("task_group_id", "study_id", "study_group_id"):
            if key in group:
                fields[key] = group[key]
    try:
        meta = TaskMetadata.model_validate(fields)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise MetadataError(f"cannot derive task metadata: {exc}", path=group_file) from exc
    created = _create_exclusive(target, dump_json(meta.model_dump(mode="json"), target))
    if created and group_file.is_file():
        register_child(group_file, "tasks", meta.task_id)
    return created


def _create_exclusive(target: Path, text: str) -> bool:
    """Write a new file atomically; False if it appeared meanwhile."""
    created = AtomicFile(target)
    try:
        created.write(text.encode("utf-8"))
    except BaseException:
        created.abort()
        raise
    if not created.commit_new():
        return False
    logger.info("%s: created task metadata", target)
    return True
