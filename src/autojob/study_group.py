"""Study groups: a directory of related studies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from autojob.ids import Id, Timestamp, id_factory, now, set_unvalidated
from autojob.study import Study

if TYPE_CHECKING:
    from autojob.bases.input_files import Files

__all__ = ["STUDY_GROUP_FIELDS", "StudyGroup"]

STUDY_GROUP_FIELDS = ["study_group_id", "date_created", "name", "notes"]


class StudyGroup(BaseModel):
    """A group of studies. Building one links its studies to it."""

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")

    date_created: Timestamp = Field(default_factory=now)
    study_group_id: Id = Field(default_factory=id_factory("g"))
    name: str = ""
    notes: list[str] = Field(default_factory=list)
    studies: list[Study] = Field(default_factory=list)

    @field_serializer("studies", when_used="always")
    def _study_ids(self, studies: list[Study]) -> list[str]:
        return [study.study_id for study in studies]

    def model_post_init(self, context: Any, /) -> None:
        """Link the children once the model is built (not on re-validation).

        Not when validated with the context ``{"linked": True}``: the loader
        passes it where it has checked that every child already holds this
        parent's ids, so that linking would change nothing.
        """
        if not (isinstance(context, dict) and context.get("linked") is True):
            self.link()

    def link(self) -> None:
        """Set the group's id on its studies, their task groups and tasks."""
        for study in self.studies:
            set_unvalidated(study, "study_group_id", self.study_group_id)
            study.link()

    @classmethod
    def from_directory(cls, dir_name: str | Path, *, strict_mode: bool | None = None) -> Self:
        """Load a study group and everything under it from its directory."""
        from autojob.store.load import load_study_group  # noqa: PLC0415

        return load_study_group(cls, Path(dir_name), strict_mode=strict_mode)

    def to_directory(
        self,
        dest: str | Path,
        *,
        study_group_template: str | None = None,
        study_template: str | None = None,
        task_group_template: str | None = None,
        task_template: str | None = None,
        files: Files | None = None,
    ) -> Path:
        """Write the study group as a new directory inside ``dest``; return it.

        A missing ``dest`` is created, with its parents, as ``mkdir -p`` does
        (and removed again if the write fails).

        Directories are named as by :meth:`Study.to_directory` (by id without
        templates). ``files``: input files
        for every task, or for each task by its id. Nothing is left behind
        when writing fails.
        """
        from autojob.store.write import write_study_group  # noqa: PLC0415

        return write_study_group(
            self,
            Path(dest),
            study_group_template=study_group_template,
            study_template=study_template,
            task_group_template=task_group_template,
            task_template=task_template,
            files=files,
        )
