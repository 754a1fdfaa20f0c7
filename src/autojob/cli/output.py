"""What commands print: JSON for scripts, tables that stay short, paths that read short.

Every command that reports results takes ``--json`` (:func:`json_option`) and
prints either one JSON document (:func:`print_json`) or, where it reports a
stream of tasks, JSON Lines written as the tasks come (:func:`print_json_lines`);
docs/json.md lists each command's shape. Tables list at most :data:`TABLE_ROWS`
rows unless ``--all`` (:func:`all_option`), then say how many more there are.
Progress bars are drawn on a terminal only (:func:`progress_console`).
Importing this module costs no more than click: rich is imported where used.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from autojob.execution.executor import Plan, Submission
    from autojob.store.index_file import Coded

__all__ = [
    "TABLE_ROWS",
    "JsonObjects",
    "all_option",
    "json_objects",
    "json_option",
    "more_rows",
    "print_json",
    "print_json_lines",
    "print_json_streamed",
    "print_plan_preview",
    "progress_console",
    "shown_path",
    "submission_json",
    "to_json",
]

F = TypeVar("F", bound=Callable[..., Any])

#: rows a table shows without --all: enough to see what is there, few enough to read
TABLE_ROWS = 50


def json_option(
    what: str = "Print one JSON document (for scripts; see docs/json.md).",
) -> Callable[[F], F]:
    """The ``--json`` flag (passed as ``as_json``); ``what`` is its help text."""
    return click.option("--json", "as_json", is_flag=True, help=what)


def all_option(what: str = "task") -> Callable[[F], F]:
    """The ``--all`` flag (passed as ``show_all``): every row of a long table."""
    return click.option(
        "--all",
        "show_all",
        is_flag=True,
        help=f"Show every {what} in the table (without it: the first {TABLE_ROWS}, then a count).",
    )


def more_rows(shown: int, total: int, what: str = "task(s)") -> str | None:
    """The line closing a table cut at ``shown`` of ``total`` rows (None when none is left)."""
    if total <= shown:
        return None
    return (
        f"... and {total - shown:,} more {what}: --all shows every one, --json prints them "
        "for scripts"
    )


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the current directory where that is shorter, else as given.

    A path printed this way can be pasted into the next command run here.
    """
    text = os.fspath(path)
    try:
        relative = os.path.relpath(text)
    except ValueError:  # another drive (Windows)
        return text
    return relative if len(relative) < len(text) else text


