"""The state of every task under a directory, kept fast by an index.

``collect(root)`` walks the tree once, derives each task's state from its files
and saves an index (``<root>/.autojob/status.index``, its rows in path order,
one block of bytes per column: :mod:`autojob.store.index_file`) with a journal
beside it. Later calls load the columns they use, re-read only the tasks
named in the journal since (and those queued or running, whose processes must
be checked), and save the columns again: the cost follows what changed, not the
size of the tree (the rows they changed are appended beside the index, which
is written whole only now and then: :mod:`autojob.store.status_delta`). The
index is rebuilt when missing, unreadable, older than
``SETTINGS.INDEX_MAX_AGE`` seconds, or when asked (``rescan=True``): hand edits
that bypass autojob are seen then. No index is written under a directory
holding no task, nor inside a task directory (a task's own files are read).

The ids read with ``date_created`` (of tasks sharing a task group, to order
attempts) tell two problems at no further cost: two tasks holding one
``task_id`` (a copied task directory) and a task naming another task group than
the one it sits in (moved by hand); ``StatusReport.problems`` lists them.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import mmap
import os
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.store.atomic import write_atomic, write_atomic_bytes
from autojob.store.collector import collector_paused
from autojob.store.index_file import Columns, IndexFileError, index_parts, parse_index
from autojob.store.journal import journal_path, read_journal
from autojob.store.state import (
    STATE_FIELDS,
    State,
    TaskState,
    read_state,
    run_seconds_column,
    state_from_end,
)
from autojob.store.status_delta import DELTA_SHARE, append_delta, read_delta, remove_delta
from autojob.store.walk import (
    has_tasks,
    is_task_dir,
    is_task_path,
    walk_task_dirs,
)

__all__ = [
    "INDEX_VERSION",
    "StatusReport",
    "TaskEntry",
    "TaskVisitor",
    "collect",
    "id_problems",
    "newest_attempts",
    "newest_rows",
]

logger = logging.getLogger(__name__)
#: 4: ended tasks keep their start (started_at, host, pid); 5: a token; 6: status.index,
#: columns of bytes in path order (version 5 was status.json, removed when met); 7: text
#: columns hold where each value ends (a path is found and read without decoding the rest)
INDEX_VERSION = 7
LIVE = (State.QUEUED.value, State.RUNNING.value)
#: columns of the index: where the task is, then its state's fields
PLACE = ("path", "group", "study", "created")
#: ids read with ``created`` (tasks sharing a group only), to find copies and moves
IDS = ("task_id", "task_group_id")
COLUMNS = PLACE + IDS + STATE_FIELDS
#: the paths of an index are decoded whole when more than one task in this many is re-read
#: (a search over the undecoded paths costs about as much as decoding 60-100 of them)
SEARCHED_SHARE = 100
#: read from task.json once, kept when the state is read again (the columns after PLACE[:3])
_KEPT = ("created", *IDS)

#: called for each task whose files :func:`collect` reads: its directory, its path below the
#: root, the names in it (listed once, for both), its task group and the state just read
TaskVisitor = Callable[[str, str, set[str], str | None, TaskState], None]


@dataclass
class TaskEntry:
    """One task in a status report."""

    path: str  # relative to the root
    state: TaskState
    group: str | None = None  # relative path of its task group, if any
    study: str | None = None  # relative path of its study, if any
    created: str | None = None  # date_created, read only to order attempts

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        data: dict[str, Any] = {"path": self.path, "group": self.group, "study": self.study}
        data["created"] = self.created
        data.update(self.state.as_dict())
        data["run_seconds"] = self.state.run_seconds()
        return data


class StatusReport:
    """Every task under ``root``, held as columns (one list per field)."""

    def __init__(self, root: Path, source: str = "scan") -> None:
        self.root = root
        self.source = source  # "scan" (a full walk) or "index" (index + journal)
        self.reread = 0  # tasks read again this time
        self.from_journal = 0  # of which: from the journal's copy of their end record
        self.columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        #: path -> row; None while the rows come from an index in path order, found by
        #: bisection (the rows put since are in ``_tail``): a warm status builds no dict
        self._rows: dict[str, int] | None = {}
        self._sorted = 0  # rows [0, _sorted) are in path order (with _rows None)
        #: rows found by bisection in [0, _sorted) (they stay put until rows are dropped)
        self._found: dict[str, int] = {}
        self._tail: dict[str, int] = {}
        #: task groups holding more than one row, as the index knew them (None: count them)
        self.shared_groups: set[str] | None = None
        self._tasks: dict[str, TaskEntry] | None = None
        #: (task path, what is wrong): shared task ids, tasks in another group than named
        self.problems: list[tuple[str, str]] = []
        #: the rows put or changed, and the paths dropped, since the index was read
        self.touched: set[str] = set()
        self.dropped: list[str] = []
        #: the values of the rows put since, as put (what the delta appends), by path;
        #: a row changed otherwise since is not here and is read from the columns
        self._put: dict[str, list[Any]] = {}
        #: rows [0, _indexed) sit where they sat in the index read (no row dropped since)
        self._indexed = 0

    def __len__(self) -> int:
        columns = self.columns
        if isinstance(columns, Columns) and "path" not in columns:
            return columns.rows  # rows are only ever added to decoded columns
        return len(columns["path"])

    @classmethod
    def from_index(cls, root: Path, columns: Columns, in_order: bool) -> StatusReport:
        """A report over an index's columns (``in_order``: its rows are in path order)."""
        report = cls(root, source="index")
        report.columns = columns
        report._indexed = columns.rows
        if in_order:
            report._rows, report._sorted = None, columns.rows
        else:
            report._rows = dict(zip(columns["path"], range(len(columns["path"])), strict=True))
        return report

    @property
    def rows(self) -> dict[str, int]:
        """Every task's row, by relative path (built on first use when read from an index)."""
        if self._rows is None:
            paths = self.columns["path"]
            self._rows = dict(zip(paths, range(len(paths)), strict=True))
            self._sorted, self._tail = 0, {}
        return self._rows

    def find(self, rel: str) -> int | None:
        """The row of the task at ``rel``, or None."""
        if self._rows is not None:
            return self._rows.get(rel)
        row = self._tail.get(rel)
        if row is None:
            row = self._found.get(rel)  # a task is looked up several times while re-read
        if row is not None:
            return row
        columns = self.columns
        if isinstance(columns, Columns) and "path" not in columns:
            row = columns.search("path", rel, self._sorted)  # over the paths' bytes
        else:
            row = bisect.bisect_left(columns["path"], rel, 0, self._sorted)
            row = row if row < self._sorted and columns["path"][row] == rel else None
        if row is not None:
            self._found[rel] = row
        return row

    def find_many(self, rels: list[str]) -> list[int | None]:
        """:meth:`find` of each of ``rels``; the index's paths searched for them together.

        Sorted paths are the quickest (each one found narrows the search of the rest).
        """
        columns = self.columns
        if self._rows is not None or not isinstance(columns, Columns) or "path" in columns:
            return list(map(self.find, rels))
        known = [self._tail.get(rel, self._found.get(rel)) for rel in rels]
        unknown = [rel for rel, row in zip(rels, known, strict=True) if row is None]
        found = iter(columns.search_many("path", unknown, self._sorted))
        rows = [next(found) if row is None else row for row in known]
        self._found.update(
            (rel, row) for rel, row in zip(rels, rows, strict=True) if row is not None
        )
        return rows

    def path_order(self) -> list[int] | range:
        """Every row, in the order of their paths."""
        if self._rows is None and not self._tail:
            return range(len(self))
        paths = self.columns["path"]
        return sorted(range(len(paths)), key=paths.__getitem__)

    def _set(self, names: Iterable[str], row: int, values: Iterable[Any]) -> None:
        columns = self.columns
        if isinstance(columns, Columns):
            for name, value in zip(names, values, strict=True):
                columns.put(name, row, value)  # columns not decoded stay so
        else:
            for name, value in zip(names, values, strict=True):
                columns[name][row] = value

    def _set_many(self, name: str, rows: Sequence[int], values: Iterable[Any]) -> None:
        """Set one column's values at ``rows``, in C (decoding no column of an index)."""
        columns = self.columns
        if isinstance(columns, Columns):
            columns.put_many(name, rows, values)
        else:
            deque(map(columns[name].__setitem__, rows, values), maxlen=0)

    def value(self, name: str, row: int) -> Any:
        """One value of one row (decoding no column written into since the index was read)."""
        columns = self.columns
        return columns.value(name, row) if isinstance(columns, Columns) else columns[name][row]

    def values_at(self, name: str, rows: list[int]) -> list[Any]:
        """:meth:`value` of each of ``rows``."""
        columns = self.columns
        if isinstance(columns, Columns):
            return columns.values_at(name, rows)
        return list(map(columns[name].__getitem__, rows))

    def put(
        self, rel: str, state: TaskState, group: str | None, study: str | None, keep: bool = True
    ) -> None:
        """Add or replace the row of the task at ``rel``.

        ``keep``: keep its ids and date if read (else they are read again when
        next needed: its ``task.json`` may have changed).
        """
        row = self.find(rel) if keep else None
        kept = [None] * len(_KEPT) if row is None else [self.value(n, row) for n in _KEPT]
        self.put_row([rel, group, study, *kept, *state.row()])

    def put_row(self, values: list[Any]) -> None:
        """Add or replace a whole row (every column, in the order of ``COLUMNS``)."""
        rel = values[0]
        row = self.find(rel)
        if row is None:
            row = len(self)
            for name, value in zip(COLUMNS, values, strict=True):
                self.columns[name].append(value)
            if self._rows is None:
                self._tail[rel] = row
            else:
                self._rows[rel] = row
            self.shared_groups = None  # a group may have grown
        else:  # the path is the row's already (the row was found by it)
            self._set(COLUMNS[1:], row, values[1:])
        self.touched.add(rel)
        self._put[rel] = values
        self._tasks = None

    def put_rows(self, rows: list[list[Any]], at: object = None) -> None:
        """Add or replace whole rows, as :meth:`put_row` does, each column set at once.

        What replays the index's delta: a row's values are set column by
        column, in C, instead of one value at a time. ``at``: where each row
        sat in the index read, as :meth:`changed_rows` gave them (None: look
        it up by its path), each checked against the row's path.
        """
        where = at if isinstance(at, list) else [None] * len(rows)
        found = self._rows_at([values[0] for values in rows], where)
        old = [values for values, row in zip(rows, found, strict=True) if row is not None]
        if old:
            at = [row for row in found if row is not None]
            for name, column in zip(COLUMNS, zip(*old, strict=True), strict=True):
                if name != "path":  # the rows' own paths: each row was found by it
                    self._set_many(name, at, column)
            self.touched.update(values[0] for values in old)
            self._tasks = None
        for values, row in zip(rows, found, strict=True):
            if row is None:
                self.put_row(values)

    def _rows_at(self, rels: list[str], where: list[Any]) -> list[int | None]:
        """The row of each of ``rels``: where the index holds it at the row given, else found."""
        placed = [
            i
            for i, row in enumerate(where)
            if type(row) is int and 0 <= row < self._indexed  # a place, not a bool
        ]
        there = self.values_at("path", [where[i] for i in placed])
        rows: list[int | None] = [None] * len(rels)
        for i, path in zip(placed, there, strict=True):
            if path == rels[i]:
                rows[i] = where[i]
        missing = [i for i, row in enumerate(rows) if row is None]
        for i, row in zip(missing, self.find_many([rels[i] for i in missing]), strict=True):
            rows[i] = row
        return rows

    def row_values(self, rel: str) -> list[Any]:
        """Every column of the task at ``rel``, in the order of ``COLUMNS``."""
        put = self._put.get(rel)
        if put is not None:
            return list(put)
        row = self.find(rel)
        if row is None:
            raise KeyError(rel)
        return [self.value(name, row) for name in COLUMNS]

    def changed_rows(self) -> tuple[list[int | None], list[list[Any]]]:
        """The rows changed since the index was read, in path order.

        Where each sits in the index read (None: added since), and its
        values (as put, not read back from the columns).
        """
        found = [(rel, row) for rel in sorted(self.touched) if (row := self.find(rel)) is not None]
        at = [row if row < self._indexed else None for _, row in found]
        return at, [self.row_values(rel) for rel, _ in found]

    def changes_saved(self) -> None:
        """Forget what changed (the changes were replayed from the delta, or saved)."""
        self.touched.clear()
        self.dropped.clear()
        self._put.clear()

    def put_states(
        self, rels: list[str], rows: list[int], states: list[tuple[Any, ...]]
    ) -> list[str | None]:
        """Replace the states of tasks in place, each column set at once.

        ``states``: each task's :meth:`TaskState.row`. Their ids and date are
        dropped (read again when next needed: a task's ``task.json`` may have
        changed). Returns the task groups of the rows.
        """
        if not rows:
            return []
        groups = self.values_at("group", rows)
        studies = self.values_at("study", rows)
        no_ids = [None] * len(rows)
        values = [no_ids] * len(_KEPT) + [*zip(*states, strict=True)]
        for name, column in zip(COLUMNS[3:], values, strict=True):
            self._set_many(name, rows, column)
        kept = [None] * len(_KEPT)
        for rel, group, study, state in zip(rels, groups, studies, states, strict=True):
            self._put[rel] = [rel, group, study, *kept, *state]
        self.touched.update(rels)
        self._tasks = None
        return groups

    def set_state(self, rel: str, state: TaskState) -> None:
        """Replace the state of one task."""
        row = self.find(rel)
        if row is None:
            raise KeyError(rel)
        self._set(STATE_FIELDS, row, state.row())
        self.touched.add(rel)
        self._put.pop(rel, None)
        self._tasks = None

    def decode(self, names: Iterable[str]) -> None:
        """Decode these columns of an index (before most of their rows are read)."""
        columns = self.columns
        if isinstance(columns, Columns):
            for name in names:
                columns[name]  # decoded on first use

    def decode_all(self) -> None:
        """Decode every column of an index (before the columns are copied or iterated)."""
        if isinstance(self.columns, Columns):
            self.columns.decode_all()
            self.columns = dict(self.columns)

    def drop(self, rels: list[str]) -> None:
        """Remove rows (tasks whose directories are gone)."""
        gone = {row for row in map(self.find, rels) if row is not None}
        if not gone:
            return
        self.decode_all()
        self._found = {}
        self.dropped.extend(rels)
        self.touched.difference_update(rels)
        self._indexed = 0  # the rows move: the delta names them by path
        keep = [i for i in range(len(self)) if i not in gone]
        self.columns = {n: [col[i] for i in keep] for n, col in self.columns.items()}
        self._rows, self._sorted, self._tail = None, 0, {}
        self.rows  # noqa: B018  (rebuilt)
        self.shared_groups = None
        self._tasks = None

    def in_path_order(self) -> None:
        """Put the rows in the order of their paths (before the index is written).

        Rows read from an index, changed in place, are in order already: their
        columns are not decoded (the index is written from their bytes).
        """
        order = self.path_order()
        if not isinstance(order, range):
            self.decode_all()
            self.columns = {n: [col[i] for i in order] for n, col in self.columns.items()}
            self._indexed = 0
        self._rows, self._sorted, self._tail = None, len(self), {}
        self._found = {}
        self._tasks = None

    def state_of(self, row: int) -> TaskState:
        """The state held in one row (its values read alone from columns not decoded)."""
        return TaskState.from_row([self.value(n, row) for n in STATE_FIELDS])

    def entry(self, row: int) -> TaskEntry:
        """The task held in one row."""
        col = self.columns
        return TaskEntry(
            col["path"][row],
            self.state_of(row),
            col["group"][row],
            col["study"][row],
            col["created"][row],
        )

    @property
    def tasks(self) -> dict[str, TaskEntry]:
        """Every task, by relative path (built on first use)."""
        if self._tasks is None:
            self._tasks = {p: self.entry(i) for p, i in self.rows.items()}
        return self._tasks

    def dicts(self, rows: Iterable[int]) -> Iterator[dict[str, Any]]:
        """The tasks in ``rows`` as :meth:`TaskEntry.as_dict` gives them, one at a time.

        Read straight from the columns (no entry is built), the rows taken
        from them in C.
        """
        names, columns = self.dict_columns(rows)
        return map(dict, map(zip, repeat(names), zip(*columns, strict=True)))

    def dict_columns(
        self, rows: Iterable[int], *, coded: bool = False
    ) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        """The keys of :meth:`TaskEntry.as_dict`, and the values of ``rows`` under each.

        What prints 100,000 tasks as JSON, a column at a time. ``coded``: a
        column of few values that the index holds undecoded is given as its
        codes (:class:`~autojob.store.index_file.Coded`) when every row is
        asked for, in order.
        """
        names = (*PLACE, *STATE_FIELDS, "run_seconds")
        every = isinstance(rows, range) and rows == range(len(self))
        read = self.columns if coded and every and isinstance(self.columns, Columns) else None
        columns: list[Sequence[Any]] = []
        for name in names[:-1]:
            found = read.coded(name) if read is not None else None
            columns.append(self.columns[name] if found is None else found)
        if not every:
            chosen = list(rows)
            columns = [list(map(column.__getitem__, chosen)) for column in columns]
        at = dict(zip(names, columns, strict=False))
        columns.append(
            run_seconds_column(at["state"], at["started_at"], at["ended_at"], time.time())
        )
        return names, columns

    def counts(self, by: str | None = None) -> Counter[tuple[Any, str]]:
        """Tasks per (``by`` column value, state), or per state if ``by`` is None."""
        states = self.columns["state"]
        keys = self.columns[by] if by else [None] * len(states)
        return Counter(zip(keys, states, strict=True))

    def rows_where(self, states: tuple[str, ...]) -> Iterator[int]:
        """Rows whose state is one of ``states``."""
        column = self.columns["state"]
        wanted = set(states).intersection(column)  # a pass in C, to skip the loop
        if not wanted:
            return iter(())
        return compress(range(len(column)), map(wanted.__contains__, column))  # in C


