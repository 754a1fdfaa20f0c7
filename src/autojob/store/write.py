"""Write tasks, task groups, studies and study groups as directories.

Whole trees are built inside a hidden staging directory next to their final
place and then renamed into it, so a tree appears complete or not at all; a
failure (a bad template, a full disk, a missing input file) removes the
staging directory. A directory is renamed into place only where no directory
of that name exists (``renameat2`` with ``RENAME_NOREPLACE`` where the kernel
has it), so two writers never replace each other's work; a directory named
after its label falls back to the label and its id when another writer took
the name first. After a new directory is in place, its id is added to the
parent's metadata file under that file's lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import itertools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from autojob import SETTINGS
from autojob.bases.input_files import Files, InputFile
from autojob.errors import AutojobError, TreeError
from autojob.ids import set_unvalidated
from autojob.input_keys import check_input_document
from autojob.store.atomic import (
    dump_json,
    dump_model,
    read_json_object,
    register_child,
    write_atomic,
    write_atomic_bytes,
)
from autojob.store.input_files import check_input_files, place_input_files
from autojob.store.journal import note_changed
from autojob.store.json_stream import object_head
from autojob.store.load import read_inputs_sections
from autojob.store.names import STAGING_PREFIX, NameBook, check_dest, check_task_file
from autojob.store.paths import carry_over, relative_inside
from autojob.store.render import render_own_script, render_task_script
from autojob.store.state import process_alive, this_host
from autojob.store.study_list import list_many_task_groups, list_task_groups, write_listing
from autojob.store.task_script import SCRIPT_MODE, sources_digest, stamped
from autojob.task_group import TaskGroup

if TYPE_CHECKING:
    from autojob.bases.task_base import TaskBase
    from autojob.study import Study
    from autojob.study_group import StudyGroup

__all__ = [
    "Files",
    "add_task_groups",
    "carry_over_files",
    "create_task_group_tree",
    "create_task_tree",
    "groups_of",
    "make_dest",
    "relative_inside",
    "remove_abandoned_stages",
    "stream_task_groups",
    "write_study",
    "write_study_group",
    "write_task_files",
    "write_task_group",
]

logger = logging.getLogger(__name__)
FILE_MODE = 0o666

FilesOf = Callable[["TaskBase"], Sequence[InputFile]]
#: what a task file holds: text (UTF-8) or bytes
Content = str | bytes


# -- files of one task -----------------------------------------------------


def _task_documents(
    task: TaskBase, folder: str, inherited: Mapping[str, Any] | None = None
) -> list[tuple[str, Content, int]]:
    """Serialise a task's files, all before any is written.

    Its inputs are checked first (:mod:`autojob.input_keys`); ``inherited``:
    the sections of the task it was copied from, which are not judged again.
    The script is stamped with what it was rendered from
    (:mod:`autojob.store.task_script`).
    """
    script = check_task_file(task.task_inputs.task_script, folder, source="task_inputs.task_script")
    sections = task.input_sections()
    check_input_document(type(task), sections, inherited)
    inputs = os.path.join(folder, SETTINGS.INPUTS_FILE)
    meta = os.path.join(folder, SETTINGS.TASK_METADATA_FILE)
    inputs_text = dump_json(sections, inputs)
    meta_text = dump_model(task.task_metadata, meta)
    sources = sources_digest(inputs_text.encode("utf-8"), meta_text.encode("utf-8"))
    return [
        (inputs, inputs_text, FILE_MODE),
        *_own_documents(task, folder, script),
        (os.path.join(folder, script), stamped(render_task_script(task), sources), SCRIPT_MODE),
        # task.json last: its presence is what makes a directory a task
        (meta, meta_text, FILE_MODE),
    ]


def _own_documents(task: TaskBase, folder: str, script: str) -> list[tuple[str, Content, int]]:
    """The files of the task's class (``own_files``, ``own_scripts``), checked."""
    files = task.own_files()
    scripts = task.own_scripts()
    documents: list[tuple[str, Content, int]] = []
    taken = {script, SETTINGS.INPUTS_FILE, SETTINGS.TASK_METADATA_FILE}
    for name, content, mode in [
        *((name, content, FILE_MODE) for name, content in files.items()),
        *((name, render_own_script(task, t), SCRIPT_MODE) for name, t in scripts.items()),
    ]:
        plain = check_task_file(name, folder, source=f"{type(task).__name__} file")
        if plain in taken:
            raise TreeError(
                f"{type(task).__name__} would write {plain!r} twice",
                path=folder,
                hint="give its files and scripts names of their own",
            )
        taken.add(plain)
        documents.append((os.path.join(folder, plain), content, mode))
    return documents