def _default(value: object) -> object:
    """JSON for what :func:`json.dumps` does not know: paths, sets, enums."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    enum_value = getattr(value, "value", None)
    if isinstance(enum_value, str):
        return enum_value
    msg = f"{type(value).__name__} is not JSON serialisable"
    raise TypeError(msg)


#: one encoder for every line of JSON Lines (json.dumps would make one a call)
_COMPACT = json.JSONEncoder(ensure_ascii=False, default=_default)
#: as _COMPACT, without spaces: what pydantic_core writes
_TIGHT = json.JSONEncoder(ensure_ascii=False, default=_default, separators=(",", ":"))


def to_json(value: object, *, indent: int | None = None) -> str:
    """``value`` as JSON text (UTF-8 kept as it is; paths as strings)."""
    if indent is None:
        return _COMPACT.encode(value)
    return json.dumps(value, indent=indent, ensure_ascii=False, default=_default)


def print_json(document: Mapping[str, Any]) -> None:
    """Print one JSON document, indented."""
    click.echo(to_json(document, indent=2))


def print_json_lines(items: Iterable[Mapping[str, Any]]) -> int:
    """Print each item as one line of JSON as it comes; return how many were printed."""
    count = 0
    for item in items:
        click.echo(to_json(item))
        count += 1
    return count


def print_json_streamed(document: Mapping[str, Any]) -> None:
    """Print one JSON document whose iterator values are written a chunk at a time.

    A value that is an iterator (a generator) becomes an array written as the
    items come, :data:`CHUNK` items at a time, one object a line, so a document
    listing 100,000 tasks is never held whole in memory; every other value is
    written on one line after its key.
    """
    out = sys.stdout
    lead = "{\n"
    for key, value in document.items():
        out.write(f"{lead}  {to_json(key)}: ")
        lead = ",\n"
        if isinstance(value, Iterator):
            _write_array(out, value)
        else:
            out.write(to_json(value))
    out.write("{}\n" if lead == "{\n" else "\n}\n")
    out.flush()


#: items of a streamed array encoded in one call (a call per item costs a third more)
CHUNK = 1000


class JsonObjects(Iterator[str]):
    """Objects of the same keys, each already encoded as compact JSON, built from columns.

    :func:`json_objects` makes one. Iterated, it gives one object's text at a
    time; :func:`print_json_streamed` takes :meth:`joined` instead: a block of
    :data:`BLOCK` objects as one text, made by one join, so a list of 100,000
    tasks is written without a dict, an encoder call or a string per task.
    """

    def __init__(self, keys: list[str], columns: Sequence[Sequence[Any]], n: int) -> None:
        self._keys, self._columns, self._n = keys, columns, n
        self._objects: Iterator[str] | None = None

    def __next__(self) -> str:
        if self._objects is None:
            self._objects = itertools.chain.from_iterable(
                map("".join, zip(*_repeated(parts, n), repeat(close, n), strict=True))
                for parts, close, n in self._blocks()
            )
        return next(self._objects)

    def joined(self, separator: str) -> Iterator[str]:
        """The objects a block at a time, each block one text of objects between ``separator``.

        The pieces of a block are laid out in one list, a column at a time
        (slice assignment, in C), and joined once.
        """
        for parts, close, n in self._blocks():
            parts.append([close + separator] * (n - 1) + [close])
            width = len(parts)
            laid: list[str] = [""] * (n * width)
            for i, part in enumerate(_repeated(parts, n)):
                laid[i::width] = part
            yield "".join(laid)

    def _blocks(self) -> Iterator[tuple[list[str | list[str]], str, int]]:
        """Per block of rows: its pieces (:func:`_pieces`), the text closing each object, rows."""
        for start in range(0, self._n, BLOCK):
            block = [column[start : start + BLOCK] for column in self._columns]
            yield (*_pieces(self._keys, block), min(BLOCK, self._n - start))


def json_objects(names: Sequence[str], columns: Sequence[Sequence[Any]]) -> JsonObjects:
    """The objects ``{names[0]: columns[0][i], ...}`` for each row i, encoded column by column.

    Each column is encoded once, in C where its values allow (strings, numbers,
    few distinct values), and each object is a join of its pieces: the same
    JSON as encoding the dicts, several times faster. The rows are taken
    :data:`BLOCK` at a time, so the texts of a block only are held.
    """
    sizes = set(map(len, columns))
    if len(sizes) > 1:
        raise ValueError(f"columns of different lengths: {sorted(sizes)}")
    n = sizes.pop() if sizes else 0
    keys = [("," if i else "") + to_json(name) + ":" for i, name in enumerate(names)]
    return JsonObjects(keys, columns, n)


#: rows of :func:`json_objects` encoded together
BLOCK = 10_000


class _Plain(list[str]):
    """Strings whose JSON is each between quotes, unchanged: the quotes go in the text around."""


def _pieces(keys: list[str], columns: list[Sequence[Any]]) -> tuple[list[str | list[str]], str]:
    """The pieces of one block of rows' objects, in order, and the text that closes each.

    ``keys``: each key's text, its comma first. A piece is a column's texts,
    or a text the same in every row (keys, values that do not vary, the quotes
    of plain strings): a column of one value is folded into the text between
    the columns that vary, and into the texts of a column of few values.
    """
    parts: list[str | list[str]] = []
    text = "{"  # what comes before the next column that varies (keys, constant values)
    for key, column in zip(keys, columns, strict=True):
        text += key
        encoded = _encoded(column)
        if isinstance(encoded, str):  # the same in every row: part of the text
            text += encoded
        elif isinstance(encoded, _Table):  # the text before taken into each value's
            parts.append(encoded.after(text))
            text = ""
        elif isinstance(encoded, _Plain):
            parts += [text + '"', encoded]
            text = '"'
        else:
            parts += [text, encoded]
            text = ""
    return parts, text + "}"


def _repeated(parts: list[str | list[str]], n: int) -> list[list[str]]:
    """Each piece as a list of ``n`` texts (a text the same in every row repeated)."""
    return [[part] * n if isinstance(part, str) else part for part in parts]


_NULL = type(None)
#: the types no value of another type equals (1 == True == 1.0: numbers are checked one by one)
_APART = frozenset({str, _NULL})


@dataclass(frozen=True)
class _Table:
    """A column of few distinct values: each one's text, and the column's values.

    ``texts`` by value, and ``values`` the column's; or ``texts`` a list,
    and ``values`` the column's codes into it (:class:`Coded`).
    """

    texts: dict[Any, str] | list[str]
    values: Sequence[Any]

    def after(self, text: str) -> list[str]:
        """Each row's text, with ``text`` (its key, what comes before) in front."""
        texts = self.texts
        table: dict[Any, str] | list[str] = (
            {value: text + encoded for value, encoded in texts.items()}
            if isinstance(texts, dict)
            else [text + encoded for encoded in texts]
        )
        return list(map(table.__getitem__, self.values))


