"""Paths a task's inputs name, resolved without ever leaving the task directory.

``files_to_copy``, ``files_to_carry_over`` and ``files_to_delete`` name files
relative to a task directory. A name is refused when it is absolute or climbs
out with ``..``; and since a task's command may make symbolic links (``scratch
-> /scratch/user/run42`` is common on clusters), every name is also resolved
component by component (``os.lstat``): a path that passes through a link
leading out of the task is never followed. A link named itself is taken as a
link: copied as one when it points inside the task, left behind when it points
outside, and removed (never its target) when deleted.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autojob.errors import UnsafePathError

__all__ = [
    "CarryOver",
    "carry_over",
    "delete_inside",
    "escape_reason",
    "merge_entries",
    "relative_inside",
    "tree_size",
]

logger = logging.getLogger(__name__)


def relative_inside(
    name: str, root: Path, field: str = "task_inputs.files_to_carry_over"
) -> PurePosixPath:
    """``name`` as a relative path that stays inside ``root``, by its text.

    Raises:
        UnsafePathError: ``name`` is empty, absolute or climbs out with ``..``.
    """
    rel = PurePosixPath(name)
    if not name or "\0" in name or rel.is_absolute() or ".." in rel.parts:
        raise UnsafePathError(
            f"{name!r} is not a relative path inside the task directory",
            path=root,
            field=field,
            hint="name files relative to the task directory, without '..'",
        )
    return rel


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _link_text(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def escape_reason(root: Path, rel: PurePosixPath, *, last: bool = False) -> str | None:
    """Why ``root/rel`` leads out of ``root`` through a symbolic link, or None.

    Each directory on the way is checked with ``os.lstat``; a link among them
    must resolve inside ``root``. The last component is checked too when
    ``last`` (to follow it), else it is taken as it is (a link is a link).
    """
    real_root = os.path.realpath(root)
    parts = rel.parts if last else rel.parts[:-1]
    current = Path(root)
    for part in parts:
        current = current / part
        try:
            info = os.lstat(current)
        except OSError:
            return None  # nothing further exists: nothing to follow
        if stat.S_ISLNK(info.st_mode) and not _within(os.path.realpath(current), real_root):
            shown = current.relative_to(root)
            return f"{str(shown)!r} is a link to {_link_text(current)!r}, outside the task"
    return None


def merge_entries(names: Iterable[PurePosixPath]) -> list[PurePosixPath]:
    """The entries once each, parents before what they hold (``scratch`` before ``scratch/a``)."""
    unique = {PurePosixPath(*rel.parts) for rel in names if rel.parts}
    return sorted(unique, key=lambda rel: (len(rel.parts), rel.parts))


def tree_size(path: Path, limit: float | None = None) -> int:
    """Bytes in the regular files under ``path`` (links not followed).

    Stops counting once over ``limit`` (the total is then larger still).
    """
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size if stat.S_ISREG(info.st_mode) else 0
    total = 0
    pending = [os.fspath(path)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
        if limit is not None and total > limit:
            break
    return total


@dataclass
class CarryOver:
    """What carrying files over did: the copies made and what was left behind, and why."""

    copied: list[Path] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def leave(self, src: Path, name: str, why: str) -> None:
        """Note (and log) a file left behind."""
        message = f"{src}: {name} not carried over: {why}"
        self.left.append(message)
        logger.warning("%s", message)


def carry_over(
    src: Path,
    dest: Path,
    names: Sequence[str],
    *,
    size_limit: float | None = None,
    reserved: frozenset[str] = frozenset(),
    field: str = "task_inputs.files_to_carry_over",
) -> CarryOver:
    """Copy the files and directories ``names`` (relative) from ``src`` into ``dest``.

    Entries are merged: one inside a directory already carried is not copied
    again. Missing entries, entries over ``size_limit`` bytes (a directory by
    its total size), entries through a link out of ``src``, links pointing out
    of it (also inside a carried directory) and the top-level names in
    ``reserved`` (autojob's own files) are left behind with a warning.

    Raises:
        UnsafePathError: a name is absolute or climbs out with ``..``.
    """
    result = CarryOver()
    entries = merge_entries(relative_inside(name, src, field) for name in names)
    real_src = os.path.realpath(src)
    done: list[PurePosixPath] = []
    for rel in entries:
        if any(rel.is_relative_to(parent) for parent in done):
            continue  # inside a directory carried already
        if _carry_one(src, dest, rel, real_src, size_limit, reserved, result):
            done.append(rel)
    return result


def _carry_one(
    src: Path,
    dest: Path,
    rel: PurePosixPath,
    real_src: str,
    size_limit: float | None,
    reserved: frozenset[str],
    result: CarryOver,
) -> bool:
    name = str(rel)
    if rel.parts[0] in reserved:
        result.leave(src, name, "it is one of autojob's own files, written anew")
        return False
    escape = escape_reason(src, rel)
    if escape is not None:
        result.leave(src, name, escape)
        return False
    origin, target = src.joinpath(rel), dest.joinpath(rel)
    try:
        info = os.lstat(origin)
    except FileNotFoundError:
        result.leave(src, name, "not found")
        return False
    if stat.S_ISLNK(info.st_mode) and not _within(os.path.realpath(origin), real_src):
        result.leave(src, name, f"a link to {_link_text(origin)!r}, outside the task")
        return False
    if size_limit is not None and not stat.S_ISLNK(info.st_mode):
        size = tree_size(origin, size_limit)
        if size > size_limit:
            result.leave(src, name, f"over the size limit ({size_limit:.0f} bytes)")
            return False
    target.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISDIR(info.st_mode):
        shutil.copytree(origin, target, symlinks=True, ignore=_links_out(src, real_src, result))
    else:
        shutil.copy2(origin, target, follow_symlinks=False)
    result.copied.append(target)
    return True


def _links_out(src: Path, real_src: str, result: CarryOver) -> Callable[[str, list[str]], set[str]]:
    """A ``copytree`` ignore function leaving behind links that point out of ``src``."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        left = set()
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path) and not _within(os.path.realpath(path), real_src):
                shown = os.path.relpath(path, src)
                result.leave(src, shown, f"a link to {_link_text(Path(path))!r}, outside the task")
                left.add(name)
        return left

    return ignore


def delete_inside(root: Path, rel: PurePosixPath) -> tuple[bool, str | None]:
    """Delete ``root/rel`` without ever removing anything outside ``root``.

    A link is removed, never its target; a directory with what it holds
    (``shutil.rmtree`` follows no link). Returns whether something was deleted,
    and why not where it was refused.
    """
    if not rel.parts:
        return False, "it names the task directory itself"
    escape = escape_reason(root, rel)
    if escape is not None:
        return False, escape
    target = root.joinpath(rel)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return False, None
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(target)
    else:
        target.unlink()
    return True, None
