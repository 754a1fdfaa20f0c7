"""Render task scripts and the job scripts of dataset sketches from Jinja2 templates.

Task script templates are looked up first in ``SETTINGS.TEMPLATE_DIR`` (when
set), then in the package; a sketch's templates (``templates/jobarchitect/``)
in the package only. Every ``{{ value }}`` a template prints is shell-quoted
(``shlex.quote``) unless passed through the ``raw`` filter, so no label, path or
parameter can change what a script does.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from autojob import SETTINGS
from autojob.errors import TemplateError
from autojob.store.task_lock import LOCK_FILE
from autojob.timefmt import format_slurm_time

if TYPE_CHECKING:
    from autojob.bases.task_base import TaskBase

__all__ = [
    "Raw",
    "render_own_script",
    "render_sketch_template",
    "render_task_script",
    "script_environment",
]


class Raw(str):
    """A string a template prints as it is (already safe for the shell)."""

    __slots__ = ()


def _quote(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "''"
    if isinstance(value, bool):
        value = str(value).lower()
    return shlex.quote(str(value))


def _python_literal(value: Any) -> str:
    """A value as a Python literal (``repr`` of text, numbers, booleans and None)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return repr(value)
    return repr(str(value))


def _raw(value: Any) -> Raw:
    return Raw("" if value is None else str(value))


@functools.cache
def script_environment(template_dir: Path | None) -> jinja2.Environment:
    """Return the (cached) Jinja2 environment for a user template directory."""
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders.append(jinja2.PackageLoader("autojob", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=False,  # noqa: S701  (shell, not HTML: values are shell-quoted)
        finalize=_quote,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["raw"] = _raw
    env.filters["shquote"] = lambda v: Raw(_quote(v))
    return env


def restart_buffer(limit: float) -> float:
    """Seconds kept in reserve when a command is stopped early for a restart.

    5% of the limit, at least 30 s, but never more than half the limit.
    """
    return min(max(0.05 * limit, 30.0), 0.5 * limit)


@functools.cache
def _autojob_bin() -> str | None:
    """The ``autojob`` command beside this interpreter (or on PATH), if any."""
    beside = Path(sys.executable).parent / "autojob"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("autojob")


def _restart_context(task: TaskBase) -> dict[str, str] | None:
    """What the template needs to stop a command early and restart it, or None."""
    inputs = task.task_inputs
    limit = task.scheduler_inputs.time_limit()
    binary = _autojob_bin()
    if not inputs.auto_restart or limit is None or binary is None:
        return None
    seconds = limit.total_seconds()
    fraction = restart_buffer(seconds) / seconds  # a fraction, as 'autojob run --buffer' reads it
    return {"bin": binary, "limit": format_slurm_time(limit), "buffer": f"{fraction:.6g}"}


@functools.cache
def python_environment(template_dir: Path | None) -> jinja2.Environment:
    """The environment of ``*.py.j2`` templates: values printed as Python literals."""
    env = script_environment(template_dir).overlay(finalize=_python_literal)
    env.filters["raw"] = _raw
    return env


@functools.cache
def _template(template_dir: Path | None, name: str) -> jinja2.Template:
    """Return a compiled template (cached: templates are read once a process)."""
    if name.endswith(".py.j2"):
        env = python_environment(template_dir)
    else:
        env = script_environment(template_dir)
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        places = f"{template_dir} and " if template_dir else ""
        raise TemplateError(
            f"task script template {name!r} not found in {places}the package",
            field="task_inputs.task_script_template",
            hint="set AUTOJOB_TEMPLATE_DIR to the directory holding it",
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error at line {exc.lineno}: {exc.message}",
            path=exc.filename or name,
        ) from exc


def render_task_script(task: TaskBase) -> str:
    """Render the task script of ``task`` from its ``task_script_template``.

    Templates see ``task``, ``metadata`` (its task metadata), ``inputs`` (its
    task inputs), ``scheduler_inputs``, ``sbatch_lines``, ``settings``,
    ``lock_file`` (where the task lock is taken if directories cannot be locked)
    and ``autojob_bin`` (the ``autojob`` command, or None).
    """
    template = _template(SETTINGS.TEMPLATE_DIR, task.task_inputs.task_script_template)
    context = {
        "restart": _restart_context(task),
        "autojob_bin": _autojob_bin(),
        "task": task,
        "metadata": task.task_metadata,
        "inputs": task.task_inputs,
        "scheduler_inputs": task.scheduler_inputs,
        "sbatch_lines": task.scheduler_inputs.sbatch_lines(),
        "settings": SETTINGS,
        "lock_file": LOCK_FILE,
    }
    return _render(template, context)


def render_own_script(task: TaskBase, name: str) -> str:
    """Render the template ``name`` into one of the scripts of the task's class.

    The template sees ``task``, ``metadata``, ``inputs`` and ``settings``; a
    ``*.py.j2`` template prints values as Python literals.
    """
    template = _template(SETTINGS.TEMPLATE_DIR, name)
    context = {
        "task": task,
        "metadata": task.task_metadata,
        "inputs": task.task_inputs,
        "settings": SETTINGS,
    }
    return _render(template, context)


def _render(template: jinja2.Template, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template {template.name!r} uses an undefined value: {exc.message}",
            path=template.filename,
        ) from exc


def render_sketch_template(name: str, context: dict[str, object]) -> str:
    """Render the package template ``jobarchitect/<name>.sh.j2`` of a dataset sketch.

    Raises:
        TemplateError: the template is missing, or fails to render.
    """
    env = script_environment(None)
    try:
        return env.get_template(f"jobarchitect/{name}.sh.j2").render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"cannot render {name}: {exc}", path=name) from exc
