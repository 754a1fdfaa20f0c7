"""What a task asks of the scheduler: the ``scheduler_inputs`` of ``inputs.json``.

Fields are named as Python names and stored under sbatch's option names
(``cpus_per_task`` is ``"cpus-per-task"``), as python-autojob wrote them. The
declared fields (``time``, ``mem``, ``cpus_per_task``, ``ntasks``, ``partition``,
``job_name``, ``account``, ``mail_user``, ...) are the portable part every
executor maps to its own options. Any other key must be a long option of sbatch
(:data:`SBATCH_OPTIONS`: ``"gres": "gpu:1"``, ``"exclusive": true``); an option
sbatch does not list (a site plugin's) is written out as given through
``extra_directives`` (``["--container-image=ubuntu"]``). Each becomes one
``#SBATCH --option=value`` line of the task script, and
:func:`read_sbatch_options` reads such lines back from an existing script.
"""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from autojob.errors import InputError
from autojob.timefmt import ACCEPTED_FORMS, format_slurm_time, parse_slurm_time

__all__ = [
    "MAIL_TYPES",
    "SBATCH_OPTIONS",
    "SchedulerInputs",
    "memory_mb",
    "memory_without_unit",
    "read_sbatch_options",
    "scale_memory",
    "scale_time",
]