#: values looked at to guess whether a column of strings holds few distinct ones
_SAMPLE = 64


def _encoded(values: Sequence[Any]) -> list[str] | str | _Table:
    """Each value as compact JSON text (no spaces: as the chunks of `_encode_chunk`).

    A column holding one value only (an id no task has, a study of its own)
    is that value's text, once; a column of strings that need no escape is
    :class:`_Plain` (the strings themselves, their quotes left to the caller);
    one of few values a :class:`_Table`.
    """
    from autojob.store.index_file import Coded  # noqa: PLC0415  (not for every command's start)

    if not values:
        return []
    if isinstance(values, Coded):
        return _from_codes(values)
    first = values[0]
    if type(first) in _APART and values[-1] == first and values.count(first) == len(values):
        return _TIGHT.encode(first)  # only an equal str (or None) counts: one value
    plain = _plain(values) if type(first) is str and not _few(values) else None
    return plain if plain is not None else _by_values(values)


def _from_codes(column: Coded) -> str | _Table:
    """:func:`_encoded` of a column held as codes: each distinct value encoded once."""
    texts = list(map(_TIGHT.encode, column.values))
    codes = column.codes
    if len(texts) == 1 or (codes[-1] == codes[0] and codes.count(codes[0]) == len(codes)):
        return texts[codes[0]]  # one value in these rows
    return _Table(texts, codes)


def _few(values: Sequence[Any]) -> bool:
    """Whether the first values repeat enough that a table (taking the key in) is likely."""
    sample = values[:_SAMPLE]
    try:
        return len(set(sample)) <= len(sample) // 2
    except TypeError:  # unhashable: no table
        return False


def _by_values(values: Sequence[Any]) -> list[str] | str | _Table:
    """:func:`_encoded` of a column of several values: through a table of few, else each."""
    if not _few(values):  # the first values mostly differ: no table, nor a set of every value
        return _each(values)
    try:
        distinct = set(values)
    except TypeError:  # unhashable: one call each
        return _each(values)
    types = set(map(type, distinct))
    kinds = (types if types <= _APART else set(map(type, values))) - {_NULL}
    if len(kinds) <= 1:
        if len(distinct) == 1:
            return _TIGHT.encode(values[0])
        if len(distinct) <= len(values) // 2:
            return _Table({value: _TIGHT.encode(value) for value in distinct}, values)
    return _each(values)


def _each(values: Sequence[Any]) -> list[str]:
    """Each value's text, in C where the column holds one kind of scalar (and None)."""
    types = set(map(type, values))
    kinds = types - {_NULL}
    if len(kinds) == 1 and kinds <= {str, int, float}:
        return _scalars(values, kinds.pop(), _NULL in types)
    return list(map(_TIGHT.encode, values))


def _plain(values: Sequence[Any]) -> _Plain | None:
    """The strings as they are, when every value is one that JSON quotes without escapes."""
    try:
        joined = "".join(values)  # refuses any value that is not a string
    except TypeError:
        return None
    if joined.isascii():  # nothing but the characters JSON writes as they are (in C)
        if joined.encode("ascii").translate(None, _UNESCAPED):
            return None
    elif len(json.encoder.encode_basestring(joined)) != len(joined) + 2:  # something escaped
        return None
    return _Plain(values)


#: the ASCII characters a JSON string holds unescaped: not a control, quote or backslash
_UNESCAPED = bytes(code for code in range(0x20, 0x80) if code not in b'"\\')


def _scalars(values: Sequence[Any], kind: type, nulls: bool) -> list[str]:
    """Strings, ints or finite floats (and None) as JSON, each encoded in C."""
    if kind is float:
        found = _floats(values)
        if found is not None:
            return found
    encode: Callable[[Any], str] = json.encoder.encode_basestring if kind is str else repr
    blank: Any = "" if kind is str else 0
    data = list(values)
    missing = (
        list(compress(range(len(data)), map(operator.is_, data, repeat(None)))) if nulls else []
    )
    for i in missing:
        data[i] = blank
    if kind is float and not all(map(math.isfinite, data)):
        return list(map(_TIGHT.encode, values))  # NaN, Infinity as json writes them
    texts = list(map(encode, data))
    for i in missing:
        texts[i] = "null"
    return texts


