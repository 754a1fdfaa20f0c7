"""Harvested records as typed tasks: the class each task's metadata names."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.bases.task_base import TaskBase
from autojob.errors import AutojobError, MetadataError
from autojob.plugins import get_task_class
from autojob.store.load import validate_task_document

__all__ = ["to_task"]


def to_task(
    metadata: Mapping[str, Any],
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any] | None,
    *,
    where: Path,
    strict: bool,
) -> TaskBase:
    """Validate harvested data as the task class ``metadata`` names.

    ``where``: the task directory, named in errors.

    Raises:
        MetadataError: a section does not validate (names the file and field).
        PluginError: the task class is not installed and ``strict``.
    """
    name = metadata.get("task_class") or SETTINGS.DEFAULT_TASK
    meta_path = where / SETTINGS.TASK_METADATA_FILE
    try:
        cls = get_task_class(str(name))
    except AutojobError as exc:
        if strict:
            raise type(exc)(exc.message, path=meta_path, field="task_class", hint=exc.hint) from exc
        cls = get_task_class(SETTINGS.DEFAULT_TASK)
    document = {**inputs, "task_metadata": dict(metadata), "task_outputs": outputs}
    try:
        return validate_task_document(cls, document, where)
    except ValueError as exc:  # a validator that raised outside pydantic's wrapping
        raise MetadataError(str(exc), path=where) from exc
