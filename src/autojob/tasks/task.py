"""The default task: runs a shell command in its own directory."""

from __future__ import annotations

from pydantic import Field

from autojob.bases.task_base import (
    TaskBase,
    TaskInputsBase,
    TaskMetadataBase,
    TaskOutputsBase,
)

__all__ = ["Task", "TaskInputs", "TaskMetadata", "TaskOutputs"]


class TaskMetadata(TaskMetadataBase):
    """Metadata of a :class:`Task` (``task.json``)."""


class TaskInputs(TaskInputsBase):
    """Inputs of a :class:`Task` (``task_inputs`` in ``inputs.json``)."""


class TaskOutputs(TaskOutputsBase):
    """Outputs of a :class:`Task` (``outputs.json``)."""


class Task(TaskBase):
    """A task that runs ``task_inputs.command`` through its task script."""

    task_metadata: TaskMetadata = Field(default_factory=TaskMetadata)
    task_inputs: TaskInputs = Field(default_factory=TaskInputs)
    task_outputs: TaskOutputs | None = None
