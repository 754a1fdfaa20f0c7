"""The incremental-harvest cache kept beside an archive.

``.<archive name>.harvest-cache.jsonl`` (the suffix is
``SETTINGS.HARVEST_CACHE_FILE``) holds a header line, then one tab-separated
line per task harvested last time whose files were settled: where it is, the
stamp of its
watched files (the directory's mtime, each watched file's mtime and size),
what ordering its attempts needs, and its record as compact JSON. Lines are in
the order the walk visits directories, so a harvest reads the cache alongside
the walk (memory does not grow with the tree) and reuses a record only when
the stamp is unchanged; everything else is read from the files. It also keeps
the listing of every directory that is not a task, with its mtime: while the
mtime is unchanged, no entry was added, removed or renamed in it, so the walk
does not list it again.

The cache is dropped whole when the root, the harvesters (names and versions),
magic mode, the watched file names or the autojob version differ from the
header, or when a line is unreadable. It is written to a temporary file and
replaces the old one only when a harvest completes.
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
from autojob.harvest.collect import Entry, Reader

__all__ = [
    "CACHE_FORMAT",
    "CacheWriter",
    "CachedReader",
    "cache_header",
    "cache_path",
    "previous_count",
]

logger = logging.getLogger(__name__)
CACHE_FORMAT = 1


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


#: a cache line: its kind (T task, D directory), its key, and its fields
Line = tuple[str, list[str], list[str]]


class CachedReader:
    """A :class:`~autojob.harvest.collect.Source` reusing a cache's records.

    Unchanged tasks come from the cache, and unchanged directories are not
    listed again; the rest is read by ``reader``. With ``writer``, every task
    and directory the walk passes is written to the next cache, in walk order.
    """

    def __init__(self, reader: Reader, path: Path, writer: CacheWriter | None = None) -> None:
        self.reader = reader
        self.path = path
        self.writer = writer
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
        if line is None:
            self.close()
            return
        fields = line.rstrip("\n").split("\t", 6)
        if fields[0] == "E":  # the end: how many tasks the harvest found
            self.close()
            return
        try:
            kind, rel = fields[0], _rel_of(fields[1])
            good = (kind == "T" and len(fields) == 7) or (kind == "D" and len(fields) == 5)
        except (ValueError, IndexError):
            good = False
        if not good:
            logger.warning("%s: an unreadable line; the rest of the cache is not used", self.path)
            self.close()
            return
        self._current = (kind, _key(rel), fields)

    def _find(self, rel: str, kind: str) -> list[str] | None:
        """The fields of the line of ``rel`` if it is of ``kind``, moving past it."""
        key = _key(rel)
        while self._current is not None and self._current[1] < key:
            self._advance()
        current = self._current
        if current is None or current[1] != key or current[0] != kind:
            return None
        self._advance()
        return current[2]

    def cached(self, top: str, rel: str, group: str | None) -> Entry | None:
        """The cached entry of ``top`` if its watched files are unchanged."""
        fields = self._find(rel, "T")
        if fields is None:
            return None
        _, _, created, queued, state, stamp, body = fields
        names = {part.split(":", 1)[0] for part in stamp.split("/")[1:]}
        if self.reader.stamp(top, names) != stamp or not body.startswith("{"):
            return None
        try:
            entry = Entry(rel, group, created, float(queued), state, stamp, body=body)
        except ValueError:
            return None
        self.hits += 1
        if self.writer is not None:
            self.writer.add(entry)
        return entry

    def listing(self, top: str, rel: str) -> tuple[bool, list[str]] | None:
        """A directory's kind and subdirectories, if its mtime is unchanged."""
        fields = self._find(rel, "D")
        if fields is None or str(self.reader.dir_stamp(top)) != fields[2]:
            return None
        try:
            subdirs = json.loads(fields[4])
        except ValueError:
            return None
        if not isinstance(subdirs, list):
            return None
        is_group = fields[3] == "g"
        if self.writer is not None:
            self.writer.add_dir(rel, int(fields[2]), is_group, subdirs)
        return is_group, subdirs

    def note_dir(self, top: str, rel: str, is_group: bool, subdirs: list[str]) -> None:
        """Keep a directory's listing for the next harvest (if settled)."""
        if self.writer is None:
            return
        stamp = self.reader.dir_stamp(top)
        if stamp is not None:
            self.writer.add_dir(rel, stamp, is_group, subdirs)

    def read(self, top: str, rel: str, names: set[str], group: str | None) -> Entry:
        """Read a task that is new or changed."""
        entry = self.reader.read(top, rel, names, group)
        if self.writer is not None:
            self.writer.add(entry)
        return entry


class CacheWriter:
    """Writes the next cache while a harvest runs; it replaces the old at the end."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        fd, self._tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._stream = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self._stream.write(json.dumps(header, separators=(",", ":")) + "\n")
        self.seen = 0

    def count(self) -> None:
        """Count one task the harvest found (kept or not)."""
        self.seen += 1

    def add(self, entry: Entry) -> None:
        """Keep ``entry`` if it is settled (it has a stamp)."""
        if entry.stamp is None:
            return
        created = entry.created.replace("\t", " ").replace("\n", " ")
        fields = ("T", _rel_text(entry.rel), created, repr(entry.queued), entry.state, entry.stamp)
        self._stream.write("\t".join(fields) + f"\t{entry.text()}\n")

    def add_dir(self, rel: str, stamp: int, is_group: bool, subdirs: list[str]) -> None:
        """Keep the listing of a directory that is not a task."""
        kind = "g" if is_group else "-"
        listed = json.dumps(subdirs, separators=(",", ":"))
        self._stream.write(f"D\t{_rel_text(rel)}\t{stamp}\t{kind}\t{listed}\n")

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
        self._stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
