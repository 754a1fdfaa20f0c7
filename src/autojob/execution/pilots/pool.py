"""A pool: the tasks a set of pilots shares, and the files the pilots keep.

``submit --pilots N`` writes one pool per resource group under the tree's
``.autojob/pilots/<plan>-<n>/``::

    pool.json        what the pilots run: executor, tasks at once, pilot time,
                     budget, allowed states, the root the submit was given
    tasks.json       the tasks: directory, script, time limit (seconds)
    pilots.sh        the job script of a scheduler's pilots
    submitted.jsonl  one line per submit of pilots: job ids, count, time
    budget.json      pilots and pilot-seconds submitted so far (under budget.lock)
    pilots/<id>.json each pilot's record: start, host, pid, deadline, heartbeat,
                     tasks done, its own CPU seconds, and its end
    replaced/<id>    a pilot replaced already (by itself or by who found it dead)
    revive.lock      held while a pool with no live pilot gets new ones
    finished         present once every task ended (or went to another submit)
                     while no pilot lived: the pool is never revived again
    cancel           present once the pool is cancelled: no pilot claims more

A task itself is claimed by a pilot exactly as ``submit`` claims it (its
``autojob.queued`` under its lock), with executor ``pilot``, the pilot's id as
its job id, and the pool's directory.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from autojob.store.atomic import write_atomic
from autojob.store.state import process_alive, read_record, this_host
from autojob.store.walk import tree_dir

__all__ = [
    "HEARTBEAT",
    "NAME",
    "POOL_VARIABLE",
    "Budget",
    "Pool",
    "PoolSettings",
    "deadline_margin",
    "pilot_file_name",
    "pools_under",
]

#: the executor name recorded with every task a pilot runs
NAME = "pilot"
#: the environment variable naming, to a task a pilot runs, the pilot's pool
POOL_VARIABLE = "AUTOJOB_PILOT_POOL"
#: seconds between a worker's heartbeats (its pilot record rewritten)
HEARTBEAT = 2.0
#: seconds of silence after which a local pilot on another host is taken for dead
#: (only its heartbeat can tell there; generous, as a shared file system may lag)
LOCAL_SILENCE = 15.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def deadline_margin(pilot_seconds: float | None) -> float:
    """Seconds a pilot keeps free before its end: 10 % of its time, at most 30 s."""
    return 0.0 if pilot_seconds is None else min(30.0, 0.1 * pilot_seconds)


def pilot_file_name(pilot_id: str) -> str:
    """The file name of a pilot's record (its id, reduced to safe characters)."""
    return _SAFE.sub("_", pilot_id) + ".json"


@dataclass
class Budget:
    """How many pilots, and pilot-hours, a pool may use in all (None: no limit)."""

    max_pilots: int | None = None
    pilot_hours: float | None = None

    def allows(self, pilots: int, seconds: float, more_seconds: float) -> bool:
        """Whether one more pilot of ``more_seconds`` fits after ``pilots`` and ``seconds``."""
        if self.max_pilots is not None and pilots + 1 > self.max_pilots:
            return False
        return (
            self.pilot_hours is None or (seconds + more_seconds) / 3600 <= self.pilot_hours + 1e-9
        )


@dataclass
class PoolSettings:
    """What ``pool.json`` holds."""

    executor: str  # the executor the pilots are jobs of: local, slurm, sge
    pilots: int  # pilots submitted at first
    per_pilot: int  # tasks a pilot runs at once
    pilot_seconds: float | None  # each pilot's time (None: no limit)
    allowed: list[str]  # the task states a pilot may claim
    root: str  # the directory the submit was given
    budget: Budget = field(default_factory=Budget)
    #: the pilots' scheduler inputs (time, cores and memory for -j tasks)
    scheduler: dict[str, Any] = field(default_factory=dict)
    python: str = ""  # the interpreter a pilot runs its worker with
    created: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolSettings:
        """Read back what :func:`asdict` wrote."""
        budget = Budget(**data.pop("budget", {}))
        return cls(budget=budget, **data)


