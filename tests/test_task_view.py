"""Honest waiting and counting, and a view of each task, through the installed command.

``submit --wait`` follows the automatic restarts it causes and says what Ctrl-C
does; ``status`` counts one state per task group; ``list`` shows and filters
states; ``show`` tells everything about one task; ended tasks keep when and
where they started; ``harvest --where`` compares and warns of unknown fields.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

from autojob.store.state import State, read_state

from .helpers import AUTOJOB, alive, run, study_of_commands, task_dir, wait_until

#: a command that ignores SIGTERM and says which process it is
STUBBORN = "trap '' TERM; echo $$ > cmd.pid; exec sleep 60"


def attempts(group: Path) -> list[Path]:
    return sorted(p for p in group.iterdir() if p.is_dir())


def failed_then_fixed(root: Path) -> tuple[Path, Path, Path]:
    """A study whose group 'bad' failed once and whose restart succeeded; 'ok' succeeded."""
    study, (_, bad) = study_of_commands(root, {"ok": "echo fine", "bad": "echo broken >&2; exit 3"})
    assert run("submit", study, "--wait", cwd=root).returncode == 1
    restarted = run("restart", bad, "--set", "command=echo fixed", "--submit", cwd=root)
    assert restarted.returncode == 0, restarted.stderr
    (new,) = [p for p in attempts(study / "bad") if p != bad]
    wait_until(lambda: read_state(new).state is State.SUCCESS, 60, "the restart to succeed")
    return study, bad, new


# -- waiting and counting -----------------------------------------------------


def test_submit_wait_follows_the_automatic_restart_it_causes(tmp_path: Path) -> None:
    command = "if [ -f part1 ]; then echo finished > result; else touch part1; sleep 60; fi"
    study, (first,) = study_of_commands(
        tmp_path, {"long": command}, auto_restart=True, files_to_carry_over=["part1"], time="0:04"
    )
    result = run("submit", study, "--wait", cwd=tmp_path)
    # the first attempt timed out; --wait returned only once its restart had ended
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 task(s) succeeded (after 1 automatic restart(s)" in result.stdout
    (second,) = [p for p in attempts(study / "long") if p != first]
    assert read_state(first).state is State.TIMEOUT
    assert read_state(second).state is State.SUCCESS
    assert (second / "result").read_text() == "finished\n"
    assert f"following the automatic restart {second}" in result.stderr


def test_ctrl_c_while_following_a_restart_says_it_runs_on_and_how_to_follow(
    tmp_path: Path,
) -> None:
    command = "if [ -f part1 ]; then sleep 60; else touch part1; sleep 60; fi"
    study, _ = study_of_commands(
        tmp_path, {"long": command}, auto_restart=True, files_to_carry_over=["part1"], time="0:04"
    )
    waiting = subprocess.Popen(
        [str(AUTOJOB), "submit", str(study), "--wait"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    group = study / "long"
    lines: list[str] = []
    assert waiting.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(waiting.stderr or ()), daemon=True)
    reader.start()
    try:

        def following() -> Path | None:
            said = [line for line in lines if "following the automatic restart" in line]
            return Path(said[0].split()[-1]) if said else None

        second = wait_until(following, 60, "--wait to follow the restart")
        wait_until(lambda: read_state(second).state is State.RUNNING, 60, "the restart to run")
        waiting.send_signal(signal.SIGINT)
        waiting.wait(timeout=60)
        reader.join(timeout=60)
        err = "".join(lines)
        assert waiting.returncode == 130
        assert "stopped waiting for 1 task(s) that run on without this command" in err
        assert f"follow them: autojob status --watch {group}" in err
        assert f"cancel them: autojob cancel {second}" in err
        assert read_state(second).state is State.RUNNING  # it runs on
    finally:
        waiting.kill()
        waiting.communicate()
        run("cancel", group, "--grace", "1", cwd=tmp_path)
    assert all(read_state(p).state is not State.RUNNING for p in attempts(group))


def test_status_counts_one_state_per_task_group(tmp_path: Path) -> None:
    study, _, _ = failed_then_fixed(tmp_path)
    data = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    assert data["counts"] == {"success": 2}  # the failed attempt was replaced
    assert data["attempt_counts"] == {"success": 2, "failed": 1}
    assert data["replaced_counts"] == {"failed": 1}
    table = run("status", study, cwd=tmp_path).stdout
    header = next(line for line in table.splitlines() if "study" in line and "total" in line)
    assert "failed" not in header and "attempts" in header
    assert re.search(r"│ s\s*│\s*2\s*│\s*2\s*│\s*3\s*│", table)
    assert "need attention" not in table
    assert "1 earlier attempt(s) replaced" in table and "failed 1" in table
    by_state = run("status", study, "--by", "state", cwd=tmp_path).stdout
    assert re.search(r"failed\s*│\s*0\s*│\s*1\s*│", by_state)
    assert re.search(r"success\s*│\s*2\s*│\s*2\s*│", by_state)


def test_the_first_ctrl_c_says_what_it_waits_for_and_a_second_kills(tmp_path: Path) -> None:
    # under a time limit the command runs in a session of its own (autojob run)
    _, (task,) = study_of_commands(tmp_path, {"t": STUBBORN}, auto_restart=True, time="00:05:00")
    waiting = subprocess.Popen(
        [str(AUTOJOB), "submit", str(task), "--wait"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid = 0
    try:
        pid_file = task / "cmd.pid"
        wait_until(lambda: pid_file.is_file() and pid_file.read_text(), 60, "the command")
        pid = int(pid_file.read_text())
        waiting.send_signal(signal.SIGINT)
        # the first Ctrl-C is being handled: the task is marked, SIGTERM is ignored
        wait_until((task / "autojob.cancel").exists, 30, "the cancel mark")
        assert alive(pid)
        waiting.send_signal(signal.SIGINT)
        _, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 130
        assert "Ctrl-C: cancelling the 1 task(s) not ended yet" in err
        assert "Press Ctrl-C again to kill them now" in err
        assert "Ctrl-C again: killing what is left of them now" in err
        assert not alive(pid)
        assert read_state(task).state is State.CANCELLED
    finally:
        waiting.kill()
        waiting.communicate()
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


# -- a view of each task ----------------------------------------------------------


def test_list_shows_state_run_time_exit_and_cause_and_filters(tmp_path: Path) -> None:
    study, bad, new = failed_then_fixed(tmp_path)
    rows = {
        r["rel_path"]: r
        for r in map(json.loads, run("list", study, "--json", cwd=tmp_path).stdout.splitlines())
    }
    old = rows[f"bad/{bad.name}"]
    assert (old["state"], old["exit_code"], old["host"]) == ("failed", 3, socket.gethostname())
    assert old["run_seconds"] is not None and old["run_seconds"] >= 0
    assert rows[f"bad/{new.name}"]["state"] == "success"

    def listed(*options: str) -> set[str]:
        result = run("list", study, "--json", *options, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return {json.loads(line)["rel_path"] for line in result.stdout.splitlines()}

    assert listed("--state", "failed") == {f"bad/{bad.name}"}
    assert listed("--label", "o*") == {f"ok/{task_dir(study, 'ok').name}"}
    assert listed("--failed") == set()  # the failed attempt was replaced by a success
    (new / "autojob.ended").write_text('{"time": 1, "exit_code": 1}')
    assert listed("--failed") == {f"bad/{new.name}"}
    table = run("list", study, "--state", "failed", cwd=tmp_path).stdout
    assert re.search(rf"{bad.name}\s*│\s*bad\s*│\s*failed\s*│\s*[\d.]+ s\s*│\s*3\s*│", table)


def test_show_tells_everything_about_one_task(tmp_path: Path) -> None:
    study, bad, new = failed_then_fixed(tmp_path)
    shown = run("show", bad, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"task {bad.name}" in out
    assert "failed, exit 3" in out and f"on {socket.gethostname()}" in out
    assert "echo broken >&2; exit 3" in out  # its inputs
    assert "attempts of its task group (bad)" in out
    assert f"{bad.name} (this one)" in out and new.name in out
    assert "broken" in out  # the last lines of its error output
    # by task id, from the directory above; --json for scripts
    data = json.loads(run("show", new.name, "--json", cwd=study).stdout)
    assert data["directory"] == str(new)
    assert data["state"]["state"] == "success" and data["state"]["host"] == socket.gethostname()
    assert data["state"]["started_at"] is not None and data["state"]["run_seconds"] >= 0
    assert [a["state"] for a in data["attempts"]["states"]] == ["failed", "success"]
    assert data["output"]["stdout"] == "fixed"
    assert data["inputs"]["task_inputs"]["command"] == "echo fixed"
    missing = run("show", "jNoSuchTask", cwd=study)
    assert missing.returncode == 1 and "no task directory or task id" in missing.stderr


def test_ended_tasks_keep_when_and_where_they_started(tmp_path: Path) -> None:
    study, (task,) = study_of_commands(tmp_path, {"t": "echo hi"})
    assert run("submit", study, "--wait", cwd=tmp_path).returncode == 0
    started = json.loads((task / "autojob.started").read_text())
    (entry,) = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)["tasks"]
    assert entry["state"] == "success"
    assert (entry["started_at"], entry["host"]) == (started["time"], started["host"])
    assert entry["run_seconds"] == entry["ended_at"] - entry["started_at"]
    assert run("harvest", study, "-o", tmp_path / "a.json", cwd=tmp_path).returncode == 0
    (record,) = json.loads((tmp_path / "a.json").read_text())
    assert (record["state"]["started_at"], record["state"]["host"]) == (
        started["time"],
        started["host"],
    )


def test_harvest_where_compares_and_warns_of_a_field_no_task_has(tmp_path: Path) -> None:
    values = {"a": (-3.7, True), "b": (-3.2, False), "c": (-4.1, True)}
    study, _ = study_of_commands(
        tmp_path,
        {
            label: f'echo \'{{"energy": {e}, "converged": {str(c).lower()}}}\' > outputs.json'
            for label, (e, c) in values.items()
        },
    )
    assert run("submit", study, "--wait", cwd=tmp_path).returncode == 0

    def kept(*where: str) -> tuple[set[str], str]:
        args = [x for w in where for x in ("--where", w)]
        result = run("harvest", study, "-o", tmp_path / "a.json", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        records = json.loads((tmp_path / "a.json").read_text())
        return {r["metadata"]["label"] for r in records}, result.stderr

    assert kept("outputs.energy<-3.5")[0] == {"a", "c"}
    assert kept("energy>=-3.7", "converged=true")[0] == {"a"}
    assert kept("label!=b")[0] == {"a", "c"}
    assert kept("label~[ab]")[0] == {"a", "b"}
    labels, err = kept("outputs.convergd=true")
    assert labels == set()
    assert "warning: --where outputs.convergd=true: no task has the field" in err
    assert "did you mean outputs.converged" in err
    assert "warning" not in kept("outputs.converged=true")[1]
    refused = run("harvest", study, "--where", "energy!-3", cwd=tmp_path)
    assert refused.returncode == 1 and "FIELD!=VALUE" in refused.stderr
