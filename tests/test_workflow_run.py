"""Workflows running for real: record.txt under concurrency, advance (a whole workflow
run by its jobs on every executor is in test_conformance.py)."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.create.sweep import write_sweep
from autojob.errors import InputError, MetadataError
from autojob.next.advance import advance
from autojob.store.completed_tasks import append_record, read_record
from autojob.store.state import State, read_state
from autojob.study import Study
from autojob.sweep import SweepSpec, step_id
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .helpers import AUTOJOB, run
from .workflow_helpers import (
    COMPUTE,
    EXAMPLE,
    attempts,
    set_compute,
    squares_study,
)

PROCESSES = 64
LINES_EACH = 25


def _append_many(study: str, worker: int) -> None:
    for line in range(LINES_EACH):
        append_record(Path(study), f"j{worker:03d}{line:06d}")


def test_record_keeps_every_line_when_many_processes_append_at_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_append_many, args=(str(tmp_path), n)) for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    raw = (tmp_path / SETTINGS.RECORD_FILE).read_bytes()
    lines = raw.decode().splitlines()
    expected = {f"j{w:03d}{n:06d}" for w in range(PROCESSES) for n in range(LINES_EACH)}
    assert raw.endswith(b"\n") and len(lines) == len(expected) == PROCESSES * LINES_EACH
    assert set(lines) == expected  # none lost, none torn or merged
    assert read_record(tmp_path) == lines


def test_record_ignores_a_line_being_written(tmp_path: Path) -> None:
    append_record(tmp_path, "jAAAAAAAAA")
    with (tmp_path / SETTINGS.RECORD_FILE).open("a") as stream:
        stream.write("jBBBB")
    assert read_record(tmp_path) == ["jAAAAAAAAA"]
    with pytest.raises(InputError):
        append_record(tmp_path, "two\nlines")


def test_task_scripts_finishing_together_record_every_task(tmp_path: Path) -> None:
    groups = [
        TaskGroup(
            label=f"t{i}",
            tasks=[
                Task(
                    task_metadata=TaskMetadata(label=f"t{i}"),
                    task_inputs=TaskInputs(command="true"),
                )
            ],
        )
        for i in range(PROCESSES)
    ]
    study = Study(name="s", task_groups=groups).to_directory(tmp_path, study_template="{name}")
    scripts = sorted(study.glob(f"*/*/{SETTINGS.DEFAULT_TASK_SCRIPT_FILE}"))
    procs = [
        subprocess.Popen(["bash", str(s)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for s in scripts
    ]
    for proc in procs:
        assert proc.wait(120) == 0, proc.stderr.read() if proc.stderr else ""
    ids = {s.parent.name for s in scripts}
    lines = (study / SETTINGS.RECORD_FILE).read_text().splitlines()
    assert len(lines) == PROCESSES and set(lines) == ids


@pytest.mark.slow
def _succeed(task: Path) -> None:
    """Run a task's script here and now (it records itself: no workflow advance)."""
    subprocess.run(
        ["bash", str(task / SETTINGS.DEFAULT_TASK_SCRIPT_FILE)], check=True, capture_output=True
    )


