"""Faults on the real SLURM cluster: a crashed node, a killed controller.

slurmd dies with tasks running (the node crashes: its job processes die with
it): the tasks end as failed with the cause node_fail, and resubmit recovers
them. slurmctld is killed with SIGKILL mid-study (no state saved) and started
again: status answers meanwhile from the task files, and every task ends
right, nothing lost. (sacct unavailable, and a controller stopped gracefully,
are tested in test_slurm.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.store.state import State, TaskState, read_state

from .cluster_helpers import processes_under, wait_final
from .cluster_helpers import slurm_submit as submit
from .helpers import run, study_of_commands, task_dir, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ROOT = Path(__file__).parents[1]
STATE_DIR = Path(os.environ.get("AUTOJOB_SLURM_STATE", "/run/autojob-slurm"))


def daemon_pid(name: str) -> int:
    return int((STATE_DIR / f"{name}.pid").read_text().split()[0])


def slurm_up() -> None:
    subprocess.run([str(ROOT / "scripts" / "slurm-up.sh")], check=True, capture_output=True,
                   timeout=300)  # fmt: skip


def wait_running(paths: list[Path], timeout: float = 120) -> None:
    wait_until(
        lambda: all(read_state(p).state is State.RUNNING for p in paths),
        timeout,
        "every task to start",
        details=lambda: [read_state(p).state for p in paths],
        interval=0.3,
    )


def test_a_node_crash_ends_tasks_as_node_fail_and_resubmit_recovers_them(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    commands = {f"n{i}": "if [ -f part1 ]; then echo again; else sleep 120; fi" for i in range(2)}
    # no-requeue: SLURM would otherwise requeue the jobs of a failed node by itself
    study, _ = study_of_commands(
        tmp_path,
        commands,
        files_to_carry_over=["part1"],
        time="00:05:00",
        **{"no-requeue": True},
    )
    submit(study)
    paths = [task_dir(study, k) for k in commands]
    wait_running(paths)
    for path in paths:
        (path / "part1").write_text("carried over to the next attempt\n")
    # the node crashes: slurmd and every job process on it die at once
    os.kill(daemon_pid("slurmd"), signal.SIGKILL)
    subprocess.run(["pkill", "-KILL", "-x", "slurmstepd"], check=False)
    for pid in processes_under(study):
        os.kill(pid, signal.SIGKILL)
    subprocess.run(
        ["scontrol", "update", "nodename=localhost", "state=down", "reason=node crash (test)"],
        check=True,
    )
    try:
        assert set(wait_final(paths, timeout=300).values()) == {State.FAILED}
        status = json.loads(run("status", study, "--json", "--rescan", cwd=tmp_path).stdout)
        assert status["counts"] == {"failed": 2}
        reasons = {t.get("reason") for t in status["tasks"]}
        assert reasons == {"node_fail"}, status["tasks"]
    finally:
        slurm_up()  # slurmd again, and the node resumed
    result = run("resubmit", study, "--only", "node_fail", "--executor", "slurm", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    newest = [_newest(path) for path in paths]
    assert all(n not in paths for n in newest)
    assert set(wait_final(newest).values()) == {State.SUCCESS}
    assert all((n / SETTINGS.STDOUT_FILE).read_text() == "again\n" for n in newest)
    figures["slurm: node crash"] = {"tasks": len(paths), "seen as node_fail": 2, "recovered": 2}


def _created(path: Path) -> str:
    return str(json.loads((path / SETTINGS.TASK_METADATA_FILE).read_text())["date_created"])


def test_slurmctld_killed_mid_study_loses_nothing(tmp_path: Path, figures: dict[str, Any]) -> None:
    commands = {f"k{i}": f"sleep 6; echo done {i}" for i in range(4)}
    study, _ = study_of_commands(tmp_path, commands, files_to_carry_over=["part1"], time="00:05:00")
    submit(study)
    submitted = time.time()
    paths = [task_dir(study, k) for k in commands]
    wait_until(
        lambda: any(read_state(p).state is State.RUNNING for p in paths),
        120,
        "a task to start",
        interval=0.3,
    )
    # killed abruptly (no shutdown), once its periodic state save holds the
    # study's jobs: a controller that lost them would hand their ids to new
    # jobs while their processes still run, and drain the node (SLURM's own
    # behaviour, which no client can repair)
    wait_state_saved(after=submitted)
    os.kill(daemon_pid("slurmctld"), signal.SIGKILL)
    try:
        out = run("status", study, "--rescan", "--json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert sum(json.loads(out.stdout)["counts"].values()) == 4
    finally:
        slurm_up()
    # a controller killed before it saved its state may forget the newest jobs,
    # and their processes with them: such tasks are seen as unknown (never as
    # running forever, never as done), and resubmit runs them again
    settled = wait_settled(paths)
    forgotten = [p for p, s in settled.items() if s is State.UNKNOWN]
    assert set(settled.values()) <= {State.SUCCESS, State.UNKNOWN}, settled
    if forgotten:
        result = run("resubmit", study, "--only", "unknown", "--executor", "slurm", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    newest = [_newest(path) for path in paths]
    assert set(wait_final(newest, timeout=400).values()) == {State.SUCCESS}
    for i, path in enumerate(newest):
        assert (path / SETTINGS.STDOUT_FILE).read_text() == f"done {i}\n"
    figures["slurm: slurmctld killed"] = {
        "tasks": len(paths),
        "forgotten by the controller and rerun": len(forgotten),
        "lost": 0,
    }


def wait_state_saved(after: float, timeout: float = 60) -> None:
    """Wait until slurmctld has saved its job state since ``after``."""
    config = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, check=True
    ).stdout
    location = next(
        line.split("=", 1)[1].strip()
        for line in config.splitlines()
        if line.startswith("StateSaveLocation")
    )
    job_state = Path(location, "job_state")
    wait_until(
        lambda: job_state.exists() and job_state.stat().st_mtime > after + 0.5,
        timeout,
        f"{job_state} to be saved since the submit",
        interval=0.2,
    )


def wait_settled(paths: list[Path], timeout: float = 400) -> dict[Path, State]:
    """Wait until no task is queued or running in the scheduler's view."""
    from autojob.execution.slurm import reconcile

    seen: dict[Path, TaskState] = {}

    def settled() -> dict[Path, State] | None:
        seen.update({p: read_state(p) for p in paths})
        seen.update(reconcile(list(seen.items())))
        live = [p for p, s in seen.items() if s.state in (State.QUEUED, State.RUNNING)]
        return None if live else {p: s.state for p, s in seen.items()}

    return wait_until(
        settled,
        timeout,
        "no task to be queued or running",
        details=lambda: {p.name: s.state for p, s in seen.items()},
        interval=2,
    )


def _newest(path: Path) -> Path:
    return max((p for p in path.parent.iterdir() if p.is_dir()), key=_created)