def _sections_in(dest: Path) -> dict[str, Any] | None:
    try:
        return read_inputs_sections(dest)
    except AutojobError:
        return None


def write_task_files(task: TaskBase, dest: Path) -> list[Path]:
    """Write ``inputs.json``, the task script and ``task.json`` into ``dest``.

    Each file replaces any old one atomically; keys the old ``inputs.json``
    held are not judged again. Returns the files written.
    """
    documents = _task_documents(task, os.fspath(dest), _sections_in(dest))
    for path, text, mode in documents:
        if isinstance(text, bytes):
            write_atomic_bytes(Path(path), text, mode=mode)
        else:
            write_atomic(Path(path), text, mode=mode)
    return [Path(path) for path, _, _ in documents]


def _write_new(path: str | Path, text: Content, mode: int = FILE_MODE) -> None:
    """Create a new file (never replacing one); ``mode`` is masked by the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _write_metadata(folder: str, file_name: str, model: BaseModel) -> None:
    path = os.path.join(folder, file_name)
    _write_new(path, dump_json(model.model_dump(mode="json"), path))


# -- staging -----------------------------------------------------------------


@contextlib.contextmanager
def _staging(dest: Path, *, tidy: bool = True) -> Iterator[Path]:
    """Yield a hidden directory inside ``dest``, removed afterwards.

    A missing ``dest`` is created first, with its missing parents (as ``mkdir
    -p`` does); if the write then fails, the directories created are removed.
    ``tidy``: first remove the staging directories that dead writers left in
    ``dest`` (a listing of ``dest``; see :func:`remove_abandoned_stages`).
    """
    check_dest(dest)
    made = make_dest(dest)
    try:
        if tidy:
            remove_abandoned_stages(dest)
        try:
            prefix = f"{STAGING_PREFIX}{this_host()}-{os.getpid()}-"
            stage = Path(tempfile.mkdtemp(prefix=prefix, dir=dest))
        except OSError as exc:
            raise AutojobError(f"cannot create a directory: {exc.strerror}", path=dest) from exc
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        raise


def make_dest(dest: Path) -> list[Path]:
    """Create ``dest`` and its missing parents (``mkdir -p``); return those made, outermost first.

    Raises:
        TreeError: ``dest`` (or a directory above it) is a file.
        AutojobError: a directory cannot be created (permissions, read-only).
    """
    missing = []
    here = Path(os.path.abspath(dest))
    while not here.exists():
        missing.append(here)
        here = here.parent
    if not here.is_dir():
        raise TreeError(
            "destination is not a directory"
            if here == Path(os.path.abspath(dest))
            else f"cannot create the destination: {here} is a file",
            path=dest,
            hint="pass a directory, or a path to create under a directory",
        )
    made = []
    try:
        for directory in reversed(missing):
            os.mkdir(directory)
            made.append(directory)
    except OSError as exc:
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        raise AutojobError(f"cannot create the destination: {exc.strerror}", path=dest) from exc
    if made:
        logger.info("created the destination %s (it did not exist)", dest)
    return made


def remove_abandoned_stages(dest: Path) -> None:
    """Remove staging directories left by writers on this host that died.

    A writer killed before it published leaves its hidden staging directory
    (named after its host and pid); nothing in it was ever visible.
    """
    try:  # scanned, not listed: a study of a million groups is not held as names
        with os.scandir(dest) as entries:
            names = [e.name for e in entries if e.name.startswith(STAGING_PREFIX)]
    except OSError:
        return
    for name in names:
        owner, _, rest = name[len(STAGING_PREFIX) :].rpartition("-")[0].rpartition("-")
        if owner == this_host() and rest.isdigit() and not process_alive(int(rest)):
            logger.info("removing %s, left by a writer that died", dest / name)
            shutil.rmtree(dest / name, ignore_errors=True)


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not Linux, or a C library without it
        return None
    return function


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _rename_new(src: Path, dst: Path) -> bool:
    """Rename ``src`` to ``dst`` unless ``dst`` exists; whether it was renamed."""
    renameat2 = _renameat2()
    if renameat2 is not None:
        args = (_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if renameat2(*args) == 0:
            return True
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            return False
        if code not in (errno.ENOSYS, errno.EINVAL):  # else: the file system lacks the flag
            raise OSError(code, os.strerror(code), os.fspath(dst))
    if os.path.lexists(dst):
        return False
    try:
        os.rename(src, dst)
    except OSError as exc:  # another writer was quicker
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True


def _publish(staged: Path, final: Path, fallback: str | None = None) -> Path:
    """Move a finished directory into place; never replace an existing one.

    ``fallback``: the name to take instead when ``final`` was taken meanwhile.
    """
    if _rename_new(staged, final):
        return final
    if fallback is not None and _rename_new(staged, final.with_name(fallback)):
        return final.with_name(fallback)
    raise TreeError(
        f"{final.name!r} already exists",
        path=final.parent,
        hint="choose another name template, or add {i} to it",
    )


def _copy_mode(src: Path | None, dest: Path) -> None:
    if src is not None:
        with contextlib.suppress(OSError):
            os.chmod(dest, os.stat(src).st_mode & 0o7777)


# -- naming ----------------------------------------------------------------


def _task_context(task: TaskBase) -> dict[str, Any]:
    return task.task_metadata.model_dump(mode="json")


def _group_context(group: TaskGroup) -> dict[str, Any]:
    context = _task_context(group.tasks[0]) if group.tasks else {}
    context.update(group.model_dump(mode="json", exclude={"tasks"}))
    return context


def _study_context(model: Study | StudyGroup) -> dict[str, Any]:
    context = model.model_dump(mode="json")
    context["label"] = context.get("name", "")
    return context


def _name_task(
    names: NameBook, template: str | None, task: TaskBase, *, by_label: bool = False
) -> str:
    """A task's directory name: by ``template``, else its id (its label if ``by_label``).

    Tasks in a task group are named by id: they are the attempts of one piece
    of work and share its label. A loose task is named by its label.
    """
    meta = task.task_metadata
    if template is None:
        return names.claim_readable(meta.label if by_label else "", meta.task_id)
    return names.claim(template, _task_context(task))


def _name_group(names: NameBook, template: str | None, group: TaskGroup) -> str:
    if template is None:
        return names.claim_readable(group.label, group.task_group_id)
    return names.claim(template, _group_context(group))


def _name_study(names: NameBook, template: str | None, study: Study) -> str:
    if template is None:
        return names.claim_readable(study.name, study.study_id, field="name")
    return names.claim(template, _study_context(study))


def _fallback(template: str | None, name: str, label: str, ident: str) -> str | None:
    """The name to take when another writer took ``name`` meanwhile (default names only)."""
    return f"{label}-{ident}" if template is None and label and name == label else None


# -- input files -------------------------------------------------------------


def _files_of(files: Files | FilesOf | None) -> FilesOf:
    if files is None:
        return lambda _task: ()
    if callable(files):
        return files
    if isinstance(files, Mapping):
        by_id = files
        return lambda task: by_id.get(task.task_metadata.task_id, ())
    every = list(files)
    return lambda _task: every


def _check_files(tasks: Sequence[TaskBase], files_of: FilesOf) -> None:
    """Refuse missing or unsafe input files before anything is written."""
    for task in tasks:
        files = files_of(task)
        if files:
            where = f"task {task.task_metadata.label or task.task_metadata.task_id}"
            check_input_files(files, script=task.task_inputs.task_script, where=where)


# -- carrying files over ---------------------------------------------------


def carry_over_files(
    src: Path,
    dest: Path,
    files: list[str] | None,
    *,
    size_limit: float | None = None,
    script: str | None = None,
    own: Sequence[str] = (),
) -> list[Path]:
    """Copy ``files`` (relative names; directories too) from ``src`` into ``dest``.

    Never outside ``src``: see :func:`autojob.store.paths.carry_over`. Missing
    files, files (and directories, by their total size) larger than
    ``size_limit`` bytes, links leading out of ``src`` and autojob's own files
    of the task (``script``: the new task's script; ``own``: the files its
    class writes) are left behind with a
    warning; an entry inside a directory carried already is not copied twice.
    Returns the copies made.
    """
    reserved = _own_files() | ({script} if script else set()) | set(own)
    return carry_over(src, dest, files or [], size_limit=size_limit, reserved=reserved).copied


def _own_files() -> frozenset[str]:
    """The names of a task's files that a new task gets anew, never carried over."""
    names = {
        SETTINGS.TASK_METADATA_FILE,
        SETTINGS.INPUTS_FILE,
        SETTINGS.QUEUED_FILE,
        SETTINGS.STARTED_FILE,
        SETTINGS.ENDED_FILE,
        SETTINGS.CANCEL_FILE,
        SETTINGS.STDOUT_FILE,
        SETTINGS.STDERR_FILE,
        SETTINGS.SCHEDULER_STATS_FILE,
        SETTINGS.HISTORY_DIR,
        SETTINGS.DEFAULT_TASK_SCRIPT_FILE,
        # a calculation's result and cause: the new attempt has not reached them yet
        SETTINGS.OUTPUT_ATOMS_FILE,
        SETTINGS.CAUSE_FILE,
    }
    return frozenset(names)


