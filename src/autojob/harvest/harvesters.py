"""Harvesters: what reads a task's outputs, found through entry points.

A harvester turns the files a task's command wrote into a JSON object, merged
into the task's ``outputs`` in the archive. autojob ships one, ``outputs``,
which reads the task's own ``outputs.json``. A package adds one for its code's
output files by declaring, in its ``pyproject.toml``::

    [project.entry-points."autojob.harvest"]
    vasp = "mypackage.harvest:VaspHarvester"

where ``VaspHarvester`` subclasses :class:`Harvester` (the entry point may also
name an instance). :func:`register_harvester` does the same in code.

Which harvesters run on a task: those named by the caller (``--harvester``),
else every installed harvester whose ``task_classes`` holds the task's class
(``"*"`` matches every class).
"""

from __future__ import annotations

import functools
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar

from autojob import SETTINGS
from autojob.errors import MetadataError, PluginError
from autojob.store.atomic import read_bytes_and_status, read_json_object

__all__ = [
    "HARVEST_GROUP",
    "Harvester",
    "OutputsHarvester",
    "TaskFiles",
    "available_harvesters",
    "get_harvester",
    "read_json_file",
    "read_json_file_stat",
    "refresh_harvesters",
    "register_harvester",
    "select_harvesters",
]

HARVEST_GROUP = "autojob.harvest"
#: the task class every harvester with this in ``task_classes`` applies to
ANY_CLASS = "*"


@dataclass(frozen=True, slots=True)
class TaskFiles:
    """What a harvester is given: a task directory and what it holds.

    Attributes:
        path: the task directory.
        names: the names of the entries in it.
        metadata: the content of its ``task.json`` (empty if it has none).
        inputs: the sections of its ``inputs.json`` (nested form).
        opened: where the reader keeps the status of the files read, by name,
            as they were opened (for a cache stamp, saving a ``stat`` of
            each); None where it does not. A harvester may add the files it
            reads with :func:`read_json_file_stat`; one it leaves out is
            stat'ed after.
    """

    path: str
    names: Set[str]
    metadata: Mapping[str, Any]
    inputs: Mapping[str, Any]
    opened: dict[str, os.stat_result] | None = None

    def file(self, name: str) -> str:
        """The path of the file ``name`` in the task directory."""
        return os.path.join(self.path, name)


class Harvester(ABC):
    """Reads some output files of a task into a JSON object.

    Subclasses set :attr:`name` and :attr:`files` and implement
    :meth:`harvest`. Raise :class:`~autojob.errors.MetadataError` (naming the
    file and field) for a broken file: strict harvests stop there, relaxed ones
    record it on the task and go on.
    """

    #: the name users select it by (``--harvester NAME``)
    name: ClassVar[str] = ""
    #: the task classes it runs on when none are selected by name ("*": all)
    task_classes: ClassVar[tuple[str, ...]] = ()
    #: the files it reads: a change to one of them makes the task re-read
    files: ClassVar[tuple[str, ...]] = ()
    #: bump when the harvester's output changes: cached results are dropped
    version: ClassVar[str] = "1"

    @abstractmethod
    def harvest(self, task: TaskFiles) -> Mapping[str, Any] | None:
        """Return what this harvester finds in ``task`` (None: nothing)."""

    def applies_to(self, task_class: str | None) -> bool:
        """Whether this harvester runs on tasks of ``task_class`` by default."""
        return ANY_CLASS in self.task_classes or (task_class or "") in self.task_classes

    @property
    def identity(self) -> str:
        """Name and version, kept in a harvest cache to invalidate it."""
        return f"{self.name}=={self.version}"


_decode = json.JSONDecoder().decode


def read_json_file(path: str, *, required: bool = False) -> dict[str, Any] | None:
    """Read a JSON object from ``path``; None when it is missing and not required.

    Raises:
        MetadataError: the file is unreadable, truncated, not JSON or not an object.
    """
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except FileNotFoundError:
        if not required:
            return None
        raise MetadataError("file not found", path=path, hint="rerun the task") from None
    except OSError as exc:
        raise MetadataError(f"cannot read the file: {exc.strerror}", path=path) from exc
    try:
        # an object in UTF-8 (as JSON files are) skips json.loads' guess of the encoding
        data = _decode(raw.decode()) if raw[:1] == b"{" else json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        read_json_object(Path(path))  # raises the detailed message
        raise MetadataError(f"not valid JSON: {exc}", path=path) from exc
    if not isinstance(data, dict):
        raise MetadataError(
            f"must hold a JSON object, not {type(data).__name__}",
            path=path,
            hint="write a JSON object (a mapping of names to values)",
        )
    return data


