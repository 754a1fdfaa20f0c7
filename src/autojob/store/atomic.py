"""Atomic file writes and careful JSON reads.

A write goes to a temporary file in the same directory and replaces the target
with ``os.replace``: a reader sees the old file or the new one, never half of
either. :class:`AtomicFile` is the one way autojob does this, for small
documents (:func:`write_atomic`, :func:`replace_atomically`) and for files
streamed over a whole harvest (archives, the harvest cache) alike.
Read-modify-write of shared files happens under a lock file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Self

import pydantic_core
from filelock import FileLock
from pydantic import BaseModel

from autojob.errors import AutojobError, MetadataError, MissingFileError
from autojob.store.tempfiles import make_temp

__all__ = [
    "AtomicFile",
    "dump_json",
    "dump_model",
    "locked",
    "parse_json_object",
    "read_bytes_and_status",
    "read_bytes_if_file",
    "read_bytes_if_file_at",
    "read_json_object",
    "read_json_object_at",
    "read_json_object_if_file",
    "register_child",
    "register_children",
    "replace_atomically",
    "update_json_object",
    "write_atomic",
    "write_atomic_bytes",
]


def dump_json(data: Any, path: str | Path | None = None) -> str:
    """Serialise ``data`` as JSON indented by 4 (no NaN/Infinity, which JSON lacks)."""
    try:
        text = pydantic_core.to_json(data, indent=4, inf_nan_mode="constants").decode()
        if "NaN" in text or "Infinity" in text:  # rare: confirm with the strict encoder
            json.dumps(data, allow_nan=False)
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError) as exc:
        raise MetadataError(
            f"cannot be written as JSON: {exc}",
            path=path,
            hint="use JSON values only (strings, finite numbers, booleans, lists, objects)",
        ) from exc
    return text + "\n"


def dump_model(model: BaseModel, path: str | Path | None = None) -> str:
    """Serialise a model as indented JSON, refusing NaN and Infinity."""
    text = model.model_dump_json(indent=4)
    if "NaN" in text or "Infinity" in text:
        return dump_json(model.model_dump(mode="json"), path)
    return text + "\n"


class AtomicFile:
    """A new version of ``path``, written beside it and put in its place at once.

    A temporary file is created in the target's directory (so the move is an
    atomic rename), named after the target, this host and this process
    (:func:`~autojob.store.tempfiles.make_temp`), with ``mode`` less the
    umask. Write to it (:meth:`write`, or the stream of :meth:`open_text`),
    or reopen it by name (:attr:`tmp`); :meth:`commit` moves it into place
    with ``os.replace``, :meth:`commit_new` only where no file is, and
    :meth:`abort` removes it. Used as a context manager, it commits when the
    block ends and aborts when the block raises; a failed commit removes the
    temporary file too. Nothing is fsynced: a reader sees the old file or the
    new one, never half of either.

    ``keep_mode``: a replaced file's permission bits pass to its new version.

    Raises:
        OSError: the temporary file cannot be created (the directory is
            missing, not writable or full).
    """

    def __init__(self, path: str | Path, *, mode: int = 0o666, keep_mode: bool = True) -> None:
        self.path = os.fspath(path)
        self.keep_mode = keep_mode
        self.fd, self.tmp = make_temp(Path(self.path), mode=mode)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def write(self, data: bytes | memoryview) -> None:
        """Write ``data`` to the temporary file."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def open_text(self) -> IO[str]:
        """A UTF-8 text stream on the temporary file (newlines untranslated); caller closes it."""
        fd, self.fd = self.fd, -1
        return os.fdopen(fd, "w", encoding="utf-8", newline="\n")

    def close(self) -> None:
        """Close the temporary file's descriptor, if this object still holds it."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def commit(self) -> None:
        """Move the temporary file into place, replacing any file there."""
        try:
            self.close()
            if self.keep_mode:
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(self.tmp, os.stat(self.path).st_mode & 0o7777)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def commit_new(self) -> bool:
        """Put the temporary file in place only if no file is there; False if one is."""
        try:
            self.close()
            os.link(self.tmp, self.path)  # fails if the target exists: never overwrites
        except FileExistsError:
            return False
        finally:
            self.abort()
        return True

    def abort(self) -> None:
        """Remove the temporary file (the target stays as it was)."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def replace_atomically(
    path: str | Path,
    data: bytes | Sequence[bytes | memoryview],
    *,
    mode: int = 0o666,
    keep_mode: bool = True,
) -> None:
    """Write ``data`` (or its parts one after the other) to ``path`` atomically.

    See :class:`AtomicFile`. Parts spare joining them first (a copy of the
    whole, 90 MB for the status index of a million tasks).

    Raises:
        OSError: the file cannot be written; nothing is left behind.
    """
    with AtomicFile(path, mode=mode, keep_mode=keep_mode) as file:
        for part in [data] if isinstance(data, bytes) else data:
            file.write(part)


