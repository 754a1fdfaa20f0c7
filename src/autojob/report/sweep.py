"""The results of a sweep: a chosen output against a chosen parameter.

``--plot OUTPUT:PARAM`` names two dotted fields of the harvest records. A
field not at the top of a record is looked up as ``--where`` looks it up (in
``metadata``, then ``outputs``), then in the task's inputs (``task_inputs``),
so ``outputs.energy:cutoff`` finds ``cutoff`` in the outputs or the inputs.

Only the newest attempt of each task group counts, as the status index says
(its path and state come from there too). Of a task, only the plotted fields
are kept, in a cache beside the report (``.<report name>.plot-cache.json``):
per task, its state, the stamp of its files as a harvest's cache takes it
(:mod:`autojob.harvest.cache`: the directory's mtime, and when a full check is
due, each watched file's mtime and size) and the value of each field. The next
report with the same fields reads again only the tasks whose stamp or state
changed: idle, running and lost tasks are kept as the ended ones are, and no
record is parsed for the others. The cache is dropped whole when the fields,
the root, the harvesters or the autojob version differ; it is replaced
atomically, and only when the report is written.

A task that cache does not hold is taken, where one is given, from the cache
of a harvest of the same tree (beside its archive) if the task is there in the
same state with the same stamp: its record is parsed only up to its outputs.
Otherwise its files are read as a harvest reads them, but only those the
fields can be in: ``task.json``, ``inputs.json`` and what the harvesters that
run on its class read (``outputs.json``, ...), not its state records,
accounting, history or task group; a ``task.json`` the metadata model refuses
is read as any other (a harvest lists it as a problem, but no value changes).
A field that may be elsewhere in a record (``state.*``, ``scheduler.*``,
``history``, ``harvesters``, ``problems``) makes the whole record read.
``attempts`` is not among the fields: a record read here holds none, as the
task's own files say nothing of it.

A report makes a :class:`FieldReader` before it collects the status and hands
its visitor to the status walk, which calls it for each task it lists (every
task when the tree is walked, those re-read when an index is brought up to
date): the fields are then read there, from the plot cache or the task's
files, with the listing the walk made, so a first report reads the tree once
as a harvest does (the attempts a restart replaced are read too, as which one
is newest is known only after the walk; only the newest's lines are kept).
Not where a harvest's cache of the tree is beside the archive (its lines are
cheaper than the files), nor where the whole record is read (its state may
change once the scheduler is asked). A task whose state changed after the walk
is looked up again as above.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob.__about__ import __version__
from autojob.errors import InputError
from autojob.harvest.cache import cache_header, cache_path, check_files_now
from autojob.harvest.collect import Reader
from autojob.harvest.conditions import Condition, is_mapping
from autojob.harvest.entries import rel_of
from autojob.harvest.harvesting import make_reader
from autojob.store.atomic import write_atomic
from autojob.store.collector import collector_paused
from autojob.store.state import TaskState
from autojob.store.status_index import StatusReport, TaskVisitor, newest_rows

__all__ = [
    "FieldReader",
    "PlotSpec",
    "SweepPoints",
    "Sweeps",
    "lookup",
    "parse_plot",
    "plot_cache_path",
    "sweep_points",
]

logger = logging.getLogger(__name__)
#: the cache's format: a cache of another is not used
CACHE_FORMAT = 1

#: a harvest's cache this small (bytes) is read for any number of tasks
SMALL_CACHE = 1 << 20
#: bytes of a harvest's cache read in the time one task's files are (about 60 µs)
CACHE_BYTES_PER_READ = 4000

#: records whose fields are noted, to name the nearest when a plot's field is in none
NOTED_RECORDS = 1000


@dataclass(frozen=True)
class PlotSpec:
    """One sweep plot: ``output`` (y) against ``parameter`` (x)."""

    output: str
    parameter: str

    def __str__(self) -> str:
        return f"{self.output}:{self.parameter}"


@dataclass
class SweepPoints:
    """The points of one plot, per state of the attempt they come from."""

    spec: PlotSpec
    points: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, state, path
    missing: int = 0  # newest attempts without both fields as numbers


def parse_plot(text: str) -> PlotSpec:
    """``OUTPUT:PARAM`` as a :class:`PlotSpec`.

    Raises:
        InputError: not two non-empty dotted fields joined by one colon.
    """
    output, colon, parameter = text.partition(":")
    if not colon or not output.strip() or not parameter.strip() or ":" in parameter:
        raise InputError(
            f"--plot {text!r} is not OUTPUT:PARAM",
            field="--plot",
            hint="name a result and the parameter it was swept over, e.g. "
            "--plot outputs.energy:cutoff",
        )
    return PlotSpec(output.strip(), parameter.strip())


def lookup(record: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """A dotted field of a harvest record, looked up as the module says."""
    return _Field(name).lookup(record)


class _Field:
    """A dotted field, split once, looked up in many records."""

    def __init__(self, name: str) -> None:
        self.condition = Condition(name, "")
        parts = name.split(".")
        self.in_inputs = parts[1:] if parts[0] == "task_inputs" else parts

    def lookup(self, record: Mapping[str, Any]) -> tuple[bool, Any]:
        found, value = self.condition.lookup(record)
        if found:
            return found, value
        inputs = record.get("inputs")
        value = inputs.get("task_inputs") if is_mapping(inputs) else None
        for part in self.in_inputs:
            if not is_mapping(value) or part not in value:
                return False, None
            value = value[part]
        return True, value


def plot_cache_path(report: Path) -> Path:
    """The cache of plotted fields kept beside ``report``."""
    return report.with_name(f".{report.name}.plot-cache.json")


@dataclass
class Sweeps:
    """The points of every plot, where the values came from, and the cache to keep."""

    plots: list[SweepPoints]
    read: int = 0  # tasks whose record was read from their files
    cached: int = 0  # tasks whose values came from the cache
    cache: _PlotCache | None = None
    harvested: int = 0  # tasks whose values came from a harvest's cache

    def keep(self) -> None:
        """Write the cache for the next report (once the report is written)."""
        if self.cache is not None:
            self.cache.save()


def sweep_points(
    status: StatusReport, specs: list[PlotSpec], report: Path, archive: Path | None = None
) -> Sweeps:
    """The points of every plot, for the newest attempts of ``status``'s task groups.

    The values come from the cache beside ``report`` where a task is
    unchanged, else from the harvest cache beside ``archive`` (if given, and
    made by a harvest of the same tree) where the task is unchanged since
    that harvest, else from the task's files: only those the fields are in.
    :meth:`Sweeps.keep` writes the cache anew for the next report.
    :class:`FieldReader` does the same while the status is collected.

    Raises:
        InputError: a field of a plot is in no record (the message names the
            fields the records have that come closest).
    """
    return FieldReader(status.root, specs, report, archive).points(status)


#: a task's fields read during the status walk: its line (state, stamp or None when it is
#: not to be kept, values), and whether its files were read (else the plot cache held it)
_Seen = tuple[list[Any], bool]


class FieldReader:
    """The plotted fields of a tree's tasks, read where the status walk lists them.

    Made before the status is collected, its :attr:`visitor` is given to
    :func:`~autojob.store.status_index.collect`: for each task the walk reads,
    it takes the fields from the plot cache where that holds the task
    unchanged, else from the task's files, with the listing of its directory
    the walk made. A first report then reads the tree in one pass, as a
    harvest does. :meth:`points` takes the fields of the newest attempts from
    what was read there (if their state is still the one read), the others as
    :func:`sweep_points` says.
    """

    def __init__(
        self, root: Path, specs: list[PlotSpec], report: Path, archive: Path | None = None
    ) -> None:
        self.specs = specs
        self.names = list(
            dict.fromkeys(name for spec in specs for name in (spec.parameter, spec.output))
        )
        self.reader = make_reader(root, strict=False, magic=False, harvesters=None)
        self.cache = _PlotCache(plot_cache_path(report), self.reader, self.names)
        self.fields = _Fields(self.names)
        self.archive = archive
        self.seen: dict[str, _Seen] = {}

    @property
    def visitor(self) -> TaskVisitor | None:
        """What the status walk is to call for each task it reads; None: read the fields after.

        None where a field may be anywhere in a record (its state among them,
        which asking the scheduler may change after the walk), and where a
        harvest of the same tree left its cache beside ``archive``: a line of
        it costs about half as much as a task's files, for the tasks the plot
        cache lacks.
        """
        if self.fields.whole:
            return None
        if self.archive is not None and _harvest_header(cache_path(self.archive), self.reader):
            return None
        return self._visit

    def _visit(
        self, top: str, rel: str, names: set[str], group: str | None, state: TaskState
    ) -> None:
        value = state.state.value
        kept = self.cache.lookup(top, rel, value)
        if kept is None:
            kept = self.cache.fields_of(top, rel, value, names, group, self.fields)
            self.seen[rel] = (kept, True)
        else:
            self.seen[rel] = (kept, False)

    def points(self, status: StatusReport) -> Sweeps:
        """The points of every plot, for the newest attempts of ``status``'s task groups.

        Raises:
            InputError: as :func:`sweep_points`.
        """
        with collector_paused():  # many values and records, no garbage cycles
            return self._points(status)

    def _points(self, status: StatusReport) -> Sweeps:
        cache, reader, fields, archive = self.cache, self.reader, self.fields, self.archive
        index = {name: number for number, name in enumerate(self.names)}
        sweeps = [(SweepPoints(s), index[s.parameter], index[s.output]) for s in self.specs]
        paths, states, groups = (status.columns[c] for c in ("path", "state", "group"))
        prefix = str(status.root) + os.sep
        rows = newest_rows(status)
        found, missing = self._known(status, rows)
        if missing and archive is not None and _worth_reading(cache_path(archive), len(missing)):
            wanted = {rel: states[rows[place]] for rel, place in missing.items()}
            harvested = _harvested(cache_path(archive), reader, wanted, fields, cache)
            for rel, stamp, values in harvested:
                found[missing.pop(rel)] = cache.take(rel, wanted[rel], stamp, values)
        for rel, place in missing.items():
            row = rows[place]
            found[place] = cache.read(prefix + rel, rel, states[row], groups[row], fields)
        for row, values in zip(rows, found, strict=True):
            for sweep, x, y in sweeps:
                at, value = values[x], values[y]
                if at is None or value is None:
                    sweep.missing += 1
                else:
                    sweep.points.append((at, value, states[row], paths[row]))
        for sweep, _, _ in sweeps:
            if not sweep.points:
                raise _unknown_field(sweep.spec, _fields_of(status, reader))
        return Sweeps([s for s, _, _ in sweeps], cache.reads, cache.hits, cache, cache.taken)

    def _known(
        self, status: StatusReport, rows: Sequence[int]
    ) -> tuple[list[list[float | None]], dict[str, int]]:
        """The fields of the tasks in ``rows`` the walk read or the plot cache holds.

        Returns them in the order of ``rows`` (empty for the others), and the
        others: path -> place in that list.
        """
        cache, seen = self.cache, self.seen
        paths, states = status.columns["path"], status.columns["state"]
        prefix = str(status.root) + os.sep
        found: list[list[float | None]] = []
        missing: dict[str, int] = {}
        for row in rows:
            rel, state = paths[row], states[row]
            early = seen.get(rel)
            if early is not None and early[0][0] == state:
                values: list[float | None] | None = cache.settle(rel, *early)
            else:  # not read by the walk, or its state changed since (the scheduler said so)
                values = cache.values(prefix + rel, rel, state)
            if values is None:
                missing[rel] = len(found)
            found.append(values or [])
        return found, missing


class _Fields:
    """The plotted fields, and which sections of a record they can be found in."""

    def __init__(self, names: list[str]) -> None:
        self.fields = [_Field(name) for name in names]
        firsts = {name.split(".")[0] for name in names}
        #: a field may be at the top of the record, outside the sections read apart
        self.whole = bool(firsts & _ELSEWHERE)
        #: a field may be in the outputs (found after those in the metadata)
        self.outputs = self.whole or bool(firsts - {"path", "metadata", "inputs"})

    def values(self, record: Mapping[str, Any]) -> list[float | None]:
        """The value of each field in ``record`` (None where it is not a number)."""
        return [_number(*f.lookup(record)) for f in self.fields]


#: the fields at the top of a harvest record besides path, metadata, inputs and outputs
_ELSEWHERE = frozenset({"state", "scheduler", "history", "harvesters", "problems"})
#: the sections of a record read apart, as they begin a record the harvest cache holds
_SECTIONS = ("path", "metadata", "inputs", "outputs")
_decode_at = json.JSONDecoder().raw_decode


def _worth_reading(path: Path, wanted: int) -> bool:
    """Whether to read the harvest cache ``path`` for ``wanted`` tasks, not their files.

    It is read whole, line by line: for a few tasks of a large tree (those
    changed since the last report) their own files are read sooner.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return size <= SMALL_CACHE or wanted * CACHE_BYTES_PER_READ >= size


