"""harvest(): every task under a path, with what it produced and its problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.errors import MetadataError, MissingFileError, PluginError
from autojob.harvest import (
    Harvester,
    TaskFiles,
    harvest,
    register_harvester,
)
from autojob.harvest.harvesters import _registered
from autojob.next import create_task_tree
from autojob.store.run_files import archive_run
from autojob.tasks.task import Task, TaskInputs, TaskMetadata
from tests.harvest_helpers import WRITE_OUTPUTS, by_label, finished_sweep, run_task, sweep
from tests.helpers import snapshot

# -- structured trees ---------------------------------------------------------------


def test_structured_tree_yields_every_task_with_its_sections(tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path)
    stats = {"job_id": "42", "state": "COMPLETED", "elapsed": 3, "max_rss": 1024}
    (dirs[0] / SETTINGS.SCHEDULER_STATS_FILE).write_text(json.dumps(stats))

    tasks = list(harvest(sg_dir, strict=True))

    assert [t.path for t in tasks] == sorted(str(d.relative_to(sg_dir)) for d in dirs)
    found = by_label(tasks)
    ok, bad, idle = found["t0"], found["t1"], found["t2"]
    written = json.loads((dirs[0] / SETTINGS.TASK_METADATA_FILE).read_text())
    assert ok.metadata == written
    assert ok.task_id == dirs[0].name
    assert ok.inputs["task_inputs"]["command"].startswith("python3 -c")
    assert ok.inputs["scheduler_inputs"] == {"time": "00:05:00"}
    assert ok.outputs == {"energy": -1.5, "converged": True, "bands": [1, 2]}
    assert ok.harvesters == ["outputs"]
    assert (ok.state_name, ok.state["exit_code"]) == ("success", 0)
    assert (bad.state_name, bad.state["exit_code"], bad.outputs) == ("failed", 3, None)
    assert (idle.state_name, idle.outputs) == ("idle", None)
    assert ok.scheduler == stats
    assert bad.scheduler is None
    for task in tasks:
        assert task.problems == []
        assert task.attempts.count == 1 and task.attempts.current
        assert task.attempts.group == str(Path(task.path).parent)
        assert task.directory(sg_dir).is_dir()


def test_harvest_of_a_single_task_or_group(tmp_path: Path) -> None:
    _, dirs = finished_sweep(tmp_path)
    (only,) = harvest(dirs[0], strict=True)
    assert only.path == "."
    assert only.outputs is not None and only.outputs["energy"] == -1.5
    (in_group,) = harvest(dirs[1].parent, strict=True)
    assert in_group.path == dirs[1].name
    assert in_group.attempts.group == "."


def test_attempts_of_a_restarted_task(tmp_path: Path) -> None:
    _, dirs = sweep(tmp_path, ["exit 1"])
    first = dirs[0]
    run_task(first)
    group_dir = first.parent
    restart = Task(
        task_metadata=TaskMetadata(label="t0, attempt 2"),
        task_inputs=TaskInputs(command=WRITE_OUTPUTS.format(e=2.0)),
    )
    second = create_task_tree(restart, group_dir, src=first)
    run_task(second)

    tasks = list(harvest(group_dir.parent, strict=True))

    assert len(tasks) == 2
    old, new = sorted(tasks, key=lambda t: t.attempts.number)
    assert old.path == f"{group_dir.name}/{first.name}"
    assert (old.state_name, new.state_name) == ("failed", "success")
    assert (old.attempts.number, new.attempts.number) == (1, 2)
    assert (old.attempts.current, new.attempts.current) == (False, True)
    assert old.attempts.count == new.attempts.count == 2
    assert new.attempts.tasks == [old.path, new.path]
    assert new.outputs is not None and new.outputs["energy"] == 2.0


def test_history_of_earlier_runs(tmp_path: Path) -> None:
    _, dirs = sweep(tmp_path, ["exit 2"])
    run_task(dirs[0])
    archive_run(dirs[0])  # what submit does before running the task again
    (dirs[0] / SETTINGS.INPUTS_FILE).write_text(
        json.dumps({"task_inputs": {"command": WRITE_OUTPUTS.format(e=0.5)}})
    )
    Task.from_directory(dirs[0]).write_inputs(dirs[0])
    run_task(dirs[0])

    (task,) = harvest(dirs[0], strict=True)

    assert task.state_name == "success"
    assert [(h["run"], h["state"], h["exit_code"]) for h in task.history] == [(1, "failed", 2)]


def test_unstructured_tree_is_harvested_without_writing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    flat = runs / "a"
    flat.mkdir(parents=True)
    (flat / SETTINGS.INPUTS_FILE).write_text(json.dumps({"command": "echo a"}))
    (flat / SETTINGS.OUTPUTS_FILE).write_text(json.dumps({"x": 1}))
    nested = runs / "deeper" / "b"
    nested.mkdir(parents=True)
    (nested / SETTINGS.INPUTS_FILE).write_text(json.dumps({"task_inputs": {"command": "b"}}))
    (runs / "notes").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / SETTINGS.INPUTS_FILE).write_text("{}")
    (runs / "link").symlink_to(outside, target_is_directory=True)
    before = snapshot(tmp_path)

    tasks = list(harvest(runs, strict=True))

    assert snapshot(tmp_path) == before
    assert [t.path for t in tasks] == ["a", "deeper/b"]
    a, b = tasks
    assert a.metadata == {"label": "a"}
    assert a.inputs == {"task_inputs": {"command": "echo a"}}
    assert a.outputs == {"x": 1}
    assert b.inputs == {"task_inputs": {"command": "b"}}
    assert a.attempts.group is None and a.attempts.tasks == ["a"]


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no such directory"):
        harvest(tmp_path / "missing")


# -- broken files -----------------------------------------------------------------

BROKEN = {
    "corrupt metadata": (SETTINGS.TASK_METADATA_FILE, b'{"label": "x",', MetadataError, None),
    "truncated inputs": (SETTINGS.INPUTS_FILE, b'{"task_inputs": {"comm', MetadataError, None),
    "binary outputs": (SETTINGS.OUTPUTS_FILE, b"\xff\xfe\x00garbage", MetadataError, None),
    "outputs not UTF-8": (SETTINGS.OUTPUTS_FILE, b'{"name": "caf\xe9"}', MetadataError, None),
    "outputs not an object": (SETTINGS.OUTPUTS_FILE, b"[1, 2, 3]", MetadataError, None),
    "empty accounting": (SETTINGS.SCHEDULER_STATS_FILE, b"", MetadataError, None),
    "bad task id": (SETTINGS.TASK_METADATA_FILE, b'{"task_id": 5}', MetadataError, "task_id"),
    "missing inputs": (SETTINGS.INPUTS_FILE, None, MissingFileError, None),
}


def _break(task_dir: Path, name: str, content: bytes | None) -> Path:
    path = task_dir / name
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", BROKEN)
def test_relaxed_harvest_records_each_problem(tmp_path: Path, case: str) -> None:
    name, content, error, field = BROKEN[case]
    sg_dir, dirs = finished_sweep(tmp_path)
    broken = _break(dirs[0], name, content)

    found = harvest(sg_dir, strict=False)
    tasks = list(found)

    assert len(tasks) == 3
    bad = next(t for t in tasks if t.path == str(dirs[0].relative_to(sg_dir)))
    assert len(bad.problems) == 1
    problem = bad.problems[0]
    assert problem.path == str(broken)
    assert problem.field == field
    assert problem.kind == error.__name__
    assert all(not t.problems for t in tasks if t is not bad)
    assert found.summary.problem_count == 1
    assert found.summary.problems[0][0] == bad.path
    assert found.summary.tasks == found.summary.seen == 3


def test_json_files_in_other_unicode_encodings_are_read(tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path)
    outputs = {"name": "café", "energy": -1.0}
    text = json.dumps(outputs, ensure_ascii=False)
    (dirs[0] / SETTINGS.OUTPUTS_FILE).write_bytes(b"\xef\xbb\xbf" + text.encode())  # BOM
    (dirs[1] / SETTINGS.OUTPUTS_FILE).write_bytes(text.encode("utf-16"))

    tasks = by_label(list(harvest(sg_dir, strict=True)))

    assert tasks["t0"].outputs == tasks["t1"].outputs == outputs


@pytest.mark.parametrize("case", BROKEN)
def test_strict_harvest_stops_at_the_broken_file(tmp_path: Path, case: str) -> None:
    name, content, error, field = BROKEN[case]
    sg_dir, dirs = finished_sweep(tmp_path)
    broken = _break(dirs[1], name, content)

    with pytest.raises(error) as caught:
        list(harvest(sg_dir, strict=True))

    assert caught.value.path == broken
    assert caught.value.field == field
    assert str(broken) in str(caught.value)


def test_strict_is_the_settings_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sg_dir, dirs = finished_sweep(tmp_path)
    _break(dirs[0], SETTINGS.OUTPUTS_FILE, b"{")
    with pytest.raises(MetadataError):
        list(harvest(sg_dir))
    monkeypatch.setattr(SETTINGS, "STRICT_MODE", False)
    assert len(list(harvest(sg_dir))) == 3


# -- magic mode and typed tasks ---------------------------------------------------------


def test_magic_mode_validates_the_task_class(tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path)
    meta_file = dirs[2] / SETTINGS.TASK_METADATA_FILE
    meta = json.loads(meta_file.read_text())
    meta["task_class"] = "not-installed"
    meta_file.write_text(json.dumps(meta))

    plain = by_label(list(harvest(sg_dir, strict=True)))
    assert plain["t2"].problems == []
    magic = by_label(list(harvest(sg_dir, strict=False, magic=True)))
    assert [p.kind for p in magic["t2"].problems] == ["PluginError"]
    assert magic["t2"].problems[0].path == str(meta_file)
    with pytest.raises(PluginError, match="not-installed"):
        list(harvest(sg_dir, strict=True, magic=True))

    task = magic["t0"].task()
    assert isinstance(task, Task)
    assert task.task_outputs is not None
    assert task.task_outputs.model_extra == {"energy": -1.5, "converged": True, "bands": [1, 2]}
    assert task.scheduler_inputs.model_dump(by_alias=True, exclude_none=True) == {
        "time": "00:05:00"
    }


# -- harvesters and filters -----------------------------------------------------------


class Exploding(Harvester):
    name = "exploding"

    def harvest(self, task: TaskFiles) -> dict[str, Any] | None:
        raise KeyError(task.path)


class Counting(Harvester):
    name = "counting"
    task_classes = ("task",)

    def harvest(self, task: TaskFiles) -> dict[str, Any] | None:
        return {"files": len(task.names), "label": task.metadata.get("label")}


@pytest.fixture
def extra_harvesters() -> Any:
    register_harvester(Exploding())
    register_harvester(Counting())
    yield
    _registered.pop("exploding", None)
    _registered.pop("counting", None)


def test_harvesters_by_task_class_or_by_name(tmp_path: Path, extra_harvesters: Any) -> None:
    sg_dir, _ = finished_sweep(tmp_path)
    default = by_label(list(harvest(sg_dir, strict=True)))
    # "exploding" declares no task class, so it runs only when named
    assert default["t0"].harvesters == ["counting", "outputs"]
    assert default["t0"].outputs is not None
    assert default["t0"].outputs["label"] == "t0"
    assert default["t0"].outputs["energy"] == -1.5

    named = by_label(list(harvest(sg_dir, strict=False, harvesters=["exploding"])))
    problem = named["t1"].problems[0]
    assert "harvester 'exploding' failed: KeyError" in problem.message
    assert named["t1"].outputs is None

    with pytest.raises(PluginError, match="harvester 'nope' is not installed"):
        harvest(sg_dir, harvesters=["nope"])


def test_filters_by_state_and_field(tmp_path: Path) -> None:
    sg_dir, _ = finished_sweep(tmp_path)

    def labels(**kwargs: Any) -> list[str]:
        found = harvest(sg_dir, strict=True, **kwargs)
        return sorted(t.metadata["label"] for t in found)

    assert labels(states=["success", "failed"]) == ["t0", "t1"]
    assert labels(where=["outputs.converged=true"]) == ["t0"]
    assert labels(where=["energy=-1.5"]) == ["t0"]
    assert labels(where=["label=t2"]) == ["t2"]
    assert labels(where=["state.exit_code=3"]) == ["t1"]
    assert labels(where=['tags=["sweep"]', "state.state=idle"]) == ["t2"]
    assert labels(where=["outputs.nothing=1"]) == []
    found = harvest(sg_dir, strict=True, states=["failed"])
    assert len(list(found)) == 1
    assert (found.summary.seen, found.summary.tasks) == (3, 1)
