"""What a task directory is, and how a tree of them is walked.

One definition serves discovery (``submit``, ``list``, ``cancel``), status and
harvesting:

- A directory is a **task** when it holds the task metadata file or the task
  inputs file (``task.json``, ``inputs.json``: files, not directories). Tasks
  do not nest: a task's subdirectories are its own files, never walked.
- A walk lists each directory once (``os.scandir``), follows no symbolic link
  (it cannot loop or leave the tree) and skips, by the start of their names,
  staging directories (trees being written), status indexes and run histories.
- A directory that cannot be listed is reported by one error,
  :func:`list_directory`'s :class:`~autojob.errors.AutojobError` naming it. A
  walk over the tasks it can reach (:func:`walk_task_dirs`: status, discovery)
  logs that error as a warning and goes on without the directory; a harvest,
  whose archive must not silently lack tasks, stops with it.
- A tree's own files (status index, journal, a scheduler's job scripts) live in
  ``.autojob/`` at the directory a command was given (:func:`tree_dir`),
  never inside a task directory: given a task, such a file goes beside it.
- A command given directories holding no task at all says so with one error,
  :func:`no_tasks_error`, and writes nothing there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from autojob import SETTINGS
from autojob.errors import AutojobError, InputError
from autojob.store.names import STAGING_PREFIX

__all__ = [
    "FoundTask",
    "has_tasks",
    "is_task_dir",
    "is_task_path",
    "list_directory",
    "no_tasks_error",
    "skipped_prefixes",
    "tree_dir",
    "walk_task_dirs",
]

logger = logging.getLogger(__name__)


def is_task_dir(files: Collection[str]) -> bool:
    """Whether a directory holding the files ``files`` is a task."""
    return SETTINGS.TASK_METADATA_FILE in files or SETTINGS.INPUTS_FILE in files


def is_task_path(path: str | Path) -> bool:
    """Whether the directory ``path`` is a task (holds its metadata or inputs file)."""
    return any(
        os.path.isfile(os.path.join(path, name))
        for name in (SETTINGS.TASK_METADATA_FILE, SETTINGS.INPUTS_FILE)
    )


def tree_dir(root: str | Path) -> Path:
    """The ``.autojob/`` directory of the tree at ``root``; never inside a task.

    The directory a command was given keeps the tree's status index, journal and
    a scheduler's job scripts; a task directory never holds one: given a task,
    job scripts go in the directory around it, and its status is read from its
    own files with no index.
    """
    top = Path(root)
    if is_task_path(top):
        top = Path(os.path.realpath(top)).parent
    return top / SETTINGS.INDEX_DIR


def has_tasks(root: str | Path) -> bool:
    """Whether any task directory lies under ``root`` (``root`` included)."""
    return next(walk_task_dirs(os.fspath(root)), None) is not None


def no_tasks_error(paths: Iterable[str | Path]) -> InputError:
    """The error of a command given directories that hold no task."""
    where = ", ".join(str(p) for p in paths) or "."
    return InputError(
        f"no tasks under {where} (a task is a directory holding {SETTINGS.INPUTS_FILE})",
        hint="give the directory of a task, task group, study or study group, "
        "or create tasks with 'autojob new' or 'autojob sweep'",
    )


def skipped_prefixes() -> tuple[str, ...]:
    """How the names of the directories a walk skips begin."""
    return (STAGING_PREFIX, SETTINGS.INDEX_DIR, SETTINGS.HISTORY_DIR)


def list_directory(top: str, *, ordered: bool = True) -> tuple[set[str], list[str]]:
    """The names in ``top``, and its subdirectories to walk, sorted.

    For a task directory the names are all its entries and there is nothing
    to walk; for another directory the names are its files only: its
    subdirectories, possibly very many, are held once, in the sorted list.
    ``ordered=False`` leaves them in the order the file system lists them,
    which visits them faster (in an order close to where they lie).

    Raises:
        AutojobError: the directory cannot be listed.
    """
    files = set()
    dirs = []
    try:
        with os.scandir(top) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    dirs.append(entry.name)
                else:
                    files.add(entry.name)
    except OSError as exc:
        raise AutojobError(
            f"cannot list the directory: {exc.strerror}",
            path=top,
            hint="check its permissions",
        ) from exc
    if SETTINGS.TASK_METADATA_FILE in files or SETTINGS.INPUTS_FILE in files:  # is_task_dir
        files.update(dirs)
        return files, []
    skip = skipped_prefixes()
    subdirs = [name for name in dirs if not name.startswith(skip)]
    del dirs
    if ordered:
        subdirs.sort()
    return files, subdirs


#: a task directory found by a walk: its path, its path below the root of the
#: walk, its entries, and the paths below the root of its task group and study
#: (None where there is none); a plain tuple, the cheapest to make per task
FoundTask = tuple[str, str, set[str], str | None, str | None]


def walk_task_dirs(
    top: str,
    rel: str = ".",
    group: str | None = None,
    study: str | None = None,
    *,
    ordered: bool = True,
) -> Iterator[FoundTask]:
    """Yield every task directory under ``top`` (``top`` included), in path order.

    ``rel`` is the path of ``top`` below the root of the walk (``"."`` at the
    root); ``group`` and ``study`` are those above ``top``, if any. A
    directory that cannot be listed is logged as a warning and skipped.
    ``ordered=False``: in the order the file system lists directories (see
    :func:`list_directory`).
    """
    meta, inputs = SETTINGS.TASK_METADATA_FILE, SETTINGS.INPUTS_FILE
    study_file, group_file = SETTINGS.STUDY_METADATA_FILE, SETTINGS.TASK_GROUP_METADATA_FILE
    sep = os.sep
    # the directory being walked: its subdirectories still to visit, its path
    # and path below the root (with a trailing separator), its group and study;
    # the stack holds the directories around it
    names: Iterator[str] = iter(())
    top_prefix = rel_prefix = ""
    stack: list[tuple[Iterator[str], str, str, str | None, str | None]] = []
    while True:
        try:
            files, subdirs = list_directory(top, ordered=ordered)
        except AutojobError as exc:
            logger.warning("%s; skipped", exc)
        else:
            if meta in files or inputs in files:  # is_task_dir
                yield top, rel, files, group, study
            elif subdirs:
                stack.append((names, top_prefix, rel_prefix, group, study))
                study = rel if study_file in files else study
                group = rel if group_file in files else group
                names, top_prefix = iter(subdirs), top + sep
                rel_prefix = "" if rel == "." else rel + sep
        name = next(names, None)
        while name is None:  # this directory is done: back to the one around it
            if not stack:
                return
            names, top_prefix, rel_prefix, group, study = stack.pop()
            name = next(names, None)
        top, rel = top_prefix + name, rel_prefix + name
