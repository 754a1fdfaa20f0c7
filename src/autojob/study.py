"""Studies: the task groups of one investigation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, SupportsIndex

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from autojob.bases.task_base import TaskBase
from autojob.ids import Id, Timestamp, id_factory, now, set_unvalidated
from autojob.task_group import TaskGroup

if TYPE_CHECKING:
    from autojob.bases.input_files import Files
    from autojob.sweep import SweepSpec

__all__ = ["STUDY_FIELDS", "Study", "StudyTasks"]

STUDY_FIELDS = ["study_group_id", "study_id", "date_created", "name", "notes"]


def group_tasks(tasks: Iterable[TaskBase]) -> list[TaskGroup]:
    """Group tasks by the ``task_group_id`` of their metadata, keeping order."""
    groups: dict[str | None, list[TaskBase]] = {}
    for task in tasks:
        groups.setdefault(task.task_metadata.task_group_id, []).append(task)
    result = []
    for members in groups.values():
        group = TaskGroup.from_task(members[0])  # links its first task
        if len(members) > 1:
            group.tasks.extend(members[1:])
            group.link()
        result.append(group)
    return result


def _checked_tasks(tasks: Iterable[Any]) -> list[TaskBase]:
    items = list(tasks)
    wrong = [item for item in items if not isinstance(item, TaskBase)]
    if wrong:
        msg = f"a study's tasks must be Task objects, not {type(wrong[0]).__name__}"
        raise TypeError(msg)
    return items


class StudyTasks(list[TaskBase]):
    """The tasks of a :class:`Study`: changing this list changes the study's task groups."""

    def __init__(self, study: Study, tasks: Iterable[TaskBase]) -> None:
        super().__init__(tasks)
        self._study = study

    def _changed(self) -> None:
        self._study.tasks = list(self)

    def append(self, task: TaskBase) -> None:
        """Add ``task`` to the study (to its task group)."""
        super().append(task)
        self._changed()

    def extend(self, tasks: Iterable[TaskBase]) -> None:
        """Add ``tasks`` to the study."""
        super().extend(tasks)
        self._changed()

    def insert(self, index: SupportsIndex, task: TaskBase) -> None:
        """Insert ``task`` (the order of the study's tasks follows their groups)."""
        super().insert(index, task)
        self._changed()

    def remove(self, task: TaskBase) -> None:
        """Remove ``task`` from the study."""
        super().remove(task)
        self._changed()

    def pop(self, index: SupportsIndex = -1) -> TaskBase:
        """Remove and return a task."""
        task = super().pop(index)
        self._changed()
        return task

    def clear(self) -> None:
        """Remove every task (and so every task group)."""
        super().clear()
        self._changed()

    def __setitem__(self, index: Any, value: Any) -> None:
        super().__setitem__(index, value)
        self._changed()

    def __delitem__(self, index: Any) -> None:
        super().__delitem__(index)
        self._changed()

    def __iadd__(self, tasks: Iterable[TaskBase]) -> Self:  # type: ignore[override,misc]
        self.extend(tasks)
        return self


