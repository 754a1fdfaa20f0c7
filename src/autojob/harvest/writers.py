"""Archive writers: JSON, JSON Lines, CSV and Parquet, streamed and atomic.

Every writer writes into a temporary file beside the archive and moves it into
place (:class:`~autojob.store.atomic.AtomicFile`) only when the harvest
completed, so a failed harvest leaves the previous archive, or none, never half
of one. A harvest stopped by an error, Ctrl-C or SIGTERM removes its temporary
files; the next harvest into the same archive removes those of harvests killed
outright (see :mod:`autojob.store.tempfiles`). None holds all
records: JSON and JSON Lines write each record as it comes; CSV and Parquet
need every column before the first row, so they spool the records to a
temporary JSON Lines file while collecting the columns (and, for Parquet,
each column's type), then write the table from the spool in batches.

CSV and Parquet flatten nested objects into dotted columns
(``outputs.energy``); lists, and values of mixed types, become JSON text.
"""

from __future__ import annotations

import csv
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from autojob.errors import AutojobError, InputError
from autojob.harvest.collect import Entry, Run
from autojob.harvest.entries import run_entries
from autojob.store.atomic import AtomicFile
from autojob.store.tempfiles import discard, discard_own, make_temp, remove_leftovers

__all__ = ["Batched", "Format", "Writer", "flatten", "format_for", "open_writer"]

#: rows per Parquet record batch (bounds the memory the table needs)
PARQUET_BATCH = 5000
#: pieces of text gathered before one write (a write per record costs more than the record)
WRITE_BATCH = 256
#: characters gathered at most before one write (runs of cached records are long pieces)
WRITE_CHARS = 1 << 20


class Format(StrEnum):
    """The archive formats."""

    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"


_SUFFIXES = {".json": Format.JSON, ".jsonl": Format.JSONL, ".ndjson": Format.JSONL}
_SUFFIXES |= {".csv": Format.CSV, ".parquet": Format.PARQUET, ".pq": Format.PARQUET}


def format_for(path: Path, given: str | None = None) -> Format:
    """The format ``given``, else the one ``path``'s suffix names, else JSON."""
    if given is not None:
        try:
            return Format(given)
        except ValueError:
            raise InputError(
                f"unknown archive format {given!r}",
                hint=f"use one of {', '.join(f.value for f in Format)}",
            ) from None
    return _SUFFIXES.get(path.suffix.lower(), Format.JSON)


def flatten(record: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted name, value)`` for every leaf of ``record``.

    Objects nest (an empty one is a leaf ``{}``); lists are leaves.
    """
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flatten(value, name + ".")
        else:
            yield name, value


class Batched:
    """A text stream written in batches of pieces: ``write``, then ``close``."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._pieces: list[str] = []
        self._size = 0

    def write(self, text: str) -> None:
        """Write ``text`` (now, or with the next batch)."""
        pieces = self._pieces
        if len(text) >= WRITE_CHARS >> 2:  # long enough to be written as it is
            if pieces:
                self._stream.write("".join(pieces))
                pieces.clear()
                self._size = 0
            self._stream.write(text)
            return
        pieces.append(text)
        self._size += len(text)
        if len(pieces) >= WRITE_BATCH or self._size >= WRITE_CHARS:
            self._stream.write("".join(pieces))
            pieces.clear()
            self._size = 0

    def close(self) -> None:
        """Write what is gathered and close the stream (idempotent)."""
        if self._stream.closed:
            return
        try:
            if self._pieces:
                self._stream.write("".join(self._pieces))
                self._pieces.clear()
        finally:
            self._stream.close()

    def drop(self) -> None:
        """Close the stream without writing what is gathered (the file is dropped)."""
        self._pieces.clear()
        self._stream.close()