_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)B?", re.IGNORECASE)
_RAW_DIRECTIVE = re.compile(r"--[A-Za-z][A-Za-z0-9-]*(=.*)?", re.DOTALL)
_NODES = re.compile(r"[0-9]+(?:-[0-9]+)?")
_UNIT_MB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}
MAIL_TYPES = frozenset(
    (
        *("NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "INVALID_DEPEND", "STAGE_OUT"),
        *("TIME_LIMIT", "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50", "ARRAY_TASKS"),
    )
)
#: short sbatch options and the long ones they stand for
SHORT_OPTIONS = {
    "A": "account", "J": "job-name", "N": "nodes", "c": "cpus-per-task", "n": "ntasks",
    "p": "partition", "t": "time", "o": "output", "e": "error", "q": "qos",
    "C": "constraint", "G": "gpus", "w": "nodelist", "x": "exclude", "D": "chdir",
}  # fmt: skip
#: The long options of sbatch a job may set, from the OPTIONS section of the
#: sbatch(1) manual page of Slurm 22.05.8 (December 2022); left out are those
#: that steer the sbatch command itself rather than the job (help, usage,
#: version, parsable, quiet, verbose, wait, test-only, wrap, ignore-pbs, batch).
SBATCH_OPTIONS = frozenset(
    {
        "account", "acctg-freq", "array", "bb", "bbf", "begin", "chdir", "cluster-constraint",
        "clusters", "comment", "constraint", "container", "contiguous", "core-spec",
        "cores-per-socket", "cpu-freq", "cpus-per-gpu", "cpus-per-task", "deadline", "delay-boot",
        "dependency", "distribution", "error", "exclude", "exclusive", "export", "export-file",
        "extra-node-info", "get-user-env", "gid", "gpu-bind", "gpu-freq", "gpus", "gpus-per-node",
        "gpus-per-socket", "gpus-per-task", "gres", "gres-flags", "hint", "hold", "input",
        "job-name", "kill-on-invalid-dep", "licenses", "mail-type", "mail-user", "mcs-label", "mem",
        "mem-bind", "mem-per-cpu", "mem-per-gpu", "mincpus", "network", "nice", "no-kill",
        "no-requeue", "nodefile", "nodelist", "nodes", "ntasks", "ntasks-per-core",
        "ntasks-per-gpu", "ntasks-per-node", "ntasks-per-socket", "open-mode", "output",
        "overcommit", "oversubscribe", "partition", "power", "prefer", "priority", "profile",
        "propagate", "qos", "reboot", "requeue", "reservation", "signal", "sockets-per-node",
        "spread-job", "switches", "thread-spec", "threads-per-core", "time", "time-min", "tmp",
        "uid", "use-min-nodes", "wait-all-nodes", "wckey",
    }
)  # fmt: skip
#: options that take no value
FLAG_OPTIONS = frozenset({"exclusive", "requeue", "no-requeue", "overcommit", "hold", "contiguous"})


def _single_line(value: Any) -> Any:
    if isinstance(value, str) and any(ord(ch) < 32 for ch in value):
        msg = f"{value!r} holds a newline or control character (#SBATCH lines are single lines)"
        raise ValueError(msg)
    return value


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _join(values: list[str] | None) -> str | None:
    return None if values is None else ",".join(values)


CommaList = Annotated[
    list[str] | None,
    BeforeValidator(_comma_list),
    PlainSerializer(_join, return_type=str | None),
]


def memory_mb(value: str | int) -> float:
    """Megabytes in a SLURM memory amount (``4000``, ``"4G"``, ``"512M"``)."""
    if isinstance(value, int):
        return float(value)
    match = _MEMORY.fullmatch(value.strip())
    if not match:
        msg = (
            f"{value!r} is not a memory amount: use a number of megabytes or a number "
            "with a unit K, M, G or T (e.g. 4000, '4G', '512M')"
        )
        raise ValueError(msg)
    return float(match[1]) * _UNIT_MB[match[2].upper()]


def memory_without_unit(value: object) -> bool:
    """Whether ``value`` is a memory amount without a unit (``8``, ``"8"``).

    sbatch reads such a number as megabytes, which is rarely what was meant
    (``mem=8``): autojob refuses it where inputs are written.
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(re.fullmatch(r"\s*[0-9]+(\.[0-9]*)?\s*", value))


def _check_memory(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        msg = f"{value!r} is not a memory amount (e.g. 4000, '4G')"
        raise ValueError(msg)
    memory_mb(value)
    return value


def _check_time(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # minutes, as sbatch reads a bare number
    if not isinstance(value, str):
        msg = f"{value!r} is not a SLURM time; {ACCEPTED_FORMS}"
        raise ValueError(msg)
    try:
        parse_slurm_time(value)
    except InputError as exc:
        msg = f"{exc.message}; {exc.hint}"
        raise ValueError(msg) from None
    return value.strip()


Memory = Annotated[str | int | None, BeforeValidator(_check_memory)]
Time = Annotated[str | None, BeforeValidator(_check_time)]


def _hyphenate(name: str) -> str:
    return name.replace("_", "-")


class SchedulerInputs(BaseModel):
    """Resources a task asks of the scheduler (sbatch options)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        alias_generator=_hyphenate,
        populate_by_name=True,
        extra="allow",
        validate_assignment=True,
        ser_json_inf_nan="constants",
    )

    job_name: str | None = None
    account: str | None = None
    partition: CommaList = Field(default=None, description="one or more, comma-separated")
    nodes: int | str | None = None
    ntasks: int | None = Field(default=None, ge=1)
    ntasks_per_node: int | None = Field(default=None, ge=1)
    cpus_per_task: int | None = Field(default=None, ge=1)
    mem: Memory = Field(default=None, description="memory per node (MB, or with a unit)")
    mem_per_cpu: Memory = None
    time: Time = Field(default=None, description="time limit, in a form sbatch accepts")
    mail_user: str | None = None
    mail_type: CommaList = None
    extra_directives: list[str] | None = Field(
        default=None,
        alias="extra_directives",
        description="options sbatch does not list (a site plugin's), each written out "
        "as given: ['--container-image=ubuntu']",
    )

    @field_validator("job_name", "account", "mail_user", mode="before")
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        return _single_line(value)

    @field_validator("extra_directives", mode="after")
    @classmethod
    def _check_raw(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            _single_line(entry)
            if not _RAW_DIRECTIVE.fullmatch(entry):
                msg = f"{entry!r} is not a long option: write '--name' or '--name=value'"
                raise ValueError(msg)
        return value

    @field_validator("nodes", mode="before")
    @classmethod
    def _check_nodes(cls, value: Any) -> Any:
        if isinstance(value, str) and not _NODES.fullmatch(value.strip()):
            msg = f"{value!r} is not a node count: use a number or a range such as '2-4'"
            raise ValueError(msg)
        if isinstance(value, int) and value < 1:
            msg = "a job needs at least one node"
            raise ValueError(msg)
        return value

    @field_validator("mail_type", mode="after")
    @classmethod
    def _check_mail_types(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or []) - MAIL_TYPES)
        if unknown:
            known = ", ".join(sorted(MAIL_TYPES))
            msg = f"unknown mail type(s) {', '.join(unknown)}; use some of {known}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _check_directives(self) -> SchedulerInputs:
        for key, value in (self.model_extra or {}).items():
            if not _OPTION.fullmatch(key.lstrip("-")):
                msg = f"{key!r} is not a scheduler option name (e.g. 'gres', 'constraint')"
                raise ValueError(msg)
            if not (value is None or isinstance(value, str | int | float | bool)):
                msg = f"directive {key!r} must have a single value, not {type(value).__name__}"
                raise ValueError(msg)
            _single_line(value)
        return self

    def directives(self) -> list[tuple[str, str | None]]:
        """``(option, value)`` pairs for sbatch; value None for a flag."""
        pairs: list[tuple[str, str | None]] = []
        dumped = self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"extra_directives"}
        )
        for key, value in dumped.items():
            option = key.lstrip("-").replace("_", "-")
            if value is False:
                continue
            pairs.append((option, None if value is True else str(value)))
        for entry in self.extra_directives or []:
            option, sep, given = entry[2:].partition("=")
            pairs.append((option, given if sep else None))
        return pairs

    def sbatch_lines(self) -> list[str]:
        """The ``--option=value`` words of ``#SBATCH`` lines, values shell-quoted."""
        return [f"--{o}" if v is None else f"--{o}={shlex.quote(v)}" for o, v in self.directives()]

    def time_limit(self) -> timedelta | None:
        """The time limit, or None if there is none."""
        return (
            None
            if self.time is None
            else parse_slurm_time(self.time, field="scheduler_inputs.time")
        )