# -- walking -----------------------------------------------------------------


def _walk(
    top: str,
    rel: str,
    group: str | None,
    study: str | None,
    out: StatusReport,
    visit: TaskVisitor | None = None,
) -> None:
    """Add every task under ``top`` (at ``rel`` below the root) to ``out``, in any order.

    ``visit``: called for each task, with the listing of its directory and its state.
    """
    put = out.put
    for folder, path, names, task_group, task_study in walk_task_dirs(
        top, rel, group, study, ordered=False
    ):
        state = read_state(folder, names)
        put(path, state, task_group, task_study)
        if visit is not None:
            visit(folder, path, names, task_group, state)


def _context(
    root: str, folder: str, studies: dict[str, bool] | None = None
) -> tuple[str | None, str | None]:
    """The task group and study above a task directory, by their files.

    ``studies``: whether a directory is a study, by directory, kept between
    calls (the tasks re-read share their studies).
    """
    parent = os.path.dirname(folder)
    group = study = None
    if os.path.isfile(os.path.join(parent, SETTINGS.TASK_GROUP_METADATA_FILE)):
        group = _below(parent, root)
        parent = os.path.dirname(parent)
    known = {} if studies is None else studies
    if parent not in known:
        known[parent] = os.path.isfile(os.path.join(parent, SETTINGS.STUDY_METADATA_FILE))
    if known[parent]:
        study = _below(parent, root)
    return group, study


