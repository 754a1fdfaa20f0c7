"""``archive`` and ``load_archive``: harvested tasks to a file and back.

``archive(path, output)`` harvests ``path`` into ``output`` (``archive.json``
by default) and keeps the incremental cache beside it; it also writes tasks
already harvested. JSON and JSON Lines archives load back into the same
:class:`~autojob.harvest.models.HarvestedTask` objects (``load_archive``);
CSV and Parquet are flat tables for analysis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autojob import SETTINGS
from autojob.errors import InputError, MetadataError, MissingFileError
from autojob.harvest.cache import CachedReader, CacheWriter, cache_path
from autojob.harvest.collect import Entry, Run
from autojob.harvest.harvesting import Condition, Harvest, HarvestSummary, harvest
from autojob.harvest.models import ARCHIVE_ADAPTER, HarvestedTask
from autojob.harvest.writers import Format, Writer, format_for, open_writer
from autojob.store.load import invalid
from autojob.store.tempfiles import discard_own
from autojob.store.walk import no_tasks_error

__all__ = ["archive", "default_archive", "load_archive"]


def default_archive(fmt: Format | str | None = None) -> Path:
    """``SETTINGS.ARCHIVE_FILE`` in the working directory, with ``fmt``'s suffix."""
    path = Path(SETTINGS.ARCHIVE_FILE)
    return path if fmt is None else path.with_suffix(f".{Format(fmt).value}")


def archive(
    tasks: str | Path | Harvest | Iterable[HarvestedTask],
    output: str | Path | None = None,
    *,
    fmt: str | None = None,
    strict: bool | None = None,
    magic: bool = False,
    harvesters: Iterable[str] | None = None,
    where: Iterable[Condition | str] = (),
    states: Iterable[str] = (),
    incremental: bool = True,
    verify: bool = False,
    progress: Callable[[int, str], None] | None = None,
) -> HarvestSummary:
    """Write tasks to an archive, atomically; return what was written.

    Args:
        tasks: a directory to harvest, a :class:`Harvest`, or harvested tasks.
        output: the archive (default ``archive.json`` in the working directory,
            with the suffix of ``fmt``).
        fmt: ``json``, ``jsonl``, ``csv`` or ``parquet`` (default: by the
            suffix of ``output``, else JSON).
        strict: as for :func:`harvest` (when ``tasks`` is a directory).
        magic: as for :func:`harvest`.
        harvesters: as for :func:`harvest`.
        where: as for :func:`harvest`.
        states: as for :func:`harvest`.
        incremental: when ``tasks`` is a directory, reuse the records of tasks
            unchanged since the last archive of it (the cache beside the
            archive) and keep the cache for the next one.
        verify: check every watched file of the cached tasks, not only their
            directories (see :func:`harvest`).
        progress: called as tasks are read, with how many were read since the
            last call and the path of the last one.

    Raises:
        AutojobError: as :func:`harvest`; or the archive cannot be written.
            The archive is then left as it was.
        InputError: the directory harvested holds no task; nothing is written.
    """
    path = Path(output) if output is not None else default_archive(fmt)
    kind = format_for(path, fmt)
    given = tasks if isinstance(tasks, str | Path) else None
    if isinstance(tasks, str | Path):
        cache = cache_path(path) if incremental else None
        tasks = harvest(
            tasks,
            strict=strict,
            magic=magic,
            harvesters=harvesters,
            where=where,
            states=states,
            cache=cache,
            verify=verify,
        )
        if progress is not None:
            tasks.on_progress(progress)
        if cache is not None:
            return _write_harvest(tasks, path, kind, cache, given)
    if isinstance(tasks, Harvest):
        return _write_harvest(tasks, path, kind, None, given)
    return _write_tasks(tasks, path, kind)


def _write_harvest(
    found: Harvest, path: Path, kind: Format, cache: Path | None, given: str | Path | None
) -> HarvestSummary:
    # the writer is made inside the try: an interrupt (Ctrl-C, SIGTERM) anywhere
    # after its temporary file exists removes it
    writer: Writer | None = None
    keeper = None
    try:
        writer = open_writer(path, kind)
        if cache is not None and isinstance(found.source, CachedReader):
            keeper = CacheWriter(cache, found.source.header())
            found.keeper = keeper
        _write_items(found, writer)
        if not found.summary.seen:  # no archive, and no cache, of nothing
            raise no_tasks_error([given if given is not None else found.root])
        writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        else:  # interrupted while the writer was being made: its files are this process's
            discard_own(path)
            discard_own(path, ".spool")
        if keeper is not None:
            keeper.abort()
        elif cache is not None:
            discard_own(cache)
        raise
    finally:
        found.close()
    if keeper is not None:
        try:
            keeper.commit()
        except BaseException:
            keeper.abort()
            raise
    return found.summary


def _write_items(found: Harvest, writer: Writer) -> None:
    for item in found.items():
        if isinstance(item, Run):
            writer.add_run(item)
        else:
            writer.add(item)


def _write_tasks(tasks: Iterable[HarvestedTask], path: Path, kind: Format) -> HarvestSummary:
    summary = HarvestSummary(path.parent)
    writer: Writer | None = None
    try:
        writer = open_writer(path, kind)
        for task in tasks:
            entry = _entry_of(task)
            writer.add(entry)
            summary.note(entry, True)
        writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        else:
            discard_own(path)
            discard_own(path, ".spool")
        raise
    return summary


def _entry_of(task: HarvestedTask) -> Entry:
    record = task.model_dump(mode="json", exclude={"attempts"})
    entry = Entry(task.path, task.attempts.group, "", 0.0, task.state_name, None, record)
    entry.attempts = task.attempts.model_dump(mode="json")
    return entry


def load_archive(path: str | Path, fmt: str | None = None) -> list[HarvestedTask]:
    """Load the tasks of a JSON or JSON Lines archive.

    Raises:
        MissingFileError: there is no such file.
        MetadataError: it is not an archive (names the record and field).
        InputError: it is CSV or Parquet, which do not load back into tasks.
    """
    source = Path(path)
    kind = format_for(source, fmt)
    if kind not in (Format.JSON, Format.JSONL):
        raise InputError(
            f"a {kind.value} archive is a flat table and does not load back into tasks",
            hint="archive to json or jsonl to load the tasks again",
        )
    try:
        raw = source.read_bytes()
    except FileNotFoundError as exc:
        raise MissingFileError("no such archive", path=source) from exc
    except OSError as exc:
        raise MetadataError(f"cannot read the archive: {exc.strerror}", path=source) from exc
    # Python's parser, not pydantic's: names that are not UTF-8 are archived as
    # lone surrogates (\udcxx), which only it reads back
    if kind is Format.JSON:
        data = _parse(source, raw)
        try:
            return ARCHIVE_ADAPTER.validate_python(data)
        except ValidationError as exc:
            raise invalid(exc, source) from exc
    return [_line(source, number, line) for number, line in _lines(raw)]


def _parse(source: Path, raw: bytes, line: int | None = None) -> Any:
    where = "" if line is None else f"line {line}: "
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MetadataError(
            f"{where}not an archive: {exc}",
            path=source,
            hint="write it again with autojob harvest",
        ) from exc


def _lines(raw: bytes) -> Iterable[tuple[int, bytes]]:
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def _line(source: Path, number: int, line: bytes) -> HarvestedTask:
    try:
        return HarvestedTask.model_validate(_parse(source, line, number))
    except ValidationError as exc:
        error = invalid(exc, source)
        raise MetadataError(
            f"line {number}: {error.message}", path=source, field=error.field, hint=error.hint
        ) from exc
