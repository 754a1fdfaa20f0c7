"""The Grid Engine executor against the real single-host cluster (scripts/sge-up.sh)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.store.state import State, read_state

from .helpers import run, study_of_commands, wait_until
from .sge_helpers import queued_elements, sge, wait_final

pytestmark = pytest.mark.sge


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


def test_a_non_zero_exit_is_failed_with_its_status(tmp_path: Path) -> None:
    study, (ok, bad) = study_of_commands(
        tmp_path, {"ok": "true", "bad": "echo no >&2; exit 3"}, time="00:01:00"
    )
    submit(study)
    assert wait_final([ok, bad]) == {ok: State.SUCCESS, bad: State.FAILED}
    assert read_state(bad).exit_code == 3
    assert (stats(bad)["exit_status"], stats(bad)["failed"]) == (3, 0)
    status = run("status", study, "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["counts"] == {"success": 1, "failed": 1}


def test_max_parallel_becomes_the_array_concurrency_limit(tmp_path: Path) -> None:
    study, paths = study_of_commands(
        tmp_path, {f"p{i}": "sleep 1" for i in range(3)}, time="00:01:00"
    )
    job_id = submit(study, "-j", "1")
    shown = sge("qstat", "-j", job_id)
    assert "maximum concurrency:        1" in shown
    assert set(wait_final(paths).values()) == {State.SUCCESS}


def test_the_time_limit_ends_a_task_as_timeout(tmp_path: Path) -> None:
    study, (slow,) = study_of_commands(tmp_path, {"slow": "sleep 120"}, time="00:00:03")
    submit(study)
    assert wait_final([slow], timeout=120) == {slow: State.TIMEOUT}
    assert read_state(slow).reason == "timeout"
    assert stats(slow)["failed"] == 37
    assert stats(slow)["limits"] == {"h_rt": "3"}
    # a new attempt with twice the time
    result = run(
        "resubmit", study, "--only", "timeout", "--time-factor", "2", "--executor", "sge",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (again,) = [p for p in slow.parent.iterdir() if p.is_dir() and p != slow and p.name[0] != "."]
    state = read_state(again)
    assert state.executor == "sge" and state.job_id
    assert state.state in (State.QUEUED, State.RUNNING)
    assert wait_final([again], timeout=120) == {again: State.TIMEOUT}
    assert stats(again)["limits"] == {"h_rt": "6"}


def test_cancel_stops_running_and_queued_tasks_with_one_qdel(tmp_path: Path) -> None:
    study, paths = study_of_commands(
        tmp_path, {f"c{i}": "sleep 300" for i in range(3)}, time="00:10:00"
    )
    job_id = submit(study, "-j", "1")  # one runs, two wait for it
    wait_until(
        lambda: any(read_state(p).state is State.RUNNING for p in paths), 60, "a task to start"
    )
    assert [read_state(p).state for p in paths].count(State.QUEUED) == 2
    result = run("cancel", study, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("cancelled ") == 3
    assert not {f"{job_id}.{i}" for i in (1, 2, 3)} & queued_elements()
    assert set(wait_final(paths).values()) == {State.CANCELLED}
    ran = [p for p in paths if (p / SETTINGS.SCHEDULER_STATS_FILE).exists()]
    assert len(ran) == 1  # the running one is in qacct; the queued ones never ran
    assert stats(ran[0])["failed"] == 100


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


def test_a_dependency_holds_a_task_until_the_job_it_waits_for_ends(tmp_path: Path) -> None:
    first, (a,) = study_of_commands(
        tmp_path / "a", {"first": "sleep 3; date +%s.%N > stamp"}, time="00:01:00"
    )
    job_id = submit(first)
    second, (b,) = study_of_commands(
        tmp_path / "b",
        {"second": "date +%s.%N > stamp"},
        time="00:01:00",
        dependency=f"afterany:{job_id}",
    )
    held = submit(second)
    assert re.search(rf"^jid_predecessor_list:\s+{job_id}$", sge("qstat", "-j", held), re.M)
    assert wait_final([a, b]) == {a: State.SUCCESS, b: State.SUCCESS}
    assert float((b / "stamp").read_text()) > float((a / "stamp").read_text())


def test_a_dependency_grid_engine_cannot_express_is_refused(tmp_path: Path) -> None:
    study, (task,) = study_of_commands(tmp_path, {"x": "true"}, dependency="afterok:12")
    result = run("submit", study, "--executor", "sge", cwd=tmp_path)
    assert result.returncode != 0
    assert "scheduler_inputs.dependency" in result.stderr and "afterany" in result.stderr
    assert read_state(task).state is State.IDLE


HOG = """python3 -c '
import time
hog = []
for _ in range(300):
    hog.append(bytearray(10**7))
    time.sleep(0.02)
