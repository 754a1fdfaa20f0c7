"""The file of the status index: columns of bytes, each decoded when first used.

``.autojob/status.index`` (version 7) holds the index's columns
(:data:`autojob.store.status_index.COLUMNS`), one block of bytes each, so a
warm status decodes only the columns it counts (the states, the sparse ids),
finds the changed tasks' rows by bisection over the paths' bytes, reads the
few values it shows in place, and writes the rows it changed into the others
without decoding them (:class:`Columns`). Its layout:

- line 1: ``autojob status index 7`` and, after a space, the CRC-32 of every
  byte after this line, as 8 hexadecimal digits;
- line 2: the header, one JSON object: ``root``, ``built_at``,
  ``journal_offset`` and ``token`` (what the index was built from, see
  :mod:`autojob.store.status_index`), ``rows`` (N), ``sorted`` (the rows are
  in the order of their paths), ``shared`` (the task groups holding more
  than one row) and ``columns``:
  per column, in file order, ``name``, ``encoding``, ``size`` (bytes) and
  the encoding's own fields;
- then the columns' bytes, back to back.

The encodings (N values each):

- ``text``: the strings joined by NUL, UTF-8 (``text_size`` bytes, in the
  header), then N little-endian unsigned 32-bit offsets, where each string
  ends in those bytes, so one string is read, or the sorted paths searched by
  bisection, without decoding the rest; ``nulls`` (header) > 0 when some
  values are None, written as empty strings (the paths, never empty).
- ``codes``: ``values`` (header) the distinct values; the bytes N
  little-endian unsigned 32-bit indices into them (states, hosts, studies).
- ``sparse``: ``default`` (header) the value of most rows; the bytes a JSON
  object ``{"rows": [...], "values": [...]}`` of the others (ids, reasons).
- ``floats``: N little-endian doubles, then ``nulls`` (header) little-endian
  unsigned 32-bit rows whose value is None (times).
- ``json``: the bytes a JSON list of the N values (anything else).

The index is a cache: a file that does not parse, whose checksum or sizes
disagree, or of another version is not used (the tree is scanned again and
the index rewritten).
"""

from __future__ import annotations

import bisect
import json
import math
import mmap
import operator
import struct
import sys
import zlib
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, compress, count, repeat
from typing import Any, overload

__all__ = [
    "MAGIC",
    "Coded",
    "Columns",
    "IndexFileError",
    "encode_index",
    "index_parts",
    "parse_index",
]

MAGIC = b"autojob status index 7 "
#: text columns (strings of paths: never empty, so None is written as "")
TEXT = frozenset({"path", "group"})
#: a column whose most common value holds at least this share of rows is sparse
SPARSE_SHARE = 0.9
_NONE = type(None)
_U32 = next(code for code in "IL" if array(code).itemsize == 4)
_LITTLE = sys.byteorder == "little"
#: one code and one double of a column's bytes, read in place
_CODE = struct.Struct("<I")
_DOUBLE = struct.Struct("<d")
#: the encodings whose values :meth:`Columns.value` reads a row at a time
_ONE_BY_ONE = frozenset({"codes", "floats", "sparse", "text"})


class IndexFileError(ValueError):
    """The index file is not one this version reads (or not whole)."""


def _u32(values: Iterable[int]) -> bytes:
    found = array(_U32, values)
    if not _LITTLE:
        found.byteswap()
    return found.tobytes()


def _from_u32(raw: bytes) -> list[int]:
    found = array(_U32)
    found.frombytes(raw)
    if not _LITTLE:
        found.byteswap()
    return found.tolist()


# -- encoding -----------------------------------------------------------------


def _rows_not(values: list[Any], value: Any) -> list[int]:
    """The rows whose value is not ``value`` (a search in C)."""
    return list(compress(range(len(values)), map(operator.ne, values, repeat(value))))


