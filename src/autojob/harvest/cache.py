"""The incremental-harvest cache kept beside an archive.

``.<archive name>.harvest-cache.jsonl`` (the suffix is
``SETTINGS.HARVEST_CACHE_FILE``) holds a header line, then one tab-separated
line per task harvested last time whose files were settled: where it is, the
batch of attempts it was settled in (its task group, the number of tasks, the
first one), what ordering its attempts needs, the stamp of its watched files
(the directory's mtime, each watched file's mtime and size) and its whole
record, attempts included, exactly as the JSON and JSON Lines archives hold
it. Lines are in the order the walk visits directories, so a harvest reads the
cache alongside the walk (memory does not grow with the tree) and reuses a
record only when the stamp still holds; everything else is read from the
files. The cache also keeps the listing of every directory that is not a task,
with its mtime: while the mtime is unchanged, no entry was added, removed or
renamed in it, so the walk does not list it again.

How much of a stamp is checked: the task directory's mtime, which every
creation, removal or replacement of a file in it changes; and, when asked
(``verify``), when the header does not say, or once the last such check is
``SETTINGS.HARVEST_VERIFY_AGE`` old (the header's ``verified``), every watched
file's mtime and size too, which a file rewritten in place changes.

Task groups (and tasks outside groups) whose lines all hold, settled in the
same batch, pass as a :class:`~autojob.harvest.entries.Run`: their lines and
records are copied as they are, each line split once, without an entry per
task. Otherwise their attempts are worked out again.

The cache is dropped whole when the root, the harvesters (names and versions),
magic mode, the watched file names, the cache format or the autojob version
differ from the header, and the rest of it when a line is unreadable. It is
written to a temporary file and replaces the old one only when a harvest
completes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import IO, Any

from autojob import SETTINGS
from autojob.__about__ import __version__
from autojob.harvest.collect import DirNote, Entry, Reader, Run
from autojob.harvest.entries import entry_of_line, rel_of
from autojob.harvest.writers import Batched
from autojob.store.atomic import AtomicFile
from autojob.store.tempfiles import discard_own, remove_leftovers

__all__ = [
    "CACHE_FORMAT",
    "CacheWriter",
    "CachedReader",
    "cache_header",
    "cache_path",
    "previous_count",
]

logger = logging.getLogger(__name__)
CACHE_FORMAT = 3
#: tasks in one run at most (a run's lines are held until it is written)
RUN_TASKS = 512


def cache_path(archive: Path) -> Path:
    """The cache file kept beside ``archive``."""
    return archive.with_name(f".{archive.name}.{SETTINGS.HARVEST_CACHE_FILE}")


def cache_header(reader: Reader) -> dict[str, Any]:
    """What must be unchanged for a cache to be used by ``reader``."""
    return {
        "format": CACHE_FORMAT,
        "autojob": __version__,
        "root": reader.root,
        "harvesters": [h.identity for h in reader.harvesters],
        "explicit": reader.explicit,
        "magic": reader.magic,
        "watched": list(reader.watched),
    }


def check_files_now(verified: float | None, *, verify: bool) -> bool:
    """Whether a harvest checks every watched file of cached tasks, not only their directories.

    It does when asked (``verify``), when the cache does not say when the last
    such check was (``verified``), and when that is more than
    ``SETTINGS.HARVEST_VERIFY_AGE`` seconds ago.
    """
    if verify or verified is None:
        return True
    return time.time() - verified >= SETTINGS.HARVEST_VERIFY_AGE


def previous_count(path: Path) -> int | None:
    """How many tasks the harvest that wrote the cache ``path`` found, if known."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 64))
            tail = stream.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    except OSError:
        return None
    kind, _, count = tail.partition(b"\t")
    return int(count) if kind == b"E" and count.isdigit() else None


def _key(rel: str) -> list[str]:
    """Sort key of a path in walk order (component by component)."""
    return [] if rel == "." else rel.split("/")


def _rel_text(rel: str) -> str:
    """A path as a cache field: as it is, or JSON-quoted if it could be misread."""
    if rel.isascii() and rel.isprintable() and not rel.startswith('"') and "\\" not in rel:
        return rel
    return _quote(rel)