def _floats(values: Sequence[float | None]) -> list[str] | None:
    """Each float's ``repr`` (None: ``null``), by pydantic_core's encoder, where they agree.

    Both write the shortest digits that read back as the same float, and an
    exponent from 1e16 up; below 1e-4, ``repr`` writes an exponent where
    pydantic_core (serde_json's ``ryu``) writes ``0.0000...`` down to 1e-5,
    and each writes its exponents its own way (``1e-06``, ``1e-6``). So a
    text with no exponent, no ``NaN`` or ``Infinity``, and no number
    starting ``0.0000`` is ``repr``'s, made about five times faster (times
    since 1970, run times). None otherwise: each value is ``repr``'d.
    """
    import pydantic_core  # noqa: PLC0415  (imported only where a long list is printed)

    try:
        text = pydantic_core.to_json(values, inf_nan_mode="constants").decode("ascii")
    except TypeError:  # a pydantic_core without inf_nan_mode (NaN might be written null)
        return None
    if "e" in text or "N" in text or "I" in text or _tiny(text):
        return None
    return text[1:-1].split(",")


def _tiny(text: str) -> bool:
    """Whether a number in ``text`` starts ``0.0000`` (not one like ``10.00001``)."""
    at = text.find("0.0000")
    while at >= 0:
        if not text[at - 1].isdigit():  # "[", "," or "-" before it: the number starts there
            return True
        at = text.find("0.0000", at + 1)
    return False


def _write_array(out: TextIO, items: Iterator[Any]) -> None:
    """Write the items as a JSON array, encoding :data:`CHUNK` of them at a time.

    Objects go one a line: a line break is put where an object ends and the
    next begins (``}, {"``: inside an encoded string a quote is always escaped,
    so the three characters never come from a string, and a line break between
    two tokens is JSON whitespace wherever it falls). Objects already encoded
    (:class:`JsonObjects`) are written a block at a time, as they are joined.
    """
    first = True
    if isinstance(items, JsonObjects):
        blocks: Iterator[str] = items.joined(_BETWEEN)
    else:
        chunks = iter(lambda: list(itertools.islice(items, CHUNK)), [])
        blocks = (
            _encode_chunk(chunk)[1:-1].replace('},{"', "}" + _BETWEEN + '{"') for chunk in chunks
        )
    for text in blocks:
        out.write("[\n    " if first else _BETWEEN)
        out.write(text)
        first = False
    out.write("[]" if first else "\n  ]")


#: what goes between two items of an array: each on a line of its own
_BETWEEN = ",\n    "


def _encode_chunk(chunk: list[Any]) -> str:
    """``chunk`` as compact JSON, by pydantic_core's encoder (several times json's speed).

    A string that is not valid UTF-8 (a file name read with surrogate escapes)
    is refused by it: that chunk is written by the json module, as before.
    """
    import pydantic_core  # noqa: PLC0415  (imported only where a long list is printed)

    try:
        return pydantic_core.to_json(chunk, fallback=_default).decode("utf-8")
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
        return _TIGHT.encode(chunk)


def submission_json(done: Submission | None) -> dict[str, Any] | None:
    """What a submit did, as --json prints it (None: nothing submitted)."""
    if done is None:
        return None
    return {
        "submitted": done.count,
        "message": done.message,
        "details": done.details,
        "job_ids": done.job_ids,
        "tasks": [str(p) for p in done.tasks],
    }


def submissions_json(done: Sequence[Submission]) -> dict[str, Any] | None:
    """What one or several submits did (one per executor), as one --json object.

    None when nothing was submitted; the figures of several are summed and their
    lists joined, in the order they were made.
    """
    if not done:
        return None
    if len(done) == 1:
        return submission_json(done[0])
    return {
        "submitted": sum(d.count for d in done),
        "message": "; ".join(d.message for d in done),
        "details": [line for d in done for line in d.details],
        "job_ids": [job for d in done for job in d.job_ids],
        "tasks": [str(p) for d in done for p in d.tasks],
    }


def progress_console() -> Console:
    """The console progress bars draw on: standard error.

    Draw only when it is a terminal (``Progress(..., disable=not console.is_terminal)``):
    a progress bar never goes into a pipe or a log.
    """
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=True)


def print_plan_preview(plan: Plan, show_all: bool) -> None:
    """Print a plan as a dry run shows it: a table, or each script and command.

    A table shows the first :data:`TABLE_ROWS` tasks unless ``show_all``.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    preview = plan.preview
    if preview.columns:
        paths = {str(s.spec.path) for s in plan.selected}
        table = Table(title=preview.title, title_justify="left")
        for column in preview.columns:
            table.add_column(column, overflow="fold")
        for row in preview.rows[: None if show_all else TABLE_ROWS]:
            table.add_row(*(shown_path(cell) if cell in paths else cell for cell in row))
        Console().print(table)
        more = more_rows(len(table.rows), len(preview.rows))
        if more:
            click.echo(more)
    for comment, text in preview.blocks:
        click.echo(comment)
        click.echo(text)
    if preview.summary:
        click.echo(preview.summary)
