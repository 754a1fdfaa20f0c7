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
record only when the stamp is unchanged; everything else is read from the
files. While every task of a task group comes from the cache, settled in the
same batch, their records and lines are copied as they are; otherwise their
attempts are worked out again. The cache also keeps the listing of every
directory that is not a task, with its mtime: while the mtime is unchanged, no
entry was added, removed or renamed in it, so the walk does not list it again.

The cache is dropped whole when the root, the harvesters (names and versions),
magic mode, the watched file names, the cache format or the autojob version
differ from the header, and the rest of it when a line is unreadable. It is
written to a temporary file and replaces the old one only when a harvest
completes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import IO, Any

from autojob import SETTINGS
from autojob.__about__ import __version__
from autojob.harvest.collect import DirNote, Entry, Reader
from autojob.harvest.writers import Batched

__all__ = [
    "CACHE_FORMAT",
    "CacheWriter",
    "CachedReader",
    "cache_header",
    "cache_path",
    "previous_count",
]

logger = logging.getLogger(__name__)
CACHE_FORMAT = 2


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


def _rel_of(text: str) -> str:
    value = json.loads(text) if text.startswith('"') else text
    if not isinstance(value, str):
        raise ValueError(text)
    return value


#: the line the cache is at: kind (T task, D directory), path, its other fields, the line
Line = tuple[str, str, str, str]


class CachedReader:
    """A :class:`~autojob.harvest.collect.Source` reusing a cache's records.

    Unchanged tasks come from the cache, and unchanged directories are not
    listed again; the rest is read by ``reader``. The harvest writes what the
    walk passes to the next cache (:class:`CacheWriter`), in walk order.
    """

    def __init__(self, reader: Reader, path: Path) -> None:
        self.reader = reader
        self.path = path
        self.hits = 0
        self._stream: IO[str] | None = None
        self._lines: Iterator[str] = iter(())
        self._current: Line | None = None
        self._open(cache_header(reader))

    def _open(self, header: dict[str, Any]) -> None:
        try:
            stream = self.path.open(encoding="utf-8", newline="\n")
        except OSError:
            return
        try:
            found = json.loads(stream.readline())
        except ValueError:
            found = None
        if found != header:
            logger.info("%s: made for another harvest; not used", self.path)
            stream.close()
            return
        self._stream = stream
        self._lines = iter(stream)
        self._advance()

    def close(self) -> None:
        """Close the cache file."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._current = None

    def _advance(self) -> None:
        line = next(self._lines, None)
        if line is None or line.startswith("E\t"):  # the end: the number of tasks found
            self.close()
            return
        fields = line[:-1].split("\t", 2)
        try:
            kind, rel, rest = fields
            good = kind in ("T", "D") and line.endswith("\n")
            if rel.startswith('"'):
                rel = _rel_of(rel)
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
        batch_group, count, first, created, queued, state, stamp, full = fields
        if not full.startswith("{") or not self.reader.unchanged(top, stamp):
            return None
        try:
            batch = (
                None if not batch_group else _rel_of(batch_group),
                int(count),
                rel if first == rel else _rel_of(first),
            )
            created = _rel_of(created) if created.startswith('"') else created
            entry = Entry(
                rel, group, created, float(queued), state, stamp, None, None, {}, full, line
            )
        except ValueError:
            return None
        entry.batch = batch
        self.hits += 1
        return entry

    def _dir(self, top: str, rel: str, rest: str, line: str) -> DirNote | None:
        fields = rest.split("\t", 2)
        if len(fields) != 3:
            self._unreadable()
            return None
        stamp, kind, listed = fields
        try:
            if str(os.stat(top).st_mtime_ns) != stamp:
                return None
        except OSError:
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
        fd, self._tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._stream = Batched(os.fdopen(fd, "w", encoding="utf-8", newline="\n"))
        self._stream.write(json.dumps(header, separators=(",", ":")) + "\n")
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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop what was written; the old cache stays."""
        self._stream.drop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
