"""Identifiers of study groups, studies, task groups and tasks.

Two forms load: the legacy form, ten alphanumerics whose first letter names the
kind (``g`` study group, ``s`` study, ``c`` task group, ``j`` task, e.g.
``jYKn9PKaBj``), and UUID4 strings. New ids use the legacy form unless
``SETTINGS.LEGACY_MODE`` is off.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer

__all__ = [
    "ID_ALPHABET",
    "ID_PREFIXES",
    "Id",
    "Timestamp",
    "Uuid",
    "check_id",
    "check_uuid",
    "id_factory",
    "new_id",
    "now",
    "set_unvalidated",
]

#: shortuuid's alphabet: no 0/O, 1/l/I that read alike
ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE = len(ID_ALPHABET)
_PAIRS = [first + second for first in ID_ALPHABET for second in ID_ALPHABET]
_PAIR_BASE = len(_PAIRS)
LEGACY_ID_LENGTH = 10
Kind = Literal["g", "s", "c", "j"]
ID_PREFIXES: dict[str, Kind] = {
    "study_group": "g",
    "study": "s",
    "task_group": "c",
    "task": "j",
}


def _legacy_mode() -> bool:
    # the package is imported by now; a module lookup is cheaper than an import
    return bool(sys.modules["autojob"].SETTINGS.LEGACY_MODE)


def new_id(prefix: Kind, *, legacy: bool | None = None) -> str:
    """Return a new id: ``prefix`` + 9 random characters, or a UUID4."""
    if not (_legacy_mode() if legacy is None else legacy):
        return str(uuid.uuid4())
    # 9 base-57 digits from 64 random bits (57**9 is 6e15, so the bias is < 1e-3),
    # taken two at a time from a table of all 57**2 pairs
    number = int.from_bytes(os.urandom(8), "big")
    number, a = divmod(number, _PAIR_BASE)
    number, b = divmod(number, _PAIR_BASE)
    number, c = divmod(number, _PAIR_BASE)
    number, d = divmod(number, _PAIR_BASE)
    return prefix + _PAIRS[a] + _PAIRS[b] + _PAIRS[c] + _PAIRS[d] + ID_ALPHABET[number % _BASE]


def id_factory(prefix: Kind) -> Callable[[], str]:
    """Return a default factory of new ids with ``prefix``."""

    def factory() -> str:
        return new_id(prefix)

    return factory


def check_id(value: Any) -> str:
    """Validate an id and return it as a string.

    Raises:
        ValueError: ``value`` is neither a UUID nor ten alphanumerics.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        msg = f"an id must be a string, not {type(value).__name__}"
        raise ValueError(msg)
    if len(value) == LEGACY_ID_LENGTH and value.isascii() and value.isalnum():
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        pass
    msg = f"{value!r} is not an id: use ten letters and digits (e.g. 'jYKn9PKaBj') or a UUID"
    raise ValueError(msg)


def check_uuid(value: Any) -> str:
    """Validate a UUID (workflow step ids are always UUIDs) and return it as text."""
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        msg = f"{value!r} is not a UUID (workflow step ids are UUIDs)"
        raise ValueError(msg) from None


def set_unvalidated(model: Any, field: str, value: Any) -> None:
    """Set an already-validated value on a model, skipping assignment validation.

    Used to copy a parent's ids onto its children: the values were validated
    when the parent was built, and re-validating thousands of them is slow.
    """
    if model.__dict__.get(field) != value:
        model.__dict__[field] = value
        model.__pydantic_fields_set__.add(field)


def _check_timestamp(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def now() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(tz=UTC)


#: An id field: validated, always a ``str`` in Python and JSON.
Id = Annotated[str, BeforeValidator(check_id)]

#: A UUID field (workflow step ids): validated, always a ``str``.
Uuid = Annotated[str, BeforeValidator(check_uuid)]

#: A timezone-aware datetime (naive values are taken as UTC) that dumps as an
#: ISO 8601 string in both Python and JSON mode, so ``json.dump(m.model_dump())``
#: works as the seed documents show.
Timestamp = Annotated[
    datetime,
    BeforeValidator(_check_timestamp),
    PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="always"),
]
