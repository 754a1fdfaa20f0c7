"""Directory names from templates, refused when unsafe or already taken.

A template is a ``str.format`` pattern over simple fields (``"{label}-{i}"``).
``{i}`` becomes the smallest positive integer giving a free name; without it a
name already taken is refused. A name that is empty, ``.``/``..``, holds ``/`` or
a NUL, or is longer than the file system allows is refused: a directory made
from a template can never leave its destination.
"""

from __future__ import annotations

import functools
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autojob.errors import TemplateError, TreeError, UnsafePathError
from autojob.settings import STAGING_PREFIX

__all__ = ["STAGING_PREFIX", "NameBook", "check_name", "render_template"]
_MAX_NAME_BYTES = 255
_SCALARS = (str, int, float, bool)


def check_name(name: str, dest: Path, *, source: str = "name") -> str:
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
            hint="use a template whose fields give one plain name, e.g. '{label}-{i}'",
        )
    return name


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

    def __init__(self, directory: Path, *, empty: bool = False) -> None:
        """Read the names in ``directory``; ``empty`` says it was just made."""
        self.directory = directory
        self.taken: set[str] = set()
        if not empty and directory.is_dir():
            self.taken.update(os.listdir(directory))

    def claim_plain(self, name: str) -> str:
        """Mark ``name`` (an id, say) taken; refuse it if it already is."""
        if name in self.taken:
            raise TreeError(
                f"directory {name!r} already exists",
                path=self.directory,
                hint="ids are unique: this tree was probably written before",
            )
        check_name(name, self.directory)
        self.taken.add(name)
        return name

    def claim(self, template: str, context: Mapping[str, Any]) -> str:
        """Return a free name from ``template`` and mark it taken.

        Raises:
            TreeError: the name is taken and the template has no ``{i}``.
            UnsafePathError: the name would leave the directory.
        """
        if "i" in template_fields(template):
            i = 1
            name = render_template(template, context, i)
            while name in self.taken:
                i += 1
                numbered = render_template(template, context, i)
                if numbered == name:  # {i} hidden by its format spec
                    break
                name = numbered
        else:
            name = render_template(template, context)
            if name in self.taken:
                raise TreeError(
                    f"directory {name!r} already exists",
                    path=self.directory,
                    hint="add {i} to the name template to number directories, "
                    "or choose another template",
                )
        check_name(name, self.directory, source=f"template {template!r} gives")
        self.taken.add(name)
        return name
