"""Restart one task: a new attempt in the same task group (``autojob restart``).

The new attempt copies the old one's inputs with the changes asked for
(``--set`` into any section, ``--scheduler`` into ``scheduler_inputs``),
carries over the files named by ``files_to_carry_over`` and ``files_to_copy``
(files larger than a size limit stay behind), and is linked to the old one by
a ``restart-of:<task id>`` tag (the budget of automatic restarts counts these)
and the ``previous_attempt`` field of its metadata. Once the new attempt
exists, the files named by the old attempt's ``files_to_delete`` are removed
from the old directory, never anything outside it: an entry through a
symbolic link leading out of the task is refused (and reported), a link is
removed, never its target. A task directory holding ``autojob.stop`` is never
restarted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autojob import SETTINGS
from autojob.create.new import as_new_attempt, check_not_live, load_source
from autojob.errors import AutojobError, InputError
from autojob.store.paths import delete_inside
from autojob.store.state import State, read_state
from autojob.store.task_lock import task_lock
from autojob.store.write import create_task_tree, relative_inside

__all__ = ["Restart", "check_not_stopped", "parse_size", "restart_task"]

logger = logging.getLogger(__name__)
UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass
class Restart:
    """A restarted task: the old directory, the new one and the files moved.

    ``refused``: the entries of ``files_to_delete`` not deleted, each with why.
    """

    old: Path
    new: Path
    task_id: str
    deleted: list[Path] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def parse_size(text: str) -> int:
    """Bytes in ``text`` (``500``, ``10K``, ``2.5M``, ``1G``; binary units).

    Raises:
        InputError: the text is not a size.
    """
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (raw[:-1], raw[-1]) if raw[-1:] in UNITS else (raw, "")
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if value < 0:
        raise InputError(
            f"{text!r} is not a size",
            field="--carry-over-limit",
            hint="write e.g. 500K, 20M or 1G",
        )
    return int(value * UNITS[unit])


def check_not_stopped(task_dir: Path, action: str) -> None:
    """Refuse ``action`` when the task (or its study) holds a stop file."""
    for place in (task_dir, task_dir.parent.parent):
        stop = place / SETTINGS.STOP_FILE
        if stop.exists():
            raise InputError(
                f"not {action}: {stop} is present",
                path=task_dir,
                hint=f"remove {stop} to allow it again",
            )


def _to_delete(task_dir: Path, names: Sequence[str]) -> list[PurePosixPath]:
    return [relative_inside(name, task_dir, "task_inputs.files_to_delete") for name in names]


def _delete_files(task_dir: Path, targets: Sequence[PurePosixPath]) -> tuple[list[Path], list[str]]:
    """Delete ``targets`` inside ``task_dir``; return those deleted and the refusals."""
    deleted = []
    refused = []
    own = {SETTINGS.TASK_METADATA_FILE, SETTINGS.INPUTS_FILE}
    for rel in targets:
        why = None
        if rel.parts and rel.parts[0] in own and len(rel.parts) == 1:
            why = "it is one of the task's own files; the old attempt would no longer be a task"
        else:
            done, why = delete_inside(task_dir, rel)
            if done:
                deleted.append(task_dir / rel)
        if why is not None:
            message = f"{task_dir}: files_to_delete entry {str(rel)!r} not deleted: {why}"
            logger.warning("%s", message)
            refused.append(message)
    return deleted, refused


def restart_task(
    task_dir: Path,
    *,
    assignments: Sequence[str] = (),
    scheduler: Sequence[str] = (),
    size_limit: int | None = None,
    label: str | None = None,
    force: bool = False,
) -> Restart:
    """Create a new attempt of the task in ``task_dir`` in its task group.

    A queued or running task is refused unless ``force``; then nothing is
    deleted from it (its ``files_to_delete`` stay), nor from a task submitted
    again while the new attempt was being made.

    Raises:
        InputError: the task is stopped, queued or running, or a change is
            malformed or invalid.
        MetadataError: the task's files are broken.
    """
    check_not_stopped(task_dir, "restarted")
    live = check_not_live(task_dir, "restarted", force=force)
    source = load_source(task_dir)
    changes = [*assignments, *(f"scheduler_inputs.{s}" for s in scheduler)]
    task = as_new_attempt(source, label, changes, previous=task_dir, resume=True)
    meta = task.task_metadata
    old_id = source.task_metadata.task_id
    meta.tags = [*meta.tags, f"restart-of:{old_id}"]
    setattr(meta, "previous_attempt", old_id)  # noqa: B010  (an extra field of task.json)
    inputs = source.task_inputs
    doomed = _to_delete(task_dir, inputs.files_to_delete)  # refuse unsafe names first
    carried = list(dict.fromkeys([*inputs.files_to_carry_over, *inputs.files_to_copy]))
    try:
        new = create_task_tree(
            task,
            task_dir.parent,
            src=task_dir,
            files_to_carry_over=carried,
            carry_over_limit=size_limit,
            inherited=source.input_sections(),
        )
    except OSError as exc:
        raise AutojobError(f"cannot create the new attempt: {exc}", path=task_dir) from exc
    # under the task's lock, as the task may have been submitted again since it was
    # checked: a claim or a start waits until the files are gone, and a task queued
    # or running by now keeps them
    with task_lock(task_dir):
        if not live and read_state(task_dir).state in (State.QUEUED, State.RUNNING):
            logger.warning("%s: submitted again meanwhile: nothing is deleted from it", task_dir)
            live = True
        deleted, refused = ([], []) if live else _delete_files(task_dir, doomed)
    for path in deleted:
        logger.info("deleted %s (files_to_delete)", path)
    return Restart(task_dir, new, meta.task_id, deleted, refused)
