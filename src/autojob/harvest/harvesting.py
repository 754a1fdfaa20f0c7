"""``harvest``: every task under a path, with what it produced.

A harvest walks the tree (structured, unstructured, or written by
python-autojob 0.0.2), reads each task's metadata, inputs, state, scheduler
accounting and history, runs the harvesters on it, and yields the tasks in
path order. Strict mode raises on the first broken file, naming the file and
field; relaxed mode records each problem on its task and goes on, and the
:class:`HarvestSummary` counts them.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.harvest.cache import CachedReader, CacheWriter
from autojob.harvest.collect import DirNote, Entry, Reader, Run, Source, walk_entries
from autojob.harvest.conditions import Condition, FieldCheck, parse_condition
from autojob.harvest.entries import run_entries
from autojob.harvest.harvesters import select_harvesters
from autojob.harvest.identity import IdCheck
from autojob.harvest.models import Attempts, HarvestedTask, Problem

__all__ = ["Condition", "Harvest", "HarvestSummary", "harvest", "parse_condition"]
# Condition and parse_condition live in autojob.harvest.conditions, and are
# imported from here as well

#: problems kept in a summary for display (all are counted)
KEPT_PROBLEMS = 50


def as_model(entry: Entry) -> HarvestedTask:
    """The entry as a model.

    A record just read is built as it is (the reader made every field of the
    right type); one from the cache, text that could have been edited, is
    validated.
    """
    if entry.record is None:
        return HarvestedTask.model_validate(entry.data())
    data = entry.data()
    fields = {**data}
    fields["problems"] = [Problem.model_construct(**p) for p in data["problems"]]
    fields["attempts"] = Attempts.model_construct(**data["attempts"])
    return HarvestedTask.model_construct(**fields)


@dataclass
class HarvestSummary:
    """What a harvest found: counts, and the problems met (the first ones kept)."""

    root: Path
    tasks: int = 0
    seen: int = 0
    cached: int = 0
    states: Counter[str] = field(default_factory=Counter)
    problem_count: int = 0
    problems: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seconds: float = 0.0
    #: how cached tasks were checked: ``"files"`` (every watched file),
    #: ``"directories"`` (their directories' mtimes), or None (no cache used)
    checked: str | None = None
    #: the --where conditions whose field no task had (a typo?), each with the
    #: closest fields the tasks did have
    unmatched: list[tuple[Condition, list[str]]] = field(default_factory=list)

    @property
    def reread(self) -> int:
        """Tasks read from their files (not from the cache)."""
        return self.seen - self.cached

    def note_run(self, run: Run) -> None:
        """Count the tasks of a run (all kept; the cache holds no task with problems)."""
        self.seen += len(run.fulls)
        self.tasks += len(run.fulls)
        self.states.update(run.states)

    def add_problems(self, found: list[tuple[str, dict[str, Any]]]) -> None:
        """Count (and keep the first of) problems found across tasks (shared ids)."""
        self.problem_count += len(found)
        room = KEPT_PROBLEMS - len(self.problems)
        self.problems.extend(found[: max(room, 0)])

    def note(self, entry: Entry, kept: bool) -> None:
        """Count one task (``kept``: it passed the filters)."""
        self.seen += 1
        if kept:
            self.tasks += 1
            self.states[entry.state] += 1
        if entry.record is not None:
            found = entry.record.get("problems") or []
            self.problem_count += len(found)
            room = KEPT_PROBLEMS - len(self.problems)
            self.problems.extend((entry.rel, p) for p in found[: max(room, 0)])


class Harvest:
    """The tasks of a harvest, as they are read; iterate once.

    Iterating yields :class:`~autojob.harvest.models.HarvestedTask`;
    :meth:`entries` yields the raw entries the archive writers use. The
    :attr:`summary` is complete once the iteration ends.
    """

    def __init__(
        self,
        reader: Reader,
        source: Source,
        *,
        where: Iterable[Condition] = (),
        states: Iterable[str] = (),
    ) -> None:
        self.root = Path(reader.root)
        self.reader = reader
        self.source = source
        self.summary = HarvestSummary(self.root)
        self._where = list(where)
        self._fields = FieldCheck(self._where)
        self._states = set(states)
        self._listeners: list[Callable[[Entry], None]] = []
        self._progress: list[Callable[[int, str], None]] = []
        #: where the next cache is written, if one is kept
        self.keeper: CacheWriter | None = None

    def listen(self, listener: Callable[[Entry], None]) -> None:
        """Call ``listener`` with every task read, before filtering."""
        self._listeners.append(listener)

    def on_progress(self, callback: Callable[[int, str], None]) -> None:
        """Call ``callback(tasks, path)`` as tasks are read: how many, and the last one's path."""
        self._progress.append(callback)

    def close(self) -> None:
        """Release the cache file, if one is read."""
        if isinstance(self.source, CachedReader):
            self.source.close()

    def __iter__(self) -> Iterator[HarvestedTask]:
        for entry in self.entries():
            yield as_model(entry)

    def entries(self) -> Iterator[Entry]:
        """Yield the entries of the tasks that pass the filters."""
        for item in self.items():
            if isinstance(item, Run):
                yield from run_entries(item)
            else:
                yield item

    def items(self) -> Iterator[Entry | Run]:
        """Yield the entries of the tasks that pass the filters, and runs of cached tasks.

        A run (tasks the cache holds unchanged, whole task groups) is yielded
        as it is when all of it passes the filters and nobody listens to
        single tasks; otherwise its tasks are yielded one by one.
        """
        started = time.perf_counter()
        keeper = self.keeper
        ids = IdCheck(str(self.root))
        for item in walk_entries(str(self.root), self.source):
            if isinstance(item, DirNote):
                if keeper is not None:
                    keeper.add_dir(item)
                continue
            if isinstance(item, Run):
                ids.run(item)
                if keeper is not None:
                    keeper.add_run(item)
                for callback in self._progress:
                    callback(len(item.fulls), item.last)
                if self._whole(item):
                    self.summary.note_run(item)
                    yield item
                else:
                    yield from self._pass(run_entries(item))
                continue
            ids.entry(item)
            if keeper is not None:
                keeper.add(item)
            for callback in self._progress:
                callback(1, item.rel)
            yield from self._pass((item,))
        self.summary.add_problems(ids.problems())
        self.summary.unmatched = self._fields.missing()
        if isinstance(self.source, CachedReader):
            self.summary.cached = self.source.hits
            if self.source.used:
                self.summary.checked = "files" if self.source.check_files else "directories"
        self.summary.seconds = time.perf_counter() - started

    def _whole(self, run: Run) -> bool:
        """Whether ``run`` passes as it is: no single-task listener, every task kept."""
        if self._listeners or self._where:
            return False
        return not self._states or all(state in self._states for state in run.states)

    def _pass(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        """Tell the listeners, count, and yield the entries kept."""
        filtering = bool(self._states or self._where)
        for entry in entries:
            for listener in self._listeners:
                listener(entry)
            kept = not filtering or self._keep(entry)
            self.summary.note(entry, kept)
            if kept:
                yield entry

    def _keep(self, entry: Entry) -> bool:
        if self._fields.pending:
            self._fields.note(entry.data())  # every task read, to warn of a field none has
        if self._states and entry.state not in self._states:
            return False
        if not self._where:
            return True
        record = entry.data()
        return all(c.matches(record) for c in self._where)


def harvest(
    path: str | Path,
    *,
    strict: bool | None = None,
    magic: bool = False,
    harvesters: Iterable[str] | None = None,
    where: Iterable[Condition | str] = (),
    states: Iterable[str] = (),
    cache: Path | None = None,
    verify: bool = False,
    on_entry: Callable[[Entry], None] | None = None,
) -> Harvest:
    """Harvest every task under ``path``.

    Args:
        path: a task, task group, study or study group directory, or any
            directory holding tasks (unstructured).
        strict: raise on the first broken file (default ``SETTINGS.STRICT_MODE``);
            when False, record each problem on its task and go on.
        magic: also validate each task as the task class its metadata names.
        harvesters: the harvesters to run on every task, by name; by default
            every installed one runs on the task classes it declares.
        where: conditions a task must meet to be yielded: ``FIELD=VALUE``,
            ``FIELD!=VALUE``, ``FIELD<VALUE`` (``<=``, ``>``, ``>=``), ``FIELD~GLOB``
            (:mod:`autojob.harvest.conditions`); ``summary.unmatched`` names
            those whose field no task had.
        states: yield only tasks in these states.
        cache: reuse the records of unchanged tasks from this cache file, if
            it exists and fits (see :mod:`autojob.harvest.cache`; it is read,
            not written, here).
        verify: check every watched file of each cached task (files
            rewritten in place), not only its directory; a harvest also does
            when the last such check is ``SETTINGS.HARVEST_VERIFY_AGE`` old.
        on_entry: called with every task read, before filtering.

    Raises:
        AutojobError: ``path`` is not a directory; in strict mode, the first
            broken file (a MetadataError naming file and field).
        PluginError: a harvester named is not installed.
    """
    root = Path(path)
    if not root.is_dir():
        raise AutojobError(
            "not a directory" if root.exists() else "no such directory",
            path=root,
            hint="give the directory of a task, task group, study or study group",
        )
    reader = make_reader(root, strict=strict, magic=magic, harvesters=harvesters)
    reader.stamps = cache is not None
    source: Source = reader if cache is None else CachedReader(reader, cache, verify=verify)
    conditions = [c if isinstance(c, Condition) else parse_condition(c) for c in where]
    found = Harvest(reader, source, where=conditions, states=states)
    if on_entry is not None:
        found.listen(on_entry)
    return found


def make_reader(
    root: Path, *, strict: bool | None, magic: bool, harvesters: Iterable[str] | None
) -> Reader:
    """The reader a harvest of ``root`` uses."""
    names = None if harvesters is None else list(harvesters)
    return Reader(
        os.path.realpath(root),
        select_harvesters(names),
        explicit=names is not None,
        strict=SETTINGS.STRICT_MODE if strict is None else strict,
        magic=magic,
        started_ns=time.time_ns(),
    )
