"""The Grid Engine executor against the real single-host cluster (scripts/sge-up.sh).

What every executor must do (outcomes, cancel, a dependency, out of memory,
restarts, a killed submit, qmaster restarted) is in ``test_conformance.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.execution.sge.arrays import queued_from
from autojob.execution.sge.missing import FLUSH_MARGIN, accounting_grace
from autojob.store.state import State, read_state

from .cluster_helpers import SCRIPTS, processes_under, wait_final
from .cluster_helpers import cluster_command as sge
from .helpers import run, study_of_commands, wait_until

pytestmark = pytest.mark.sge
SGE_STATE = Path(os.environ.get("AUTOJOB_SGE_STATE", "/run/autojob-sge"))


def submit(study: Path, *args: str) -> str:
    """``autojob submit --executor sge``; the job ids it reports."""
    result = run("submit", study, "--executor", "sge", *args, cwd=study.parent)
    assert result.returncode == 0, result.stderr
    assert "array job(s): " in result.stdout, result.stdout
    return result.stdout.rsplit("array job(s): ", 1)[1].split()[0]


def stats(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((path / SETTINGS.SCHEDULER_STATS_FILE).read_text())
    return data


def test_an_array_of_tasks_runs_in_one_qsub_call_and_is_accounted(tmp_path: Path) -> None:
    study, paths = study_of_commands(
        tmp_path, {f"t{i}": f"echo task {i}" for i in range(4)}, time="00:02:00"
    )
    job_id = submit(study)
    assert job_id.isdigit() and "," not in job_id  # one array job
    # each task knows its element's id at once: JOB_ID.TASK_ID, tasks from 1
    assert [read_state(p).job_id for p in paths] == [f"{job_id}.{i + 1}" for i in range(4)]
    assert set(wait_final(paths).values()) == {State.SUCCESS}
    for i, path in enumerate(paths):
        assert (path / SETTINGS.STDOUT_FILE).read_text() == f"task {i}\n"
        assert read_state(path).executor == "sge"
        data = stats(path)
        assert data["job_id"] == f"{job_id}.{i + 1}" and data["array_job_id"] == job_id
        assert data["task_id"] == i + 1
        assert (data["exit_status"], data["failed"]) == (0, 0)
        assert data["host"] == "localhost" and data["wallclock"] is not None
        assert data["maxvmem"] is not None
        assert data["limits"] == {"h_rt": "120"}


def test_max_parallel_becomes_the_array_concurrency_limit(tmp_path: Path) -> None:
    study, paths = study_of_commands(
        tmp_path, {f"p{i}": "sleep 1" for i in range(3)}, time="00:01:00"
    )
    job_id = submit(study, "-j", "1")
    shown = sge("qstat", "-j", job_id)
    assert "maximum concurrency:        1" in shown
    assert set(wait_final(paths).values()) == {State.SUCCESS}


def test_dry_run_prints_the_scripts_and_qsub_lines_and_submits_nothing(tmp_path: Path) -> None:
    study, paths = study_of_commands(
        tmp_path,
        {f"d{i}": "true" for i in range(3)},
        time="01:30:00",
        mem="4G",
        cpus_per_task=2,
        partition="all.q",
        account="proj x",
        mail_user="me@example.org",
        mail_type="END,FAIL",
    )
    result = run("submit", study, "--executor", "sge", "--dry-run", "-j", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "qsub -terse -N autojob-d0 -t 1-3 -tc 2 -S /bin/bash" in out
    assert "-l h_rt=1:30:00,h_vmem=2048M -pe smp 2 -q all.q -A 'proj x'" in out
    assert "-M me@example.org -m ea" in out
    assert 'export AUTOJOB_JOB_ID="${JOB_ID}.${SGE_TASK_ID}"' in out
    assert "3 task(s) would go in 1 qsub call(s)" in out
    assert all(read_state(p).state is State.IDLE for p in paths)
    assert not (study / SETTINGS.INDEX_DIR / "sge").exists()


def test_an_option_grid_engine_cannot_give_is_refused_by_name(tmp_path: Path) -> None:
    study, (task,) = study_of_commands(tmp_path, {"g": "true"}, time="00:01:00", gres="gpu:1")
    result = run("submit", study, "--executor", "sge", cwd=tmp_path)
    assert result.returncode != 0
    assert "scheduler_inputs.gres" in result.stderr
    assert "Grid Engine has no equivalent" in result.stderr
    assert str(task / SETTINGS.INPUTS_FILE) in result.stderr
    assert read_state(task).state is State.IDLE


def test_an_unknown_queue_keeps_qsubs_answer_and_withdraws_the_claims(tmp_path: Path) -> None:
    study, (task,) = study_of_commands(tmp_path, {"q": "true"}, partition="nosuchqueue")
    result = run("submit", study, "--executor", "sge", cwd=tmp_path)
    assert result.returncode != 0
    assert "qsub" in result.stderr and "nosuchqueue" in result.stderr
    assert "all.q" in result.stderr  # the hint names the queues there are
    assert read_state(task).state is State.IDLE


def test_directive_lines_of_a_hand_written_script_are_read_back(tmp_path: Path) -> None:
    study, (task,) = study_of_commands(tmp_path, {"h": "true"})
    # a task as python-autojob wrote it: no scheduler_inputs section, the
    # resources in the script's directive lines
    inputs = json.loads((task / SETTINGS.INPUTS_FILE).read_text())
    inputs.pop("scheduler_inputs", None)
    (task / SETTINGS.INPUTS_FILE).write_text(json.dumps(inputs))
    (task / "run.sh").write_text(
        "#!/bin/bash\n#$ -l h_rt=0:05:00,h_vmem=1G\n#$ -pe smp 2\n#$ -q all.q\n#$ -cwd\ntrue\n"
    )
    result = run("submit", study, "--executor", "sge", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "-l h_rt=0:05:00,h_vmem=1024M -pe smp 2 -q all.q" in result.stdout


def test_a_dependency_grid_engine_cannot_express_is_refused(tmp_path: Path) -> None:
    study, (task,) = study_of_commands(tmp_path, {"x": "true"}, dependency="afterok:12")
    result = run("submit", study, "--executor", "sge", cwd=tmp_path)
    assert result.returncode != 0
    assert "scheduler_inputs.dependency" in result.stderr and "afterany" in result.stderr
    assert read_state(task).state is State.IDLE


def test_an_unanswered_qsub_is_found_in_the_queue_by_its_script(tmp_path: Path) -> None:
    study, _ = study_of_commands(tmp_path, {"q": "sleep 60"}, time="00:02:00")
    job_id = submit(study)
    try:
        (batch,) = (study / SETTINGS.INDEX_DIR / "sge").iterdir()
        assert queued_from(batch) == job_id
        assert queued_from(tmp_path / "never-submitted") is None
    finally:
        sge("qdel", job_id)


@pytest.mark.slow
def test_a_job_deleted_behind_autojobs_back_is_lost_to_one_shot_status(tmp_path: Path) -> None:
    first, _ = study_of_commands(tmp_path / "a", {"blocker": "sleep 60"}, time="00:02:00")
    job_id = submit(first)
    second, (held,) = study_of_commands(
        tmp_path / "b", {"held": "true"}, time="00:01:00", dependency=f"afterany:{job_id}"
    )
    held_job = submit(second)
    try:
        # deleted by hand while pending: never in qacct, and its task never ran
        sge("qdel", held_job)
        status = run("status", second, "--json", cwd=tmp_path)  # each a process of its own
        assert json.loads(status.stdout)["counts"] == {"queued": 1}  # may be in a flush
        grace = accounting_grace()
        assert grace == 2 * 1 + FLUSH_MARGIN  # sge-up.sh sets flush_time to 1 s

        def lost() -> dict[str, object] | None:
            status = json.loads(run("status", second, "--json", cwd=tmp_path).stdout)
            return status["tasks"][0] if status["counts"] == {"unknown": 1} else None

        task = wait_until(lost, grace + 60, "the job to be taken as lost")
        assert task["job_id"] == read_state(held).job_id
        assert "no longer knows the job" in str(task["detail"])
    finally:
        sge("qdel", job_id)


def _shepherds_of(pids: list[int]) -> set[int]:
    """The sge_shepherd processes above ``pids`` (each job's own)."""
    found = set()
    for start in pids:
        pid = start
        while pid > 1:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                break
            name, parent = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1]
            if name == "sge_shepherd":
                found.add(pid)
                break
            pid = int(parent.split()[1])
    return found