def write_atomic(path: Path, text: str, *, mode: int = 0o666) -> Path:
    """Write ``text`` to ``path`` atomically.

    The file keeps the permission bits of the file it replaces; a new file gets
    ``mode`` less the umask, as ``open`` would give it.
    """
    return write_atomic_bytes(path, text.encode("utf-8"), mode=mode)


def write_atomic_bytes(
    path: Path, data: bytes | Sequence[bytes | memoryview], *, mode: int = 0o666
) -> Path:
    """Write ``data`` (or its parts) to ``path`` atomically, as :func:`write_atomic` does text."""
    try:
        replace_atomically(path, data, mode=mode)
    except OSError as exc:
        raise AutojobError(
            f"cannot write the file: {exc.strerror or exc}",
            path=path,
            hint="check that the directory exists, is writable and has space",
        ) from exc
    return path


#: bytes asked of ``os.read`` at a time: metadata files are far smaller
_READ_CHUNK = 1 << 16


def _read_all(name: str | Path, dir_fd: int | None) -> bytes:
    """The bytes of the file ``name`` (relative to the open directory ``dir_fd``).

    ``os.open`` and ``os.read`` to the end: four system calls where a buffered
    ``open(...).read()`` makes seven (it also asks the size, the position and
    whether the file is a terminal), which counts when a tree of thousands of
    tasks is read. A name relative to ``dir_fd`` is looked up from that
    directory, not again from the root.

    Raises:
        OSError: as ``open`` and ``read`` raise it.
    """
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    try:
        data = os.read(fd, _READ_CHUNK)
        return _read_rest(fd, data) if data else data
    finally:
        os.close(fd)


def _read_rest(fd: int, data: bytes) -> bytes:
    """``data``, a first read of ``fd``, and whatever follows it to the end of the file."""
    parts = [data]
    while more := os.read(fd, _READ_CHUNK):
        parts.append(more)
    return data if len(parts) == 1 else b"".join(parts)


def read_bytes_and_status(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of the file at ``path``, and its status as it was opened.

    ``open``, ``fstat``, ``read`` and ``close`` (one ``read`` for a file that
    did not grow since its status was taken): the status gives its mtime and
    size, for a cache stamp, without a ``stat`` of its path.

    Raises:
        OSError: as ``open`` and ``read`` raise it (a directory: ``read``).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        info = os.fstat(fd)
        data = os.read(fd, info.st_size + 1)
        if len(data) > info.st_size:  # grown since: the rest too
            data = _read_rest(fd, data)
        return data, info
    finally:
        os.close(fd)


def read_json_object(path: str | Path, *, missing_hint: str | None = None) -> dict[str, Any]:
    """Read a JSON file that must hold an object.

    ``missing_hint`` tells the user what to do when the file does not exist.

    Raises:
        MissingFileError: the file does not exist.
        MetadataError: it cannot be read, is not UTF-8, is not JSON, or holds
            something other than an object.
    """
    return read_json_object_at(path, None, path, missing_hint=missing_hint)


def read_json_object_at(
    name: str | Path, dir_fd: int | None, path: str | Path, *, missing_hint: str | None = None
) -> dict[str, Any]:
    """Read the JSON object in the file ``name``, relative to the open directory ``dir_fd``.

    As :func:`read_json_object`; ``path`` names the file in messages.
    """
    try:
        raw = _read_all(name, dir_fd)
    except FileNotFoundError as exc:
        raise MissingFileError("file not found", path=path, hint=missing_hint) from exc
    except OSError as exc:
        raise MetadataError(f"cannot read the file: {exc.strerror}", path=path) from exc
    return parse_json_object(raw, path)


#: what ``open`` raises where ``os.path.isfile`` is false: no file there
_NO_FILE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP})


