"""A task's script, kept in step with ``inputs.json``, the source of truth.

A script autojob renders ends with a stamp line::

    # autojob-rendered sources=<digest> script=<digest>

(``sources``: of ``inputs.json`` and ``task.json``; ``script``: of the lines above).

The stamp tells a script autojob rendered, and that nobody edited since
(its lines hash to ``script``), from one a user edited or wrote: a script
without an intact stamp is the user's and is never replaced unless asked
(``force``). ``sources`` tells whether ``inputs.json`` or ``task.json`` changed
since the script was rendered: ``submit`` renders a script again exactly then
(:func:`refresh_task_script`), ``autojob render`` whenever asked.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autojob import SETTINGS
from autojob.errors import AutojobError, InputError
from autojob.input_keys import check_input_document, missing_command
from autojob.plugins import get_task_class
from autojob.store.atomic import parse_json_object, read_bytes_if_file, write_atomic
from autojob.store.load import inputs_sections, validate_task_document
from autojob.store.names import check_task_file
from autojob.store.render import render_task_script

if TYPE_CHECKING:
    from autojob.bases.task_base import TaskBase

__all__ = [
    "STAMP",
    "ScriptReport",
    "ScriptState",
    "refresh_task_script",
    "sources_digest",
    "stamped",
]

logger = logging.getLogger(__name__)
#: the beginning of the last line of a script autojob rendered
STAMP = "# autojob-rendered "
SCRIPT_MODE = 0o777  # less the umask, as for any new file


def sources_digest(inputs: bytes, metadata: bytes) -> str:
    """A short digest of the contents of ``inputs.json`` and ``task.json``."""
    digest = hashlib.sha256(len(inputs).to_bytes(8, "big"))
    digest.update(inputs)
    digest.update(metadata)
    return digest.hexdigest()[:16]


def _body_digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def stamped(body: str, sources: str) -> str:
    """The script ``body`` with its stamp line appended."""
    if body and not body.endswith("\n"):
        body += "\n"
    return f"{body}{STAMP}sources={sources} script={_body_digest(body)}\n"


@dataclass(frozen=True)
class _Stamp:
    sources: str
    intact: bool  # the lines above it are as autojob rendered them


def _read_stamp(text: str) -> _Stamp | None:
    """The stamp of a script; intact if it is the last line and the lines above match."""
    start = 0 if text.startswith(STAMP) else text.rfind("\n" + STAMP) + 1
    if start == 0 and not text.startswith(STAMP):
        return None
    line, _, after = text[start:].partition("\n")
    fields = dict(part.partition("=")[::2] for part in line[len(STAMP) :].split())
    intact = not after and fields.get("script") == _body_digest(text[:start])
    return _Stamp(fields.get("sources", ""), intact)


class ScriptState(StrEnum):
    """What became of a task's script."""

    WRITTEN = "written"  # there was none
    RENDERED = "rendered again"
    CURRENT = "up to date"
    EDITED = "kept: edited by hand since autojob rendered it"
    FOREIGN = "kept: not written by autojob"


@dataclass(frozen=True)
class ScriptReport:
    """A task's script and what became of it.

    ``stale``: for a script kept, whether ``inputs.json`` or ``task.json``
    changed since autojob last rendered it (so it may not run what they say).
    """

    path: Path
    state: ScriptState
    stale: bool = False

    @property
    def kept(self) -> bool:
        """Whether the script is the user's and was left as it is."""
        return self.state in (ScriptState.EDITED, ScriptState.FOREIGN)


def _load(task_dir: Path, sections: dict[str, Any], has_metadata: bool) -> TaskBase:
    if has_metadata:
        from autojob.tasks.task import Task  # noqa: PLC0415  (the default task class)

        return Task.from_directory(task_dir, magic_mode=True, strict_mode=False)
    # a loose task in a dry run, before its metadata is written
    document = {**sections, "task_metadata": {"label": task_dir.name}}
    return validate_task_document(get_task_class(SETTINGS.DEFAULT_TASK), document, task_dir)


def _render(task_dir: Path, sections: dict[str, Any], sources: str, has_metadata: bool) -> str:
    task = _load(task_dir, sections, has_metadata)
    check_input_document(type(task), sections, path=task_dir / SETTINGS.INPUTS_FILE)
    return stamped(render_task_script(task), sources)


def _check_command(task_dir: Path, sections: dict[str, Any], metadata: bytes) -> None:
    meta = parse_json_object(metadata, task_dir / SETTINGS.TASK_METADATA_FILE) if metadata else {}
    try:
        task_class = get_task_class(str(meta.get("task_class") or SETTINGS.DEFAULT_TASK))
    except AutojobError:
        return  # loaded, and reported, as the default class where it is rendered
    if missing_command(task_class, sections):
        raise InputError(
            "the task has no command to run",
            path=task_dir / SETTINGS.INPUTS_FILE,
            field="task_inputs.command",
            hint='set it in the file ("task_inputs": {"command": "python calc.py"}), '
            "or leave the task out of the paths",
        )


def _read_text(path: Path) -> str | None:
    data = read_bytes_if_file(path)
    return None if data is None else data.decode("utf-8", "surrogateescape")


def refresh_task_script(
    task_dir: Path,
    *,
    always: bool = False,
    force: bool = False,
    dry_run: bool = False,
    require_command: bool = False,
) -> ScriptReport:
    """Render the task script of ``task_dir`` where it is missing or out of step.

    A missing script is written; a script autojob rendered is rendered again
    when ``inputs.json`` or ``task.json`` changed since (or ``always``); a
    script without an intact stamp (edited or written by hand) is kept unless
    ``force``. ``dry_run``: render and check, but write nothing.
    ``require_command``: refuse a task whose script is autojob's and whose
    class needs a command it lacks (a script of the user's runs what it says).

    Raises:
        InputError: ``inputs.json`` holds a key autojob refuses, or lacks the
            command asked for.
        MetadataError: the task's files are broken.
    """
    inputs_path = task_dir / SETTINGS.INPUTS_FILE
    raw = read_bytes_if_file(inputs_path) or b""
    sections = inputs_sections(parse_json_object(raw, inputs_path), inputs_path)
    task_inputs = sections.get("task_inputs") or {}
    name = task_inputs.get("task_script") or SETTINGS.DEFAULT_TASK_SCRIPT_FILE
    script = task_dir / check_task_file(str(name), task_dir, source="task_inputs.task_script")
    metadata = read_bytes_if_file(task_dir / SETTINGS.TASK_METADATA_FILE) or b""
    sources = sources_digest(raw, metadata)
    text = _read_text(script)
    stamp = None if text is None else _read_stamp(text)
    if text is not None and not force and (stamp is None or not stamp.intact):
        state = ScriptState.FOREIGN if stamp is None else ScriptState.EDITED
        return ScriptReport(script, state, stale=stamp is not None and stamp.sources != sources)
    if require_command:
        _check_command(task_dir, sections, metadata)
    if stamp is not None and stamp.intact and stamp.sources == sources and not always:
        return ScriptReport(script, ScriptState.CURRENT)
    new = _render(task_dir, sections, sources, bool(metadata))
    if new == text:
        return ScriptReport(script, ScriptState.CURRENT)
    if not dry_run:
        write_atomic(script, new, mode=SCRIPT_MODE)
        logger.info("%s: task script %s", script, "written" if text is None else "rendered again")
    return ScriptReport(script, ScriptState.WRITTEN if text is None else ScriptState.RENDERED)
