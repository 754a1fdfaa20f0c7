"""What a harvest yields per task, and the archive format.

One :class:`HarvestedTask` per task directory: where it is, its metadata
(``task.json``), inputs (the sections of ``inputs.json``), outputs (what the
harvesters found), state, scheduler accounting, the earlier runs kept in its
history, its place among the attempts of its task group, and the problems met
reading it. An archive holds these as JSON objects, one per task, with exactly
the field names below, so loading an archive gives back the same tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

if TYPE_CHECKING:
    from autojob.bases.task_base import TaskBase

__all__ = ["ARCHIVE_ADAPTER", "Attempts", "HarvestedTask", "Problem"]


class Problem(BaseModel):
    """A file of a task that could not be read as expected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(default=None, description="the file at fault")
    field: str | None = Field(default=None, description="the field at fault, dotted")
    message: str = Field(description="what is wrong, and what to do")
    kind: str = Field(default="MetadataError", description="the error class")


class Attempts(BaseModel):
    """A task's place among the attempts of its task group.

    A restart is a new task in the same task group; attempts are ordered by
    ``date_created`` (then by when they were queued); the newest is current.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str | None = Field(default=None, description="the task group's path, if any")
    number: int = Field(default=1, ge=1, description="1 for the first attempt")
    count: int = Field(default=1, ge=1, description="attempts in the task group")
    current: bool = Field(default=True, description="this is the newest attempt")
    tasks: list[str] = Field(default_factory=list, description="paths of all, oldest first")


class HarvestedTask(BaseModel):
    """Everything harvested from one task directory (one archive record)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the task directory, relative to the harvested root")
    metadata: dict[str, Any] = Field(default_factory=dict, description="task.json")
    inputs: dict[str, Any] = Field(default_factory=dict, description="inputs.json, by section")
    outputs: dict[str, Any] | None = Field(default=None, description="what harvesters found")
    state: dict[str, Any] = Field(default_factory=dict, description="the state of its run")
    scheduler: dict[str, Any] | None = Field(default=None, description="job_stats.json")
    history: list[dict[str, Any]] = Field(
        default_factory=list, description="the state of each earlier run, oldest first"
    )
    harvesters: list[str] = Field(default_factory=list, description="harvesters that ran")
    problems: list[Problem] = Field(default_factory=list, description="what went wrong")
    attempts: Attempts = Field(default_factory=Attempts)

    @property
    def task_id(self) -> str | None:
        """The task's id, from its metadata."""
        value = self.metadata.get("task_id")
        return value if isinstance(value, str) else None

    @property
    def state_name(self) -> str:
        """The state's name (``success``, ``failed``, ...)."""
        return str(self.state.get("state", "unknown"))

    def directory(self, root: str | Path) -> Path:
        """The task directory below ``root``, the directory harvested."""
        return Path(root, self.path)

    def task(self, *, strict_mode: bool | None = None) -> TaskBase:
        """The task as an instance of the class its metadata names (magic mode).

        Raises:
            MetadataError: the harvested data do not validate as that class.
            PluginError: the class is not installed (strict mode).
        """
        from autojob import SETTINGS  # noqa: PLC0415
        from autojob.harvest.typed import to_task  # noqa: PLC0415

        strict = SETTINGS.STRICT_MODE if strict_mode is None else strict_mode
        return to_task(
            self.metadata, self.inputs, self.outputs, where=Path(self.path), strict=strict
        )


#: validates a whole archive (a list of records) in one call
ARCHIVE_ADAPTER: TypeAdapter[list[HarvestedTask]] = TypeAdapter(list[HarvestedTask])