'"""


def test_a_task_over_its_memory_limit_ends_as_oom(tmp_path: Path) -> None:
    study, (hog, calm) = study_of_commands(
        tmp_path, {"hog": HOG, "calm": "exit 1"}, time="00:01:00", mem="150M"
    )
    submit(study)
    assert wait_final([hog, calm]) == {hog: State.OOM, calm: State.FAILED}
    assert read_state(hog).reason == "oom"
    assert stats(hog)["limits"] == {"h_rt": "60", "h_vmem": "150M"}


def test_auto_restart_resubmits_from_inside_the_job_with_more_time(tmp_path: Path) -> None:
    command = "if [ -f part1 ]; then echo finished > result; else touch part1; sleep 600; fi"
    study, _ = study_of_commands(
        tmp_path, {"long": command}, auto_restart=True, files_to_carry_over=["part1"], time="0:20"
    )
    submit(study)
    group = study / "long"

    def attempts() -> list[Path]:
        return sorted(p for p in group.iterdir() if p.is_dir() and p.name[0] != ".")

    wait_until(
        lambda: any((p / "result").exists() for p in attempts()),
        120,
        "an attempt to write its result",
        details=lambda: [read_state(p) for p in attempts()],
        interval=0.5,
    )
    first = next(p for p in attempts() if not (p / "result").exists())
    second = next(p for p in attempts() if (p / "result").exists())
    assert wait_final([first, second]) == {first: State.TIMEOUT, second: State.SUCCESS}
    assert read_state(first).exit_code == 124  # stopped by itself, before h_rt
    assert read_state(second).executor == "sge" and read_state(second).job_id
    sched = json.loads((second / SETTINGS.INPUTS_FILE).read_text())["scheduler_inputs"]
    assert sched["time"] == "00:00:30"


def test_qmaster_restarted_mid_study_loses_nothing(tmp_path: Path) -> None:
    scripts = Path(__file__).parents[1] / "scripts"
    study, paths = study_of_commands(
        tmp_path, {f"r{i}": f"sleep 4; echo done {i}" for i in range(4)}, time="00:05:00"
    )
    submit(study)
    wait_until(
        lambda: any(read_state(p).state is State.RUNNING for p in paths), 60, "a task to start"
    )
    # qmaster stops mid-study (its jobs run on under execd), then comes back
    subprocess.run([str(scripts / "sge-down.sh"), "sge_qmaster"], check=True, timeout=60)
    try:
        out = run("status", study, "--rescan", "--json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr  # the task files answer
        counts = json.loads(out.stdout)["counts"]
        assert sum(counts.values()) == 4 and set(counts) <= {"queued", "running", "success"}
    finally:
        subprocess.run([str(scripts / "sge-up.sh")], check=True, capture_output=True, timeout=300)
    assert set(wait_final(paths).values()) == {State.SUCCESS}
    for i, path in enumerate(paths):
        assert (path / SETTINGS.STDOUT_FILE).read_text() == f"done {i}\n"
        assert stats(path)["exit_status"] == 0
