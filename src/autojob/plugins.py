"""Task classes registered through the ``autojob.task`` entry-point group.

A package adds a task class by declaring, in its ``pyproject.toml``::

    [project.entry-points."autojob.task"]
    mytask = "mypackage.tasks:MyTask"

and ``task.json`` files whose ``task_class`` is ``"mytask"`` then load as
``MyTask`` in magic mode. :func:`register_task_class` does the same in code.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from autojob.errors import PluginError

if TYPE_CHECKING:
    from autojob.bases.task_base import TaskBase

__all__ = [
    "TASK_GROUP",
    "available_task_classes",
    "get_task_class",
    "refresh_plugins",
    "register_task_class",
]

TASK_GROUP = "autojob.task"
_registered: dict[str, type[TaskBase]] = {}
#: classes loaded from entry points, so that loading N tasks imports once
_loaded: dict[str, type[TaskBase]] = {}


@functools.cache
def _task_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=TASK_GROUP)}


def refresh_plugins() -> None:
    """Forget cached entry points, e.g. after installing a package."""
    _task_entry_points.cache_clear()
    _loaded.clear()


def register_task_class(name: str, task_class: type[TaskBase]) -> None:
    """Register ``task_class`` under ``name`` for this process."""
    from autojob.bases.task_base import TaskBase  # noqa: PLC0415

    if not (isinstance(task_class, type) and issubclass(task_class, TaskBase)):
        raise PluginError(f"{task_class!r} is not a subclass of TaskBase")
    _registered[name] = task_class


def available_task_classes() -> list[str]:
    """Return the names of every task class that can be loaded."""
    return sorted({*_registered, *_task_entry_points()})


def get_task_class(name: str) -> type[TaskBase]:
    """Return the task class registered under ``name``.

    Raises:
        PluginError: no such class is installed, or it cannot be imported.
    """
    if name in _registered:
        return _registered[name]
    if name in _loaded:
        return _loaded[name]
    from autojob.bases.task_base import TaskBase  # noqa: PLC0415

    entry_point = _task_entry_points().get(name)
    if entry_point is None:
        raise PluginError(
            f"task class {name!r} is not installed "
            f"(installed: {', '.join(available_task_classes()) or 'none'})",
            hint=f"install the package that provides it under the entry-point "
            f"group '{TASK_GROUP}', or load without magic mode",
        )
    try:
        loaded = entry_point.load()
    except Exception as exc:  # any import failure of a third-party plugin
        raise PluginError(
            f"task class {name!r} ({entry_point.value}) failed to import: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, TaskBase)):
        raise PluginError(f"entry point {name!r} ({entry_point.value}) is not a TaskBase subclass")
    _loaded[name] = loaded
    return loaded
