"""A study's list of task groups, kept in time that does not grow with the study.

``study.json`` lists the ids of the study's task groups. Rewriting it for each
new group costs time in the groups it lists already, so a workflow advancing
from each of N tasks (one new group each) would write N²/2 ids. Instead:

- while ``study.json`` is small (:data:`DIRECT_BYTES`), new ids are added to
  it at once, as before;
- in a larger study they are appended, one line each and one ``write`` per
  call, to ``task_groups.pending`` beside it, and merged into ``study.json``
  (one atomic rewrite, then the pending file removed) once the pending file
  reaches :data:`SHARE` of ``study.json``'s size. Each id is then written a
  bounded number of times, whatever the size of the study.

Everything happens under ``study.json``'s lock. A group is listed after it is
in place, so a reader never finds a listed group missing; a group not listed
yet (pending, or its writer died before listing it) names the study in its
``task_group.json``, and the loader takes it as the study's own. A crash
between the rewrite and the removal of the pending file leaves ids listed
twice over, and the next merge adds each once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.store.atomic import locked, register_children

__all__ = ["DIRECT_BYTES", "SHARE", "list_task_groups", "pending_task_groups"]

#: ``study.json`` up to this size is rewritten for every new group
DIRECT_BYTES = 16 * 1024
#: pending ids are merged when their file reaches this share of ``study.json``
SHARE = 1 / 8


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def pending_task_groups(study_dir: Path) -> list[str]:
    """The ids waiting in the study's pending file, in order (whole lines only)."""
    try:
        raw = (study_dir / SETTINGS.PENDING_TASK_GROUPS_FILE).read_bytes()
    except FileNotFoundError:
        return []
    complete = raw[: raw.rfind(b"\n") + 1].decode("utf-8", "replace")
    return [line for line in complete.splitlines() if line]


def _append(pending: Path, ids: Sequence[str]) -> None:
    data = "".join(f"{ident}\n" for ident in ids).encode("utf-8")
    try:
        fd = os.open(pending, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AutojobError(
            f"cannot append to the pending task groups: {exc.strerror}",
            path=pending,
            hint="check that the study directory is writable",
        ) from exc
    if written != len(data):  # pragma: no cover - a full disk
        raise AutojobError("the pending ids were cut short (disk full?)", path=pending)


def _merge(study_dir: Path, ids: Sequence[str]) -> None:
    """Rewrite ``study.json`` with the pending ids and ``ids``; remove the pending file."""
    pending = study_dir / SETTINGS.PENDING_TASK_GROUPS_FILE
    everything = [*pending_task_groups(study_dir), *ids]
    register_children(
        study_dir / SETTINGS.STUDY_METADATA_FILE, "task_groups", everything, lock=False
    )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pending)


def list_task_groups(study_dir: Path, ids: Sequence[str], *, merge: bool = False) -> bool:
    """List the new task groups ``ids`` (already in place) in the study's ``study.json``.

    At once in a small study (or with ``merge``, which also merges what is
    pending), else through the pending file (see the module's description).
    Returns whether ``study.json`` was rewritten.

    Raises:
        MetadataError: ``study.json`` is broken.
        AutojobError: a file cannot be written.
    """
    study_meta = study_dir / SETTINGS.STUDY_METADATA_FILE
    pending = study_dir / SETTINGS.PENDING_TASK_GROUPS_FILE
    if not ids and not merge:
        return False
    with locked(study_meta):
        if not merge and _size(study_meta) > DIRECT_BYTES:
            _append(pending, ids)
            if _size(pending) < SHARE * _size(study_meta):
                return False
            ids = ()
        _merge(study_dir, ids)
    return True
