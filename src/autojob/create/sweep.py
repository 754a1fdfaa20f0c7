"""Read sweep specifications (TOML or YAML) and write the studies they describe.

The study of a spec is built by :func:`autojob.sweep.build_study` (no I/O).

Errors in a spec name the key and the line: YAML through the node marks of
PyYAML's composer, TOML through a scan of its table headers and keys
(``tomllib`` keeps no positions).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from autojob.errors import InputError
from autojob.store.workflow import save_workflow
from autojob.study import Study
from autojob.sweep import SpecKeyError, SweepSpec, build_study

__all__ = ["build_study", "load_spec", "parse_spec", "table_rows", "toml_key_lines", "write_sweep"]

Loc = tuple[str | int, ...]
YAML_SUFFIXES = (".yaml", ".yml")


# -- where a key is --------------------------------------------------------


def _key_parts(text: str) -> tuple[str, ...]:
    """Split a TOML key on the dots outside quotes (``a."b.c"`` is two parts)."""
    parts, current, quote = [], "", ""
    for char in text.strip():
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return (*parts, current.strip())


def toml_key_lines(text: str) -> dict[Loc, int]:
    """The first line (1-based) of every table and key of a TOML document."""
    lines: dict[Loc, int] = {}
    table: Loc = ()
    arrays: dict[Loc, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            key = _key_parts(line[2 : line.find("]]")])
            arrays[key] = arrays.get(key, -1) + 1
            table = (*key, arrays[key])
            lines.setdefault(key, number)
        elif line.startswith("["):
            table = _key_parts(line[1 : line.find("]")])
        elif "=" in line and not line.startswith("#"):
            lines.setdefault((*table, *_key_parts(line.split("=", 1)[0])), number)
            continue
        else:
            continue
        lines.setdefault(table, number)
    return lines


def _yaml_key_lines(node: yaml.Node, prefix: Loc = ()) -> dict[Loc, int]:
    lines: dict[Loc, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            lines[path] = key.start_mark.line + 1
            lines.update({k: v for k, v in _yaml_key_lines(value, path).items() if k != path})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_yaml_key_lines(item, (*prefix, index)))
    return lines


def _line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


# -- reading ------------------------------------------------------------


def _parse_text(text: str, path: Path) -> tuple[Any, dict[Loc, int]]:
    if path.suffix.lower() in YAML_SUFFIXES:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise InputError(f"{where}not valid YAML ({exc})", path=path) from exc
        return data, _yaml_key_lines(node) if node is not None else {}
    try:
        return tomllib.loads(text), toml_key_lines(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            f"not valid TOML: {exc}",
            path=path,
            hint="a .yaml or .yml file is read as YAML, anything else as TOML",
        ) from exc


def parse_spec(text: str, path: Path) -> SweepSpec:
    """Validate the spec in ``text`` (read from ``path``).

    Raises:
        InputError: the text does not parse, or a key is unknown, mistyped or
            empty; the message names the key and its line.
    """
    data, lines = _parse_text(text, path)
    if not isinstance(data, dict):
        raise InputError("a sweep spec must be a table of keys", path=path)
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc: Loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SpecKeyError):
            loc = cause.loc  # raised with the path of keys from the top
        if error["type"] == "extra_forbidden":
            problem = "unknown key"
        else:
            problem = str(error["msg"]).removeprefix("Value error, ")
        line = _line_of(lines, loc)
        where = f"line {line}: " if line is not None else ""
        raise InputError(
            f"{where}{problem}",
            path=path,
            field=".".join(str(p) for p in loc) or None,
            hint=getattr(cause, "hint", None)
            or "see 'autojob sweep --help' for the keys a spec takes",
        ) from exc


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep spec file (YAML by suffix, else TOML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the spec: {exc}", path=path) from exc
    return parse_spec(text, path)


# -- building --------------------------------------------------------------


def write_sweep(spec: SweepSpec, dest: Path) -> tuple[Study, Path]:
    """Write the study of ``spec`` inside ``dest`` (with its workflow files, if any)."""
    study = build_study(spec)
    path = study.to_directory(
        dest,
        study_template=spec.study_template,
        task_group_template=spec.task_group_template,
        task_template=spec.task_template,
    )
    workflow = spec.workflow()
    if workflow is not None:
        save_workflow(path, workflow)
    return study, path


def table_rows(spec: SweepSpec) -> tuple[list[str], list[Sequence[Any]]]:
    """The header and rows of the table of combinations (``--dry-run``)."""
    header = ["#", "label", *spec.names()]
    rows: list[Sequence[Any]] = [
        [i, spec.label_of(values, i), *values.values()]
        for i, values in enumerate(spec.combinations())
    ]
    return header, rows
