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
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from autojob import SETTINGS
from autojob.errors import AutojobError, MetadataError
from autojob.store.atomic import AtomicFile, dump_json, locked, register_children
from autojob.store.completed_tasks import append_lines
from autojob.store.json_stream import list_items, object_head

__all__ = [
    "DIRECT_BYTES",
    "SHARE",
    "list_many_task_groups",
    "list_task_groups",
    "pending_task_groups",
    "write_listing",
]

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
            append_lines(pending, ids, what="the pending task groups")
            if _size(pending) < SHARE * _size(study_meta):
                return False
            ids = ()
        _merge(study_dir, ids)
    return True


_MARK = "\x00task_groups\x00"
_CHUNK = 4096


def write_listing(
    write: Callable[[str], object], path: Path, data: Mapping[str, Any], ids: Iterable[str]
) -> int:
    """Write ``data`` as :func:`dump_json` lays it out, its ``task_groups`` being ``ids``.

    The ids are written as they come, a chunk at a time, so a list of a
    million is never held. Returns how many were written.
    """
    document = {**data, "task_groups": _MARK}
    head, _, tail = dump_json(document, path).partition(json.dumps(_MARK))
    write(head)
    count, chunk = 0, []
    for ident in ids:
        chunk.append(("," if count else "[") + "\n        " + json.dumps(ident))
        count += 1
        if len(chunk) == _CHUNK:
            write("".join(chunk))
            chunk.clear()
    write("".join(chunk) + ("\n    ]" if count else "[]") + tail)
    return count


def list_many_task_groups(study_dir: Path, ids: Iterable[str]) -> None:
    """List many new task groups (in place already) in ``study.json``, in one rewrite.

    The ids already listed and the pending ones come first, then ``ids``,
    written as they come. The old list is read from ``study.json`` one id at
    a time as it is copied (:mod:`~autojob.store.json_stream`): memory holds
    neither list, only the pending ids (at most :data:`SHARE` of the file).
    The pending file is removed afterwards.

    Raises:
        MetadataError: ``study.json`` is broken or its ``task_groups`` is not a list.
    """
    study_meta = study_dir / SETTINGS.STUDY_METADATA_FILE
    with locked(study_meta):
        head = object_head(study_meta, "task_groups")
        if "task_groups" in head.members and head.occurrence is None:
            raise MetadataError(
                "is not a list",
                path=study_meta,
                field="task_groups",
                hint="make it a list of the ids of the directories inside",
            )
        waiting = dict.fromkeys(pending_task_groups(study_dir))

        def every() -> Iterator[str]:
            for ident in list_items(study_meta, head):
                if waiting:
                    waiting.pop(ident, None)
                yield ident
            yield from list(waiting)
            yield from ids

        try:
            with AtomicFile(study_meta) as out:
                write_listing(
                    lambda text: out.write(text.encode("utf-8")),
                    study_meta,
                    head.members,
                    every(),
                )
        except OSError as exc:
            raise AutojobError(
                f"cannot write the file: {exc.strerror or exc}",
                path=study_meta,
                hint="check that the directory is writable and has space",
            ) from exc
        with contextlib.suppress(FileNotFoundError):
            os.unlink(study_dir / SETTINGS.PENDING_TASK_GROUPS_FILE)