def _encode(name: str, values: list[Any]) -> tuple[dict[str, Any], bytes]:
    """The header fields and the bytes of one column."""
    n = len(values)
    types = set(map(type, values))
    if name in TEXT and types <= {str, _NONE} and str in types and "" not in values:
        blanks = values.count(None)
        text = "\0".join(["" if v is None else v for v in values] if blanks else values)
        if text.count("\0") == n - 1:  # no value holds a NUL
            data = text.encode("utf-8", "surrogateescape")
            # where each value ends (its NUL), so one value is read, or searched, in place
            ends = map(operator.add, accumulate(map(len, data.split(b"\0"))), count())
            spec = {"encoding": "text", "nulls": blanks, "text_size": len(data)}
            return spec, data + _u32(ends)
    if types <= {float, _NONE} and float in types:
        nulls = list(compress(range(n), map(operator.is_, values, repeat(None))))
        if nulls:
            values = [math.nan if v is None else v for v in values]
        doubles = array("d", values)
        if not _LITTLE:
            doubles.byteswap()
        return {"encoding": "floats", "nulls": len(nulls)}, doubles.tobytes() + _u32(nulls)
    if n and types <= {str, int, bool, _NONE} and len(types - {_NONE}) <= 1:
        counts = Counter(values)  # one type (and None): 1 and True are never merged
        default, most = counts.most_common(1)[0]
        if most >= SPARSE_SHARE * n:
            rows = _rows_not(values, default)
            body = {"rows": rows, "values": [values[i] for i in rows]}
            return {"encoding": "sparse", "default": default}, _dump(body)
        if len(counts) <= n // 2:
            distinct = list(counts)
            code = {v: i for i, v in enumerate(distinct)}
            return {"encoding": "codes", "values": distinct}, _u32(map(code.__getitem__, values))
    return {"encoding": "json"}, _dump(values)


