"""SLURM time strings: parse, format, and read them from a job script.

SLURM (``sbatch --time``) accepts six forms::

    minutes                       90
    minutes:seconds               90:30
    hours:minutes:seconds         1:30:00
    days-hours                    2-12
    days-hours:minutes            2-12:30
    days-hours:minutes:seconds    2-12:30:00

``UNLIMITED``, ``INFINITE`` and ``-1`` mean no limit, and so does ``0`` ("a time
limit of zero requests that no time limit be imposed", sbatch(1)); no limit is
returned as ``None``. The leading field of each form may be as large as needed;
every other field must be in range (hours below 24 after a day count, minutes and
seconds below 60), so a typo such as ``25:61:00`` is refused instead of being
silently turned into 26:01:00.

:func:`parse_slurm_time` and :func:`format_slurm_time` do no I/O;
:func:`time_from_script` reads the ``#SBATCH`` block of a script the way sbatch
does.
"""

from __future__ import annotations

import datetime
import math
import re
import shlex
from pathlib import Path

from autojob.errors import InputError, MetadataError, MissingFileError

__all__ = [
    "ACCEPTED_FORMS",
    "format_slurm_time",
    "parse_slurm_time",
    "time_from_script",
]

#: the forms :func:`parse_slurm_time` accepts, as a hint for error messages
ACCEPTED_FORMS = (
    "use one of the forms sbatch accepts for --time: 'minutes', 'minutes:seconds', "
    "'hours:minutes:seconds', 'days-hours', 'days-hours:minutes', "
    "'days-hours:minutes:seconds' (e.g. '90', '1:30:00', '2-12:00:00'), "
    "or 'UNLIMITED'; only the leading field may exceed its range"
)

_UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "-1"})
_NUMBER = "[0-9]+"  # ASCII digits only: int() would accept other scripts' digits too
_WITHOUT_DAYS = re.compile(rf"({_NUMBER})(?::({_NUMBER}))?(?::({_NUMBER}))?")
_WITH_DAYS = re.compile(rf"({_NUMBER})-({_NUMBER})(?::({_NUMBER}))?(?::({_NUMBER}))?")
_MAGIC = "#SBATCH"


def parse_slurm_time(text: str, *, field: str = "time") -> datetime.timedelta | None:
    """Parse a SLURM time limit such as ``"1-12:00:00"``.

    Args:
        text: The value of ``--time``, in any form sbatch accepts (surrounding
            whitespace is ignored).
        field: The name of the option or field the value came from, named in the
            error.

    Returns:
        The limit, or ``None`` for no limit (``UNLIMITED``, ``INFINITE``, ``-1``, ``0``).

    Raises:
        InputError: The value is not a SLURM time, or a field other than the
            leading one is out of range.
    """
    value = text.strip()
    if value.upper() in _UNLIMITED:
        return None
    parts = _split(value)
    if parts is None:
        raise InputError(f"{text!r} is not a SLURM time limit", field=field, hint=ACCEPTED_FORMS)
    days, hours, minutes, seconds, leading = parts
    problem = _out_of_range(hours, minutes, seconds, leading)
    if problem:
        raise InputError(
            f"{text!r} is not a SLURM time limit: {problem}", field=field, hint=ACCEPTED_FORMS
        )
    try:
        limit = datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise InputError(
            f"{text!r} is too long a time limit", field=field, hint="use 'UNLIMITED' for no limit"
        ) from None
    return limit or None


def _split(value: str) -> tuple[int, int, int, int, str] | None:
    """Days, hours, minutes, seconds and the name of the leading field, or None."""
    if match := _WITH_DAYS.fullmatch(value):
        days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        return days, hours, minutes, seconds, "days"
    if match := _WITHOUT_DAYS.fullmatch(value):
        numbers = [int(g) for g in match.groups() if g is not None]
        if len(numbers) == 3:  # hours:minutes:seconds
            return 0, numbers[0], numbers[1], numbers[2], "hours"
        if len(numbers) == 2:  # minutes:seconds
            return 0, 0, numbers[0], numbers[1], "minutes"
        return 0, 0, numbers[0], 0, "minutes"
    return None