#: the line the cache is at: kind (T task, D directory), path, its other fields, the line
Line = tuple[str, str, str, str]


class CachedReader:
    """A :class:`~autojob.harvest.collect.Source` reusing a cache's records.

    Unchanged tasks come from the cache, and unchanged directories are not
    listed again; the rest is read by ``reader``. The harvest writes what the
    walk passes to the next cache (:class:`CacheWriter`), in walk order.
    """

    def __init__(self, reader: Reader, path: Path, *, verify: bool = False) -> None:
        self.reader = reader
        self.path = path
        self.hits = 0
        #: a cache made for this harvest was found
        self.used = False
        #: every watched file of a cached task is checked, not only its directory
        self.check_files = True
        #: when every cached task's files were last checked, for the next cache
        self.verified = reader.started_ns / 1e9
        self._stream: IO[str] | None = None
        self._lines: Iterator[str] = iter(())
        self._current: Line | None = None
        self._pending: deque[str] = deque()  # lines looked at ahead, then put back
        self._open(cache_header(reader), verify=verify)
        self._same: Callable[[str, str], bool] = (
            reader.unchanged if self.check_files else reader.same_directory
        )

    def _open(self, header: dict[str, Any], *, verify: bool) -> None:
        try:
            stream = self.path.open(encoding="utf-8", newline="\n")
        except OSError:
            return
        try:
            found = json.loads(stream.readline())
            verified = found.pop("verified")
            verified = float(verified) if isinstance(verified, int | float) else None
        except (ValueError, AttributeError, KeyError):
            found = None
        if found != header:
            logger.info("%s: made for another harvest; not used", self.path)
            stream.close()
            return
        self.used = True
        self.check_files = check_files_now(verified, verify=verify)
        if not self.check_files and verified is not None:
            self.verified = verified
        self._stream = stream
        self._lines = iter(stream)
        self._advance()

    def header(self) -> dict[str, Any]:
        """The header of the next cache."""
        return {**cache_header(self.reader), "verified": self.verified}

    def close(self) -> None:
        """Close the cache file."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._lines = iter(())
        self._current = None

    def _advance(self) -> None:
        self._set(self._next_line())

    def _next_line(self) -> str | None:
        """The next line, unparsed (None at the end of the file)."""
        return self._pending.popleft() if self._pending else next(self._lines, None)

    def _set(self, line: str | None) -> None:
        """Make ``line`` the current one."""
        if line is None or line.startswith("E\t"):  # the end: the number of tasks found
            self.close()
            return
        fields = line[:-1].split("\t", 2)
        try:
            kind, rel, rest = fields
            good = kind in ("T", "D") and line.endswith("\n")
            if rel.startswith('"'):
                rel = rel_of(rel)
        except ValueError:
            good = False
        if not good:
            self._unreadable()
            return
        self._current = (kind, rel, rest, line)

    def _unreadable(self) -> None:
        logger.warning("%s: an unreadable line; the rest of the cache is not used", self.path)
        self.close()

    def _find(self, rel: str) -> Line | None:
        """The line of ``rel``, moving past it (or None, where there is none)."""
        current = self._current
        while current is not None and current[1] != rel:
            if _key(current[1]) > _key(rel):
                return None
            self._advance()
            current = self._current
        if current is not None:
            self._advance()
        return current

    def lookup(self, top: str, rel: str, group: str | None) -> Entry | DirNote | None:
        """The cached task or directory listing of ``top``, if unchanged."""
        found = self._find(rel)
        if found is None:
            return None
        kind, _, rest, line = found
        if kind == "T":
            return self._task(top, rel, group, rest, line)
        return self._dir(top, rel, rest, line)

    def _task(self, top: str, rel: str, group: str | None, rest: str, line: str) -> Entry | None:
        fields = rest.split("\t", 7)
        if len(fields) != 8:
            self._unreadable()
            return None
        if not fields[7].startswith("{") or not self._same(top, fields[6]):
            return None
        entry = entry_of_line(rel, group, fields, line)
        if entry is not None:
            self.hits += 1
        return entry

    def bulk(
        self, top_prefix: str, prefix: str, subdirs: list[str], start: int
    ) -> tuple[Run | None, int]:
        """Unchanged tasks and task groups among ``subdirs`` from ``start`` on, in one run.

        A task outside groups belongs to the run when its line is next and its
        directory unchanged; a task group when its line and every task's are
        next, all unchanged, its tasks settled as that very batch. Whatever
        does not fit ends the run: the walk reads it as usual. Lines are
        taken as they are read, split once.
        """
        current = self._current
        if current is None or current[1] != prefix + subdirs[start]:
            return None, start
        run = Run()
        line: str | None = current[3]
        index, count = start, len(subdirs)
        while line is not None and index < count and len(run.fulls) < RUN_TASKS:
            name = subdirs[index]
            kind = line[0]
            if kind == "T":
                parts = line.split("\t", 9)
                if not self._task_line(parts, top_prefix + name, prefix + name, None, "1", ""):
                    break
                run.lines.append(line)
                run.fulls.append(parts[9][:-1])
                run.states.append(parts[7])
                line = self._next_line()
            elif kind == "D":
                taken, line = self._group(top_prefix + name, prefix + name, line, run)
                if not taken:
                    break
            else:
                break
            index += 1
        self._set(line)
        if not run.fulls:
            return None, start
        self.hits += len(run.fulls)
        return run, index

    def _task_line(
        self, parts: list[str], top: str, rel: str, group: str | None, size: str, first: str
    ) -> bool:
        """Whether ``parts`` (a line split) are the line of the task ``rel``, unchanged.

        The task must have been settled in ``group`` (None: outside groups), in
        a batch of ``size`` tasks whose first was ``first`` (empty: itself).
        """
        return _fits(parts, rel, group, size, first or rel) and self._same(top, parts[8])

    def _group(self, top: str, rel: str, line: str, run: Run) -> tuple[bool, str | None]:
        """Add the task group in ``top`` to ``run`` if it and its tasks are unchanged.

        ``rel`` is its path, ``line`` its line. Returns whether it was added,
        and the next line; lines read ahead for a group that does not fit are
        put back.
        """
        parts = line.split("\t", 4)
        if len(parts) != 5 or (parts[1] != rel and parts[1] != _rel_text(rel)):
            return False, line
        listed = parts[4]
        if listed.startswith('["') and listed.endswith('"]\n') and '"' not in listed[2:-3]:
            return self._group_of_one(top, rel, line, parts, listed[2:-3], run)
        names = _group_listing(top, parts[2], parts[3], listed[:-1])
        if names is None:
            return False, line
        seen = [line]
        splits = []
        size = str(len(names))
        first = f"{rel}/{names[0]}" if names else ""
        for name in names:
            task = self._next_line()
            if task is None:
                break
            seen.append(task)
            split = task.split("\t", 9)
            child_top, child = f"{top}{os.sep}{name}", f"{rel}/{name}"
            if not self._task_line(split, child_top, child, rel, size, first):
                break
            splits.append(split)
        else:
            run.lines += seen
            run.fulls += [split[9][:-1] for split in splits]
            run.states += [split[7] for split in splits]
            return True, self._next_line()
        self._pending.extendleft(reversed(seen[1:]))
        return False, line

    def _group_of_one(
        self, top: str, rel: str, line: str, parts: list[str], name: str, run: Run
    ) -> tuple[bool, str | None]:
        """:meth:`_group` for a task group of one task, ``name`` (the most common)."""
        if parts[3] != "g" or "\\" in name or not _mtime_is(top, parts[2]):
            return False, line
        task = self._next_line()
        if task is None:
            return False, line
        split = task.split("\t", 9)
        child = f"{rel}/{name}"
        if not self._task_line(split, f"{top}{os.sep}{name}", child, rel, "1", child):
            self._pending.appendleft(task)
            return False, line
        run.lines += (line, task)
        run.fulls.append(split[9][:-1])
        run.states.append(split[7])
        return True, self._next_line()

    def _dir(self, top: str, rel: str, rest: str, line: str) -> DirNote | None:
        fields = rest.split("\t", 2)
        if len(fields) != 3:
            self._unreadable()
            return None
        stamp, kind, listed = fields
        if not _mtime_is(top, stamp):
            return None
        subdirs = _names_of(listed)
        if subdirs is None:
            return None
        return DirNote(rel, int(stamp), kind == "g", subdirs, line)

    def note_dir(self, top: str, rel: str, is_group: bool, subdirs: list[str]) -> DirNote | None:
        """A directory just listed, to keep for the next harvest (if settled)."""
        return self.reader.note_dir(top, rel, is_group, subdirs)

    def read(self, top: str, rel: str, names: set[str], group: str | None) -> Entry:
        """Read a task that is new or changed."""
        return self.reader.read(top, rel, names, group)


def _fits(parts: list[str], rel: str, group: str | None, size: str, first: str) -> bool:
    """Whether ``parts`` (a cache line, split) are a whole line of task ``rel``.

    Its task must have been settled in ``group`` (None: outside groups), in a
    batch of ``size`` tasks whose first was ``first``.
    """
    return (
        len(parts) == 10
        and parts[0] == "T"
        and parts[9].startswith("{")
        and parts[9].endswith("\n")
        and (parts[1] == rel or parts[1] == _rel_text(rel))
        and parts[3] == size
        and (parts[4] == first or parts[4] == _rel_text(first))
        and (not parts[2] if group is None else (parts[2] == group or parts[2] == _rel_text(group)))
    )


def _group_listing(top: str, stamp: str, kind: str, listed: str) -> list[str] | None:
    """The subdirectories of the task group in ``top``, as its cache line lists them.

    None when the line (its ``stamp``, ``kind`` and ``listed`` fields) is not
    a task group's, or the directory changed.
    """
    if kind != "g" or not _mtime_is(top, stamp):
        return None
    return _names_of(listed)


def _mtime_is(top: str, stamp: str) -> bool:
    """Whether the directory ``top``'s mtime (ns) is ``stamp``, as the cache wrote it."""
    try:
        return str(os.stat(top).st_mtime_ns) == stamp
    except OSError:
        return False


