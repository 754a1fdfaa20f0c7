"""The SLURM executor against the real single-node cluster (scripts/slurm-up.sh).

What every executor must do (outcomes, cancel, a dependency, out of memory,
restarts, a killed submit, slurmctld restarted) is in ``test_conformance.py``.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.errors import SchedulerError
from autojob.execution.slurm import slurm_arrays
from autojob.execution.submit import DEFAULT_ONLY, select_tasks
from autojob.store.state import State, read_state
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .cluster_helpers import slurm_submit as submit
from .cluster_helpers import wait_final
from .helpers import run, study_of_commands, task_dir, wait_until

pytestmark = pytest.mark.slurm


def test_an_array_of_tasks_all_succeed_in_one_sbatch_call(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path,
        {f"t{i}": f"echo task {i}" for i in range(5)},
        files_to_carry_over=["part1"],
        time="00:02:00",
    )
    jobs = submit(study, max_parallel=2)
    assert len(jobs) == 1 and len(jobs[0].tasks) == 5
    assert "--array=0-4%2" in jobs[0].command()
    paths = [task_dir(study, f"t{i}") for i in range(5)]
    # each task knows its element's job id at once (queued, or already started)
    assert [read_state(p).job_id for p in paths] == [f"{jobs[0].job_id}_{i}" for i in range(5)]
    assert set(wait_final(paths).values()) == {State.SUCCESS}
    for i, path in enumerate(paths):
        assert (path / SETTINGS.STDOUT_FILE).read_text() == f"task {i}\n"
        stats = json.loads((path / SETTINGS.SCHEDULER_STATS_FILE).read_text())
        assert stats["state"] == "COMPLETED" and stats["exit_code"] == 0
        assert stats["array_job_id"] == jobs[0].job_id and stats["node"]
        assert stats["elapsed"] is not None


def test_resources_split_arrays_and_failures_are_recorded(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path, {"ok": "true"}, files_to_carry_over=["part1"], time="00:02:00"
    )
    other = Task(
        task_metadata=TaskMetadata(label="bad"),
        task_inputs=TaskInputs(command="echo no >&2; exit 3"),
        scheduler_inputs={"time": "00:03:00"},
    )
    from autojob.next import create_task_group_tree

    create_task_group_tree(TaskGroup(label="bad", tasks=[other]), study, name_template="bad")
    jobs = submit(study)
    assert len(jobs) == 2
    states = wait_final([task_dir(study, "ok"), task_dir(study, "bad")])
    assert states[task_dir(study, "bad")] is State.FAILED
    bad = read_state(task_dir(study, "bad"))
    assert bad.exit_code == 3
    stats = json.loads((task_dir(study, "bad") / SETTINGS.SCHEDULER_STATS_FILE).read_text())
    assert stats["state"] == "FAILED" and stats["exit_code"] == 3


def test_an_unknown_partition_names_the_partitions(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path, {"x": "true"}, files_to_carry_over=["part1"], partition="nosuchpartition"
    )
    with pytest.raises(SchedulerError) as info:
        submit(study)
    err = info.value
    assert err.command[0] == "sbatch" and err.returncode not in (0, None)
    assert "partition" in err.stderr.lower()
    assert "debug" in (err.hint or "")
    assert read_state(task_dir(study, "x")).state is State.IDLE  # the claim was withdrawn


def test_cli_dry_run_prints_scripts_and_commands(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path,
        {f"d{i}": "true" for i in range(3)},
        files_to_carry_over=["part1"],
        time="00:01:00",
    )
    result = run("submit", study, "--executor", "slurm", "--dry-run", "-j", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sbatch --parsable --array=0-2%2" in result.stdout
    assert "#SBATCH --time=00:01:00" in result.stdout
    assert "3 task(s) would go in 1 sbatch call(s)" in result.stdout
    assert all(read_state(task_dir(study, f"d{i}")).state is State.IDLE for i in range(3))


def test_without_sacct_status_degrades_to_squeue(tmp_path: Path) -> None:
    root = Path(__file__).parents[1]
    study, _ = study_of_commands(
        tmp_path, {"w": "sleep 20"}, files_to_carry_over=["part1"], time="00:02:00"
    )
    submit(study)
    path = task_dir(study, "w")
    subprocess.run([str(root / "scripts" / "slurm-down.sh"), "slurmdbd"], check=True, timeout=60)
    try:
        wait_until(
            lambda: read_state(path).state is State.RUNNING,
            60,
            "the task to start",
            interval=0.5,
        )
        result = run("status", study, "--json", "--rescan", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["counts"] == {"running": 1}
        assert "falling back to squeue" in result.stderr
    finally:
        subprocess.run(["scancel", read_state(path).job_id or "0"], check=False)
        subprocess.run(
            [str(root / "scripts" / "slurm-up.sh")], check=True, capture_output=True, timeout=300
        )


def test_two_plans_never_share_a_batch_directory(tmp_path: Path) -> None:
    from autojob.execution.slurm import plan_arrays

    study, _ = study_of_commands(
        tmp_path / "s", {"a": "true", "b": "true"}, files_to_carry_over=["part1"]
    )
    a, b = task_dir(study, "a"), task_dir(study, "b")
    first = plan_arrays([(a, "run.sh")], batch_root=tmp_path / "batch", max_array_size=1001)
    second = plan_arrays([(b, "run.sh")], batch_root=tmp_path / "batch", max_array_size=1001)
    assert first[0].batch_dir != second[0].batch_dir
    assert not (tmp_path / "batch").exists()  # planning writes nothing


def test_a_refused_array_withdraws_the_claims_of_the_rest(tmp_path: Path) -> None:
    study, _ = study_of_commands(
        tmp_path, {"good": "true"}, files_to_carry_over=["part1"], time="00:01:00"
    )
    from autojob.next import create_task_group_tree

    for label in ("bad1", "bad2"):
        task = Task(
            task_metadata=TaskMetadata(label=label),
            task_inputs=TaskInputs(command="true", auto_restart=False),
            scheduler_inputs={"partition": "nosuchpartition", "time": f"00:0{len(label)}:00"},
        )
        create_task_group_tree(TaskGroup(label=label, tasks=[task]), study, name_template=label)
    with pytest.raises(SchedulerError):
        submit(study)
    states = {k: read_state(task_dir(study, k)).state for k in ("good", "bad1", "bad2")}
    assert states["bad1"] is State.IDLE and states["bad2"] is State.IDLE
    assert states["good"] in (State.IDLE, State.QUEUED, State.RUNNING, State.SUCCESS)


def held_study(root: Path, n: int) -> tuple[Path, list[Path]]:
    return study_of_commands(
        root,
        {f"t{i}": "true" for i in range(n)},
        files_to_carry_over=["part1"],
        time="00:01:00",
        hold=True,
    )


def test_a_claim_is_one_record_and_the_job_id_is_written_once_per_array(tmp_path: Path) -> None:
    study, paths = held_study(tmp_path, 4)
    (job,) = submit(study)
    try:
        assert json.loads((job.batch_dir / "submitted.json").read_text())["job_id"] == job.job_id
        for index, path in enumerate(paths):
            claim = json.loads((path / SETTINGS.QUEUED_FILE).read_text())
            assert "job_id" not in claim  # not rewritten after sbatch
            assert claim["batch"] == str(job.batch_dir) and claim["array_index"] == index
            state = read_state(path)
            assert state.state is State.QUEUED and state.job_id == f"{job.job_id}_{index}"
        assert not list(tmp_path.rglob(".autojob.lock"))  # the directories are locked
    finally:
        subprocess.run(["scancel", str(job.job_id)], check=False)


def test_tasks_claimed_meanwhile_are_left_out_of_the_array(tmp_path: Path) -> None:
    from autojob.execution.claims import claim_tasks

    study, paths = held_study(tmp_path, 5)
    selected = select_tasks([study], DEFAULT_ONLY)
    # another submit claims t1 and t3 between this one's selection and its claims
    assert claim_tasks([paths[1], paths[3]], DEFAULT_ONLY, "local") == [paths[1], paths[3]]
    (job,) = slurm_arrays(
        selected,
        allowed=DEFAULT_ONLY,
        max_parallel=None,
        batch_root=study / ".autojob" / "slurm",
        dry_run=False,
    )
    try:
        assert job.array_option() == "--array=0,2,4"
        shown = subprocess.run(
            ["squeue", "--noheader", "--array", "--jobs", str(job.job_id), "--format=%K"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert sorted(shown) == ["0", "2", "4"]
        assert read_state(paths[1]).executor == "local"  # the other claim stands
        assert read_state(paths[4]).job_id == f"{job.job_id}_4"
    finally:
        subprocess.run(["scancel", str(job.job_id)], check=False)


def test_an_unanswered_sbatch_is_found_in_the_queue(tmp_path: Path) -> None:
    from autojob.execution.slurm.arrays import _queued_from

    study, _ = held_study(tmp_path, 2)
    (job,) = submit(study)
    try:
        assert _queued_from(job.batch_dir) == job.job_id
        assert _queued_from(tmp_path / "never-submitted") is None
    finally:
        subprocess.run(["scancel", str(job.job_id)], check=False)


def test_poll_leaves_out_older_jobs_that_had_the_same_id(tmp_path: Path) -> None:
    from autojob.execution.slurm import CLOCK_SLACK, poll

    study, _ = study_of_commands(
        tmp_path, {"t": "true"}, files_to_carry_over=["part1"], time="00:01:00"
    )
    (job,) = submit(study)
    wait_final([task_dir(study, "t")])
    element = f"{job.job_id}_0"
    found, source = poll([element], since=time.time() - 60)
    assert source == "sacct" and found[element].slurm_state == "COMPLETED"
    # a job submitted before the window is another job that had this id
    later, _ = poll([element], since=time.time() + CLOCK_SLACK + 3600)
    assert element not in later