# -- writing trees ---------------------------------------------------------


def _note_copied(task: TaskBase, files: Sequence[InputFile]) -> None:
    """Add the copied input files to the task's ``files_to_copy``, so attempts get them.

    A restart carries ``files_to_copy`` into the new attempt; a linked file is
    left out (a link leading out of a task is never carried over).
    """
    inputs = task.task_inputs
    names = [f.name.split("/", 1)[0] for f in files if not f.link]
    new = [n for n in dict.fromkeys(names) if n not in inputs.files_to_copy]
    if new:
        inputs.files_to_copy = [*inputs.files_to_copy, *new]


def _write_task_dir(
    task: TaskBase,
    folder: str,
    *,
    src: Path | None = None,
    files_to_carry_over: list[str] | None = None,
    carry_over_limit: float | None = None,
    files: Sequence[InputFile] = (),
    inherited: Mapping[str, Any] | None = None,
) -> None:
    _note_copied(task, files)  # first: its inputs.json lists the files it copies
    documents = _task_documents(task, folder, inherited)  # refused before anything is made
    os.mkdir(folder)
    if src is not None:
        _copy_mode(src, Path(folder))
        carry_over_files(
            src,
            Path(folder),
            files_to_carry_over,
            size_limit=carry_over_limit,
            script=task.task_inputs.task_script,
            own=[os.path.basename(path) for path, _, _ in documents],
        )
    place_input_files(files, folder)  # after: a file given explicitly wins over a carried one
    for path, text, mode in documents:
        _write_new(path, text, mode)


