"""Put input files into new task directories: checked first, then copied or linked.

Every file is checked before anything is written (:func:`check_input_files`): its
source must exist, and its target must be a relative path that stays inside the
task directory (no ``..``, no ``/`` at its start) and is none of autojob's own
files (``task.json``, ``inputs.json``, the task's script, the run records, the
history directory ...), nor inside another input file's target (a linked
directory would lead the copy out of the task). The files are then placed into
the task directory while it is still being built (:func:`place_input_files`),
so a task appears with its files or not at all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from autojob.bases.input_files import InputFile
from autojob.errors import AutojobError, MissingFileError, UnsafePathError
from autojob.store.names import check_name, reserved_reason

__all__ = ["check_input_files", "place_input_files"]


def _where(where: str | None) -> str:
    return f"{where}: " if where else ""


def _check_source(item: InputFile, field: str, where: str | None) -> None:
    if not os.path.exists(item.source):
        raise MissingFileError(
            f"{_where(where)}input file {os.fspath(item.source)!r} does not exist",
            path=item.source,
            field=field,
            hint="create it, or correct its path (relative to the spec file, or to the "
            "current directory for 'autojob new')",
        )


def _target_parts(item: InputFile, script: str, field: str, where: str | None) -> tuple[str, ...]:
    name = item.name
    rel = PurePosixPath(name)
    problem = None
    if not name or rel.is_absolute() or ".." in rel.parts or "\0" in name:
        problem = f"{_where(where)}input file target {name!r} would leave the task directory"
    else:
        reason = reserved_reason(rel.parts[0])
        if rel.parts[0] == script:
            reason = "it is the task's script"
        if reason is not None:
            problem = (
                f"{_where(where)}input file target {name!r} would replace one of autojob's "
                f"own files: {reason}"
            )
    if problem:
        raise UnsafePathError(
            problem,
            path=item.source,
            field=field,
            hint="give the file another target: a relative path inside the task, "
            "not a name autojob uses",
        )
    for part in rel.parts:
        check_name(part, Path(item.source), source=f"{_where(where)}input file target")
    return rel.parts


def check_input_files(
    files: Sequence[InputFile],
    *,
    script: str,
    fields: Sequence[str] | None = None,
    where: str | None = None,
) -> None:
    """Refuse input files that are missing or would land in an unsafe place.

    Args:
        files: The files of one task.
        script: The name of the task's script (no input file may take it).
        fields: Where each file was given (``files.0.src``, ``--copy``), for errors.
        where: Which task they are for (``combination 3 (x-4)``), for errors.

    Raises:
        MissingFileError: a source does not exist.
        UnsafePathError: a target leaves the task, takes one of autojob's names,
            or lies inside (or holds) another file's target.
    """
    taken: dict[tuple[str, ...], InputFile] = {}
    for index, item in enumerate(files):
        field = fields[index] if fields is not None else f"files.{index}"
        _check_source(item, field, where)
        parts = _target_parts(item, script, field, where)
        for other, first in taken.items():
            shorter = min(len(other), len(parts))
            if other[:shorter] == parts[:shorter]:
                raise UnsafePathError(
                    f"{_where(where)}input files {os.fspath(first.source)!r} and "
                    f"{os.fspath(item.source)!r} both go to {'/'.join(parts[:shorter])!r}",
                    path=item.source,
                    field=field,
                    hint="give each file its own target",
                )
        taken[parts] = item


def _remove_carried(path: str) -> None:
    """Remove what a clone carried over from its source to where an input file goes."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def place_input_files(files: Sequence[InputFile], folder: str) -> None:
    """Copy (or link) checked input files into the new task directory ``folder``.

    ``folder`` is being built: what is there (files a clone carried over from
    its source) is replaced by an input file of the same name.

    Raises:
        AutojobError: a file cannot be read or written (the caller removes the
            unfinished directory).
    """
    for item in files:
        parts = PurePosixPath(item.name).parts
        dest = os.path.join(folder, *parts)
        try:
            for end in range(1, len(parts)):  # never write through a carried link
                parent = os.path.join(folder, *parts[:end])
                if os.path.islink(parent):
                    os.unlink(parent)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            _remove_carried(dest)
            if item.link:
                os.symlink(os.path.abspath(item.source), dest)
            elif os.path.isdir(item.source):
                shutil.copytree(item.source, dest)
            else:
                shutil.copy2(item.source, dest)
        except OSError as exc:
            raise AutojobError(
                f"cannot put input file {os.fspath(item.source)!r} into the task: "
                f"{exc.strerror or exc}",
                path=item.source,
                hint="check that it is readable and that the disk has room",
            ) from exc