def scale_time(value: str | None, factor: float) -> str | None:
    """Multiply a SLURM time by ``factor`` (None stays None: no limit)."""
    limit = None if value is None else parse_slurm_time(value)
    if limit is None:
        return value
    return format_slurm_time(limit * factor)


def scale_memory(value: str | int | None, factor: float) -> str | int | None:
    """Multiply a memory amount by ``factor``, in whole megabytes."""
    if value is None:
        return None
    return f"{round(memory_mb(value) * factor)}M"


def read_sbatch_options(text: str) -> dict[str, str | bool]:
    """Read the options of the leading ``#SBATCH`` lines of a script.

    Later lines win, as with sbatch. Short options are given their long names.
    """
    from autojob.timefmt import _leading_block  # noqa: PLC0415  (one reading of the block)

    options: dict[str, str | bool] = {}
    for line in _leading_block(text):
        if not line:
            continue
        try:
            words = shlex.split(line[len("#SBATCH") :], comments=True)
        except ValueError:
            continue
        _read_words(words, options)
    return options


def _read_words(words: list[str], options: dict[str, str | bool]) -> None:
    rest = iter(words)
    for word in rest:
        if word.startswith("--"):
            key, sep, value = word[2:].partition("=")
            if sep:
                options[key] = value
            elif key in FLAG_OPTIONS:
                options[key] = True
            else:
                options[key] = next(rest, "")
        elif word.startswith("-") and len(word) > 1:
            key = SHORT_OPTIONS.get(word[1], word[1])
            value = word[2:].removeprefix("=")
            options[key] = value if value else next(rest, "")