def _harvested(
    path: Path, reader: Reader, wanted: dict[str, str], fields: _Fields, plot: _PlotCache
) -> Iterator[tuple[str, str, list[float | None]]]:
    """The fields of the ``wanted`` tasks (path: state) the harvest cache ``path`` holds.

    Only a task whose line is in the state wanted and whose files are as the
    line's stamp says counts (its directory, or every watched file once the
    harvest's last such check is old, as that harvest's next run would check
    them); its record is parsed up to its outputs where the fields are in the
    first sections. Yields each task's path, stamp and values.
    """
    try:
        stream = path.open(encoding="utf-8", newline="\n")
    except OSError:
        return
    with stream:
        header = _header_of(stream.readline(), reader)
        if header is None:
            logger.info("%s: made by another harvest; not used", path)
            return
        verified = header["verified"]
        checked = float(verified) if isinstance(verified, int | float) else None
        every_file = check_files_now(checked, verify=False)
        same = reader.unchanged if every_file else reader.same_directory
        if not every_file and checked is not None:  # its tasks' files were last all checked then
            plot.checked_before(checked)
        prefix = reader.root + os.sep
        for line in stream:
            parts = line.split("\t", 9)
            if len(parts) != 10 or parts[0] != "T" or not line.endswith("}\n"):
                continue
            try:
                rel = rel_of(parts[1]) if parts[1].startswith('"') else parts[1]
            except ValueError:  # not a path the cache wrote: the task is read
                continue
            if wanted.get(rel) != parts[7] or not same(prefix + rel, parts[8]):
                continue
            record = _sections(parts[9][:-1], fields.whole)
            if record is not None:
                yield rel, parts[8], fields.values(record)