class Writer(ABC):
    """Writes an archive: ``add`` each entry, then ``commit`` (or ``abort``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        try:
            remove_leftovers(path)
            self._file = AtomicFile(path, keep_mode=False)
        except OSError as exc:
            raise AutojobError(
                f"cannot write the archive: {exc.strerror}",
                path=path,
                hint="check that its directory exists and is writable",
            ) from exc
        except BaseException:  # interrupted before the file was ours to abort
            discard_own(path)
            raise
        self._tmp = self._file.tmp
        try:
            self._file.close()  # the writers open it by name
        except BaseException:
            self._file.abort()
            raise

    @abstractmethod
    def add(self, entry: Entry) -> None:
        """Write one task."""

    def add_run(self, run: Run) -> None:
        """Write the tasks of a run (records the cache kept, settled)."""
        for entry in run_entries(run):
            self.add(entry)

    @abstractmethod
    def _finish(self) -> None:
        """Complete the temporary file."""

    def commit(self) -> None:
        """Complete the archive and move it into place."""
        try:
            self._finish()
            self._file.commit()
        except OSError as exc:
            self.abort()
            raise AutojobError(f"cannot write the archive: {exc}", path=self.path) from exc

    def abort(self) -> None:
        """Drop what was written."""
        self._close()
        self._file.abort()

    @abstractmethod
    def _close(self) -> None:
        """Close open streams (idempotent)."""


class _TextWriter(Writer):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self._stream = Batched(open(self._tmp, "w", encoding="utf-8", newline="\n"))  # noqa: SIM115
        except BaseException:
            self._file.abort()
            raise

    def _close(self) -> None:
        self._stream.drop()


class JsonWriter(_TextWriter):
    """A JSON array, one record per line."""

    def add(self, entry: Entry) -> None:
        """Write one record."""
        self._stream.write((",\n" if self.count else "[\n") + entry.full_text())
        self.count += 1

    def add_run(self, run: Run) -> None:
        """Write the records of a run as they are."""
        self._stream.write((",\n" if self.count else "[\n") + ",\n".join(run.fulls))
        self.count += len(run.fulls)

    def _finish(self) -> None:
        self._stream.write("\n]\n" if self.count else "[]\n")
        self._stream.close()


class JsonLinesWriter(_TextWriter):
    """JSON Lines: one record per line."""

    def add(self, entry: Entry) -> None:
        """Write one record."""
        self._stream.write(entry.full_text() + "\n")
        self.count += 1

    def add_run(self, run: Run) -> None:
        """Write the records of a run as they are."""
        self._stream.write("\n".join(run.fulls) + "\n")
        self.count += len(run.fulls)

    def _finish(self) -> None:
        self._stream.close()


class _TableWriter(_TextWriter):
    """Spools records (as JSON Lines) and collects the columns."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._stream.close()
        self._spool_name = ""
        try:
            fd, self._spool_name = make_temp(path, ".spool")
        except BaseException:
            discard_own(path, ".spool")
            self.abort()
            raise
        self._stream = Batched(os.fdopen(fd, "w", encoding="utf-8", newline="\n"))
        self.columns: dict[str, set[str]] = {}

    def add(self, entry: Entry) -> None:
        """Spool one record and note its columns and their kinds."""
        columns = self.columns
        for name, value in flatten(entry.data()):
            kinds = columns.get(name)
            if kinds is None:
                kinds = columns[name] = set()
            if value is not None:
                kinds.add(_kind(value))
        self._stream.write(entry.full_text() + "\n")
        self.count += 1

    def _table_columns(self) -> dict[str, set[str]]:
        """The columns, less empty ones whose name has nested columns too.

        (``outputs`` is null where a task wrote none, ``outputs.energy`` set
        where it did: the table keeps ``outputs.energy`` only.)
        """
        nested = {name.rsplit(".", 1)[0] for name in self.columns if "." in name}
        parents: set[str] = set()
        for name in nested:
            parts = name.split(".")
            parents.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        return {n: k for n, k in self.columns.items() if k or n not in parents}

    def _rows(self) -> Iterator[dict[str, Any]]:
        self._stream.close()
        with open(self._spool_name, encoding="utf-8") as spool:
            for line in spool:
                yield dict(flatten(json.loads(line)))

    def _close(self) -> None:
        self._stream.drop()
        if self._spool_name:
            discard(self._spool_name)

    def commit(self) -> None:
        """Write the table from the spool, then move it into place."""
        try:
            super().commit()
        finally:
            self._close()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "json"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def _cell(value: Any) -> str:
    """A CSV cell: strings as they are, None empty, everything else JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


class CsvWriter(_TableWriter):
    """CSV with a header of dotted column names."""

    def _finish(self) -> None:
        names = list(self._table_columns())
        # names that are not UTF-8 (kept as surrogates) are written back as their bytes
        with open(self._tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(names)
            for row in self._rows():
                writer.writerow([_cell(row.get(n)) for n in names])


class ParquetWriter(_TableWriter):
    """Parquet (needs pyarrow: ``pip install 'autojob[parquet]'``)."""

    def __init__(self, path: Path) -> None:
        _pyarrow()
        super().__init__(path)

    def _finish(self) -> None:
        pa = _pyarrow()
        import pyarrow.parquet as pq  # noqa: PLC0415

        types = {n: _arrow_type(pa, kinds) for n, kinds in self._table_columns().items()}
        schema = pa.schema([(name, kind) for name, (kind, _) in types.items()])
        with pq.ParquetWriter(self._tmp, schema) as out:
            batch: list[dict[str, Any]] = []
            for row in self._rows():
                batch.append(row)
                if len(batch) == PARQUET_BATCH:
                    out.write_table(_table(pa, schema, types, batch))
                    batch = []
            if batch or not self.count:
                out.write_table(_table(pa, schema, types, batch))


def _pyarrow() -> Any:
    try:
        import pyarrow  # noqa: PLC0415
    except ImportError as exc:
        raise InputError(
            "writing Parquet needs pyarrow, which is not installed",
            hint="pip install 'autojob[parquet]', or choose --format csv or jsonl",
        ) from exc
    return pyarrow


def _arrow_type(pa: Any, kinds: set[str]) -> tuple[Any, bool]:
    """The Arrow type of a column, and whether its values are kept as JSON text."""
    if kinds == {"bool"}:
        return pa.bool_(), False
    if kinds == {"int"}:
        return pa.int64(), False
    if kinds and kinds <= {"int", "float"}:
        return pa.float64(), False
    if kinds <= {"str"}:
        return pa.string(), False
    return pa.string(), True


def _table(pa: Any, schema: Any, types: dict[str, tuple[Any, bool]], rows: list[Any]) -> Any:
    arrays = []
    for name, (kind, as_json) in types.items():
        values = [row.get(name) for row in rows]
        if as_json:
            values = [None if v is None else _cell(v) for v in values]
        if kind == pa.string():
            values = [_utf8(v) for v in values]
        arrays.append(values)
    return pa.Table.from_arrays(
        [pa.array(v, type=schema.field(i).type) for i, v in enumerate(arrays)], schema=schema
    )


def _utf8(value: str | None) -> str | None:
    """Parquet holds UTF-8 only: a name that is not (kept as surrogates) gets U+FFFD."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_WRITERS: dict[Format, type[Writer]] = {
    Format.JSON: JsonWriter,
    Format.JSONL: JsonLinesWriter,
    Format.CSV: CsvWriter,
    Format.PARQUET: ParquetWriter,
}


def open_writer(path: Path, fmt: Format) -> Writer:
    """A writer of ``fmt`` into ``path``."""
    return _WRITERS[fmt](path)