def test_a_dependent_step_waits_and_advance_is_idempotent_under_concurrency(
    tmp_path: Path,
) -> None:
    study = squares_study(tmp_path, "00:01:00")
    set_compute(study, COMPUTE.replace("x == 3", "False"))
    workflow_file = study / SETTINGS.WORKFLOW_FILE
    graph = workflow_file.read_text()
    workflow_file.unlink()  # the scripts only record while there is no workflow
    tasks = [attempts(study / f"x{x}")[0] for x in (1, 2, 3, 4)]
    for task in tasks[:3]:
        _succeed(task)
    workflow_file.write_text(graph)
    first = advance(tasks[0])
    assert [p.parent.name for p in first.created] == ["double.x1"]
    assert first.waiting == ["aggregate waits: step sweep: x4 not done"]
    with pytest.raises(InputError, match="has not succeeded"):
        advance(tasks[3])
    workflow_file.unlink()
    _succeed(tasks[3])
    workflow_file.write_text(graph)
    procs = [
        subprocess.Popen(
            [str(AUTOJOB), "advance", str(tasks[3])], stdout=subprocess.PIPE, text=True
        )
        for _ in range(12)
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sum(out.count("created task") for out in outputs) == 2  # double.x4, aggregate: once
    assert len(attempts(study / "aggregate")) == 1 and len(attempts(study / "double.x4")) == 1
    (agg,) = attempts(study / "aggregate")
    inputs = json.loads((agg / SETTINGS.INPUTS_FILE).read_text())["task_inputs"]
    assert inputs["values"] == [1, 4, 9, 16] and inputs["command"] == "python3 aggregate.py"
    assert read_state(agg).state is State.IDLE  # created, not submitted without --submit
    assert sorted(read_record(study)) == sorted(t.name for t in tasks)


def test_a_missing_output_is_named_with_its_file(tmp_path: Path) -> None:
    study = squares_study(tmp_path, "00:01:00")
    set_compute(study, "open('outputs.json', 'w').write('{\"other\": 1}')")
    workflow_file = study / SETTINGS.WORKFLOW_FILE
    graph = workflow_file.read_text()
    workflow_file.unlink()
    task = attempts(study / "x1")[0]
    _succeed(task)
    workflow_file.write_text(graph)
    with pytest.raises(MetadataError) as info:
        advance(task)
    assert info.value.path == task / SETTINGS.OUTPUTS_FILE and info.value.field == "value"
    assert not (study / "double.x1").exists()


def test_advance_outside_a_study_is_refused(tmp_path: Path) -> None:
    task = Task(task_inputs=TaskInputs(command="true"))
    task.write_inputs(tmp_path)
    subprocess.run(["bash", str(tmp_path / "run.sh")], check=True)
    result = run("advance", tmp_path, cwd=tmp_path)
    assert result.returncode == 1 and "structured tree" in result.stderr
    assert sys.executable  # the task ran with this interpreter's autojob


def test_a_reference_implementation_parametrizations_file_drives_advance(tmp_path: Path) -> None:
    study = squares_study(tmp_path, "00:01:00")
    set_compute(study, COMPUTE.replace("x == 3", "False"))
    sweep, double = step_id("sweep"), step_id("double")
    (study / SETTINGS.PARAMETERIZATION_FILE).unlink()
    (study / SETTINGS.WORKFLOW_FILE).write_text(json.dumps({sweep: [], double: [sweep]}))
    steps = {
        sweep: {"workflow_step_id": sweep, "task_class": "task", "parametrizations": [[]]},
        double: {
            "workflow_step_id": double,
            "task_class": "task",
            "progression": "independent",
            "parametrizations": [
                [
                    {"set_path": ["task_inputs", "value"], "get_path": ["task_outputs", "value"]},
                    {
                        "set_path": ["task_inputs", "parent_label"],
                        "get_path": ["task_metadata", "label"],
                    },
                    {
                        "set_path": ["task_inputs", "command"],
                        "constant": "python3 ../../../double.py",
                    },
                    {"set_path": ["task_metadata", "label"], "constant": "twice"},
                ]
            ],
        },
    }
    (study / SETTINGS.LEGACY_PARAMETERIZATION_FILE).write_text(json.dumps(steps))
    (study / SETTINGS.WORKFLOW_FILE).rename(study / "hidden.json")
    task = attempts(study / "x2")[0]
    _succeed(task)
    (study / "hidden.json").rename(study / SETTINGS.WORKFLOW_FILE)
    (new,) = advance(task).created
    inputs = json.loads((new / SETTINGS.INPUTS_FILE).read_text())["task_inputs"]
    assert inputs["value"] == 4 and inputs["parent_label"] == "x2"
    assert inputs["command"] == "python3 ../../../double.py"
    meta = json.loads((new / SETTINGS.TASK_METADATA_FILE).read_text())
    assert meta["label"] == "twice" and meta["workflow_step_id"] == double


def test_a_dependent_step_after_an_independent_one_waits_for_all_its_groups(
    tmp_path: Path,
) -> None:
    for script in EXAMPLE.glob("*.py"):
        shutil.copy(script, tmp_path)
    steps = [
        {
            "name": "double",
            "after": ["sweep"],
            "set": {"command": "python3 ../../../double.py"},
            "references": [{"set_path": "value", "get_path": "outputs.value"}],
        },
        {
            "name": "total",
            "after": ["double"],
            "progression": "dependent",
            "set": {"command": "true"},
            "references": [{"set_path": "sum", "get_path": "outputs.doubled", "composer": "sum"}],
        },
    ]
    spec = SweepSpec.model_validate(
        {"name": "chain", "command": "python3 ../../../compute.py", "label": "x{x}",
         "parameters": {"x": [1, 2, 3]}, "steps": steps}
    )  # fmt: skip
    study = write_sweep(spec, tmp_path)[1]
    workflow_file = study / SETTINGS.WORKFLOW_FILE
    graph = workflow_file.read_text()

    def run_tasks(paths: list[Path]) -> None:  # with no workflow, the scripts only record
        workflow_file.unlink()
        for path in paths:
            _succeed(path)
        workflow_file.write_text(graph)

    sweep = [attempts(study / f"x{x}")[0] for x in (1, 2, 3)]
    run_tasks(sweep)
    (first,) = advance(sweep[0]).created
    run_tasks([first])
    waiting = advance(first)
    assert waiting.waiting == ["total waits: step double: 1 of 3 task group(s) exist"]
    doubles = [advance(task).created[0] for task in sweep[1:]]
    run_tasks(doubles)
    (total,) = advance(doubles[-1]).created
    assert json.loads((total / SETTINGS.INPUTS_FILE).read_text())["task_inputs"]["sum"] == 28
    assert advance(doubles[0]).existing == [study / "total"]