def _harvest_header(path: Path, reader: Reader) -> dict[str, Any] | None:
    """The header of the harvest cache ``path``, if there is one made for ``reader``."""
    try:
        with path.open(encoding="utf-8", newline="\n") as stream:
            line = stream.readline()
    except (OSError, ValueError):
        return None
    return _header_of(line, reader)


def _header_of(line: str, reader: Reader) -> dict[str, Any] | None:
    """The header line of a harvest cache, if made by a harvest as ``reader`` reads."""
    try:
        header = json.loads(line)
        verified = header.pop("verified")
    except (ValueError, AttributeError, KeyError, TypeError):
        return None
    if header != cache_header(reader):
        return None
    return {**header, "verified": verified}


def _sections(text: str, whole: bool) -> dict[str, Any] | None:
    """The record ``text`` (compact JSON) as a dict: whole, or its first sections alone."""
    try:
        if whole or not text.startswith('{"path":'):
            found = json.loads(text)
            if not isinstance(found, dict):
                return None
            found.pop("attempts", None)  # as a task read from its files: see the module
            return found
        record: dict[str, Any] = {}
        at = 1
        while True:
            key, at = _decode_at(text, at)
            if text[at] != ":":
                return None
            record[key], at = _decode_at(text, at + 1)
            if key == _SECTIONS[-1] or text[at] != ",":
                return record
            at += 1
    except (ValueError, IndexError, TypeError):
        return None