def _write_group_dir(
    group: TaskGroup,
    folder: str,
    task_template: str | None,
    files_of: FilesOf,
    inherited: Mapping[str, Any] | None = None,
) -> None:
    os.mkdir(folder)
    _write_metadata(folder, SETTINGS.TASK_GROUP_METADATA_FILE, group)
    names = NameBook(Path(folder), empty=True)
    for task in group.tasks:
        name = _name_task(names, task_template, task)
        _write_task_dir(task, os.path.join(folder, name), files=files_of(task), inherited=inherited)


def _write_study_dir(
    study: Study,
    folder: str,
    task_group_template: str | None,
    task_template: str | None,
    files_of: FilesOf,
    more: Iterable[TaskGroup] | None = None,
) -> int:
    """Write the study's task groups, then ``more`` one by one, then ``study.json``.

    The groups of ``more`` are linked to the study, their input files
    checked, and written each before the next is taken, and never kept: the
    names are looked up in the directory and the ids of the groups spooled to
    a file beside it, so memory stays the same however many groups come.
    Returns the number of groups written.
    """
    os.mkdir(folder)
    # a stream of groups: names looked up on disk, not remembered (a held study: remembered)
    names = NameBook(Path(folder), empty=True, on_disk=more is not None)
    count = 0
    with _IdSpool(os.path.dirname(folder)) as ids:
        for group in study.task_groups:
            name = _name_group(names, task_group_template, group)
            _write_group_dir(group, os.path.join(folder, name), task_template, files_of)
            ids.add(group.task_group_id)
        count += len(study.task_groups)
        for group in more or ():
            _join_study(group, study)
            _check_files(group.tasks, files_of)
            name = _name_group(names, task_group_template, group)
            _write_group_dir(group, os.path.join(folder, name), task_template, files_of)
            ids.add(group.task_group_id)
            count += 1
        _write_study_metadata(folder, study, ids)
    return count


