"""sketchjob: split a dataset's items into batches and write a job per batch.

A sketch is rendered from Jinja2 templates under ``templates/jobarchitect/``:
a backend template (``bash``, ``docker``, ``singularity``) makes the agent call
of one batch, and a wrapper template (``bash``, ``slurm-single``,
``slurm-multiple``) makes the script around the calls. Every value is
shell-quoted. A sketch can also be written as an autojob study, one task per
batch, whose command is the batch's agent call.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autojob import SETTINGS
from autojob.datasets.agent import check_tool
from autojob.datasets.batches import (
    dataset_uri,
    item_output_relpath,
    local_path,
    open_dataset,
    select_identifiers,
    split_batches,
)
from autojob.errors import InputError
from autojob.input_keys import path_problem
from autojob.scheduler import SchedulerInputs
from autojob.store.render import Raw, render_sketch_template
from autojob.study import Study
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

__all__ = [
    "AGENT_NAME",
    "Sketch",
    "SketchRequest",
    "prepare_sketch",
    "render_agent_call",
    "render_script",
    "sketch_study",
    "write_study",
]

#: the agent's command name (inside containers, it must be on the image's PATH)
AGENT_NAME = "_jobarchitect_agent"

Backend = Literal["bash", "docker", "singularity"]
Wrapper = Literal["bash", "slurm-single", "slurm-multiple"]


class SketchRequest(BaseModel):
    """The options of ``sketchjob``."""

    model_config = ConfigDict(frozen=True)

    tool_path: Path
    dataset: str
    output_root: Path
    nchunks: int = Field(default=1, ge=1)
    backend: Backend = "bash"
    image_name: str | None = None
    wrapper: Wrapper = "bash"
    cwl_backend: bool = False
    output_directory: bool = False
    overlay_filter: str | None = None
    sbatch: dict[str, str] = Field(
        default_factory=dict, description="scheduler inputs: SLURM wrappers and study tasks"
    )


class Sketch(BaseModel):
    """A checked request and its batches, ready to render."""

    request: SketchRequest
    tool_path: str
    dataset: str
    dataset_name: str
    dataset_dir: str | None
    output_root: str
    batches: list[list[str]]
    scheduler_inputs: SchedulerInputs

    @property
    def n_items(self) -> int:
        """The items in all batches."""
        return sum(len(batch) for batch in self.batches)


@cache
def _agent_command() -> str:
    """The agent beside this interpreter (as installed), else its bare name."""
    beside = Path(sys.executable).parent / AGENT_NAME
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(AGENT_NAME) or AGENT_NAME


def _check_container(request: SketchRequest, paths: list[str]) -> None:
    if request.backend == "bash":
        return
    if not request.image_name:
        raise InputError(
            f"the {request.backend} backend needs an image",
            field="--image-name",
            hint="name the image with -i/--image-name",
        )
    if request.backend == "docker" and any(":" in path for path in paths):
        raise InputError(
            "docker cannot mount a path holding ':'",
            field="--backend",
            hint="move the tool, dataset and output root to paths without ':'",
        )


def _scheduler_inputs(options: dict[str, str]) -> SchedulerInputs:
    if "array" in options:
        raise InputError(
            "the array is sketchjob's to choose",
            field="--sbatch array",
            hint="use --wrapper-script slurm-multiple for a job array, one element per batch",
        )
    for key, value in options.items():
        problem = path_problem(Task, ("scheduler_inputs", key), value)
        if problem is not None:
            raise InputError(problem.message, field=f"--sbatch {key}", hint=problem.hint)
    try:
        return SchedulerInputs.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "?"
        raise InputError(
            f"{first['msg']}",
            field=f"--sbatch {name}",
            hint="give sbatch options as NAME=VALUE, e.g. --sbatch time=01:00:00",
        ) from exc


def prepare_sketch(request: SketchRequest) -> Sketch:
    """Check a request and split its items; nothing is written.

    Raises:
        MissingFileError: the tool or the dataset does not exist.
        InputError: no image for a container backend, an unknown filter, no items.
    """
    scheduler_inputs = _scheduler_inputs(request.sbatch)
    tool = check_tool(request.tool_path, cwl_backend=False)
    dataset = open_dataset(request.dataset)
    uri = dataset_uri(request.dataset)
    local = local_path(uri)
    root = os.path.abspath(request.output_root)
    _check_container(request, [str(tool), root, local or ""])
    identifiers = select_identifiers(dataset, request.overlay_filter)
    if not identifiers:
        raise InputError(
            "no items to process",
            path=uri,
            hint="check the dataset and --overlay-filter",
        )
    for identifier in identifiers:
        relpath = dataset.item_properties(identifier)["relpath"]
        item_output_relpath(relpath, identifier, uri)
    return Sketch(
        request=request,
        tool_path=str(tool),
        dataset=uri,
        dataset_name=dataset.name,
        dataset_dir=local,
        output_root=root,
        batches=split_batches(identifiers, request.nchunks),
        scheduler_inputs=scheduler_inputs,
    )


def render_agent_call(sketch: Sketch, batch: list[str], record: str | None = None) -> str:
    """The command running the agent on one batch, through the sketch's backend."""
    request = sketch.request
    container = request.backend != "bash"
    context: dict[str, object] = {
        "agent": AGENT_NAME if container else _agent_command(),
        "cwl_backend": request.cwl_backend,
        "output_directory": request.output_directory,
        "record": record,
        "tool_path": sketch.tool_path,
        "tool_dir": os.path.dirname(sketch.tool_path),
        "dataset": sketch.dataset,
        "dataset_dir": sketch.dataset_dir,
        "output_root": sketch.output_root,
        "image": request.image_name,
        "identifiers": batch,
    }
    return render_sketch_template(request.backend, context).rstrip("\n")