def read_bytes_if_file(path: str | Path) -> bytes | None:
    """The bytes of the file ``path``, or None where there is no file.

    One ``open`` instead of a ``stat`` and an ``open``: None when the path does
    not exist or is a directory (where ``os.path.isfile`` is false).

    Raises:
        MetadataError: the file exists but cannot be read.
    """
    return read_bytes_if_file_at(path, None, path)


def read_bytes_if_file_at(name: str | Path, dir_fd: int | None, path: str | Path) -> bytes | None:
    """The bytes of the file ``name`` relative to the open directory ``dir_fd``, or None.

    As :func:`read_bytes_if_file`; ``path`` names the file in messages.
    """
    try:
        return _read_all(name, dir_fd)
    except OSError as exc:
        if exc.errno in _NO_FILE:
            return None
        raise MetadataError(f"cannot read the file: {exc.strerror}", path=path) from exc


def read_json_object_if_file(path: str | Path) -> dict[str, Any] | None:
    """Read a JSON file holding an object, or return None where there is no file.

    Raises:
        MetadataError: the file exists but cannot be read, or does not hold
            a JSON object.
    """
    raw = read_bytes_if_file(path)
    return None if raw is None else parse_json_object(raw, path)


def parse_json_object(raw: bytes, path: str | Path) -> dict[str, Any]:
    """Parse the bytes of the JSON file ``path``, which must hold an object.

    Raises:
        MetadataError: the bytes are not UTF-8, not JSON, or not an object.
    """
    fix = "repair the file by hand or restore it from a backup"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(
            f"not UTF-8 text (bad byte at offset {exc.start})", path=path, hint=fix
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise MetadataError("the file is empty", path=path, hint=fix) from None
        raise MetadataError(
            f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            path=path,
            hint=fix,
        ) from exc
    except RecursionError as exc:
        raise MetadataError("JSON nested too deeply", path=path, hint=fix) from exc
    if not isinstance(data, dict):
        raise MetadataError(
            f"must hold a JSON object, not {type(data).__name__}", path=path, hint=fix
        )
    return data


def lock_path(path: Path) -> Path:
    """Return the lock file guarding ``path``."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: Path, timeout: float = 60.0) -> Iterator[None]:
    """Hold the lock guarding ``path`` for a read-modify-write."""
    with FileLock(lock_path(path), timeout=timeout):
        yield


def update_json_object(
    path: Path, change: Callable[[dict[str, Any]], dict[str, Any]], *, lock: bool = True
) -> dict[str, Any]:
    """Apply ``change`` to the object in ``path`` under its lock, atomically.

    ``lock=False``: the caller holds the lock already.
    """
    with locked(path) if lock else contextlib.nullcontext():
        data = change(read_json_object(path))
        write_atomic(path, dump_json(data, path))
    return data


def register_child(metadata_file: Path, key: str, item_id: str) -> None:
    """Add ``item_id`` to the list ``key`` of a parent's metadata file (once)."""
    register_children(metadata_file, key, [item_id])


def register_children(
    metadata_file: Path, key: str, item_ids: Sequence[str], *, lock: bool = True
) -> None:
    """Add ``item_ids`` to the list ``key`` of a parent's metadata file (each once).

    ``lock=False``: the caller holds the file's lock already.
    """

    def add(data: dict[str, Any]) -> dict[str, Any]:
        items = data.setdefault(key, [])
        if not isinstance(items, list):
            raise MetadataError(
                "is not a list",
                path=metadata_file,
                field=key,
                hint="make it a list of the ids of the directories inside",
            )
        held = set(items)
        items.extend(i for i in dict.fromkeys(item_ids) if i not in held)
        return data

    update_json_object(metadata_file, add, lock=lock)