#: a task's line in the cache: its state, the stamp of its files, then each field's value
_Kept = list[Any]
#: the types of a field's value in a task's line (a number, or null)
_VALUE_TYPES = frozenset({float, int, type(None)})


class _PlotCache:
    """The plotted fields of each task, read from the cache and kept for the next one."""

    def __init__(self, path: Path, reader: Reader, names: list[str]) -> None:
        self.path = path
        self.reader = reader
        self.header: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "autojob": __version__,
            "root": reader.root,
            "harvesters": [h.identity for h in reader.harvesters],
            "watched": list(reader.watched),
            "fields": names,
        }
        self.width = 2 + len(names)  # of a task's line
        self.old: dict[str, _Kept] = {}
        self.new: dict[str, _Kept] = {}
        self.changed = True  # the file must be written again
        self.reads = 0  # tasks read from their files
        self.hits = 0  # tasks whose values the cache held
        self.taken = 0  # tasks whose values came from a harvest's cache
        verified = self._load()
        self.check_files = check_files_now(verified, verify=False)
        if self.check_files:  # when every file was checked is kept for the next report
            self.changed = True
        self.header["verified"] = reader.started_ns / 1e9 if self.check_files else verified
        self.same = reader.unchanged if self.check_files else reader.same_directory

    def _load(self) -> float | None:
        """Read the cache if it fits this report; when its files were last all checked."""
        try:
            found = json.loads(self.path.read_bytes())
            header, tasks = found["header"], found["tasks"]
            verified = header.pop("verified")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            logger.warning("%s: unreadable; the tasks are read again", self.path)
            return None
        if header != self.header or not isinstance(tasks, dict):
            logger.info("%s: made for other fields or another tree; not used", self.path)
            return None
        if not all(map(self._fits, tasks.values())):
            logger.warning(
                "%s: a task's line is not the cache's; the tasks are read again", self.path
            )
            return None
        self.old = tasks
        self.changed = False
        return float(verified) if isinstance(verified, int | float) else None

    def _fits(self, kept: Any) -> bool:
        """Whether ``kept`` is a task's line: state, stamp, a number or null per field."""
        return (
            type(kept) is list  # as json.loads makes them: checked in C, one a task
            and len(kept) == self.width
            and type(kept[0]) is str
            and type(kept[1]) is str
            and _VALUE_TYPES.issuperset(map(type, kept[2:]))
        )

    def lookup(self, top: str, rel: str, state: str) -> _Kept | None:
        """The line of the task in ``top``, if the cache holds it unchanged, in ``state``."""
        kept = self.old.get(rel)
        if kept is None or kept[0] != state or not self.same(top, kept[1]):
            return None
        return kept

    def values(self, top: str, rel: str, state: str) -> list[float | None] | None:
        """The fields of the task in ``top``, if the cache holds it unchanged, in ``state``."""
        kept = self.lookup(top, rel, state)
        return None if kept is None else self.settle(rel, kept, False)

    def settle(self, rel: str, kept: _Kept, read: bool) -> list[float | None]:
        """Count the line ``kept`` of a newest attempt, keep it if it has a stamp; its values.

        ``read``: it was read from the task's files, else the cache held it.
        """
        if read:
            self.changed = True
            self.reads += 1
            if kept[1] is None:  # a problem met, or files changed too recently: not kept
                return kept[2:]
        else:
            self.hits += 1
        self.new[rel] = kept
        return kept[2:]

    def checked_before(self, when: float) -> None:
        """Some tasks kept were last checked whole at ``when`` (seconds since the epoch)."""
        verified = self.header["verified"]
        if verified is not None and when < verified:
            self.header["verified"] = when

    def take(
        self, rel: str, state: str, stamp: str, values: list[float | None]
    ) -> list[float | None]:
        """Keep the fields of a task as a harvest's cache holds them (``stamp``: its files)."""
        self.changed = True
        self.taken += 1
        self.new[rel] = [state, stamp, *values]
        return values

    def read(
        self, top: str, rel: str, state: str, group: str | None, fields: _Fields
    ) -> list[float | None]:
        """The fields of the task in ``top``, read from its files (and kept, if settled)."""
        try:
            names = set(os.listdir(top))
        except OSError:
            return self.settle(rel, [state, None, *[None] * len(fields.fields)], True)
        return self.settle(rel, self.fields_of(top, rel, state, names, group, fields), True)

    def fields_of(
        self, top: str, rel: str, state: str, names: set[str], group: str | None, fields: _Fields
    ) -> _Kept:
        """The line of the task in ``top`` (holding ``names``), read from its files.

        Its stamp is None where a problem was met reading them or they changed
        too recently to be trusted. Only the task's metadata, inputs and
        outputs (its harvesters) are read, unless a field may be elsewhere in
        its record: then the whole record.
        """
        if not fields.whole:
            record, _, stamp = self.reader.read_sections(top, rel, names, outputs=fields.outputs)
            return [state, stamp, *fields.values(record)]
        record = self.reader.read(top, rel, names, group).record or {}
        stamp = None if record.get("problems") else self.reader.stamp(top, names)
        return [state, stamp, *fields.values(record)]

    def save(self) -> None:
        """Write the cache for the next report, if anything changed."""
        if not self.changed and len(self.new) == len(self.old):
            return
        document = {"header": self.header, "tasks": self.new}
        write_atomic(self.path, json.dumps(document, separators=(",", ":")))