def _dump(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8", "surrogateescape")


def encode_index(header: dict[str, Any], columns: dict[str, list[Any]]) -> bytes:
    """The whole file: ``header`` (without ``columns``) and every column."""
    return b"".join(index_parts(header, columns))


def index_parts(header: dict[str, Any], columns: dict[str, list[Any]]) -> list[bytes | memoryview]:
    """The bytes of :func:`encode_index`, in parts to be written one after the other.

    ``columns`` read from an index (:class:`Columns`) keep the bytes of the
    columns that can be patched (:meth:`Columns.encoded`) rather than being
    decoded and encoded again; a column unchanged is its bytes as read, not
    a copy.
    """
    specs, blocks = [], []
    read = columns if isinstance(columns, Columns) else None
    for name in read.names() if read is not None else list(columns):
        spec, body = read.encoded(name) if read is not None else _encode(name, columns[name])
        specs.append({"name": name, **spec, "size": len(body)})
        blocks.append(body)
    parts: list[bytes | memoryview] = [_dump({**header, "columns": specs}) + b"\n", *blocks]
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return [MAGIC + b"%08x\n" % crc, *parts]


# -- decoding -----------------------------------------------------------------


def _decode(spec: dict[str, Any], view: memoryview, n: int) -> list[Any]:
    encoding, raw = spec["encoding"], bytes(view)
    if encoding == "text":
        text = raw[: int(spec["text_size"])]
        values: list[Any] = text.decode("utf-8", "surrogateescape").split("\0") if n else []
        if spec.get("nulls"):
            values = [v or None for v in values]
    elif encoding == "codes":
        values = list(map(list(spec["values"]).__getitem__, _from_u32(raw)))
    elif encoding == "sparse":
        body = json.loads(raw)
        values = [spec["default"]] * n
        for row, value in zip(body["rows"], body["values"], strict=True):
            values[row] = value
    elif encoding == "floats":
        doubles = array("d")
        doubles.frombytes(raw[: 8 * n])
        if not _LITTLE:
            doubles.byteswap()
        values = list(doubles.tolist())
        for row in _from_u32(raw[8 * n :]):
            values[row] = None
    elif encoding == "json":
        values = json.loads(raw)
    else:
        raise IndexFileError(f"unknown encoding {encoding!r}")
    if not isinstance(values, list) or len(values) != n:
        raise IndexFileError(f"column {spec.get('name')!r} holds another number of rows")
    return values


def _value_at(data: memoryview, ends: Sequence[int], row: int) -> bytes:
    """The bytes of ``row``'s value in a text column (``ends``: where each value ends)."""
    return data[ends[row - 1] + 1 if row else 0 : ends[row]].tobytes()


def _bisect(data: memoryview, ends: Sequence[int], key: str, low: int, high: int) -> int:
    """``bisect_left`` of ``key`` among the rows ``[low, high)`` of a sorted text column."""
    if key.isascii():
        wanted = key.encode("ascii")
        while low < high:  # each probe one value sliced, not decoded
            mid = (low + high) // 2
            if data[ends[mid - 1] + 1 if mid else 0 : ends[mid]].tobytes() < wanted:
                low = mid + 1
            else:
                high = mid
        return low
    while low < high:
        mid = (low + high) // 2
        if _value_at(data, ends, mid).decode("utf-8", "surrogateescape") < key:
            low = mid + 1
        else:
            high = mid
    return low


def _places(data: memoryview, ends: Sequence[int], keys: Sequence[str], hi: int) -> list[int]:
    """Where each key would go among the first ``hi`` values of a sorted text column.

    ``bisect_left`` of each key. Keys in order are placed together (the
    middle one first, the others among the rows on their side of it), keys
    out of order each among every row. An ASCII key is compared with the
    values' bytes: at the first byte that differs, the key's is ASCII, and
    any other character (its UTF-8, or a byte kept by surrogateescape)
    starts with a byte past ASCII, so bytes order as the strings do. Other
    keys are compared with the values decoded.
    """
    places = [0] * len(keys)
    if any(map(operator.gt, keys, keys[1:])):
        spans = [(i, i + 1, 0, hi) for i in range(len(keys))]
    else:
        spans = [(0, len(keys), 0, hi)] if keys else []
    while spans:
        first, stop, lo, up = spans.pop()
        middle = (first + stop) // 2
        low = places[middle] = _bisect(data, ends, keys[middle], lo, up)
        if first < middle:
            spans.append((first, middle, lo, low))
        if middle + 1 < stop:
            spans.append((middle + 1, stop, low, up))
    return places


class Coded(Sequence[Any]):
    """A column as its distinct values and, per row, the index of its value among them.

    What a ``codes`` or ``sparse`` column is before it is decoded
    (:meth:`Columns.coded`). Read as a sequence it gives the values; a slice
    is the same values with the codes of those rows. Whoever turns every row
    into something (JSON text) turns each distinct value once and takes each
    row's by its code.
    """

    __slots__ = ("codes", "values")

    def __init__(self, values: Sequence[Any], codes: list[int]) -> None:
        self.values = values
        self.codes = codes

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> Coded: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Coded(self.values, self.codes[index])
        return self.values[self.codes[index]]

    def __iter__(self) -> Iterator[Any]:
        return map(self.values.__getitem__, self.codes)


class Columns(dict[str, list[Any]]):
    """The index's columns by name, each decoded from its bytes when first read.

    A value written into a column not yet decoded is kept apart
    (:meth:`put`) and laid over the column when it is decoded, so a status
    that changes a few rows decodes only the columns it reads. Iterating or
    copying sees only the columns decoded so far: call :meth:`decode_all`
    first.
    """

    def __init__(self, blocks: dict[str, tuple[dict[str, Any], memoryview]], n: int) -> None:
        super().__init__()
        self._blocks = blocks
        self._names = list(blocks)  # in the file's order
        self._n = n
        self._pending: dict[str, dict[int, Any]] = {}
        #: per column read a row at a time: its rows apart (sorted) and their values
        self._rows_apart: dict[str, tuple[list[int], list[Any]]] = {}
        #: per text column's bytes: where each value ends, read in place
        self._ends: dict[str, Sequence[int]] = {}

    def __missing__(self, name: str) -> list[Any]:
        spec, raw = self._blocks.pop(name)
        values = _decode(spec, raw, self._n)
        for row, value in self._pending.pop(name, {}).items():
            values[row] = value
        self[name] = values
        return values

    def coded(self, name: str) -> Coded | None:
        """A ``codes`` or ``sparse`` column not decoded yet, as :class:`Coded`; else None.

        Neither decodes the column nor keeps what it makes: a caller that
        goes over every row of a column of few values (JSON of each task)
        takes each value's work once. None for a column decoded already,
        written into since the index was read, or of another encoding.
        """
        block = self._blocks.get(name)
        if block is None or name in self._pending:
            return None
        spec, raw = block
        if spec["encoding"] == "codes":
            return Coded(list(spec["values"]), _from_u32(bytes(raw)))
        if spec["encoding"] != "sparse":
            return None
        rows, values = self._rows_apart_of(name, spec, raw)
        distinct = {spec["default"]: 0}  # one type (and None): 1 and True are never merged
        try:
            for value in values:
                distinct.setdefault(value, len(distinct))
        except TypeError:  # not a value the encoder writes sparse: decoded as it is
            return None
        codes = [0] * self._n
        deque(map(codes.__setitem__, rows, map(distinct.__getitem__, values)), maxlen=0)
        return Coded(list(distinct), codes)

    def put(self, name: str, row: int, value: Any) -> None:
        """Set one value, decoding nothing."""
        if name in self:
            self[name][row] = value
        else:
            self._pending.setdefault(name, {})[row] = value

    def put_many(self, name: str, rows: Sequence[int], values: Iterable[Any]) -> None:
        """Set one column's values at ``rows`` (in C), decoding nothing."""
        if name in self:
            deque(map(self[name].__setitem__, rows, values), maxlen=0)
        else:
            self._pending.setdefault(name, {}).update(zip(rows, values, strict=True))

    def value(self, name: str, row: int) -> Any:
        """One value, read from the column's bytes where they allow it (codes, floats, sparse).

        A column is decoded whole only when its encoding cannot be read a row
        at a time (text, json): a status that shows ten tasks of a million
        reads ten values of each of their columns, not every column.
        """
        if name in self:
            return self[name][row]
        pending = self._pending.get(name)
        if pending is not None and row in pending:
            return pending[row]
        block = self._blocks.get(name)
        if block is None or not 0 <= row < self._n or block[0]["encoding"] not in _ONE_BY_ONE:
            return self[name][row]
        return self._read_one(name, *block, row)

    def values_at(self, name: str, rows: Sequence[int]) -> list[Any]:
        """:meth:`value` of each of ``rows``; a text column's sliced and decoded together.

        The bytes of a column not decoded are read in place; values written
        since the index was read are seen.
        """
        block = self._blocks.get(name)
        n = self._n
        if (
            not rows
            or block is None
            or block[0]["encoding"] not in _ONE_BY_ONE
            or name in self._pending
            or not 0 <= min(rows) <= max(rows) < n
        ):
            return [self.value(name, row) for row in rows]
        spec, raw = block
        if spec["encoding"] == "text":
            return self._texts_at(name, spec, raw, rows)
        if spec["encoding"] == "codes" and _LITTLE and _U32 == "I":  # read in place
            codes = map(raw.cast("I").__getitem__, rows)
            return list(map(list(spec["values"]).__getitem__, codes))
        return [self._read_one(name, spec, raw, row) for row in rows]

    def _texts_at(
        self, name: str, spec: dict[str, Any], raw: memoryview, rows: Sequence[int]
    ) -> list[Any]:
        """The values of ``rows`` (some) held in a text column's bytes, decoded together."""
        ends = self._ends_of(name, spec, raw)
        texts = b"\0".join([_value_at(raw, ends, row) for row in rows])
        found: list[Any] = texts.decode("utf-8", "surrogateescape").split("\0")
        return [v or None for v in found] if spec.get("nulls") else found

    def _read_one(self, name: str, spec: dict[str, Any], raw: memoryview, row: int) -> Any:
        """The value of ``row`` read from a column's bytes (one of :data:`_ONE_BY_ONE`)."""
        if spec["encoding"] == "codes":
            (code,) = _CODE.unpack_from(raw, 4 * row)
            return spec["values"][code]
        if spec["encoding"] == "text":
            found = self._text_at(name, spec, raw, row)
            return (found or None) if spec.get("nulls") else found
        rows, values = self._rows_apart_of(name, spec, raw)
        at = bisect.bisect_left(rows, row)
        apart = at < len(rows) and rows[at] == row
        if spec["encoding"] == "sparse":
            return values[at] if apart else spec["default"]
        return None if apart else _DOUBLE.unpack_from(raw, 8 * row)[0]  # floats

    def _text_at(self, name: str, spec: dict[str, Any], raw: memoryview, row: int) -> str:
        """The value of ``row`` in a text column, sliced from its bytes."""
        ends = self._ends_of(name, spec, raw)
        start = ends[row - 1] + 1 if row else 0
        return bytes(raw[start : ends[row]]).decode("utf-8", "surrogateescape")

    def _ends_of(self, name: str, spec: dict[str, Any], raw: memoryview) -> Sequence[int]:
        """Where each value of a text column ends in its bytes (read once)."""
        ends = self._ends.get(name)
        if ends is None:
            tail = raw[int(spec["text_size"]) :]
            # read in place where the machine is little-endian, as the file is
            in_place = _LITTLE and _U32 == "I"
            ends = self._ends[name] = tail.cast("I") if in_place else _from_u32(bytes(tail))
        return ends

    def search(self, name: str, key: str, hi: int) -> int | None:
        """The row in ``[0, hi)`` of a text column sorted there whose value is ``key``, or None.

        A bisection over the column's bytes, which are decoded only where
        compared (about 20 values of a million), unless the column is decoded.
        """
        return self.search_many(name, [key], hi)[0]

    def search_many(self, name: str, keys: Sequence[str], hi: int) -> list[int | None]:
        """:meth:`search` of each of ``keys``, together: each key found narrows the rest.

        With the keys sorted, the middle key is found first, then the keys
        before it among the rows before its place, and the keys after among
        those after: 10,000 keys among a million rows take about 8.5 probes
        each instead of 20.
        """
        if name in self:
            values = self[name]
            rows = [bisect.bisect_left(values, key, 0, hi) for key in keys]
            return [
                r if r < hi and values[r] == k else None for r, k in zip(rows, keys, strict=True)
            ]
        spec, raw = self._blocks[name]
        if spec["encoding"] != "text":
            self[name]  # decoded, then searched
            return self.search_many(name, keys, hi)
        ends = self._ends_of(name, spec, raw)
        places = _places(raw, ends, keys, hi)
        return [
            row
            if row < hi and _value_at(raw, ends, row) == key.encode("utf-8", "surrogateescape")
            else None
            for row, key in zip(places, keys, strict=True)
        ]

    @property
    def rows(self) -> int:
        """The number of rows the file held."""
        return self._n

    def _rows_apart_of(
        self, name: str, spec: dict[str, Any], raw: memoryview
    ) -> tuple[list[int], list[Any]]:
        """The rows set apart in a column (its nulls, or its other values), parsed once."""
        found = self._rows_apart.get(name)
        if found is None:
            if spec["encoding"] == "floats":
                found = (_from_u32(bytes(raw[8 * self._n :])), [])
            else:
                body = json.loads(bytes(raw))
                found = (list(body["rows"]), list(body["values"]))
            if found[0] != sorted(found[0]):  # written in order; sorted here if not
                pairs = sorted(zip(*found, strict=True)) if found[1] else []
                found = (sorted(found[0]), [v for _, v in pairs])
            self._rows_apart[name] = found
        return found

    def decode_all(self) -> None:
        """Decode every column still held as bytes."""
        for name in list(self._blocks):
            self[name]

    def names(self) -> list[str]:
        """Every column's name, decoded or not, in the file's order."""
        return [*self._names, *(name for name in self if name not in self._names)]

    def encoded(self, name: str) -> tuple[dict[str, Any], bytes | memoryview]:
        """The header fields and bytes of one column, as :func:`encode_index` writes them.

        A column still held as bytes is written as it was read, its values
        written since (:meth:`put`) patched in where its encoding allows it
        (codes and doubles overwritten in place, a sparse column's rows apart
        changed, a text column whose values written are the ones it holds);
        only another column is decoded and encoded anew.
        """
        if name in self:
            return _encode(name, self[name])
        spec, raw = self._blocks[name]
        fields = {k: v for k, v in spec.items() if k not in ("name", "size")}
        pending = self._pending.get(name)
        if not pending:
            return fields, raw
        patched: tuple[dict[str, Any], bytes | memoryview] | None
        if spec["encoding"] == "text":
            same = self._texts_at(name, spec, raw, list(pending)) == list(pending.values())
            patched = (fields, raw) if same else None
        else:
            patched = _patch(spec, raw, pending, self._n)
        return patched if patched is not None else _encode(name, self[name])


def _one_kind(values: Iterable[Any]) -> bool:
    """Whether ``values`` could be a column of codes or a sparse one: one type and None."""
    kinds = set(map(type, values))
    return kinds <= {str, int, bool, _NONE} and len(kinds - {_NONE}) <= 1


def _patch(
    spec: dict[str, Any], raw: memoryview, pending: dict[int, Any], n: int
) -> tuple[dict[str, Any], bytes] | None:
    """A column of codes, doubles or a sparse one with ``pending`` written in.

    None where the values written do not fit its encoding (the column is then
    encoded anew).
    """
    patch = _PATCHES.get(spec["encoding"])
    return None if patch is None else patch(spec, raw, pending, n)


def _patch_codes(
    spec: dict[str, Any], raw: memoryview, pending: dict[int, Any], _n: int
) -> tuple[dict[str, Any], bytes] | None:
    values = list(spec["values"])
    if not _one_kind([*values, *pending.values()]):
        return None
    index = {v: i for i, v in enumerate(values)}
    for value in dict.fromkeys(pending.values()):  # new values coded as they first come
        if value not in index:
            index[value] = len(values)
            values.append(value)
    codes = array(_U32)
    codes.frombytes(raw)
    if not _LITTLE:
        codes.byteswap()
    deque(map(codes.__setitem__, pending, map(index.__getitem__, pending.values())), maxlen=0)
    if not _LITTLE:
        codes.byteswap()
    return {"encoding": "codes", "values": values}, codes.tobytes()


def _patch_floats(
    _spec: dict[str, Any], raw: memoryview, pending: dict[int, Any], n: int
) -> tuple[dict[str, Any], bytes] | None:
    if not set(map(type, pending.values())) <= {float, _NONE}:
        return None
    rows, values = list(pending), list(pending.values())
    known = list(map(operator.is_not, values, repeat(None)))
    doubles = array("d")
    doubles.frombytes(raw[: 8 * n])
    if not _LITTLE:
        doubles.byteswap()
    deque(map(doubles.__setitem__, compress(rows, known), compress(values, known)), maxlen=0)
    if not _LITTLE:
        doubles.byteswap()
    nulls = set(_from_u32(bytes(raw[8 * n :])))
    nulls.difference_update(rows)
    nulls.update(compress(rows, map(operator.not_, known)))
    return {"encoding": "floats", "nulls": len(nulls)}, doubles.tobytes() + _u32(sorted(nulls))


def _patch_sparse(
    spec: dict[str, Any], raw: memoryview, pending: dict[int, Any], _n: int
) -> tuple[dict[str, Any], bytes] | None:
    default, body = spec["default"], json.loads(bytes(raw))
    apart = dict(zip(body["rows"], body["values"], strict=True))
    if not _one_kind([default, *apart.values(), *pending.values()]):
        return None
    rows, values = list(pending), list(pending.values())
    # the default, and of its type (1 == True, but True is not a default of 1)
    usual = list(
        map(
            operator.and_,
            map(operator.is_, map(type, values), repeat(type(default))),
            map(operator.eq, values, repeat(default)),
        )
    )
    deque(map(apart.pop, compress(rows, usual), repeat(None)), maxlen=0)
    unusual = list(map(operator.not_, usual))
    apart.update(zip(compress(rows, unusual), compress(values, unusual), strict=True))
    rows = sorted(apart)
    body = {"rows": rows, "values": list(map(apart.__getitem__, rows))}
    return {"encoding": "sparse", "default": default}, _dump(body)


_PATCHES = {"codes": _patch_codes, "floats": _patch_floats, "sparse": _patch_sparse}


def _text_size(spec: dict[str, Any]) -> int:
    size = spec.get("text_size")
    if not isinstance(size, int) or size < 0:
        raise IndexFileError(f"text column {spec.get('name')!r} has no text_size")
    return size


def parse_index(data: bytes | mmap.mmap, names: Sequence[str]) -> tuple[dict[str, Any], Columns]:
    """The header and the columns of an index file (``names``: the columns expected).

    Raises:
        IndexFileError: another version, a header that does not parse, other
            columns, or bytes that do not match the checksum or the sizes.
    """
    if data[: len(MAGIC)] != MAGIC:
        raise IndexFileError("not a status index of this version")
    start = len(MAGIC) + 9
    crc = b"%08x\n" % zlib.crc32(memoryview(data)[start:])
    if data[len(MAGIC) : start] != crc:
        raise IndexFileError("its bytes do not match its checksum (cut short or changed)")
    end = data.find(b"\n", start)
    try:
        header = json.loads(data[start:end])
        specs = header["columns"]
        n = int(header["rows"])
        sizes = [int(spec["size"]) for spec in specs]
        found = [spec["name"] for spec in specs]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexFileError(f"its header does not parse: {exc}") from exc
    if end < 0 or sorted(found) != sorted(names):
        raise IndexFileError("its columns are not the expected ones")
    body = memoryview(data)[end + 1 :]
    if len(body) != sum(sizes):
        raise IndexFileError("its columns' sizes do not add up to its length")
    for spec, size in zip(specs, sizes, strict=True):
        if spec.get("encoding") == "text" and size != _text_size(spec) + 4 * n:
            raise IndexFileError(f"text column {spec['name']!r}: its size disagrees with its rows")
    blocks, start = {}, 0
    for spec, size in zip(specs, sizes, strict=True):
        if spec.get("encoding") == "codes" and isinstance(spec.get("values"), list):
            # the states, hosts...: compared with the program's own (interned) strings
            spec["values"] = [sys.intern(v) if type(v) is str else v for v in spec["values"]]
        blocks[spec["name"]] = (spec, body[start : start + size])
        start += size
    return header, Columns(blocks, n)