def read_json_file_stat(path: str) -> tuple[dict[str, Any] | None, os.stat_result | None]:
    """:func:`read_json_file` (not required), and the file's status as it was opened.

    Read by :func:`~autojob.store.atomic.read_bytes_and_status`: the status
    gives the file's mtime and size for a cache stamp without a ``stat`` of
    its path. A file that is not a readable JSON object is read
    again by :func:`read_json_file`, for the error that names what is wrong.

    Raises:
        MetadataError: as :func:`read_json_file`.
    """
    try:
        raw, info = read_bytes_and_status(path)
    except FileNotFoundError:
        return None, None
    except OSError:  # a directory, or an error opening or reading it
        return read_json_file(path), None  # raises the error naming why
    try:
        data = _decode(raw.decode()) if raw[:1] == b"{" else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):  # not a plain JSON object in UTF-8: as read_json_file says
        return read_json_file(path), None
    return data, info


class OutputsHarvester(Harvester):
    """The default harvester: the task's own ``outputs.json``, as written."""

    name = "outputs"
    task_classes = (ANY_CLASS,)
    version = "1"

    @property
    def files(self) -> tuple[str, ...]:  # type: ignore[override]
        """The outputs file named in SETTINGS."""
        return (SETTINGS.OUTPUTS_FILE,)

    def harvest(self, task: TaskFiles) -> Mapping[str, Any] | None:
        """Read ``outputs.json`` if the task wrote one."""
        name = SETTINGS.OUTPUTS_FILE
        if name not in task.names:
            return None
        if task.opened is None:
            return read_json_file(task.file(name))
        data, info = read_json_file_stat(task.file(name))
        if info is not None:
            task.opened[name] = info
        return data


# -- the registry -----------------------------------------------------------------

_registered: dict[str, Harvester] = {}


@functools.cache
def _harvest_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=HARVEST_GROUP)}


def refresh_harvesters() -> None:
    """Forget cached entry points and loaded harvesters (after an install)."""
    _harvest_entry_points.cache_clear()
    _loaded.cache_clear()


def register_harvester(harvester: Harvester) -> None:
    """Make ``harvester`` available under its name in this process."""
    if not isinstance(harvester, Harvester):
        raise PluginError(f"{harvester!r} is not a Harvester", hint="subclass Harvester")
    if not harvester.name:
        raise PluginError(f"{type(harvester).__name__} has no name", hint="set its name")
    _registered[harvester.name] = harvester


def available_harvesters() -> list[str]:
    """The names of every harvester that can be used."""
    return sorted({*_registered, *_harvest_entry_points()})


def get_harvester(name: str) -> Harvester:
    """Return the harvester registered or installed under ``name``.

    Raises:
        PluginError: none is, or it fails to import or is no Harvester.
    """
    if name in _registered:
        return _registered[name]
    if name not in _harvest_entry_points():
        raise PluginError(
            f"harvester {name!r} is not installed "
            f"(installed: {', '.join(available_harvesters()) or 'none'})",
            hint=f"install the package that provides it under the entry-point group "
            f"'{HARVEST_GROUP}'",
        )
    return _loaded(name)


@functools.cache
def _loaded(name: str) -> Harvester:
    entry_point = _harvest_entry_points()[name]
    try:
        obj = entry_point.load()
        harvester = obj() if isinstance(obj, type) and issubclass(obj, Harvester) else obj
    except Exception as exc:  # any failure of third-party code while importing
        raise PluginError(
            f"harvester {name!r} ({entry_point.value}) failed to load: {exc}",
            hint="fix or uninstall the package that provides it, or name the harvesters "
            "to run (--harvester NAME)",
        ) from exc
    if not isinstance(harvester, Harvester):
        raise PluginError(
            f"entry point {name!r} ({entry_point.value}) is not a Harvester",
            hint="point the entry point at a Harvester subclass or instance",
        )
    return harvester


def select_harvesters(names: Iterable[str] | None) -> list[Harvester]:
    """The harvesters named, or every installed one (when ``names`` is None)."""
    chosen = available_harvesters() if names is None else list(dict.fromkeys(names))
    return [get_harvester(name) for name in chosen]