class Study(BaseModel):
    """A study. ``Study(tasks=[...])`` groups the tasks by their task group id.

    Building a study links its task groups (and their tasks) to it.
    """

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")

    date_created: Timestamp = Field(default_factory=now)
    study_id: Id = Field(default_factory=id_factory("s"))
    study_group_id: Id | None = Field(default_factory=id_factory("g"))
    name: str = ""
    notes: list[str] = Field(default_factory=list)
    task_groups: list[TaskGroup] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _accept_tasks(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tasks" in data:
            data = dict(data)
            tasks = data.pop("tasks")
            if not isinstance(tasks, list | tuple) or not all(
                isinstance(t, TaskBase) for t in tasks
            ):
                raise ValueError(
                    "tasks must be a list of Task objects (a study file lists the ids "
                    "of its task groups under task_groups, and has no tasks)"
                )
            data["task_groups"] = [*data.get("task_groups", []), *group_tasks(tasks)]
        return data

    def model_post_init(self, context: Any, /) -> None:
        """Link the children once the model is built (not on re-validation).

        Not when validated with the context ``{"linked": True}``: the loader
        passes it where it has checked that every child already holds this
        parent's ids, so that linking would change nothing.
        """
        if not (isinstance(context, dict) and context.get("linked") is True):
            self.link()

    @field_serializer("task_groups", when_used="always")
    def _task_group_ids(self, groups: list[TaskGroup]) -> list[str]:
        return [group.task_group_id for group in groups]

    @property
    def tasks(self) -> StudyTasks:
        """All tasks of the study, group by group.

        As in python-autojob, the list can be changed (``study.tasks.append(task)``)
        or replaced (``study.tasks = [...]``): the study's task groups follow, a
        task joining the group its ``task_group_id`` names (a new one if none has it).
        """
        return StudyTasks(self, [task for group in self.task_groups for task in group.tasks])

    @tasks.setter
    def tasks(self, tasks: Iterable[TaskBase]) -> None:
        tasks = _checked_tasks(tasks)
        old = {group.task_group_id: group for group in self.task_groups}
        groups = []
        for group in group_tasks(tasks):
            kept = old.get(group.task_group_id)
            if kept is not None:
                kept.tasks = group.tasks
                group = kept  # noqa: PLW2901  (its label, notes and parameters stay)
            groups.append(group)
        self.task_groups = groups
        self.link()

    def link(self) -> None:
        """Set the study's ids on its task groups and their tasks."""
        for group in self.task_groups:
            set_unvalidated(group, "study_id", self.study_id)
            set_unvalidated(group, "study_group_id", self.study_group_id)
            group.link()

    @classmethod
    def from_directory(cls, dir_name: str | Path, *, strict_mode: bool | None = None) -> Self:
        """Load a study, its task groups and their tasks from its directory."""
        from autojob.store.load import load_study  # noqa: PLC0415

        return load_study(cls, Path(dir_name), strict_mode=strict_mode)

    @classmethod
    def from_sweep(cls, spec: SweepSpec | Mapping[str, Any]) -> Study:
        """Build the study a sweep spec describes: one task group per combination.

        ``spec`` is a :class:`autojob.sweep.SweepSpec` or a mapping of its keys.
        Write it with ``to_directory`` (or :func:`autojob.create.sweep.write_sweep`,
        which also writes the workflow files of the spec's steps).
        """
        from autojob.sweep import build_study  # noqa: PLC0415

        return build_study(spec)

    def to_directory(
        self,
        dest: str | Path,
        *,
        study_template: str | None = None,
        task_group_template: str | None = None,
        task_template: str | None = None,
        files: Files | None = None,
        tasks: Iterable[TaskBase | TaskGroup] = (),
    ) -> Path:
        """Write the study as a new directory inside ``dest`` and return it.

        A missing ``dest`` is created, with its parents, as ``mkdir -p`` does
        (and removed again if the write fails).

        Directory names default to ids, as in the reference implementation
        (whose loader finds directories by id); templates such as
        ``"{name}"``, ``"{label}-{i}"`` or ``"{task_id}"`` take fields of the
        metadata.
        ``files``: input files (:class:`autojob.bases.input_files.InputFile`)
        copied or linked into every task, or into each task by its id. The
        tree appears at once when complete: a failure leaves nothing behind.

        ``tasks``: more tasks (or task groups) to write into the study after
        its own, taken from any iterable one task group at a time and not kept:
        a generator of a million tasks is written in the memory of a few
        (``Study(name="big").to_directory(dest, tasks=(make(i) for i in
        range(10**6)))``). Tasks that follow one another with the same
        ``task_group_id`` form one group; each task has its own by default.
        The study itself is left as it was.
        """
        from autojob.store.write import write_study  # noqa: PLC0415

        return write_study(
            self,
            Path(dest),
            study_template=study_template,
            task_group_template=task_group_template,
            task_template=task_template,
            files=files,
            tasks=tasks,
        )
