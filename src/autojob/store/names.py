"""Directory names from templates, refused when unsafe or already taken.

Without a template, a directory is named after its label (a study's or study
group's name), with its id appended when that name is taken, or after its id
where there is no label (:meth:`NameBook.claim_readable`).

A template is a ``str.format`` pattern over simple fields (``"{label}-{i}"``).
``{i}`` becomes the smallest positive integer giving a free name; without it a
name already taken is refused. A name that is empty, ``.``/``..``, holds ``/`` or
a NUL, or is longer than the file system allows is refused: a directory made
from a template can never leave its destination. Nor can a directory take a
name autojob reserves (any file name of ``SETTINGS``, a name beginning with the
index or history directory's name, which walks skip, or the staging prefix):
it would be invisible to list, submit, status and harvest, or mistaken for
one of autojob's own files.
"""

from __future__ import annotations

import functools
import operator
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autojob.errors import TemplateError, TreeError, UnsafePathError
from autojob.settings import STAGING_PREFIX

__all__ = [
    "STAGING_PREFIX",
    "NameBook",
    "check_dest",
    "check_name",
    "check_task_file",
    "render_template",
    "reserved_reason",
]
_MAX_NAME_BYTES = 255
_SCALARS = (str, int, float, bool)


def check_name(name: str, dest: Path, *, source: str = "name", hint: str | None = None) -> str:
    """Return ``name`` if it is one safe path component inside ``dest``.

    Raises:
        UnsafePathError: the name would leave ``dest`` or is not a valid name.
    """
    problem = None
    if not name or name in {".", ".."}:
        problem = f"{source} {name!r} is not a directory name"
    elif "/" in name or "\0" in name or (os.sep != "/" and os.sep in name):
        problem = f"{source} {name!r} would leave {dest} (it holds '/' or a NUL byte)"
    elif len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES:
        problem = f"{source} {name[:40]!r}... is longer than {_MAX_NAME_BYTES} bytes"
    elif name.startswith(STAGING_PREFIX):
        problem = f"{source} {name!r} uses the reserved prefix {STAGING_PREFIX!r}"
    if problem:
        raise UnsafePathError(
            problem,
            path=dest,
            hint=hint or "use a template whose fields give one plain name, e.g. '{label}-{i}'",
        )
    return name


#: settings naming directories that every walk skips (with any name they begin)
_SKIPPED_DIRS = ("INDEX_DIR", "HISTORY_DIR")
#: settings naming a task's script: a task may name its own script so
_SCRIPT_FILES = ("DEFAULT_TASK_SCRIPT_FILE", "DEFAULT_CALCULATION_SCRIPT_FILE", "INPUT_ATOMS_FILE")


def _described(field: str, value: str) -> str:
    from autojob.settings import AutojobSettings  # noqa: PLC0415

    return f"{field} ({value!r}: {AutojobSettings.model_fields[field].description})"


#: the reserved names for the file-name settings last seen: the settings' values,
#: the skipped directories (field, value), and each reserved name's reasons
_Table = tuple[tuple[object, ...], tuple[tuple[str, str], ...], dict[str, list[tuple[str, str]]]]
_table: list[_Table] = []
#: task file names accepted, with the table they were accepted under
_accepted: dict[str, _Table] = {}


def _reserved_table() -> _Table:
    """The reserved names of the current settings (made again when a setting changes)."""
    from autojob import SETTINGS  # noqa: PLC0415

    key = operator.itemgetter(*SETTINGS.name_fields())(SETTINGS.__dict__)
    if _table and _table[0][0] == key:
        return _table[0]
    files = SETTINGS.file_names()
    skipped = tuple((field, files[field]) for field in _SKIPPED_DIRS)
    exact: dict[str, list[tuple[str, str]]] = {}
    for field, value in files.items():
        exact.setdefault(value, []).append((field, f"it is {_described(field, value)}"))
        lock = f".{value}.lock"
        exact.setdefault(lock, []).append(
            (field, f"it is the lock file of {_described(field, value)}")
        )
    _table[:] = [(key, skipped, exact)]
    return _table[0]


