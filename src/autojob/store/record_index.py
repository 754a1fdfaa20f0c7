"""An index of a large ``record.txt``, so that asking for one id reads little of it.

Advancing a task asks whether an id is in its study's record: to record the
task once, and to check the group a dependent step waits on. The record grows
by one line a task, so searching it whole made each advance dearer as the
study grew (a million ids are 37 MB: 30-50 ms a search, against about 7 ms
for the rest of an advance). Once the record passes :data:`INDEX_FROM` bytes,
its ids are also kept in :data:`BUCKETS` files under
``<study>/.autojob/record/``, each id in the one its CRC-32 names, and a
question reads one of them: a 256th of the record.

The record stays the truth; the index is a cache of it:

- ``state`` says what the buckets hold: the record's device, inode, size
  (up to its last complete line), modification time, and the CRC-32 of its
  first 4 KiB and of the 64 bytes before that size.
- Lines appended since (by an advance, by hand, by another tool) are added to
  their buckets before a question is answered.
- Any other change (the record truncated, replaced or edited, the same size
  with another time), a state that cannot be read, or a missing bucket
  rebuilds the index from the record.
- The buckets are written first and the state last: after a crash the
  lines since the old state are added again, so a bucket may hold an id
  twice but never misses one; a state cut short does not parse, and the
  index is built again.

Deleting the directory loses nothing. The caller holds the study's workflow
lock; the index takes its own lock as well, for any other caller.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.store.atomic import locked

__all__ = ["BUCKETS", "INDEX_FROM", "RecordIndex", "index_dir", "read_range", "search_indexed"]

logger = logging.getLogger(__name__)

#: a record this large (bytes) or larger is indexed; below it a search of the
#: whole record costs well under a millisecond (about 28,000 ids)
INDEX_FROM = 1 << 20
#: how many bucket files the ids are spread over
BUCKETS = 256
_VERSION = 1
_HEAD = 4096  # bytes at the record's start whose CRC the state keeps
_TAIL = 64  # bytes before the covered end whose CRC the state keeps


def index_dir(study_dir: Path) -> Path:
    """Where the index of a study's record is kept."""
    return study_dir / SETTINGS.INDEX_DIR / "record"


def _bucket_of(task_id: bytes) -> str:
    return f"{zlib.crc32(task_id) % BUCKETS:02x}"


def read_range(fd: int, start: int, end: int) -> bytes:
    """The bytes ``[start, end)`` of ``fd`` (fewer where the file ends first)."""
    parts = []
    while start < end:
        part = os.pread(fd, end - start, start)
        if not part:
            break
        parts.append(part)
        start += len(part)
    return b"".join(parts)


def _write_in_place(path: Path, data: bytes) -> None:
    """Overwrite the small file ``path`` with ``data`` (no rename: one ``pwrite``).

    Cheaper than a rename at every advance. A crash mid-write leaves a state
    that does not parse, or one whose checks fail against the record: both
    rebuild the index.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _ids(data: bytes) -> Iterable[bytes]:
    """The ids of complete lines, stripped (a line may have spaces around its id)."""
    for line in data.split(b"\n"):
        stripped = line.strip()
        if stripped:
            yield stripped


class RecordIndex:
    """The bucket files of one study's record, brought up to date when opened.

    ``fd`` and ``status``: the record, open for reading, and its ``fstat``.
    Used through :func:`search_indexed`, which holds the index's lock.
    """

    def __init__(self, study_dir: Path, fd: int, status: os.stat_result) -> None:
        self.dir = index_dir(study_dir)
        self.fd = fd
        self.status = status

    def _state(self) -> dict[str, int] | None:
        try:
            data = json.loads((self.dir / "state").read_bytes())
        except (OSError, ValueError):
            return None
        keys = ("version", "dev", "ino", "size", "mtime_ns", "head", "tail")
        if not isinstance(data, dict) or any(type(data.get(k)) is not int for k in keys):
            return None
        return data

    def _crcs(self, size: int) -> tuple[int, int]:
        head = zlib.crc32(read_range(self.fd, 0, min(_HEAD, size)))
        tail = zlib.crc32(read_range(self.fd, max(0, size - _TAIL), size))
        return head, tail

    def _covers_a_prefix(self, state: dict[str, int]) -> bool:
        """Whether the state still describes the record's first ``size`` bytes."""
        st, size = self.status, state["size"]
        if (state["version"], state["dev"], state["ino"]) != (_VERSION, st.st_dev, st.st_ino):
            return False
        if size > st.st_size or (size == st.st_size and state["mtime_ns"] != st.st_mtime_ns):
            return False
        return self._crcs(size) == (state["head"], state["tail"])

    def update(self) -> None:
        """Bring the buckets up to the record's last complete line."""
        state = self._state()
        if state is not None and self._covers_a_prefix(state):
            start = state["size"]
            if start == self.status.st_size:
                return
            self._add(start, self.status.st_size, fresh=False)
        else:
            (self.dir / "state").unlink(missing_ok=True)
            self._add(0, self.status.st_size, fresh=True)

    def _add(self, start: int, end: int, *, fresh: bool) -> None:
        data = read_range(self.fd, start, end)
        covered = start + data.rfind(b"\n") + 1
        buckets: dict[str, list[bytes]] = {}
        for task_id in _ids(data[: covered - start]):
            buckets.setdefault(_bucket_of(task_id), []).append(task_id)
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        flags |= os.O_TRUNC if fresh else os.O_APPEND
        names = [f"{b:02x}" for b in range(BUCKETS)] if fresh else sorted(buckets)
        for name in names:
            fd = os.open(self.dir / name, flags, 0o666)
            try:
                lines = b"".join(line + b"\n" for line in buckets.get(name, []))
                while lines:  # a write may take part of it
                    lines = lines[os.write(fd, lines) :]
            finally:
                os.close(fd)
        head, tail = self._crcs(covered)
        st = self.status
        state = {"version": _VERSION, "dev": st.st_dev, "ino": st.st_ino, "size": covered}
        state |= {"mtime_ns": st.st_mtime_ns, "head": head, "tail": tail}
        _write_in_place(self.dir / "state", (json.dumps(state) + "\n").encode())

    def contains(self, task_id: str) -> bool | None:
        """Whether ``task_id`` is an id of the record; None when its bucket is missing."""
        key = task_id.encode("utf-8")
        try:
            data = (self.dir / _bucket_of(key)).read_bytes()
        except FileNotFoundError:
            return None
        return data.startswith(key + b"\n") or data.find(b"\n" + key + b"\n") >= 0


def search_indexed(study_dir: Path, task_id: str, fd: int, status: os.stat_result) -> bool | None:
    """Whether ``task_id`` is in the record open as ``fd``, asked of its index.

    None when the index cannot be used (its directory cannot be written):
    the caller then searches the record itself.
    """
    index = RecordIndex(study_dir, fd, status)
    try:
        index.dir.mkdir(parents=True, exist_ok=True)
        with locked(index.dir / "state"):
            index.update()
            found = index.contains(task_id)
            if found is None:  # a bucket deleted by hand: build them again
                (index.dir / "state").unlink(missing_ok=True)
                index.update()
                found = index.contains(task_id)
    except (OSError, AutojobError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        logger.warning(
            "%s: cannot keep the record's index (%s); searching it whole", index.dir, why
        )
        return None
    return found
