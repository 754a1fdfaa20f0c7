"""Scheduler inputs read back from the ``#$`` lines of a Grid Engine script.

A task written for Grid Engine by hand carries its resources as ``#$`` lines
(``#$ -l h_rt=1:00:00,h_vmem=2G``, ``#$ -pe smp 4``, ``#$ -q long``); they are
read back as scheduler inputs, as ``#SBATCH`` lines are
(:func:`autojob.scheduler.read_sbatch_options`). An option that scheduler inputs
cannot say is left out with a warning that names it and its line.
"""

from __future__ import annotations

import logging
import shlex
from datetime import timedelta

from autojob.timefmt import format_slurm_time

__all__ = ["read_sge_options"]

logger = logging.getLogger(__name__)
_MAGIC = "#$"
_MAIL_BACK = {"b": "BEGIN", "e": "END", "a": "FAIL", "n": "NONE"}
#: options with a value that tell where output goes: the executor decides that
_OUTPUT_OPTIONS = frozenset({"-j", "-S", "-o", "-e", "-wd"})
_NAMED = {"-q": "partition", "-N": "job_name", "-A": "account", "-M": "mail_user"}


def read_sge_options(text: str, *, source: str = "script") -> dict[str, str | int]:
    """Scheduler inputs from the leading ``#$`` lines of a script (later lines win).

    ``source`` names the script in warnings about options left out.
    """
    options: dict[str, str | int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if not line.startswith(_MAGIC):
            continue
        try:
            words = shlex.split(line[len(_MAGIC) :], comments=True)
        except ValueError:
            logger.warning(
                "%s, line %d: unbalanced quotes; the #$ line is not read", source, number
            )
            continue
        for left in _read_words(words, options):
            logger.warning(
                "%s, line %d: #$ %s has no scheduler input; it is not read back "
                "(give inputs.json a scheduler_inputs section instead)",
                source, number, left,
            )  # fmt: skip
    return options


def _read_words(words: list[str], options: dict[str, str | int]) -> list[str]:
    """Read one line's options into ``options``; return those it cannot read."""
    left: list[str] = []
    rest = iter(words)
    for word in rest:
        if word == "-l":
            for item in next(rest, "").split(","):
                key, _, value = item.partition("=")
                if not _read_resource(key.strip(), value.strip(), options):
                    left.append(f"-l {item}")
        elif word == "-pe":
            next(rest, "")  # the environment's name: the site's choice
            count = next(rest, "1").split("-")[-1]
            options["cpus_per_task"] = int(count) if count.isdigit() else 1
        elif word in _NAMED:
            options[_NAMED[word]] = next(rest, "")
        elif word == "-m":
            types = [_MAIL_BACK.get(letter) for letter in next(rest, "")]
            options["mail_type"] = ",".join(t for t in dict.fromkeys(types) if t)
        elif word in _OUTPUT_OPTIONS:
            next(rest, "")
        elif word not in {"-cwd", "-V"}:
            left.append(word)
    return left


def _read_resource(key: str, value: str, options: dict[str, str | int]) -> bool:
    if key in {"h_rt", "s_rt"} and _is_time(value):
        options["time"] = format_slurm_time(timedelta(seconds=_seconds(value)))
    elif key in {"h_vmem", "mem_free", "virtual_free", "h_rss"} and value:
        options["mem_per_cpu"] = value
    else:
        return False
    return True


def _is_time(value: str) -> bool:
    return bool(value) and all(part.isdigit() or not part for part in value.split(":"))


def _seconds(value: str) -> int:
    """Seconds in a Grid Engine time: ``3600`` or ``H:MM:SS``."""
    total = 0
    for part in value.split(":"):
        total = total * 60 + int(part or 0)
    return total