def render_script(sketch: Sketch) -> str:
    """The job script of the whole sketch, in the request's wrapper."""
    calls = [Raw(render_agent_call(sketch, batch)) for batch in sketch.batches]
    inputs = sketch.scheduler_inputs
    if inputs.job_name is None:
        inputs = inputs.model_copy(update={"job_name": "sketchjob"})
    context: dict[str, object] = {
        "calls": calls,
        "sbatch_lines": inputs.sbatch_lines(),
        "tool_path": sketch.tool_path,
        "dataset_name": sketch.dataset_name,
        "n_items": sketch.n_items,
        "output_root": sketch.output_root,
    }
    return render_sketch_template(f"wrapper-{sketch.request.wrapper}", context)


def sketch_study(sketch: Sketch, name: str) -> Study:
    """A study with one task per batch; each task's command runs the agent on its batch.

    The command also writes the run's provenance summary into the task's
    ``SETTINGS.OUTPUTS_FILE``, for harvesting.
    """
    width = len(str(len(sketch.batches)))
    tasks = [
        Task(
            task_metadata=TaskMetadata(
                label=f"batch-{index:0{width}d}", tags=["sketchjob", sketch.dataset_name]
            ),
            task_inputs=TaskInputs(
                command=render_agent_call(sketch, batch, record=SETTINGS.OUTPUTS_FILE)
            ),
            scheduler_inputs=sketch.scheduler_inputs.model_copy(),
        )
        for index, batch in enumerate(sketch.batches, start=1)
    ]
    return Study(name=name, notes=[f"sketchjob of {sketch.dataset}"], tasks=tasks)


def write_study(sketch: Sketch, study_dir: Path) -> Path:
    """Write the sketch as a new study directory ``study_dir``; return it."""
    parent = study_dir.absolute().parent
    if not parent.is_dir():
        raise InputError(
            "the study's parent directory does not exist",
            path=parent,
            hint="create it first",
        )
    if os.path.lexists(study_dir):
        raise InputError(
            "already exists; a sketch is written as a new study",
            path=study_dir,
            field="--study",
            hint="give --study a directory that does not exist yet (the existing one is "
            "left as it is)",
        )
    study = sketch_study(sketch, study_dir.name)
    return study.to_directory(
        parent,
        study_template="{name}",
        task_group_template="{label}",
        task_template="{task_id}",
    )
