"""Restart one task: a new attempt in the same task group (``autojob restart``).

The new attempt copies the old one's inputs with the changes asked for
(``--set`` into any section, ``--scheduler`` into ``scheduler_inputs``),
carries over the files named by ``files_to_carry_over`` and ``files_to_copy``
(files larger than a size limit stay behind), and is linked to the old one by
a ``restart-of:<task id>`` tag (the budget of automatic restarts counts these)
and the ``previous_attempt`` field of its metadata. Once the new attempt
exists, the files named by the old attempt's ``files_to_delete`` are removed
from the old directory. A task directory holding ``autojob.stop`` is never
restarted.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autojob import SETTINGS
from autojob.create.new import as_new_attempt, load_source
from autojob.errors import AutojobError, InputError
from autojob.store.write import create_task_tree, relative_inside

__all__ = ["Restart", "check_not_stopped", "parse_size", "restart_task"]

logger = logging.getLogger(__name__)
UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass
class Restart:
    """A restarted task: the old directory, the new one and the files moved."""

    old: Path
    new: Path
    task_id: str
    deleted: list[Path] = field(default_factory=list)


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


def _to_delete(task_dir: Path, names: Sequence[str]) -> list[Path]:
    return [
        task_dir.joinpath(relative_inside(name, task_dir, "task_inputs.files_to_delete"))
        for name in names
    ]


def _delete_files(targets: Sequence[Path]) -> list[Path]:
    deleted = []
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            continue
        deleted.append(target)
    return deleted


def restart_task(
    task_dir: Path,
    *,
    assignments: Sequence[str] = (),
    scheduler: Sequence[str] = (),
    size_limit: int | None = None,
    label: str | None = None,
) -> Restart:
    """Create a new attempt of the task in ``task_dir`` in its task group.

    Raises:
        InputError: the task is stopped, or a change is malformed or invalid.
        MetadataError: the task's files are broken.
    """
    check_not_stopped(task_dir, "restarted")
    source = load_source(task_dir)
    changes = [*assignments, *(f"scheduler_inputs.{s}" for s in scheduler)]
    task = as_new_attempt(source, label, changes)
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
        )
    except OSError as exc:
        raise AutojobError(f"cannot create the new attempt: {exc}", path=task_dir) from exc
    deleted = _delete_files(doomed)
    for path in deleted:
        logger.info("deleted %s (files_to_delete)", path)
    return Restart(task_dir, new, meta.task_id, deleted)
