"""``--where`` conditions on harvest records: ``FIELD=VALUE``, ``FIELD<VALUE``, ...

A condition names a dotted field of a record and compares it with a value:

- ``=``: the field equals the value as JSON (``true``, ``3``, ``"x"``), or as
  text (``3`` matches ``"3"``);
- ``!=``: the field is present and does not equal it;
- ``<``, ``<=``, ``>``, ``>=``: the field is a number and compares so with
  the value, a number (or both are text, compared as text);
- ``~``: the field, as text, matches the value as a glob (``relax-*``).

A field not found at the top of the record is looked up in ``metadata``, then
in ``outputs``, so ``label=relax`` means ``metadata.label=relax`` and
``energy<-3.5`` means ``outputs.energy<-3.5``. A record without the field
meets no condition on it; :class:`FieldCheck` tells which fields no record
had (a typo), with the closest fields the records did have.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeGuard

from autojob.errors import InputError

__all__ = ["OPERATORS", "Condition", "FieldCheck", "is_mapping", "parse_condition"]

#: the operators, longest first (so ``<=`` is not read as ``<``)
OPERATORS = ("!=", "<=", ">=", "=", "<", ">", "~")
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_HINT = (
    "e.g. --where outputs.converged=true, --where 'outputs.energy<-3.5', "
    "--where state.state!=success or --where 'label~relax-*'"
)


@dataclass(frozen=True)
class Condition:
    """A dotted field of the record, an operator and the value to compare with."""

    field: str
    text: str
    op: str = "="

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise InputError(
                f"unknown operator {self.op!r} in --where {self.field}{self.op}{self.text}",
                field="--where",
                hint=f"use one of {' '.join(OPERATORS)}",
            )

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.text}"

    @cached_property
    def parts(self) -> list[str]:
        """The field's dotted parts (split once: a condition is looked up in many records)."""
        return self.field.split(".")

    def lookup(self, record: Mapping[str, Any]) -> tuple[bool, Any]:
        """Whether the record has the field, and its value."""
        parts = self.parts
        for base in (record, record.get("metadata"), record.get("outputs")):
            if is_mapping(base) and parts[0] in base:
                return _lookup(base, parts)
        return False, None

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` satisfies the condition."""
        found, value = self.lookup(record)
        return found and self.holds(value)

    def holds(self, value: Any) -> bool:
        """Whether a field's ``value`` satisfies the condition."""
        if self.op == "=":
            return self._equal(value)
        if self.op == "!=":
            return not self._equal(value)
        if self.op == "~":
            shown = value if isinstance(value, str) else json.dumps(value)
            return fnmatch.fnmatchcase(shown, self.text)
        return self._compare(value)

    def _equal(self, value: Any) -> bool:
        try:
            if json.loads(self.text) == value:
                return True
        except ValueError:
            pass
        shown = value if isinstance(value, str) else json.dumps(value)
        return bool(shown == self.text)

    def _compare(self, value: Any) -> bool:
        compare = _ORDER[self.op]
        limit = _number(self.text)
        if limit is not None:
            number = value if _is_number(value) else None
            return number is not None and not math.isnan(number) and compare(number, limit)
        return isinstance(value, str) and compare(value, self.text)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, the dicts of a parsed record first (no ABC check)."""
    return type(value) is dict or isinstance(value, Mapping)


def _lookup(base: Mapping[str, Any], parts: list[str]) -> tuple[bool, Any]:
    value: Any = base
    for part in parts:
        if not is_mapping(value) or part not in value:
            return False, None
        value = value[part]
    return True, value


def parse_condition(text: str) -> Condition:
    """Parse ``FIELD`` OPERATOR ``VALUE`` (see the module's table).

    Raises:
        InputError: there is no operator, or no field before it.
    """
    at = min((i for i, char in enumerate(text) if char in "=!<>~"), default=-1)
    if at <= 0 or not text[:at].strip():
        raise InputError(f"{text!r} is not FIELD=VALUE (or !=, <, <=, >, >=, ~)", hint=_HINT)
    op = next((o for o in OPERATORS if text.startswith(o, at)), None)
    if op is None:
        raise InputError(f"{text!r}: '!' must be followed by '=' (FIELD!=VALUE)", hint=_HINT)
    return Condition(text[:at].strip(), text[at + len(op) :], op)


@dataclass
class FieldCheck:
    """Notes which conditions' fields some record has, to warn about the others."""

    conditions: list[Condition]
    #: dotted fields of records that lacked a field, to suggest the closest
    known: set[str] = field(default_factory=set)
    _found: set[int] = field(default_factory=set)

    @property
    def pending(self) -> bool:
        """Whether some condition's field was found in no record so far."""
        return len(self._found) < len(self.conditions)

    def note(self, record: Mapping[str, Any]) -> None:
        """Look for the fields not found so far in one more record."""
        for number, condition in enumerate(self.conditions):
            if number in self._found:
                continue
            if condition.lookup(record)[0]:
                self._found.add(number)
            elif len(self.known) < KNOWN_FIELDS:
                self.known.update(_fields(record))

    def missing(self) -> list[tuple[Condition, list[str]]]:
        """The conditions whose field no record had, each with the closest fields seen."""
        return [
            (c, difflib.get_close_matches(c.field, sorted(self.known), n=3, cutoff=0.6))
            for number, c in enumerate(self.conditions)
            if number not in self._found
        ]


#: dotted fields kept to suggest from
KNOWN_FIELDS = 2000


def _fields(record: Mapping[str, Any], prefix: str = "", depth: int = 3) -> Iterable[str]:
    """The dotted fields of a record (nested objects to ``depth``), and their short forms."""
    for key, value in record.items():
        name = f"{prefix}{key}"
        yield name
        if prefix in ("metadata.", "outputs."):
            yield key  # what the lookup finds without the prefix
        if isinstance(value, Mapping) and depth > 1:
            yield from _fields(value, name + ".", depth - 1)