def reserved_reason(name: str, *, allowed: tuple[str, ...] = ()) -> str | None:
    """Why ``name`` cannot name a directory autojob makes, or None if it can.

    ``allowed``: settings whose names may be taken (a task's own script).
    """
    if name.startswith(STAGING_PREFIX):
        return f"it begins with {STAGING_PREFIX!r}, reserved for directories being built"
    _, skipped, exact = _reserved_table()
    for field, value in skipped:
        if name == value:
            return f"it is {_described(field, value)}"
        if name.startswith(value):
            return f"it begins with {_described(field, value)}, and walks skip such directories"
    for field, reason in exact.get(name, ()):
        if field not in allowed:
            return reason
    return None


def _refuse_reserved(
    name: str, dest: Path, *, field: str | None, source: str, hint: str | None = None
) -> None:
    reason = reserved_reason(name)
    if reason is not None:
        raise UnsafePathError(
            f"{source} {name!r}, a name autojob reserves: {reason}",
            path=dest,
            field=field,
            hint=hint
            or "choose another label, or a name template giving another name (e.g. '{label}-run')",
        )


def _outside_staging(path: Path) -> Path:
    """``path`` as it will be once published (without a staging directory)."""
    return Path(*(part for part in path.parts if not part.startswith(STAGING_PREFIX)))


def check_task_file(name: str, dest: str | Path, *, source: str) -> str:
    """Return ``name`` if a task may write a file of its own by that name.

    A name accepted once is accepted again at once while the settings stay as
    they are (every task of a study names the same script).

    Raises:
        UnsafePathError: the name is not one plain name, or is one of autojob's
            files (a task script named ``inputs.json`` would replace its inputs).
    """
    table = _reserved_table()
    if _accepted.get(name) is table:
        return name
    shown = _outside_staging(Path(dest))
    check_name(name, shown, source=source)
    reason = reserved_reason(name, allowed=_SCRIPT_FILES)
    if reason is not None:
        raise UnsafePathError(
            f"{source} {name!r} is a name autojob reserves: {reason}",
            path=shown,
            field=source,
            hint="give the task's file another name",
        )
    _accepted[name] = table
    return name


def check_dest(dest: Path) -> None:
    """Refuse to write into a directory that every walk skips (index, history, staging).

    Raises:
        UnsafePathError: ``dest`` or one of the directories above it is one.
    """
    from autojob import SETTINGS  # noqa: PLC0415

    skipped = (STAGING_PREFIX, *(getattr(SETTINGS, f) for f in _SKIPPED_DIRS))
    for part in Path(os.path.abspath(dest)).parts:
        if part.startswith(skipped):
            raise UnsafePathError(
                f"is inside {part!r}, a directory that list, submit, status and harvest "
                f"skip ({reserved_reason(part)})",
                path=dest,
                field="--dest",
                hint="give a destination outside autojob's own directories",
            )


@functools.lru_cache(maxsize=256)
def template_fields(template: str) -> tuple[str, ...]:
    """Return the field names of a template; refuse anything but plain names."""
    fields = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(
            f"template {template!r} is malformed: {exc}",
            hint="write fields as {name}; double a brace ({{ or }}) to keep it",
        ) from exc
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or conversion:
            raise TemplateError(
                f"template {template!r}: field {{{field}}} must be a plain name",
                hint="use fields such as {label}, {task_id} or {i}",
            )
        if spec and "{" in spec:
            raise TemplateError(f"template {template!r}: nested fields are not allowed")
        fields.append(field)
    return tuple(fields)


def render_template(template: str, context: Mapping[str, Any], i: int | None = None) -> str:
    """Fill a template from ``context`` (and ``i``), checking every field."""
    values: dict[str, Any] = {}
    for field in template_fields(template):
        if field == "i":
            values["i"] = i if i is not None else 1
            continue
        if field not in context:
            known = ", ".join(sorted([*context, "i"]))
            raise TemplateError(
                f"template {template!r}: unknown field {{{field}}}",
                hint=f"available fields: {known}",
            )
        value = context[field]
        if value is None or not isinstance(value, _SCALARS):
            raise TemplateError(
                f"template {template!r}: field {{{field}}} has no single value ({value!r})",
                hint="use a field that holds a string or a number",
            )
        values[field] = value
    try:
        return template.format_map(values)
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"template {template!r}: {exc}") from exc