def _names_of(listed: str) -> list[str] | None:
    """A directory's subdirectories as the cache lists them (JSON), or None."""
    if listed == "[]":
        return []
    if listed.startswith('["') and listed.endswith('"]') and "\\" not in listed:
        return listed[2:-2].split('","')  # no escapes: no quote inside a name
    try:
        names = json.loads(listed)
    except ValueError:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return names


class CacheWriter:
    """Writes the next cache while a harvest runs; it replaces the old at the end."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        remove_leftovers(path)
        try:
            self._file = AtomicFile(path, keep_mode=False)
        except BaseException:
            discard_own(path)
            raise
        try:
            self._stream = Batched(self._file.open_text())
            self._stream.write(json.dumps(header, separators=(",", ":")) + "\n")
        except BaseException:
            self._file.abort()
            raise
        self.seen = 0

    def add(self, entry: Entry) -> None:
        """Count a task the harvest found; keep it if it is settled (it has a stamp).

        A task whose cache line still holds is written as it was.
        """
        self.seen += 1
        if entry.stamp is None:
            return
        if entry.line is not None:
            self._stream.write(entry.line)
            return
        group = "" if entry.group is None else _rel_text(entry.group)
        fields = (
            "T",
            _rel_text(entry.rel),
            group,
            str(entry.attempts["count"]),
            _rel_text(entry.first),
            _rel_text(entry.created),
            repr(entry.queued),
            entry.state,
            entry.stamp,
            entry.full_text(),
        )
        self._stream.write("\t".join(fields) + "\n")

    def add_run(self, run: Run) -> None:
        """Count a run's tasks and write its lines as they were."""
        self.seen += len(run.fulls)
        self._stream.write("".join(run.lines))

    def add_dir(self, note: DirNote) -> None:
        """Keep the listing of a directory that is not a task."""
        if note.line is not None:
            self._stream.write(note.line)
            return
        kind = "g" if note.is_group else "-"
        listed = json.dumps(note.subdirs, separators=(",", ":"))
        self._stream.write(f"D\t{_rel_text(note.rel)}\t{note.stamp}\t{kind}\t{listed}\n")

    def commit(self) -> None:
        """Replace the old cache with the one written."""
        self._stream.write(f"E\t{self.seen}\n")
        self._stream.close()
        self._file.commit()

    def abort(self) -> None:
        """Drop what was written; the old cache stays."""
        self._stream.drop()
        self._file.abort()
