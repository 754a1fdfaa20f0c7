"""The results of a sweep: a chosen output against a chosen parameter.

``--plot OUTPUT:PARAM`` names two dotted fields of the harvest records. A
field not at the top of a record is looked up as ``--where`` looks it up (in
``metadata``, then ``outputs``), then in the task's inputs (``task_inputs``),
so ``outputs.energy:cutoff`` finds ``cutoff`` in the outputs or the inputs.

The records come from a harvest that keeps its cache beside the report, as
an archive does (:mod:`autojob.harvest.cache`): a second report of a tree
re-reads only the tasks that changed since the first.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autojob.errors import InputError
from autojob.harvest.cache import CachedReader, CacheWriter, cache_path
from autojob.harvest.conditions import Condition
from autojob.harvest.harvesting import harvest

__all__ = ["PlotSpec", "SweepPoints", "lookup", "parse_plot", "sweep_points"]

#: records whose fields are noted, to name the nearest when a plot's field is in none
NOTED_RECORDS = 1000


@dataclass(frozen=True)
class PlotSpec:
    """One sweep plot: ``output`` (y) against ``parameter`` (x)."""

    output: str
    parameter: str

    def __str__(self) -> str:
        return f"{self.output}:{self.parameter}"


@dataclass
class SweepPoints:
    """The points of one plot, per state of the attempt they come from."""

    spec: PlotSpec
    points: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, state, path
    missing: int = 0  # newest attempts without both fields as numbers


def parse_plot(text: str) -> PlotSpec:
    """``OUTPUT:PARAM`` as a :class:`PlotSpec`.

    Raises:
        InputError: not two non-empty dotted fields joined by one colon.
    """
    output, colon, parameter = text.partition(":")
    if not colon or not output.strip() or not parameter.strip() or ":" in parameter:
        raise InputError(
            f"--plot {text!r} is not OUTPUT:PARAM",
            field="--plot",
            hint="name a result and the parameter it was swept over, e.g. "
            "--plot outputs.energy:cutoff",
        )
    return PlotSpec(output.strip(), parameter.strip())


def lookup(record: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """A dotted field of a harvest record, looked up as the module says."""
    return _Field(name).lookup(record)


class _Field:
    """A dotted field, split once, looked up in many records."""

    def __init__(self, name: str) -> None:
        self.condition = Condition(name, "")
        parts = name.split(".")
        self.in_inputs = parts[1:] if parts[0] == "task_inputs" else parts

    def lookup(self, record: Mapping[str, Any]) -> tuple[bool, Any]:
        found, value = self.condition.lookup(record)
        if found:
            return found, value
        inputs = record.get("inputs")
        value = inputs.get("task_inputs") if isinstance(inputs, Mapping) else None
        for part in self.in_inputs:
            if not isinstance(value, Mapping) or part not in value:
                return False, None
            value = value[part]
        return True, value


def sweep_points(root: Path, specs: list[PlotSpec], report: Path) -> list[SweepPoints]:
    """The points of every plot, from a harvest of ``root`` cached beside ``report``.

    Only the newest attempt of each task group counts (a restart replaces
    the attempt before it).

    Raises:
        InputError: a field of a plot is in no record (the message names the
            fields the records have that come closest).
    """
    sweeps = [SweepPoints(spec) for spec in specs]
    fields = [(_Field(spec.parameter), _Field(spec.output)) for spec in specs]
    seen: dict[str, set[str]] = {"outputs": set(), "inputs": set()}
    for count, record in enumerate(_records(root, cache_path(report))):
        if not record.get("attempts", {}).get("current", True):
            continue
        if count < NOTED_RECORDS:
            _note_fields(record, seen)
        for sweep, (x, y) in zip(sweeps, fields, strict=True):
            _add_point(sweep, record, x, y)
    for sweep in sweeps:
        if not sweep.points:
            raise _unknown_field(sweep.spec, seen)
    return sweeps


def _add_point(
    sweep: SweepPoints, record: Mapping[str, Any], parameter: _Field, output: _Field
) -> None:
    found_x, x = parameter.lookup(record)
    found_y, y = output.lookup(record)
    if found_x and found_y and _is_number(x) and _is_number(y):
        state = str(record.get("state", {}).get("state", "unknown"))
        sweep.points.append((float(x), float(y), state, str(record.get("path", ""))))
    else:
        sweep.missing += 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _note_fields(record: Mapping[str, Any], seen: dict[str, set[str]]) -> None:
    outputs = record.get("outputs")
    if isinstance(outputs, Mapping):
        seen["outputs"].update(f"outputs.{key}" for key in outputs)
    inputs = record.get("inputs", {}).get("task_inputs")
    if isinstance(inputs, Mapping):
        seen["inputs"].update(str(key) for key in inputs)


def _unknown_field(spec: PlotSpec, seen: dict[str, set[str]]) -> InputError:
    known = sorted(seen["outputs"] | seen["inputs"])
    close = difflib.get_close_matches(spec.output, known, n=3) + difflib.get_close_matches(
        spec.parameter, known, n=3
    )
    shown = ", ".join(dict.fromkeys(close or known[:8])) or "none: no task has outputs yet"
    return InputError(
        f"--plot {spec}: no task has both fields as numbers",
        field="--plot",
        hint=f"fields the tasks have: {shown}",
    )


def _records(root: Path, cache: Path) -> Iterator[Mapping[str, Any]]:
    """Every harvest record under ``root``; the cache is kept for the next report."""
    found = harvest(root, strict=False, cache=cache)
    keeper = None
    try:
        if isinstance(found.source, CachedReader):
            keeper = CacheWriter(cache, found.source.header())
            found.keeper = keeper
        yield from (entry.data() for entry in found.entries())
    except BaseException:
        if keeper is not None:
            keeper.abort()
        raise
    finally:
        found.close()
    if keeper is not None:
        keeper.commit()