class NameBook:
    """The names taken in one directory, so new names never collide.

    Reads the directory once; names handed out are remembered, so naming
    thousands of siblings costs no further listing.
    """

    def __init__(
        self,
        directory: Path,
        *,
        empty: bool = False,
        on_disk: bool = False,
        also: Path | None = None,
    ) -> None:
        """Read the names in ``directory``; ``empty`` says it was just made.

        ``on_disk``: remember nothing, and look each name up in the directory
        instead (one ``lstat``), for one name claimed in a directory of many
        (no listing), or for a directory that only this writer fills, each
        name's directory made before the next name is claimed (memory then
        stays the same however many siblings are named). ``also`` (with
        ``on_disk``): a directory whose names count as taken too (where the
        directories staged in ``directory`` will go).
        """
        self.directory = directory
        self.taken: set[str] = set()
        self._on_disk = on_disk
        self._also = also
        if not empty and not on_disk and directory.is_dir():
            self.taken.update(os.listdir(directory))

    def _is_taken(self, name: str) -> bool:
        if self._on_disk:  # not one plain name: not looked up, refused by check_name
            plain = name not in ("", ".", "..") and os.sep not in name
            dirs = (self.directory, self._also) if self._also else (self.directory,)
            return plain and any(os.path.lexists(os.path.join(d, name)) for d in dirs)
        return name in self.taken

    def _take(self, name: str) -> None:
        if not self._on_disk:
            self.taken.add(name)

    def claim_plain(self, name: str) -> str:
        """Mark ``name`` (an id, say) taken; refuse it if it already is."""
        _refuse_reserved(name, self.directory, field=None, source="the name")
        if self._is_taken(name):
            raise TreeError(
                f"directory {name!r} already exists",
                path=self.directory,
                hint="ids are unique: this tree was probably written before",
            )
        check_name(name, self.directory)
        self._take(name)
        return name

    def claim_readable(self, readable: str, ident: str, *, field: str = "label") -> str:
        """Name a directory after its label (or name), else after its id.

        The label itself when it is free; the label and the id
        (``screening-gAb12Cd34Ef``) when a directory of that name exists
        already; the id alone when there is no label. A label that is not one
        safe name (it holds '/', is '..', is one of autojob's names) is refused.

        Raises:
            UnsafePathError: the label cannot name a directory.
        """
        if not readable:
            return self.claim_plain(ident)
        hint = (
            f"choose a {field} that is one plain name, or name the directory with a "
            "template (--name-template, e.g. by its id)"
        )
        source = f"the {field}"
        _refuse_reserved(readable, self.directory, field=field, source=source, hint=hint)
        check_name(readable, self.directory, source=source, hint=hint)
        name = readable if not self._is_taken(readable) else f"{readable}-{ident}"
        check_name(name, self.directory, source=source, hint=hint)
        if self._is_taken(name):
            raise TreeError(
                f"directory {name!r} already exists",
                path=self.directory,
                hint="ids are unique: this tree was probably written before",
            )
        self._take(name)
        return name

    def claim(self, template: str, context: Mapping[str, Any]) -> str:
        """Return a free name from ``template`` and mark it taken.

        Raises:
            TreeError: the name is taken and the template has no ``{i}``.
            UnsafePathError: the name would leave the directory.
        """
        source = f"template {template!r} gives"
        fields = ", ".join(f for f in template_fields(template) if f != "i") or None
        if "i" in template_fields(template):
            i = 1
            name = render_template(template, context, i)
            while self._is_taken(name):
                i += 1
                numbered = render_template(template, context, i)
                if numbered == name:  # {i} hidden by its format spec
                    break
                name = numbered
        else:
            name = render_template(template, context)
            _refuse_reserved(name, self.directory, field=fields, source=source)
            if self._is_taken(name):
                raise TreeError(
                    f"directory {name!r} already exists",
                    path=self.directory,
                    hint="add {i} to the name template to number directories, "
                    "or choose another template",
                )
        _refuse_reserved(name, self.directory, field=fields, source=source)
        check_name(name, self.directory, source=source)
        self._take(name)
        return name
