"""A harvester for the sample study (``examples/scf_sweep.py``): its SCF log.

Each task of the sample study prints how its self-consistent-field iteration
ended: on success, to standard output (``autojob.out``)::

    converged in 38 steps: n = 1.2538349072

and on failure, to standard error (``autojob.err``)::

    SCF diverged at step 8 (mixing 1.7 is too large)
    SCF did not converge in 60 steps (mixing 1.2 is too large)

This harvester reads those lines into ``outputs.scf``, so failed tasks, which
write no ``outputs.json``, still say why in the archive. Install it by
declaring it in your package's ``pyproject.toml``::

    [project.entry-points."autojob.harvest"]
    scf-log = "scf_harvest:ScfLogHarvester"

and select it with ``autojob harvest --harvester outputs --harvester scf-log``;
or, in Python, ``register_harvester(ScfLogHarvester())``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from autojob import SETTINGS
from autojob.errors import MetadataError
from autojob.harvest import Harvester, TaskFiles

__all__ = ["ScfLogHarvester", "parse_scf_log"]

_CONVERGED = re.compile(r"^converged in (?P<steps>\d+) steps: n = (?P<n>\S+)$", re.MULTILINE)
_DIVERGED = re.compile(
    r"^SCF diverged at step (?P<steps>\d+) \(mixing (?P<mixing>\S+) is too large\)$",
    re.MULTILINE,
)
_STALLED = re.compile(
    r"^SCF did not converge in (?P<steps>\d+) steps \(mixing (?P<mixing>\S+) is too large\)$",
    re.MULTILINE,
)


def parse_scf_log(stdout: str, stderr: str) -> dict[str, Any] | None:
    """What the SCF log says: converged or why not, and after how many steps.

    Returns None when neither stream holds an SCF line (the task did not run).

    Raises:
        ValueError: a line has the SCF form but a number in it does not parse.
    """
    if found := _CONVERGED.search(stdout):
        return {"converged": True, "steps": int(found["steps"]), "n": float(found["n"])}
    for pattern, failure in ((_DIVERGED, "diverged"), (_STALLED, "not converged")):
        if found := pattern.search(stderr):
            return {
                "converged": False,
                "failure": failure,
                "steps": int(found["steps"]),
                "mixing": float(found["mixing"]),
            }
    return None


class ScfLogHarvester(Harvester):
    """Reads the sample study's SCF log lines into ``outputs.scf``."""

    name = "scf-log"
    version = "1"

    @property
    def files(self) -> tuple[str, ...]:  # type: ignore[override]
        """The task's standard output and error files."""
        return (SETTINGS.STDOUT_FILE, SETTINGS.STDERR_FILE)

    def harvest(self, task: TaskFiles) -> Mapping[str, Any] | None:
        """Parse the log of ``task``; None if it has not run."""
        texts = [_read(task, name) for name in (SETTINGS.STDOUT_FILE, SETTINGS.STDERR_FILE)]
        try:
            found = parse_scf_log(*texts)
        except ValueError as exc:
            raise MetadataError(
                f"an SCF line does not parse: {exc}",
                path=task.file(SETTINGS.STDOUT_FILE),
                hint="the task's log was changed or cut short; rerun the task",
            ) from exc
        return None if found is None else {"scf": found}


def _read(task: TaskFiles, name: str) -> str:
    if name not in task.names:
        return ""
    with open(task.file(name), encoding="utf-8", errors="replace") as stream:
        return stream.read()
