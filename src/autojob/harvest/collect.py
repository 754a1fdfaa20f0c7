"""Walk a tree and read every task in it: the fast path of harvesting.

The walk lists each directory once and stops at task directories, as
:mod:`autojob.store.walk` defines them (which directories are skipped, what a
task is; an unreadable directory stops the harvest with an error naming it);
its own traversal lets the cache replace unchanged directories and tasks. A
task's files are read as plain JSON; its metadata is checked against the
metadata model (a few microseconds) and, in magic mode, the whole task against
the class it names. Records stay plain dicts, serialised
once: the JSON text written to the archive and to the cache is the same.

Tasks in one task group are its attempts: they are buffered until the walk
leaves the group, ordered by ``date_created`` (then by when they were queued)
and given their place (:class:`~autojob.harvest.models.Attempts`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from autojob import SETTINGS
from autojob.bases.task_base import TaskMetadataBase
from autojob.errors import AutojobError, MetadataError, MissingFileError
from autojob.harvest.entries import DirNote, Entry, Run, attempts_of, settle
from autojob.harvest.harvesters import (
    Harvester,
    TaskFiles,
    read_json_file,
    read_json_file_stat,
)
from autojob.harvest.models import Problem
from autojob.store.load import invalid
from autojob.store.state import FINAL_STATES, read_state
from autojob.store.walk import is_task_dir, list_directory

__all__ = ["DirNote", "Entry", "Reader", "Run", "Source", "attempts_of", "settle", "walk_entries"]

_FINAL = frozenset(s.value for s in FINAL_STATES)
#: files a task's stamp watches besides the directory itself (whose mtime
#: changes whenever a file is created, removed or replaced, as autojob's
#: atomic writes of state records and accounting do): those that may also be
#: rewritten in place, by hand or by the task's command
_WATCHED_FILES = ("TASK_METADATA_FILE", "INPUTS_FILE")
#: a file changed this close (ns) before the harvest began may change again unseen
RACY_NS = 2_000_000_000


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


@dataclass
class Reader:
    """Reads task directories into entries.

    Attributes:
        root: the directory harvested (absolute, real path).
        harvesters: the harvesters to run.
        explicit: the harvesters were named, so they run on every task;
            otherwise each runs on the task classes it declares.
        strict: raise on the first problem instead of recording it.
        magic: also validate each task as the class its metadata names.
        stamps: compute cache stamps (only when a cache is kept).
        started_ns: when the harvest began (racy stamps are not cached).
    """

    root: str
    harvesters: Sequence[Harvester]
    explicit: bool = False
    strict: bool = False
    magic: bool = False
    stamps: bool = False
    started_ns: int = 0
    watched: tuple[str, ...] = ()
    #: the last task group read (its path and id), for the tasks that follow
    group_id: tuple[str, str | None] | None = None

    def __post_init__(self) -> None:
        names = [getattr(SETTINGS, s) for s in _WATCHED_FILES]
        for harvester in self.harvesters:
            names.extend(harvester.files)
        self.watched = tuple(dict.fromkeys(names))

    # -- one task -------------------------------------------------------------

    def lookup(self, top: str, rel: str, group: str | None) -> Entry | DirNote | None:
        """No cache: every task is read, every directory listed."""
        return None

    def bulk(
        self, top_prefix: str, prefix: str, subdirs: list[str], start: int
    ) -> tuple[Run | None, int]:
        """No cache: no run of unchanged tasks."""
        return None, start

    def note_dir(self, top: str, rel: str, is_group: bool, subdirs: list[str]) -> DirNote | None:
        """A directory just listed, to keep in the cache (if stamps are kept and it is settled)."""
        if not self.stamps:
            return None
        stamp = self.dir_stamp(top)
        return None if stamp is None else DirNote(rel, stamp, is_group, subdirs)

    def read(self, top: str, rel: str, names: set[str], group: str | None) -> Entry:
        """Read the task in ``top`` (``rel`` below the root) into an entry."""
        problems: list[Problem] = []
        meta = self._metadata(top, names, problems)
        if group is not None and meta:
            self._check_group(top, group, meta, problems)
        inputs = self._inputs(top, names, problems, has_meta=bool(meta))
        state = read_state(top, names).as_dict()
        scheduler = self._optional(top, SETTINGS.SCHEDULER_STATS_FILE, names, problems)
        files = TaskFiles(top, names, meta, inputs)
        outputs, used = self._outputs(files, problems)
        if self.magic and not problems:
            self._validate_task(files, outputs, problems)
        record = {
            "path": rel,
            "metadata": meta or {"label": os.path.basename(top)},
            "inputs": inputs,
            "outputs": outputs,
            "state": state,
            "scheduler": scheduler,
            "history": self._history(top, names),
            "harvesters": used,
            "problems": [p.model_dump() for p in problems],
        }
        created = meta.get("date_created") if meta else None
        stamp = None
        if self.stamps and not problems and state["state"] in _FINAL:
            stamp = self.stamp(top, names)
        return Entry(
            rel,
            group,
            created if isinstance(created, str) else "",
            _number(state["queued_at"]),
            state["state"],
            stamp,
            record,
        )

    def read_sections(
        self, top: str, rel: str, names: set[str], *, outputs: bool
    ) -> tuple[dict[str, Any], list[Problem], str | None]:
        """The ``path``, ``metadata``, ``inputs`` and ``outputs`` of the task in ``top``.

        Each as :meth:`read` has it in the task's record (``outputs`` None
        unless asked for: no harvester runs), without reading the task's
        state, accounting or history, nor its task group's file. Returns them
        with the problems met reading them: files that cannot be read or
        decoded, not a ``task.json`` the metadata model refuses (a record's
        problem, which changes none of its values); and the task's
        :meth:`stamp` where none was met (the files read give their mtime and
        size as they were opened), None where one was or the stamp is racy.
        """
        problems: list[Problem] = []
        opened: dict[str, os.stat_result] = {}  # the files read, as they were opened
        meta = self._optional(top, SETTINGS.TASK_METADATA_FILE, names, problems, opened) or {}
        inputs = self._inputs(top, names, problems, has_meta=bool(meta), opened=opened)
        found = None
        if outputs:
            found, _ = self._outputs(TaskFiles(top, names, meta, inputs, opened), problems)
        sections = {
            "path": rel,
            "metadata": meta or {"label": os.path.basename(top)},
            "inputs": inputs,
            "outputs": found,
        }
        return sections, problems, None if problems else self.stamp(top, names, opened)

    def _problem(self, exc: AutojobError, problems: list[Problem]) -> None:
        if self.strict:
            raise exc
        problems.append(
            Problem(
                path=None if exc.path is None else str(exc.path),
                field=exc.field,
                message=exc.message if not exc.hint else f"{exc.message} ({exc.hint})",
                kind=type(exc).__name__,
            )
        )

    def _optional(
        self,
        top: str,
        name: str,
        names: set[str],
        problems: list[Problem],
        opened: dict[str, os.stat_result] | None = None,
    ) -> dict[str, Any] | None:
        """The file ``name`` of the task, if there; ``opened``: keep its status by its name."""
        if name not in names:
            return None
        path = os.path.join(top, name)
        try:
            if opened is None:
                return read_json_file(path)
            data, info = read_json_file_stat(path)
        except AutojobError as exc:
            self._problem(exc, problems)
            return None
        if info is not None:
            opened[name] = info
        return data

    def _metadata(
        self, top: str, names: set[str], problems: list[Problem], *, check: bool = True
    ) -> dict[str, Any]:
        meta = self._optional(top, SETTINGS.TASK_METADATA_FILE, names, problems)
        if not meta or not check:
            return meta or {}
        try:
            TaskMetadataBase.model_validate(meta)
        except ValidationError as exc:
            self._problem(invalid(exc, Path(top, SETTINGS.TASK_METADATA_FILE)), problems)
        return meta

    def _check_group(
        self, top: str, group: str, meta: dict[str, Any], problems: list[Problem]
    ) -> None:
        """A problem when the task names another task group than the one it sits in.

        The group's file is read once for the tasks of a group read in a row.
        """
        if self.group_id is None or self.group_id[0] != group:
            path = os.path.join(self.root, group, SETTINGS.TASK_GROUP_METADATA_FILE)
            try:
                found = (read_json_file(path) or {}).get("task_group_id")
            except AutojobError:
                found = None  # a broken group file is the group's problem
            self.group_id = (group, found if isinstance(found, str) else None)
        named = meta.get("task_group_id")
        actual = self.group_id[1]
        if actual is None or not isinstance(named, str) or named == actual:
            return
        problems.append(
            Problem(
                path=os.path.join(top, SETTINGS.TASK_METADATA_FILE),
                field="task_group_id",
                message=f"names task group {named}, but the task sits in {group} "
                f"(task group {actual}): moved here from another task group? "
                f"('autojob list {self.root} --repair' relinks it to where it is)",
                kind="MovedTaskError",
            )
        )

    def _inputs(
        self,
        top: str,
        names: set[str],
        problems: list[Problem],
        *,
        has_meta: bool,
        opened: dict[str, os.stat_result] | None = None,
    ) -> dict[str, Any]:
        if SETTINGS.INPUTS_FILE not in names:
            if has_meta:
                missing = MissingFileError(
                    "file not found",
                    path=os.path.join(top, SETTINGS.INPUTS_FILE),
                    hint="restore the task's inputs, or remove the task directory",
                )
                self._problem(missing, problems)
            return {}
        data = self._optional(top, SETTINGS.INPUTS_FILE, names, problems, opened)
        if data is None:
            return {}
        return data if "task_inputs" in data else {"task_inputs": data}

    def _outputs(
        self, files: TaskFiles, problems: list[Problem]
    ) -> tuple[dict[str, Any] | None, list[str]]:
        task_class = files.metadata.get("task_class")
        task_class = task_class if isinstance(task_class, str) else SETTINGS.DEFAULT_TASK
        outputs: dict[str, Any] | None = None
        used = []
        for harvester in self.harvesters:
            if not (self.explicit or harvester.applies_to(task_class)):
                continue
            used.append(harvester.name)
            try:
                found = harvester.harvest(files)
            except AutojobError as exc:
                self._problem(exc, problems)
                continue
            except Exception as exc:  # a third-party harvester's bug: name it
                error = MetadataError(
                    f"harvester {harvester.name!r} failed: {type(exc).__name__}: {exc}",
                    path=files.path,
                    hint="fix the harvester, or leave it out with --harvester",
                )
                self._problem(error, problems)
                continue
            if found is not None:
                outputs = {**(outputs or {}), **found}
        return outputs, used

    def _validate_task(
        self, files: TaskFiles, outputs: dict[str, Any] | None, problems: list[Problem]
    ) -> None:
        from autojob.harvest.typed import to_task  # noqa: PLC0415

        try:
            # an unknown task class is a problem of the task, in either mode
            to_task(files.metadata, files.inputs, outputs, where=Path(files.path), strict=True)
        except AutojobError as exc:
            self._problem(exc, problems)

    def _history(self, top: str, names: set[str]) -> list[dict[str, Any]]:
        if SETTINGS.HISTORY_DIR not in names:
            return []
        folder = os.path.join(top, SETTINGS.HISTORY_DIR)
        try:
            runs = sorted((n for n in os.listdir(folder) if n.isdigit()), key=int)
        except OSError:
            return []
        return [{"run": int(n), **read_state(os.path.join(folder, n)).as_dict()} for n in runs]

    # -- cache stamps -------------------------------------------------------------

    def stamp(
        self,
        top: str,
        names: set[str] | None = None,
        opened: Mapping[str, os.stat_result] | None = None,
    ) -> str | None:
        """What identifies the task's watched files now; None if racy or gone.

        The directory's mtime (it changes when a file is added, removed or
        replaced), then for each watched file in turn its mtime and size (they
        change when it is rewritten in place), or ``-`` where there is none.
        ``opened``: the status of files just read, taken as they were opened
        (a change since shows as a stamp that differs next time).
        """
        settled = self.started_ns - RACY_NS
        try:
            mtime = os.stat(top).st_mtime_ns
            if mtime > settled:
                return None
            parts = [str(mtime)]
            prefix = top + os.sep
            for name in self.watched:
                if names is not None and name not in names:
                    parts.append("-")
                    continue
                info = opened.get(name) if opened is not None else None
                try:
                    info = info or os.stat(prefix + name)
                except FileNotFoundError:
                    parts.append("-")
                    continue
                if info.st_mtime_ns > settled:
                    return None
                parts.append(f"{info.st_mtime_ns}:{info.st_size}")
        except OSError:
            return None
        return "/".join(parts)

    @staticmethod
    def same_directory(top: str, stamp: str) -> bool:
        """Whether the task directory's mtime is the one ``stamp`` begins with.

        It changes whenever a file in it is created, removed or replaced (as
        every write of autojob's, and every atomic write, does), not when a
        file is rewritten in place: :meth:`unchanged` sees that too.
        """
        try:
            mtime = os.stat(top).st_mtime_ns
        except OSError:
            return False
        return stamp.startswith(f"{mtime}/")

    def unchanged(self, top: str, stamp: str) -> bool:
        """Whether the task's watched files are as ``stamp`` (a settled one) says.

        A stamp is only kept when settled, so an equal one is settled too; a
        watched file absent then (``-``) would have changed the directory.
        """
        parts = stamp.split("/")
        watched = self.watched
        if len(parts) != len(watched) + 1:
            return False
        stat = os.stat
        try:
            if str(stat(top).st_mtime_ns) != parts[0]:
                return False
            prefix = top + os.sep
            for number, name in enumerate(watched, 1):
                part = parts[number]
                if part != "-":
                    info = stat(prefix + name)
                    if f"{info.st_mtime_ns}:{info.st_size}" != part:
                        return False
        except OSError:
            return False
        return True

    def dir_stamp(self, top: str) -> int | None:
        """A directory's mtime (ns); None if racy or unreadable."""
        try:
            mtime = os.stat(top).st_mtime_ns
        except OSError:
            return None
        return None if mtime > self.started_ns - RACY_NS else mtime


# -- the walk --------------------------------------------------------------------


class Source(Protocol):
    """Where the walk gets entries: a cache of unchanged tasks, or the files."""

    def lookup(self, top: str, rel: str, group: str | None) -> Entry | DirNote | None:
        """The entry of a task, or the listing of a directory, known unchanged."""

    def note_dir(self, top: str, rel: str, is_group: bool, subdirs: list[str]) -> DirNote | None:
        """A directory that is not a task was listed: what to keep of it, if anything."""

    def bulk(
        self, top_prefix: str, prefix: str, subdirs: list[str], start: int
    ) -> tuple[Run | None, int]:
        """Unchanged tasks and task groups among ``subdirs`` from ``start`` on, in one run.

        ``top_prefix`` and ``prefix`` are the directory's path and path below
        the root, each with a trailing separator (``prefix`` empty at the
        root). Returns the run (None if the child at ``start`` does not begin
        one) and the index of the first child it does not hold.
        """

    def read(self, top: str, rel: str, names: set[str], group: str | None) -> Entry:
        """Read the task in ``top`` (whose entries are ``names``)."""


def walk_entries(root: str, source: Source) -> Iterator[Entry | DirNote | Run]:
    """Yield an entry per task under ``root``, in path order, attempts set.

    The directories passed (when the source keeps them) are yielded too, in
    their place: after the tasks that precede them in path order; and runs
    of tasks the source holds unchanged, which are settled already.
    """
    batch: list[Entry] = []
    held: list[Entry | DirNote] = []  # the batch, and the directories passed meanwhile
    known = source.lookup(root, ".", None)
    walk = iter((known,)) if isinstance(known, Entry) else _walk(root, ".", None, source, known)
    for item in walk:
        if isinstance(item, Run):  # whole task groups: the batch before it is complete
            if batch:
                settle(batch)
                yield from held
                batch = []
                held = []
            yield item
            continue
        if isinstance(item, DirNote):
            if batch:
                held.append(item)
            else:
                yield item
            continue
        if batch and item.group != batch[0].group:
            settle(batch)
            yield from held
            batch = []
            held = []
        if item.group is None:
            settle([item])
            yield item
        else:
            batch.append(item)
            held.append(item)
    if batch:
        settle(batch)
        yield from held


def _walk(
    top: str, rel: str, group: str | None, source: Source, known: DirNote | None
) -> Iterator[Entry | DirNote | Run]:
    """Walk ``top``, not a task known unchanged; ``known``: its listing, if unchanged."""
    if known is None:
        names, subdirs = list_directory(top)
        if is_task_dir(names):
            yield source.read(top, rel, names, group)  # tasks do not nest
            return
        is_group = SETTINGS.TASK_GROUP_METADATA_FILE in names
        del names  # a wide directory's listing is the walk's largest memory
        note = source.note_dir(top, rel, is_group, subdirs)
        if note is not None:
            yield note
    else:
        is_group, subdirs = known.is_group, known.subdirs
        yield known
    if is_group:
        group = rel
    prefix = "" if rel == "." else rel + "/"
    top_prefix = top + os.sep
    lookup = source.lookup
    bulk = source.bulk if group is None else None  # attempts of a group are settled together
    index, count = 0, len(subdirs)
    while index < count:
        if bulk is not None:
            run, index = bulk(top_prefix, prefix, subdirs, index)
            if run is not None:
                yield run
                if index == count:
                    break
        name = subdirs[index]
        index += 1
        child_top, child_rel = top_prefix + name, prefix + name
        found = lookup(child_top, child_rel, group)
        if isinstance(found, Entry):  # the common case, without a generator per task
            yield found
        else:
            yield from _walk(child_top, child_rel, group, source, found)
