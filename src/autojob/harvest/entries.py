"""What a harvest passes along: a task's entry, a directory's note, attempts.

An :class:`Entry` holds one task's record, as a dict just read or as the JSON
text the cache kept; a :class:`DirNote` a directory the walk passed (kept in
the cache); a :class:`Run` many tasks the cache holds unchanged. The tasks of
one task group are settled together: each gets its place among the group's
attempts, unless the cache already holds them, settled in the very same batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

__all__ = [
    "DirNote",
    "Entry",
    "Run",
    "attempts_of",
    "entry_of_line",
    "rel_of",
    "run_entries",
    "settle",
]


@dataclass(slots=True)
class Entry:
    """One harvested task, as JSON text or as a dict (converted on demand).

    ``stamp`` is what the cache compares to decide that the task is unchanged
    (None: the task is not cached); ``attempts`` is filled when its task group
    is complete. A task taken from the cache brings its whole record as the
    archive last held it (``full``), its cache ``line`` and the ``batch`` it
    was settled in (group, number of tasks, first task): while its task group
    holds the same tasks, both are written again as they are.
    """

    rel: str
    group: str | None
    created: str
    queued: float
    state: str
    stamp: str | None
    record: dict[str, Any] | None = None
    body: str | None = None
    attempts: dict[str, Any] = field(default_factory=dict)
    full: str | None = None
    line: str | None = None
    batch: tuple[str | None, int, str] | None = None
    first: str = ""

    def text(self) -> str:
        """The record without ``attempts``, as compact JSON."""
        if self.body is None:
            if self.record is None and self.full is not None:
                self.body = self.full[: self.full.rfind(_ATTEMPTS)] + "}"
            else:
                self.body = json.dumps(self.record, separators=(",", ":"))
        return self.body

    def full_text(self) -> str:
        """The whole record, ``attempts`` last, as compact JSON."""
        if self.full is None:
            self.full = f'{self.text()[:-1]},"attempts":{_attempts_text(self.attempts)}}}'
        return self.full

    def data(self) -> dict[str, Any]:
        """The whole record as a dict (shared: do not change it)."""
        if self.record is None:
            self.record = json.loads(self.full_text())
            self.attempts = self.record["attempts"]
        self.record["attempts"] = self.attempts
        return self.record

    def forget(self) -> None:
        """Drop what the cache said of the task's place among its attempts."""
        if self.full is not None:
            self.text()
            self.full = None
        self.line = None


@dataclass(slots=True)
class DirNote:
    """A directory that is not a task, as the walk passed it: kept in the cache.

    ``stamp`` is its mtime; ``line`` its cache line when it came from the cache.
    """

    rel: str
    stamp: int
    is_group: bool
    subdirs: list[str]
    line: str | None = None


@dataclass(slots=True)
class Run:
    """Consecutive tasks the cache holds unchanged, passed on in one piece.

    A run holds whole task groups (each directory's line, then its tasks') and
    tasks outside groups, as the walk would meet them; its records need no
    settling. ``lines`` are the cache lines, in walk order; ``fulls`` and
    ``states`` the record and state of each task (:func:`run_entries` makes
    an :class:`Entry` of each, where one is needed).
    """

    lines: list[str] = field(default_factory=list)
    fulls: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)

    @property
    def last(self) -> str:
        """The path of the run's last task."""
        for line in reversed(self.lines):
            kind, rel, _ = line.split("\t", 2)
            if kind == "T":
                return rel_of(rel)
        return ""


#: how the attempts of a record begin in its compact JSON (it is the last field)
_ATTEMPTS = ',"attempts":{"group":'


def settle(entries: Sequence[Entry]) -> None:
    """Give each task of a batch (one task group's) its place among the attempts.

    When every task came from the cache settled in this very batch (same
    group, as many tasks, the same first one), their places are unchanged:
    the records the cache holds stand as they are.
    """
    first = entries[0]
    batch = (first.group, len(entries), first.rel)
    for entry in entries:
        entry.first = first.rel
    if first.batch == batch and all(entry.batch == batch for entry in entries):
        return
    for entry in entries:
        entry.forget()
    attempts_of(entries)


def attempts_of(entries: Sequence[Entry]) -> None:
    """Give each task of one task group its place among the group's attempts."""
    order = sorted(entries, key=lambda e: (e.created, e.queued, e.rel))
    paths = [e.rel for e in order]
    for number, entry in enumerate(order, start=1):
        entry.attempts = {
            "group": entry.group,
            "number": number,
            "count": len(order),
            "current": number == len(order),
            "tasks": paths,
        }


def _attempts_text(attempts: dict[str, Any]) -> str:
    """``attempts`` as compact JSON (as json.dumps writes it, faster)."""
    group = attempts["group"]
    where = "null" if group is None else _quote(group)
    tasks = ",".join(_quote(t) for t in attempts["tasks"])
    current = "true" if attempts["current"] else "false"
    return (
        f'{{"group":{where},"number":{attempts["number"]},"count":{attempts["count"]},'
        f'"current":{current},"tasks":[{tasks}]}}'
    )


def rel_of(text: str) -> str:
    """A path as the cache writes it (see ``cache._rel_text``), read back."""
    value = json.loads(text) if text.startswith('"') else text
    if not isinstance(value, str):
        raise ValueError(text)
    return value


def entry_of_line(rel: str, group: str | None, fields: list[str], line: str) -> Entry | None:
    """The entry of a task's cache line (``fields``: the line after its path), or None."""
    batch_group, count, first, created, queued, state, stamp, full = fields
    try:
        batch = (
            None if not batch_group else rel_of(batch_group),
            int(count),
            rel if first == rel else rel_of(first),
        )
        created = rel_of(created) if created.startswith('"') else created
        entry = Entry(rel, group, created, float(queued), state, stamp, None, None, {}, full, line)
    except ValueError:
        return None
    entry.batch = batch
    return entry


def run_entries(run: Run) -> Iterator[Entry]:
    """The entries of a run's tasks, settled as the cache holds them.

    A run took only lines whose place among their attempts is right; when to
    order attempts (date created, when queued) is not needed again, so a line
    whose fields for it do not parse still makes an entry.
    """
    for line in run.lines:
        kind, rel, rest = line[:-1].split("\t", 2)
        if kind != "T":
            continue
        rel = rel_of(rel)
        fields = rest.split("\t", 7)
        group = rel_of(fields[0]) if fields[0] else None
        entry = entry_of_line(rel, group, fields, line)
        if entry is None:
            state, stamp, full = fields[5:]
            entry = Entry(rel, group, "", 0.0, state, stamp, None, None, {}, full, line)
        yield entry
