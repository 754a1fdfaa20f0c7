"""The exceptions autojob raises.

Every error names the file and, where there is one, the field at fault, and says
what to do next::

    AutojobError                  base class; ``str(err)`` is the full message
    ├── ConfigError               bad settings or configuration file
    ├── MetadataError             a metadata or inputs file is missing, corrupt or invalid
    │   └── MissingFileError      a required file does not exist
    ├── TreeError                 the directory tree is inconsistent or would be
    │   └── UnsafePathError       a name or template would leave its root directory
    ├── TemplateError             a directory-name or script template is unusable
    ├── PluginError               a task class or other plugin is not installed
    ├── InputError                a value given on the command line or in code is wrong
    └── SchedulerError            a scheduler command (sbatch, squeue, sacct, scancel) failed
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AutojobError",
    "ConfigError",
    "InputError",
    "MetadataError",
    "MissingFileError",
    "PluginError",
    "SchedulerError",
    "TemplateError",
    "TreeError",
    "UnsafePathError",
]


class AutojobError(Exception):
    """Base class of autojob's errors.

    Args:
        message: What went wrong.
        path: The file or directory at fault.
        field: The field (dotted path) at fault inside that file.
        hint: What the user should do next.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.field = field
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.field:
            where.append(f"field '{self.field}'")
        text = f"{': '.join(where)}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(AutojobError):
    """The settings or the configuration file are invalid."""


class MetadataError(AutojobError):
    """A metadata or inputs file is missing, unreadable, corrupt or invalid."""


class MissingFileError(MetadataError):
    """A file autojob needs does not exist."""


class TreeError(AutojobError):
    """A directory tree is inconsistent, or writing it would break it."""


class UnsafePathError(TreeError):
    """A name, template or relative path would leave its root directory."""


class TemplateError(AutojobError):
    """A directory-name template or a script template cannot be used."""


class PluginError(AutojobError):
    """A plugin (task class, harvester) named in a file is not installed."""


class InputError(AutojobError):
    """A value given by the user (option, argument, keyword) is wrong."""


class SchedulerError(AutojobError):
    """A scheduler command failed; keeps its command line, output and status."""

    def __init__(
        self,
        message: str,
        *,
        command: list[str],
        returncode: int | None,
        stdout: str = "",
        stderr: str = "",
        hint: str | None = None,
        timed_out: bool = False,
    ) -> None:
        self.command = command
        self.returncode = returncode
        #: the command gave no answer in time (it may still have acted)
        self.timed_out = timed_out
        self.stdout = stdout
        self.stderr = stderr
        detail = stderr.strip() or stdout.strip()
        status = "not run" if returncode is None else f"exit status {returncode}"
        text = f"{message}: '{' '.join(command)}' ({status})"
        if detail:
            text += f": {detail[-500:]}"
        super().__init__(text, hint=hint)