def _join_study(group: TaskGroup, study: Study) -> None:
    set_unvalidated(group, "study_id", study.study_id)
    set_unvalidated(group, "study_group_id", study.study_group_id)
    group.link()


def groups_of(items: Iterable[TaskBase | TaskGroup]) -> Iterator[TaskGroup]:
    """Task groups from a stream of tasks and task groups, one group at a time.

    A task group is taken as it is; tasks that follow one another with the
    same ``task_group_id`` make one group (as ``Study(tasks=...)`` groups
    them), so the tasks of a group must come together.
    """
    current: TaskGroup | None = None
    for item in items:
        if isinstance(item, TaskGroup):
            if current is not None:
                yield current
                current = None
            yield item
        elif current is not None and item.task_metadata.task_group_id == current.task_group_id:
            current.tasks.append(item)
        else:
            if current is not None:
                yield current
            current = TaskGroup.from_task(item)
    if current is not None:
        yield current


class _IdSpool:
    """The ids of the groups written so far, in a file: a study's list without holding it.

    The file is made in ``directory`` and unlinked at once: it lives while
    open, nothing else sees it, and it goes when closed, whatever happens.
    """

    def __init__(self, directory: str) -> None:
        fd, path = tempfile.mkstemp(prefix=STAGING_PREFIX, dir=directory)
        os.unlink(path)
        self._file = os.fdopen(fd, "w+", encoding="utf-8")
        self.count = 0

    def __enter__(self) -> _IdSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def add(self, ident: str) -> None:
        self._file.write(ident + "\n")
        self.count += 1

    def lines(self) -> Iterator[str]:
        """The ids, in the order they were added."""
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield line[:-1]


