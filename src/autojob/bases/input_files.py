"""Input files: files (or directories) put into a task directory when it is written.

A structure, a pseudopotential or a script that a task's command reads is named
here with its ``source`` (where it is now) and its ``target`` (its path inside
the task directory; by default the source's own name). It is copied, or linked
with ``link=True``. The model only names the file; :mod:`autojob.store.input_files`
checks and places it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

__all__ = ["Files", "InputFile"]


class InputFile(BaseModel):
    """A file or directory to put into a new task directory.

    Args:
        source: The file or directory to copy (or link to).
        target: Its path inside the task directory (default: ``source``'s name).
        link: Make a symbolic link to ``source`` instead of a copy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Path
    target: str | None = None
    link: bool = False

    @property
    def name(self) -> str:
        """The path the file takes inside the task directory."""
        return self.target if self.target is not None else self.source.name


#: input files for the tasks of a tree: the same for every task, or by task id
Files = Sequence[InputFile] | Mapping[str, Sequence[InputFile]]
