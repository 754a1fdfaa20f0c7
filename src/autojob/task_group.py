"""Task groups: the attempts of one piece of work (a restart adds a task)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from autojob.bases.task_base import TaskBase
from autojob.ids import Id, Timestamp, id_factory, now, set_unvalidated

__all__ = ["TaskGroup"]


class TaskGroup(BaseModel):
    """A group of tasks; its metadata file lists their ids under ``tasks``.

    Building a group links its tasks to it: each task's ``task_group_id``,
    ``study_id`` and ``study_group_id`` are set to the group's.
    """

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")

    label: str = ""
    study_group_id: Id | None = Field(default_factory=id_factory("g"))
    study_id: Id | None = Field(default_factory=id_factory("s"))
    task_group_id: Id = Field(default_factory=id_factory("c"))
    date_created: Timestamp = Field(default_factory=now)
    tasks: list[TaskBase] = Field(default_factory=list)

    @field_serializer("tasks", when_used="always")
    def _task_ids(self, tasks: list[TaskBase]) -> list[str]:
        return [task.task_metadata.task_id for task in tasks]

    def model_post_init(self, context: Any, /) -> None:
        """Link the children once the model is built (not on re-validation)."""
        if not self.label and self.tasks:
            self.label = self.tasks[0].task_metadata.label
        self.link()

    @classmethod
    def from_task(cls, task: TaskBase) -> TaskGroup:
        """Return the group a task's metadata names, holding that task."""
        meta = task.task_metadata
        fields: dict[str, Any] = {
            "label": meta.label,
            "study_group_id": meta.study_group_id,
            "study_id": meta.study_id,
            "tasks": [task],
        }
        if meta.task_group_id is not None:
            fields["task_group_id"] = meta.task_group_id
        return cls(**fields)

    def link(self) -> None:
        """Set the group's ids on every task of the group."""
        group_id, study_id, study_group_id = self.task_group_id, self.study_id, self.study_group_id
        for task in self.tasks:
            meta = task.task_metadata
            held = meta.__dict__
            if (
                held.get("task_group_id") == group_id
                and held.get("study_id") == study_id
                and held.get("study_group_id") == study_group_id
            ):
                continue  # linked already (each parent links again when built)
            set_unvalidated(meta, "task_group_id", group_id)
            set_unvalidated(meta, "study_id", study_id)
            set_unvalidated(meta, "study_group_id", study_group_id)

    @classmethod
    def from_directory(cls, src: str | Path, *, strict_mode: bool | None = None) -> Self:
        """Load a task group and its tasks from its directory."""
        from autojob.store.load import load_task_group  # noqa: PLC0415

        return load_task_group(cls, Path(src), strict_mode=strict_mode)