def _below(path: str, root: str) -> str:
    """``os.path.relpath(path, root)``, by slicing where ``path`` is inside ``root``."""
    if path == root:
        return "."
    prefix = root.rstrip(os.sep) + os.sep
    return path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)


def _order_attempts(root: str, report: StatusReport, groups: set[str] | None = None) -> None:
    """Read ``date_created`` of tasks sharing a group (to order their attempts).

    ``groups``: only these groups (the ones that changed); None for all.
    """
    col = report.columns
    if groups is not None and report.shared_groups is not None:
        shared = groups & report.shared_groups  # no group grew since the index was written
    else:
        sizes = Counter(col["group"])
        shared = {g for g, n in sizes.items() if n > 1 and g is not None}
        if groups is not None:
            shared &= groups
    if not shared:
        return
    for row, group in enumerate(col["group"]):
        if group in shared and col["created"][row] is None:
            found = _date_created(os.path.join(root, col["path"][row]))
            col["created"][row], col["task_id"][row], col["task_group_id"][row] = found
            report.touched.add(col["path"][row])
            report._put.pop(col["path"][row], None)
    report._tasks = None


def _date_created(folder: str) -> tuple[str, str | None, str | None]:
    """``date_created``, ``task_id`` and ``task_group_id`` of a task (one read)."""
    try:
        with open(os.path.join(folder, SETTINGS.TASK_METADATA_FILE), "rb") as stream:
            data = json.loads(stream.read())
        values = [data.get(key) for key in ("date_created", "task_id", "task_group_id")]
    except (OSError, ValueError, AttributeError):
        return "", None, None
    created, task_id, group_id = (v if isinstance(v, str) else None for v in values)
    return created or "", task_id, group_id