class Pool:
    """The directory of one pool and the files in it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._settings: PoolSettings | None = None

    # -- files ---------------------------------------------------------------

    @property
    def settings(self) -> PoolSettings:
        """``pool.json``, read once."""
        if self._settings is None:
            data = json.loads((self.dir / "pool.json").read_text(encoding="utf-8"))
            self._settings = PoolSettings.from_json(data)
        return self._settings

    def write(self, settings: PoolSettings, tasks: list[tuple[str, str, float | None]]) -> None:
        """Write a new pool's settings and task list."""
        (self.dir / "pilots").mkdir(parents=True, exist_ok=True)
        write_atomic(self.dir / "tasks.json", json.dumps(tasks))
        write_atomic(self.dir / "pool.json", json.dumps(asdict(settings), indent=1) + "\n")
        self._settings = settings

    def tasks(self) -> list[tuple[Path, str, float | None]]:
        """The pool's tasks: directory, script, time limit."""
        raw = json.loads((self.dir / "tasks.json").read_text(encoding="utf-8"))
        return [(Path(p), s, t) for p, s, t in raw]

    @property
    def cancelled(self) -> bool:
        """Whether ``autojob cancel`` stopped the pool."""
        return (self.dir / "cancel").exists()

    def cancel(self) -> None:
        """Mark the pool cancelled: no pilot claims a task afterwards."""
        write_atomic(self.dir / "cancel", json.dumps({"time": time.time()}) + "\n")

    def record_submit(self, job_ids: list[str], count: int) -> None:
        """Append one submit of pilots to ``submitted.jsonl``."""
        line = json.dumps({"job_ids": job_ids, "count": count, "time": time.time()}) + "\n"
        with open(self.dir / "submitted.jsonl", "a", encoding="utf-8") as stream:
            stream.write(line)

    def submits(self) -> list[dict[str, Any]]:
        """Each submit of pilots, oldest first."""
        try:
            text = (self.dir / "submitted.jsonl").read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def submitted_pilots(self) -> list[str]:
        """The ids of every pilot submitted to the pool (array elements one by one)."""
        executor = self.settings.executor
        ids: list[str] = []
        for submit in self.submits():
            count = int(submit.get("count", 0))
            for job in submit.get("job_ids", []):
                if executor == "slurm":
                    ids += [f"{job}_{i}" for i in range(count)]
                elif executor == "sge":
                    ids += [f"{job}.{i + 1}" for i in range(count)]
                else:
                    ids.append(str(job))
        return ids

    # -- the budget ----------------------------------------------------------

    def take_budget(self, count: int) -> int:
        """Reserve up to ``count`` pilots within the budget; return how many may go.

        Under ``budget.lock``, so pilots ending at once never overspend it.
        """
        seconds_each = self.settings.pilot_seconds or 0.0
        with FileLock(self.dir / "budget.lock"):
            used = read_record(self.dir / "budget.json") or {}
            pilots, seconds = int(used.get("pilots", 0)), float(used.get("seconds", 0.0))
            granted = 0
            while granted < count and self.settings.budget.allows(
                pilots + granted, seconds + granted * seconds_each, seconds_each
            ):
                granted += 1
            if granted:
                data = {"pilots": pilots + granted, "seconds": seconds + granted * seconds_each}
                write_atomic(self.dir / "budget.json", json.dumps(data) + "\n")
        return granted

    def give_back(self, count: int) -> None:
        """Return ``count`` reserved pilots that could not be submitted."""
        seconds_each = self.settings.pilot_seconds or 0.0
        with FileLock(self.dir / "budget.lock"):
            used = read_record(self.dir / "budget.json") or {}
            pilots = max(0, int(used.get("pilots", 0)) - count)
            seconds = max(0.0, float(used.get("seconds", 0.0)) - count * seconds_each)
            data = {"pilots": pilots, "seconds": seconds}
            write_atomic(self.dir / "budget.json", json.dumps(data) + "\n")

    def budget_used(self) -> dict[str, Any]:
        """Pilots and pilot-seconds submitted so far."""
        return read_record(self.dir / "budget.json") or {"pilots": 0, "seconds": 0.0}

    # -- pilot records -------------------------------------------------------

    def pilot_path(self, pilot_id: str) -> Path:
        """Where the record of pilot ``pilot_id`` is kept."""
        return self.dir / "pilots" / pilot_file_name(pilot_id)

    def write_pilot(self, pilot_id: str, data: dict[str, Any]) -> None:
        """Write (or rewrite: the heartbeat) a pilot's record."""
        write_atomic(self.pilot_path(pilot_id), json.dumps(data) + "\n")

    def pilot(self, pilot_id: str) -> dict[str, Any] | None:
        """A pilot's record, None when it has not started (or never will)."""
        return read_record(self.pilot_path(pilot_id))

    def pilots(self) -> Iterator[dict[str, Any]]:
        """Every pilot's record."""
        folder = self.dir / "pilots"
        for name in sorted(os.listdir(folder)) if folder.is_dir() else []:
            record = read_record(folder / name)
            if record:
                yield record


def local_pilot_alive(record: dict[str, Any], now: float) -> bool:
    """Whether a pilot run with no scheduler lives: its process, else its heartbeat.

    On this host the kernel tells (pid and start ticks); from another host
    only the heartbeat can, and a pilot silent for three heartbeats is gone.
    """
    if record.get("ended") is not None:
        return False
    if record.get("host") == this_host():
        pid, ticks = record.get("pid"), record.get("start_ticks")
        return process_alive(
            pid if isinstance(pid, int) else None,
            start_ticks=ticks if isinstance(ticks, int) else None,
        )
    beat = record.get("heartbeat")
    return isinstance(beat, int | float) and now - beat < LOCAL_SILENCE


def pools_under(root: Path) -> list[Pool]:
    """The pools kept in the tree at ``root`` (its ``.autojob/pilots/``)."""
    folder = tree_dir(root) / "pilots"
    if not folder.is_dir():
        return []
    return [Pool(p) for p in sorted(folder.iterdir()) if (p / "pool.json").is_file()]
