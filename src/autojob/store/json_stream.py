"""A JSON object file read a piece at a time, the items of one list member streamed.

The ``study.json`` of a study of 100,000 task groups lists 100,000 ids (about
5 MB of text, 7 MB as a list of strings). Growing such a study rewrites the
list with the new ids after the old ones; :func:`object_head` and
:func:`list_items` let that rewrite hold neither: the file is decoded a chunk
at a time, every member but the list is kept (they are small), and the
list's items are passed on one at a time, as ``json.loads`` would give them.

Both read the file through once and keep nothing of the list; a file that is
not valid JSON, or not an object, raises the very error
:func:`~autojob.store.atomic.read_json_object` raises (the file is then
parsed whole to say why).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from autojob.errors import MetadataError
from autojob.store.atomic import read_json_object

__all__ = ["ObjectHead", "list_items", "object_head"]

#: bytes read at a time (more while one value is longer than what is held)
_CHUNK = 1 << 16
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
#: what may follow a value in valid JSON
_AFTER = frozenset(" \t\n\r,:]}")


class _MalformedError(Exception):
    """Not the JSON object this reader takes; the whole file is parsed to say why."""


class _Text:
    """The file's text, decoded a chunk at a time; what was read past is dropped."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        """Read on (at least as much as is held); False at the end of the file."""
        if self.eof:
            return False
        raw = self._stream.read(max(_CHUNK, len(self.text) - self.pos))
        self.eof = not raw
        try:
            decoded = self._decoder.decode(raw, final=self.eof)
        except UnicodeDecodeError as exc:
            raise _MalformedError from exc
        self.text = self.text[self.pos :] + decoded
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            match = _SPACE.match(self.text, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def take(self, allowed: str) -> str:
        """The next character that is not white space, which must be one of ``allowed``."""
        char = self.peek()
        if not char or char not in allowed:
            raise _MalformedError
        self.pos += 1
        return char

    def value(self) -> Any:
        """The next JSON value, decoded as ``json.loads`` decodes it."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except (json.JSONDecodeError, RecursionError):
                if not self.more():
                    raise _MalformedError from None
                continue
            # what follows must end the value (a number cut by a chunk may go on)
            if (end < len(self.text) and self.text[end] in _AFTER) or not self.more():
                self.pos = end
                return value


#: what :func:`_events` yields: a member ``(name, value, None)``; for each member
#: ``key`` holding a list, ``(key, LIST, n)`` (its occurrence ``n``) then each
#: item ``(key, item, n)``
_Event = tuple[str, Any, int | None]
LIST = object()


def _events(stream: IO[bytes], key: str) -> Iterator[_Event]:
    """The members of the object in ``stream``, the items of each list ``key`` one by one."""
    text = _Text(stream)
    text.take("{")
    occurrence = 0
    if text.peek() == "}":
        text.pos += 1
    else:
        while True:
            name = text.value()
            if not isinstance(name, str):
                raise _MalformedError
            text.take(":")
            if name == key and text.peek() == "[":
                text.pos += 1
                yield name, LIST, occurrence
                yield from _items(text, name, occurrence)
                occurrence += 1
            else:
                yield name, text.value(), None
            if text.take(",}") == "}":
                break
    if text.peek():
        raise _MalformedError  # something after the object


def _items(text: _Text, name: str, occurrence: int) -> Iterator[_Event]:
    if text.peek() == "]":
        text.pos += 1
        return
    while True:
        yield name, text.value(), occurrence
        if text.take(",]") == "]":
            return


def _canonical_error(path: Path) -> MetadataError:
    """The error ``read_json_object`` raises for ``path`` (which this reader refused)."""
    read_json_object(path)  # raises MissingFileError or MetadataError
    return MetadataError(  # pragma: no cover - only if the two readers disagree
        "not valid JSON as read a piece at a time",
        path=path,
        hint="repair the file by hand or restore it from a backup",
    )


class ObjectHead:
    """The members of a JSON object file, one list member's items counted, not kept."""

    def __init__(
        self, members: dict[str, Any], key: str, occurrence: int | None, count: int
    ) -> None:
        #: every member, in the file's order; ``key``, when it holds a list, as ``[]``
        self.members = members
        self.key = key
        #: which member named ``key`` holds the list (the last of them, as
        #: ``json.loads`` keeps); None when ``key`` holds no list
        self.occurrence = occurrence
        #: the items of that list
        self.count = count


def object_head(path: Path, key: str) -> ObjectHead:
    """Read the JSON object in ``path`` through, keeping every member but the list ``key``.

    The list's items are decoded (the whole file is checked) and counted, not
    kept. A member ``key`` that is not a list is kept as any other.

    Raises:
        MissingFileError: there is no file.
        MetadataError: it cannot be read, or is not a JSON object (as
            :func:`~autojob.store.atomic.read_json_object` says).
    """
    members: dict[str, Any] = {}
    occurrence, count = None, 0
    try:
        with open(path, "rb") as stream:
            for name, value, number in _events(stream, key):
                if value is LIST:
                    members[name], occurrence, count = [], number, 0
                elif number is not None:
                    count += 1
                else:
                    members[name] = value
                    if name == key:
                        occurrence, count = None, 0
    except (OSError, _MalformedError) as exc:
        raise _canonical_error(path) from exc
    return ObjectHead(members, key, occurrence, count)


def list_items(path: Path, head: ObjectHead) -> Iterator[Any]:
    """The items of the list ``head`` found in ``path``, one at a time, in order.

    ``path`` must be as :func:`object_head` read it (read both under its lock).

    Raises:
        MetadataError: the file changed into something that is not JSON.
    """
    if head.occurrence is None:
        return
    try:
        with open(path, "rb") as stream:
            for _, value, number in _events(stream, head.key):
                if number == head.occurrence and value is not LIST:
                    yield value
    except (OSError, _MalformedError) as exc:
        raise _canonical_error(path) from exc