def _write_study_metadata(folder: str, study: Study, ids: _IdSpool) -> None:
    """Write ``study.json`` listing the spooled ids, as ``dump_json`` lays a list out."""
    path = os.path.join(folder, SETTINGS.STUDY_METADATA_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        write_listing(out.write, Path(path), study.model_dump(mode="json"), ids.lines())


def write_study(
    study: Study,
    dest: Path,
    *,
    study_template: str | None = None,
    task_group_template: str | None = None,
    task_template: str | None = None,
    files: Files | FilesOf | None = None,
    by_label: bool = False,
    tasks: Iterable[TaskBase | TaskGroup] = (),
) -> Path:
    """Write ``study`` as a new directory in ``dest`` and return it.

    When ``dest`` is a study group, the study joins it. ``files``: input files
    for every task, or for each task by its id (see :class:`InputFile`), or a
    function giving a task's. Directories without a template are named by id,
    as in the reference implementation (whose loader finds them so), or with
    ``by_label`` by the study's name and the groups' labels.

    ``tasks``: more tasks and task groups (see :func:`groups_of`), written
    after the study's own task groups one group at a time and never held, so
    that a generator of a million tasks is written in the memory of one: the
    study is not changed, and its ``study.json`` lists them all. The tree
    still appears whole when complete, or not at all.
    """
    if not by_label:
        study_template = study_template or "{study_id}"
        task_group_template = task_group_template or "{task_group_id}"
    parent_meta = dest / SETTINGS.STUDY_GROUP_METADATA_FILE
    if parent_meta.is_file():
        study.study_group_id = read_json_object(parent_meta).get("study_group_id")
    study.link()
    files_of = _files_of(files)
    _check_files(study.tasks, files_of)
    name = _name_study(NameBook(dest, on_disk=True), study_template, study)
    fallback = _fallback(study_template, name, study.name, study.study_id)
    with _staging(dest) as stage:
        folder = os.path.join(stage, name)
        more = None if isinstance(tasks, list | tuple) and not tasks else groups_of(tasks)
        _write_study_dir(study, folder, task_group_template, task_template, files_of, more)
        final = _publish(stage / name, dest / name, fallback)
    note_changed([final])
    if parent_meta.is_file():
        register_child(parent_meta, "studies", study.study_id)
    return final


def write_study_group(
    study_group: StudyGroup,
    dest: Path,
    *,
    study_group_template: str | None = None,
    study_template: str | None = None,
    task_group_template: str | None = None,
    task_template: str | None = None,
    files: Files | None = None,
    by_label: bool = False,
) -> Path:
    """Write ``study_group`` as a new directory in ``dest`` and return it.

    ``files``: input files for every task, or for each task by its id.
    Directories are named as by :func:`write_study`, the study group's by its
    id (or with ``by_label`` by its name).
    """
    if not by_label:
        study_group_template = study_group_template or "{study_group_id}"
        study_template = study_template or "{study_id}"
        task_group_template = task_group_template or "{task_group_id}"
    study_group.link()
    files_of = _files_of(files)
    _check_files([t for study in study_group.studies for t in study.tasks], files_of)
    label, ident = study_group.name, study_group.study_group_id
    if study_group_template is None:
        name = NameBook(dest, on_disk=True).claim_readable(label, ident, field="name")
    else:
        name = NameBook(dest, on_disk=True).claim(study_group_template, _study_context(study_group))
    with _staging(dest) as stage:
        folder = os.path.join(stage, name)
        os.mkdir(folder)
        _write_metadata(folder, SETTINGS.STUDY_GROUP_METADATA_FILE, study_group)
        names = NameBook(Path(folder), empty=True)
        for study in study_group.studies:
            study_folder = os.path.join(folder, _name_study(names, study_template, study))
            _write_study_dir(study, study_folder, task_group_template, task_template, files_of)
        final = _publish(
            Path(folder), dest / name, _fallback(study_group_template, name, label, ident)
        )
    note_changed([final])
    return final


def add_task_groups(
    study_dir: Path,
    groups: Sequence[TaskGroup],
    *,
    task_group_template: str | None = None,
    task_template: str | None = None,
    files: Files | None = None,
) -> list[Path]:
    """Add ``groups`` (with their tasks) to the existing study in ``study_dir``.

    Nothing in the study is changed but its list of task groups: the new
    groups are built in a staging directory, every name claimed and every
    input file checked before anything is written, then each group is renamed
    into place (each appears complete or not at all) and all are registered in
    the study's metadata file. A group whose name another writer took
    meanwhile is refused (``TreeError``) after those before it are registered.

    Returns:
        The new task group directories.
    """
    study_meta = study_dir / SETTINGS.STUDY_METADATA_FILE
    data = read_json_object(study_meta)
    for group in groups:
        set_ids = {"study_id": data.get("study_id"), "study_group_id": data.get("study_group_id")}
        for field, value in set_ids.items():
            setattr(group, field, value)
        group.link()
    files_of = _files_of(files)
    _check_files([task for group in groups for task in group.tasks], files_of)
    names = NameBook(study_dir)
    named = [(_name_group(names, task_group_template, group), group) for group in groups]
    published: list[Path] = []
    with _staging(study_dir) as stage:
        for name, group in named:
            _write_group_dir(group, os.path.join(stage, name), task_template, files_of)
        try:
            for name, group in named:
                fallback = _fallback(task_group_template, name, group.label, group.task_group_id)
                published.append(_publish(stage / name, study_dir / name, fallback))
        finally:
            if published:
                note_changed(published)
                ids = [group.task_group_id for _, group in named[: len(published)]]
                list_task_groups(study_dir, ids, merge=True)
    return published


def stream_task_groups(
    study_dir: Path,
    groups: Iterable[TaskGroup],
    *,
    task_group_template: str | None = None,
    task_template: str | None = None,
    files: Files | FilesOf | None = None,
) -> int:
    """Add a stream of task groups to the existing study in ``study_dir``; return how many.

    As :func:`add_task_groups`, one group at a time: each group is checked
    and written into a staging directory before the next is taken, and never
    kept (names are looked up on disk, the groups spooled to a file), so a
    million groups take the memory of one. Once every group is written, each
    is renamed into place (each appears complete or not at all) and all are
    listed in ``study.json`` in one streamed rewrite; a group refused on the
    way (a bad input, a missing file) leaves nothing behind. A group whose
    name another writer took meanwhile is refused (``TreeError``) after those
    before it are listed.
    """
    head = object_head(study_dir / SETTINGS.STUDY_METADATA_FILE, "task_groups").members
    ids = (head.get("study_id"), head.get("study_group_id"))
    files_of = _files_of(files)
    with _staging(study_dir) as stage, _IdSpool(os.fspath(stage)) as spool:
        names = NameBook(stage, empty=True, on_disk=True, also=study_dir)
        for group in groups:
            set_unvalidated(group, "study_id", ids[0])
            set_unvalidated(group, "study_group_id", ids[1])
            group.link()
            _check_files(group.tasks, files_of)
            name = _name_group(names, task_group_template, group)
            _write_group_dir(group, os.path.join(stage, name), task_template, files_of)
            fallback = _fallback(task_group_template, name, group.label, group.task_group_id)
            spool.add(json.dumps([name, group.task_group_id, fallback]))
        return _publish_spooled(study_dir, stage, spool)


def _publish_spooled(study_dir: Path, stage: Path, spool: _IdSpool) -> int:
    """Rename the spooled groups into place, then list those renamed in ``study.json``."""
    count, changed = 0, []
    try:
        for line in spool.lines():
            name, _, fallback = json.loads(line)
            changed.append(_publish(stage / name, study_dir / name, fallback))
            count += 1
            if len(changed) == _JOURNAL_CHUNK:
                note_changed(changed)
                changed.clear()
    finally:
        note_changed(changed)
        if count:
            published = (json.loads(line)[1] for line in spool.lines())
            list_many_task_groups(study_dir, itertools.islice(published, count))
    return count


_JOURNAL_CHUNK = 1024


def _adopt_parent_ids(task: TaskBase, group_meta: Path) -> None:
    data = read_json_object(group_meta)
    meta = task.task_metadata
    for field in ("task_group_id", "study_id", "study_group_id"):
        if field in data:
            setattr(meta, field, data[field])


def create_task_tree(
    task: TaskBase,
    dest: Path,
    *,
    src: Path | None = None,
    files_to_carry_over: list[str] | None = None,
    name_template: str | None = None,
    carry_over_limit: float | None = None,
    files: Sequence[InputFile] = (),
    by_label: bool = False,
    inherited: Mapping[str, Any] | None = None,
) -> Path:
    """Create a directory for ``task`` in ``dest`` and write its files.

    When ``dest`` is a task group, the task takes the group's ids and is added
    to the group's ``tasks``. Without ``name_template`` the directory is named
    by the task's id, as in the reference implementation, or (``by_label``,
    outside a task group) by its label. With ``src`` (a task directory), the
    files named by ``files_to_carry_over`` are copied from it (files over
    ``carry_over_limit`` bytes stay behind) and its permissions reused.
    ``files``: input files to copy (or link) into the task. ``inherited``: the
    input sections of the task this one copies (a new attempt), whose keys are
    not judged again.

    Returns:
        The new task directory.
    """
    dest = Path(dest)
    group_meta = dest / SETTINGS.TASK_GROUP_METADATA_FILE
    in_group = group_meta.is_file()
    if in_group:
        _adopt_parent_ids(task, group_meta)
    _check_files([task], _files_of(files))
    meta = task.task_metadata
    label = meta.label if by_label and not in_group else ""
    name = _name_task(NameBook(dest, on_disk=True), name_template, task, by_label=bool(label))
    fallback = _fallback(name_template, name, label, meta.task_id)
    with _staging(dest) as stage:
        folder = os.path.join(stage, name)
        _write_task_dir(
            task,
            folder,
            src=src,
            files_to_carry_over=files_to_carry_over,
            carry_over_limit=carry_over_limit,
            files=files,
            inherited=inherited,
        )
        final = _publish(stage / name, dest / name, fallback)
    note_changed([final])
    if group_meta.is_file():
        register_child(group_meta, "tasks", task.task_metadata.task_id)
    return final


def create_task_group_tree(
    task: TaskBase | TaskGroup,
    dest: Path,
    *,
    src: Path | None = None,
    name_template: str | None = None,
    task_template: str | None = None,
    files: Files | None = None,
    by_label: bool = False,
    inherited: Mapping[str, Any] | None = None,
) -> Path:
    """Create a task group directory in ``dest`` and return it.

    Given a :class:`TaskGroup`, the group is written with all its tasks (with
    ``files``, their input files). Given a task, as in the reference
    implementation, only the group's directory and metadata (listing that
    task) are written; ``create_task_tree`` then writes the task into it. When
    ``dest`` is a study, the group takes the study's ids and is added to the
    study's ``task_groups``. Without ``name_template`` the directory is named
    by the group's id, as in the reference implementation, or (``by_label``)
    by its label. ``inherited``: as for :func:`create_task_tree`.
    """
    dest = Path(dest)
    group = task if isinstance(task, TaskGroup) else TaskGroup.from_task(task)
    study_meta = dest / SETTINGS.STUDY_METADATA_FILE
    if study_meta.is_file():
        data = read_json_object(study_meta)
        group.study_id = data.get("study_id")
        group.study_group_id = data.get("study_group_id")
        group.link()
    files_of = _files_of(files)
    _check_files(group.tasks if isinstance(task, TaskGroup) else [], files_of)
    template = name_template
    if template is None and not by_label:
        template = "{task_group_id}"
    name = _name_group(NameBook(dest, on_disk=True), template, group)
    fallback = _fallback(template, name, group.label, group.task_group_id)
    with _staging(dest) as stage:
        folder = os.path.join(stage, name)
        if isinstance(task, TaskGroup):
            _write_group_dir(group, folder, task_template, files_of, inherited)
        else:
            os.mkdir(folder)
            _write_metadata(folder, SETTINGS.TASK_GROUP_METADATA_FILE, group)
        _copy_mode(src.parent if src else None, stage / name)
        final = _publish(stage / name, dest / name, fallback)
    note_changed([final])
    if study_meta.is_file():
        register_child(study_meta, "task_groups", group.task_group_id)
    return final


def write_task_group(
    group: TaskGroup,
    study_dir: Path,
    *,
    name_template: str | None = None,
    src: Path | None = None,
    files_to_carry_over: Sequence[str] = (),
    tidy: bool = True,
) -> Path:
    """Write ``group`` with its tasks into the study ``study_dir``, without listing it.

    The group holds the study's ids already. It appears complete or not at
    all, as with :func:`create_task_group_tree`, but ``study.json`` is left
    alone: the caller lists the group with
    :func:`autojob.store.study_list.list_task_groups`, with the other groups
    it makes, in time that does not grow with the study. With ``src`` (a task
    directory), ``files_to_carry_over`` are copied from it into each task,
    and the permissions of it and its group reused. ``tidy``: as for
    :func:`_staging` (a listing of the study).

    Returns:
        The new task group directory.
    """
    group.link()
    template = name_template or "{task_group_id}"
    name = _name_group(NameBook(study_dir, on_disk=True), template, group)
    with _staging(study_dir, tidy=tidy) as stage:
        folder = os.path.join(stage, name)
        os.mkdir(folder)
        _write_metadata(folder, SETTINGS.TASK_GROUP_METADATA_FILE, group)
        names = NameBook(Path(folder), empty=True)
        for task in group.tasks:
            task_dir = os.path.join(folder, _name_task(names, None, task))
            carry = list(files_to_carry_over)
            _write_task_dir(task, task_dir, src=src, files_to_carry_over=carry)
        _copy_mode(src.parent if src else None, stage / name)
        final = _publish(stage / name, study_dir / name)
    note_changed([final])
    return final