def _out_of_range(hours: int, minutes: int, seconds: int, leading: str) -> str | None:
    """Why a field other than the leading one is out of range, or None."""
    if leading == "days" and hours >= 24:
        return f"hours must be below 24 after a day count, not {hours}"
    if leading != "minutes" and minutes >= 60:
        return f"minutes must be below 60, not {minutes}"
    if seconds >= 60:
        return f"seconds must be below 60, not {seconds}"
    return None


def format_slurm_time(limit: datetime.timedelta | None) -> str:
    """Format a time limit in SLURM's canonical form.

    Args:
        limit: The limit; ``None`` means no limit. A fraction of a second is
            rounded up, since SLURM counts whole seconds and a limit should not
            shrink.

    Returns:
        ``"D-HH:MM:SS"`` when the limit is a day or more, else ``"HH:MM:SS"``;
        ``"UNLIMITED"`` for ``None``.

    Raises:
        InputError: The limit is negative.
    """
    if limit is None:
        return "UNLIMITED"
    if limit < datetime.timedelta(0):
        raise InputError(
            f"a time limit cannot be negative ({limit})",
            field="time",
            hint="give a positive duration, or None for no limit",
        )
    total = math.ceil(limit / datetime.timedelta(seconds=1))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}-{clock}" if days else clock


def time_from_script(path: str | Path) -> datetime.timedelta | None:
    """Read the time limit a job script asks sbatch for.

    As sbatch does, only the ``#SBATCH`` lines before the first line that is
    neither a comment nor blank count, and the last ``--time`` among them wins.
    ``--time=T``, ``--time T``, ``-t T`` and ``-tT`` are recognised (``-t=T``
    too, as python-autojob 0.0.2 read it).

    Args:
        path: The script.

    Returns:
        The limit, or ``None`` if the script sets none or sets an unlimited one.

    Raises:
        MetadataError: The file cannot be read (``MissingFileError`` if it does
            not exist), or its time limit is not a SLURM time.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError as exc:
        raise MissingFileError(
            "the script to read the time limit from does not exist",
            path=path,
            hint="give an existing job script, or the limit itself",
        ) from exc
    except OSError as exc:
        raise MetadataError(
            f"cannot read the script: {exc.strerror or exc}",
            path=path,
            hint="check that the file is a readable job script",
        ) from exc
    found: tuple[int, str] | None = None
    for number, line in enumerate(_leading_block(text), start=1):
        value = _time_option(line)
        if value is not None:
            found = (number, value)
    if found is None:
        return None
    number, value = found
    try:
        return parse_slurm_time(value, field="--time")
    except InputError as exc:
        raise MetadataError(
            f"line {number}: {exc.message}", path=path, field="#SBATCH --time", hint=exc.hint
        ) from exc


def _leading_block(text: str) -> list[str]:
    """Keep the ``#SBATCH`` lines before the first line neither blank nor a comment.

    Lines are kept in place (blank strings for the skipped ones), so that a
    line's index + 1 is its line number.
    """
    block: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        block.append(line if line.startswith(_MAGIC) else "")
    return block


def _time_option(line: str) -> str | None:
    """Return the last time value set on one ``#SBATCH`` line, or None."""
    if not line.startswith(_MAGIC):
        return None
    try:
        words = shlex.split(line[len(_MAGIC) :], comments=True)
    except ValueError:  # unbalanced quotes: sbatch would stop here too
        return None
    value = None
    rest = iter(words)
    for word in rest:
        if word in ("--time", "-t"):
            value = next(rest, value)
        elif word.startswith("--time="):
            value = word.removeprefix("--time=")
        elif word.startswith("-t") and not word.startswith("--"):
            value = word[2:].removeprefix("=")
    return value