@pytest.mark.slow
def test_a_lost_execution_host_ends_tasks_as_node_fail_and_resubmit_recovers_them(
    tmp_path: Path,
) -> None:
    study, (task,) = study_of_commands(
        tmp_path,
        {"n": "if [ -f part1 ]; then echo again; else sleep 120; fi"},
        files_to_carry_over=["part1"],
        time="00:05:00",
    )
    submit(study)
    wait_until(lambda: read_state(task).state is State.RUNNING, 60, "the task to start")
    (task / "part1").write_text("carried over to the next attempt\n")
    # the execution host crashes: sge_execd, the job's shepherd and the job die at
    # once (other jobs' shepherds are left alone); execd comes back as the host would
    execd = int((SGE_STATE / "sge_execd.pid").read_text().split()[0])
    job = wait_until(lambda: processes_under(study), 30, "the job's processes")
    try:
        for pid in [execd, *_shepherds_of(job), *job]:
            os.kill(pid, signal.SIGKILL)
    finally:  # the host is back: execd started as sge-up.sh starts it
        subprocess.run([str(SCRIPTS / "sge-up.sh")], check=True, capture_output=True, timeout=300)
    assert wait_final([task], timeout=180) == {task: State.FAILED}
    assert read_state(task).reason == "node_fail"
    failed = stats(task)["failed"]
    assert failed not in (0, 37, 100) and stats(task)["failed_reason"], stats(task)
    result = run("resubmit", study, "--only", "node_fail", cwd=tmp_path)  # on sge, as recorded
    assert result.returncode == 0, result.stderr
    (again,) = [p for p in task.parent.iterdir() if p.is_dir() and p not in (task,)]
    assert read_state(again).executor == "sge"
    assert wait_final([again]) == {again: State.SUCCESS}
    assert (again / SETTINGS.STDOUT_FILE).read_text() == "again\n"
