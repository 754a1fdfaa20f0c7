"""Base models of a task: metadata, inputs, outputs and the task itself.

These are pure pydantic models. The few methods that touch the disk
(``from_directory``, ``write_inputs``) are thin façades over :mod:`autojob.store`
and :mod:`autojob.next`, kept here because the documented API puts them here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from autojob.ids import Id, Timestamp, Uuid, id_factory, now, set_unvalidated
from autojob.scheduler import SchedulerInputs

__all__ = [
    "TASK_GROUP_FIELDS",
    "TaskBase",
    "TaskInputsBase",
    "TaskMetadataBase",
    "TaskOutputsBase",
]

#: The task metadata fields a task group's metadata file holds (plus ``tasks``).
TASK_GROUP_FIELDS = [
    "label",
    "study_group_id",
    "study_id",
    "task_group_id",
    "date_created",
]


def _task_script_default() -> str:
    from autojob import SETTINGS  # noqa: PLC0415

    return SETTINGS.DEFAULT_TASK_SCRIPT_FILE


def _task_script_template_default() -> str:
    from autojob import SETTINGS  # noqa: PLC0415

    return SETTINGS.TASK_SCRIPT_TEMPLATE


class TaskMetadataBase(BaseModel):
    """Who a task is and where it belongs: the content of ``task.json``."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, ser_json_inf_nan="constants")

    label: str = Field(default="", description="a short description of the task")
    tags: list[str] = Field(default_factory=list, description="free-form tags")
    uri: str | None = Field(default=None, description="where the task lives")
    study_group_id: Id | None = Field(default_factory=id_factory("g"))
    study_id: Id | None = Field(default_factory=id_factory("s"))
    workflow_step_id: Uuid | None = Field(
        default=None, description="the workflow step that created the task"
    )
    task_id: Id = Field(default_factory=id_factory("j"))
    task_group_id: Id | None = Field(default_factory=id_factory("c"))
    date_created: Timestamp = Field(default_factory=now)
    last_updated: Timestamp = Field(default_factory=now)
    task_class: str | None = Field(
        default=None,
        description="the entry-point name (group 'autojob.task') of the task class",
    )


class TaskInputsBase(BaseModel):
    """What a task needs to run: the ``task_inputs`` section of ``inputs.json``."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, ser_json_inf_nan="constants")

    command: str | None = Field(
        default=None,
        description="the shell command line the task script runs in the task directory",
    )
    files_to_copy: list[str] = Field(
        default_factory=list,
        description="files copied from the preceding task into this one",
    )
    files_to_delete: list[str] = Field(
        default_factory=list,
        description="files deleted from the task directory after it completes",
    )
    files_to_carry_over: list[str] = Field(
        default_factory=list,
        description="files carried over from this task to the next attempt or step",
    )
    auto_restart: bool = Field(
        default=True,
        description="when the task has a time limit, stop its command shortly before "
        "it (autojob run) and start a new attempt with more time, within the budget "
        "below",
    )
    max_attempts: int = Field(
        default=3, ge=1, description="attempts an automatic restart may reach in all"
    )
    restart_time_factor: float = Field(
        default=1.5, gt=0, description="each automatic restart multiplies the time limit"
    )
    restart_max_time: str | None = Field(
        default=None, description="the largest time limit a restart may ask for (SLURM form)"
    )
    task_script: str = Field(
        default_factory=_task_script_default, description="the task script's name"
    )
    task_script_template: str = Field(
        default_factory=_task_script_template_default,
        description="the Jinja2 template rendered into the task script",
    )


class TaskOutputsBase(BaseModel):
    """What a finished task produced (``outputs.json``, written by its command)."""

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")


class TaskBase(BaseModel):
    """A task: metadata, inputs, scheduler inputs and (once run) outputs.

    Sections of ``inputs.json`` other than ``task_inputs`` and
    ``scheduler_inputs`` are kept as extra attributes and written back.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True, ser_json_inf_nan="constants")

    #: the sections of inputs.json this class models itself
    INPUT_SECTIONS: ClassVar[tuple[str, ...]] = ("task_inputs", "scheduler_inputs")
    #: whether its task script runs ``task_inputs.command``, so that a task of the
    #: class without one is refused when created from the command line and when
    #: submitted (a class whose template runs something else sets False)
    REQUIRES_COMMAND: ClassVar[bool] = True

    task_metadata: TaskMetadataBase
    task_inputs: TaskInputsBase
    scheduler_inputs: SchedulerInputs = Field(
        default_factory=SchedulerInputs, description="resources asked of the scheduler"
    )
    task_outputs: TaskOutputsBase | None = None

    @model_validator(mode="after")
    def _set_task_class(self) -> Self:
        if self.task_metadata.task_class is None:
            set_unvalidated(self.task_metadata, "task_class", type(self).__name__.lower())
        return self

    def own_files(self) -> dict[str, bytes | str]:
        """Files a task of this class holds besides its inputs, metadata and script.

        Name to content, serialised here (checked first: raise ``InputError``),
        written with the task's other files, all or none. None by default.
        """
        return {}

    def own_scripts(self) -> dict[str, str]:
        """Scripts besides the task script: file name to the template rendered into it.

        A template named ``*.py.j2`` prints every value as a Python literal; others
        shell-quote them, as the task script's template does. None by default.
        """
        return {}

    def read_own_files(self, task_dir: str) -> None:
        """Read back, once the task is loaded from ``task_dir``, what :meth:`own_files` wrote."""

    def prepare_attempt(self, previous: Path, source: TaskBase, *, resume: bool) -> None:
        """Prepare this copy of ``source`` (the task in ``previous``) as a new task.

        ``resume``: a new attempt that continues the run (restart, resubmit), not a
        copy (``new --from``). Nothing to do by default.
        """

    def follow(self, previous: Path) -> None:
        """Prepare this task, which a workflow step creates after the task in ``previous``.

        Nothing to do by default.
        """

    def input_sections(self) -> dict[str, Any]:
        """Return the content of ``inputs.json`` (JSON-ready, nested form)."""
        sections: dict[str, Any] = {
            "task_inputs": self.task_inputs.model_dump(mode="json"),
            "scheduler_inputs": self.scheduler_inputs.model_dump(
                mode="json", by_alias=True, exclude_none=True
            ),
        }
        sections.update(self.model_extra or {})
        return sections

    @classmethod
    def from_directory(
        cls,
        src: str | Path,
        *,
        strict_mode: bool | None = None,
        magic_mode: bool = False,
    ) -> Self:
        """Load a task from its directory.

        Args:
            src: the task directory.
            strict_mode: raise when ``task_class`` names no installed class
                (default ``SETTINGS.STRICT_MODE``); when False, warn and load
                ``cls`` instead.
            magic_mode: return an instance of the class named by the
                ``task_class`` field of the task's metadata.

        Raises:
            MetadataError: a file is missing, corrupt or invalid.
            PluginError: ``task_class`` is not installed (strict mode).
        """
        from autojob.store.load import load_task  # noqa: PLC0415

        return load_task(cls, Path(src), strict_mode=strict_mode, magic=magic_mode)

    def write_inputs(self, dest: str | Path) -> list[Path]:
        """Write ``inputs.json``, ``task.json`` and the task script into ``dest``.

        Returns:
            The files written.
        """
        from autojob.store.write import write_task_files  # noqa: PLC0415

        return write_task_files(self, Path(dest))