def _record(reader: Reader, top: str, rel: str, group: str | None) -> dict[str, Any] | None:
    """The harvest record of the task in ``top`` (None if it is gone)."""
    try:
        names = set(os.listdir(top))
    except OSError:
        return None
    return reader.read(top, rel, names, group).record


def _number(found: bool, value: Any) -> float | None:
    """A plottable value: a number (not a bool), as a float."""
    if found and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _fields_of(status: StatusReport, reader: Reader) -> dict[str, set[str]]:
    """The fields the first tasks' records have, to name those closest to a field not found."""
    seen: dict[str, set[str]] = {"outputs": set(), "inputs": set()}
    paths, groups = status.columns["path"], status.columns["group"]
    for row in newest_rows(status)[:NOTED_RECORDS]:
        record = _record(reader, str(status.root / paths[row]), paths[row], groups[row])
        if record is not None:
            _note_fields(record, seen)
    return seen


def _note_fields(record: Mapping[str, Any], seen: dict[str, set[str]]) -> None:
    outputs = record.get("outputs")
    if isinstance(outputs, Mapping):
        seen["outputs"].update(f"outputs.{key}" for key in outputs)
    inputs = record.get("inputs", {}).get("task_inputs")
    if isinstance(inputs, Mapping):
        seen["inputs"].update(str(key) for key in inputs)


def _unknown_field(spec: PlotSpec, seen: dict[str, set[str]]) -> InputError:
    known = sorted(seen["outputs"] | seen["inputs"])
    close = difflib.get_close_matches(spec.output, known, n=3) + difflib.get_close_matches(
        spec.parameter, known, n=3
    )
    shown = ", ".join(dict.fromkeys(close or known[:8])) or "none: no task has outputs yet"
    return InputError(
        f"--plot {spec}: no task has both fields as numbers",
        field="--plot",
        hint=f"fields the tasks have: {shown}",
    )