# -- the index -----------------------------------------------------------


def _index_path(root: str) -> str:
    return os.path.join(root, SETTINGS.INDEX_DIR, "status.index")


#: the index of versions 1-5 (one JSON document), removed when met
_OLD_INDEX = "status.json"


def _map(path: str) -> bytes | mmap.mmap:
    """The bytes of the index file at ``path``, mapped where the file system allows it.

    Mapped, the pages are the page cache's: nothing is copied, and only the
    pages read are touched (reading 100 MB costs 50 ms more, most of it the
    kernel's). The index is only ever replaced (a new file renamed over it),
    never changed in place, so what is mapped stays as it was read.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            return mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        except (OSError, ValueError):  # empty, or a file system that cannot map it
            with os.fdopen(os.dup(fd), "rb") as stream:
                return stream.read()
    finally:
        os.close(fd)


def _load_index(root: str) -> tuple[dict[str, Any], Columns] | None:
    """The header and columns of the index of ``root``; None when it must be rebuilt."""
    path = _index_path(root)
    try:
        data = _map(path)
    except OSError:
        return None
    try:
        header, columns = parse_index(data, COLUMNS)
    except IndexFileError as exc:
        logger.warning("status index %s not used (%s): the tree is read again", path, exc)
        return None
    if time.time() - float(header.get("built_at", 0)) > SETTINGS.INDEX_MAX_AGE:
        return None
    if header.get("root") != root:
        return None  # the tree moved (journalled paths differ)
    return header, columns


def _save_index(root: str, report: StatusReport, built_at: float, offset: int) -> None:
    """Write the index whole, under a new token (so the delta's lines no longer apply).

    The rows are put in path order first: a later status finds a row by
    bisection, and prints the tasks in path order without sorting.
    """
    report.in_path_order()
    if report.shared_groups is not None:  # as the index read knew them (no row added)
        shared = sorted(report.shared_groups)
    else:
        groups = Counter(report.columns["group"])
        shared = sorted(g for g, n in groups.items() if n > 1 and g is not None)
    header = {
        "version": INDEX_VERSION,
        "root": root,
        "built_at": built_at,
        "journal_offset": offset,
        "token": secrets.token_hex(8),
        "rows": len(report),
        "sorted": True,
        "shared": shared,
    }
    try:
        write_atomic_bytes(Path(_index_path(root)), index_parts(header, report.columns))
    except AutojobError as exc:
        logger.warning("status index not saved: %s", exc)
        return
    remove_delta(root)


def _save_changes(
    root: str, report: StatusReport, index: dict[str, Any], offset: int, pending: int
) -> None:
    """Append the rows changed to the delta, or write the index whole when it has grown."""
    at, rows = report.changed_rows()
    small = pending + len(rows) + len(report.dropped) <= DELTA_SHARE * len(report)
    token = index.get("token")
    if (
        small
        and isinstance(token, str)
        and append_delta(root, token, offset, rows, at, report.dropped)
    ):
        return
    _save_index(root, report, float(index["built_at"]), offset)


def _start_journal(root: str) -> bool:
    """Create (or empty) the journal; False where the tree is not writable.

    The old index goes first: were this process killed between emptying the
    journal and saving the new index, the old index would read an offset into
    a journal that no longer holds its entries.
    """
    try:
        os.makedirs(os.path.join(root, SETTINGS.INDEX_DIR), exist_ok=True)
        for name in (_index_path(root), os.path.join(root, SETTINGS.INDEX_DIR, _OLD_INDEX)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        remove_delta(root)
        write_atomic(Path(journal_path(root)), "")
    except (OSError, AutojobError) as exc:
        logger.info("no status index in %s: %s", root, exc)
        return False
    return True


# -- collecting ------------------------------------------------------------


def _scan(root: str, visit: TaskVisitor | None = None) -> StatusReport:
    report = StatusReport(Path(root))
    _walk(root, ".", None, None, report, visit)
    _order_attempts(root, report)
    report.reread = len(report)
    return report


def _full_scan(root: str, visit: TaskVisitor | None = None) -> StatusReport:
    if not has_tasks(root):  # no index is written where there is nothing
        return StatusReport(Path(root))
    indexed = _start_journal(root)
    built_at = time.time()
    report = _scan(root, visit)
    if indexed:
        _save_index(root, report, built_at, 0)
    return report


def _refresh(
    root: str, header: dict[str, Any], columns: Columns, visit: TaskVisitor | None = None
) -> StatusReport:
    report = StatusReport.from_index(Path(root), columns, header.get("sorted") is True)
    shared = header.get("shared")
    report.shared_groups = set(shared) if isinstance(shared, list) else None
    index = header
    lines = read_delta(root, str(index.get("token")))
    offset = int(lines[-1]["offset"] if lines else index.get("journal_offset", 0))
    pending = sum(len(line["rows"]) + len(line["dropped"]) for line in lines)
    changed, offset = read_journal(journal_path(root), offset)
    todo = {
        _below(os.path.normpath(p), root): copy for p, copy in changed.items() if _inside(p, root)
    }
    # rows the delta places (``at``) are checked, not searched for
    unplaced = sum(len(line["rows"]) for line in lines if not isinstance(line.get("at"), list))
    if (unplaced + len(todo)) * SEARCHED_SHARE > len(report):
        report.columns["path"]  # decoded: cheaper than searching for each path
    for line in lines:
        report.drop(list(line["dropped"]))
        report.put_rows(line["rows"], line.get("at"))
    report.changes_saved()
    journalled = set(todo)  # their task.json may have changed too: read again when needed
    for row in report.rows_where(LIVE):
        todo.setdefault(report.value("path", row), None)
    touched: set[str] = set()
    studies: dict[str, bool] = {}
    gone: set[str] = set()
    ends: list[tuple[str, str]] = []  # copies of end records, applied together
    for rel in sorted(todo):
        copy = todo[rel]
        if copy is not None and copy[0] == SETTINGS.ENDED_FILE:
            ends.append((rel, copy[1]))
        else:
            keep = rel not in journalled
            touched |= _reread(root, rel, report, studies, keep, gone, visit=visit)
    groups, not_enough = _from_copies(root, ends, report)
    touched |= groups
    for rel in not_enough:
        keep = rel not in journalled
        touched |= _reread(root, rel, report, studies, keep, gone, visit=visit)
    if gone:  # in one pass over the rows, however many are gone
        report.drop([p for p in report.columns["path"] if _below_any(p, gone)])
    if todo:
        _order_attempts(root, report, touched)
        _save_changes(root, report, index, offset, pending)
    return report


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _from_copies(
    root: str, ends: list[tuple[str, str]], report: StatusReport
) -> tuple[set[str], list[str]]:
    """Bring tasks in the index up to date from the journal's copies of their end records.

    ``ends``: (task path, the end record's text). The rows are set column by
    column, together. Returns the task groups touched, and the tasks whose
    copy is not enough (not whole, no executor named, a task not in the
    index): those are read again.
    """
    rels: list[str] = []
    rows: list[int] = []
    states: list[tuple[Any, ...]] = []
    not_enough: list[str] = []
    cancel_file = os.sep + SETTINGS.CANCEL_FILE
    places = report.find_many([rel for rel, _ in ends])
    records = map(_parsed, [text for _, text in ends])
    with _opened_dir(root) as top:
        for (rel, _), row, record in zip(ends, places, records, strict=True):
            state = None
            if row is not None and isinstance(record, dict):
                cancel = _lexists(root, rel + cancel_file, top)
                state = state_from_end(record, cancel)
            if row is None or state is None:
                not_enough.append(rel)
                continue
            rels.append(rel)
            rows.append(row)
            states.append(state.row())
    groups = report.put_states(rels, rows, states)
    report.reread += len(rels)
    report.from_journal += len(rels)
    return {g for g in groups if g}, not_enough


def _parsed(text: str) -> Any:
    """The JSON ``text`` parsed, or None where it does not parse."""
    try:
        return json.loads(text)
    except ValueError:
        return None


@contextlib.contextmanager
def _opened_dir(path: str) -> Iterator[int | None]:
    """A descriptor of the directory ``path`` (None where it cannot be opened), closed after.

    Paths below it are then looked up from there, not again from ``/``: each
    of 10,000 tasks' cancel files costs a third less so.
    """
    try:
        fd: int | None = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        fd = None
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _lexists(root: str, rel: str, top: int | None) -> bool:
    """Whether ``rel`` below ``root`` (open as ``top``, if it could be) exists, link or not."""
    try:
        if top is None:
            os.lstat(os.path.join(root, rel))
        else:
            os.lstat(rel, dir_fd=top)
    except (OSError, ValueError):
        return False
    return True


def _below_any(path: str, gone: set[str]) -> bool:
    """Whether ``path`` is one of ``gone`` or inside one of them."""
    while path not in gone:
        cut = path.rfind(os.sep)
        if cut < 0:
            return False
        path = path[:cut]
    return True


def _reread(
    root: str,
    rel: str,
    report: StatusReport,
    studies: dict[str, bool],
    keep: bool,
    gone: set[str],
    visit: TaskVisitor | None = None,
) -> set[str]:
    """Re-read one path (a task, a new subtree, or a removal), below ``root``.

    ``keep``: keep a task's ids and date if read (not journalled: its
    ``task.json`` has not changed). A path no longer there is added to
    ``gone``: the caller drops the rows at and below it. Returns the task
    groups touched; ``visit`` is called for each task read.
    """
    folder = os.path.join(root, rel) if rel != "." else root
    report.reread += 1
    try:
        names = set(os.listdir(folder))  # a task's names: no entry needs a stat
    except (FileNotFoundError, NotADirectoryError):
        gone.add(rel)
        return set()
    except OSError as exc:
        logger.warning("%s: cannot list the directory: %s; skipped", folder, exc.strerror)
        return set()
    if is_task_dir(names):
        row = report.find(rel)
        if row is None:
            group, study = _context(root, folder, studies)
        else:  # a task in the index: its group and study are where it sits, as known
            group, study = report.value("group", row), report.value("study", row)
        state = read_state(folder, names)
        report.put(rel, state, group, study, keep)
        if visit is not None:
            visit(folder, rel, names, group, state)
        return {group} if group else set()
    before = len(report)
    group, study = _context(root, os.path.join(folder, "x"))
    _walk(folder, rel, group, study, report, visit)  # a new directory of tasks was written
    return {g for g in report.columns["group"][before:] if g}


def collect(
    root: Path,
    *,
    rescan: bool = False,
    use_index: bool = True,
    create_index: bool = True,
    visit: TaskVisitor | None = None,
) -> StatusReport:
    """Return the state of every task under ``root``.

    ``create_index=False``: use the index where there is one, but where there
    is none, walk the tree without writing one (a reader such as ``list``).
    ``visit``: called for each task whose files are read now (every task of
    a walk of the tree; those re-read when the index is brought up to date),
    with the names its directory holds, so the caller can read more of the
    task without listing it again. A task may be visited twice (an index
    found unusable midway is rebuilt): the last visit counts.

    Raises:
        AutojobError: ``root`` is not a directory.
    """
    if not root.is_dir():
        raise AutojobError(
            "no such directory" if not root.exists() else "not a directory",
            path=root,
            hint="give the directory of a task, task group, study or study group",
        )
    top = os.path.realpath(root)
    with collector_paused():  # columns of many values, no garbage cycles
        # a task never holds an index: its own files are read
        report = _collect(
            top,
            rescan=rescan,
            use_index=use_index and not is_task_path(top),
            create_index=create_index,
            visit=visit,
        )
        report.problems = id_problems(top, report)
    return report


def _collect(
    top: str, *, rescan: bool, use_index: bool, create_index: bool, visit: TaskVisitor | None
) -> StatusReport:
    if not use_index:
        return _scan(top, visit)
    index = None if rescan else _load_index(top)
    if index is not None:
        try:
            return _refresh(top, *index, visit)
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("status index of %s not used (%s): the tree is read again", top, exc)
    return _full_scan(top, visit) if create_index else _scan(top, visit)


def id_problems(root: str, report: StatusReport) -> list[tuple[str, str]]:
    """Tasks sharing a ``task_id``, and tasks naming another task group than theirs.

    Only the ids status reads anyway (tasks sharing a group) are compared; a
    group whose tasks disagree has its own file read to tell which moved in.
    """
    col = report.columns
    if col["task_id"].count(None) == len(report):
        return []  # no ids read (no group holds attempts): nothing to compare
    first: dict[str, str] = {}
    named: dict[str, set[str]] = {}
    problems = []
    for path, group, task_id, group_id in zip(
        col["path"], col["group"], col["task_id"], col["task_group_id"], strict=True
    ):
        if task_id is None:
            continue
        other = first.setdefault(task_id, path)
        if other != path:
            problems.append((path, f"task id {task_id} is also the id of {other} (a copy?)"))
        if group is not None and group_id is not None:
            named.setdefault(group, set()).add(group_id)
    for group in sorted(g for g, ids in named.items() if len(ids) > 1):
        problems.extend(_moved_into(root, group, report))
    return problems


def _moved_into(root: str, group: str, report: StatusReport) -> list[tuple[str, str]]:
    try:
        with open(os.path.join(root, group, SETTINGS.TASK_GROUP_METADATA_FILE), "rb") as stream:
            actual = json.loads(stream.read()).get("task_group_id")
    except (OSError, ValueError, AttributeError):
        return []
    col = report.columns
    return [
        (path, f"names task group {named}, but sits in {group} ({actual}): moved here?")
        for path, in_group, named in zip(
            col["path"], col["group"], col["task_group_id"], strict=True
        )
        if in_group == group and named is not None and named != actual
    ]


def newest_attempts(report: StatusReport, rows: list[int] | None = None) -> list[TaskEntry]:
    """The newest attempt of each task group, and every task outside groups.

    Attempts are ordered by ``date_created`` (then by when they were queued).
    ``rows``: consider only the groups of these rows (all when None).
    """
    return [report.entry(r) for r in newest_rows(report, rows)]


def newest_rows(report: StatusReport, rows: list[int] | None = None) -> Sequence[int]:
    """The rows of :func:`newest_attempts` (in the order of their paths), no entry built.

    Every row, in order (a ``range``, not a list of a million), where every
    row is its group's newest attempt.
    """
    col = report.columns
    if report.shared_groups is not None and not report.shared_groups:
        # no group holds attempts, as the index knew it (no row added since): every row
        # is its group's newest attempt, and the group column is not even decoded
        order = report.path_order()
        if rows is None:
            return order
        if isinstance(order, range):
            return sorted(rows)
        return sorted(rows, key=col["path"].__getitem__)
    if rows is None:
        sizes = Counter(col["group"])  # counted in C
        sizes.pop(None, None)
        if max(sizes.values(), default=1) == 1:
            return report.path_order()  # no group holds attempts
    groups = None if rows is None else {col["group"][r] for r in rows}
    wanted = None if rows is None else set(rows)
    best: dict[str, int] = {}
    loose = []
    for row, group in enumerate(col["group"]):
        if group is None:
            if wanted is None or row in wanted:
                loose.append(row)
            continue
        if groups is not None and group not in groups:
            continue
        current = best.get(group)
        if current is None or _attempt_key(col, row) > _attempt_key(col, current):
            best[group] = row
    return sorted([*best.values(), *loose], key=col["path"].__getitem__)


def _attempt_key(col: dict[str, list[Any]], row: int) -> tuple[str, float, str]:
    return (col["created"][row] or "", col["queued_at"][row] or 0.0, col["path"][row])
