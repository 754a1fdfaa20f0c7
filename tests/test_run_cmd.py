"""``autojob run``: real commands under real time limits, real signals.

The timing bounds are deliberately loose: a command that would sleep 60 s must be
stopped well before that, nothing more precise is asserted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from autojob.errors import InputError
from autojob.execution.timelimit import run_seconds, run_with_time_limit

from .helpers import AUTOJOB, alive, run, wait_until

FORMS = "'days-hours:minutes:seconds'"


def timed(*args: str | Path, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    result = run(*args, cwd=cwd)
    return result, time.monotonic() - start


def wait_for(path: Path, timeout: float = 30.0) -> None:
    wait_until(path.exists, timeout, f"{path} to appear", interval=0.02)


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


# -- the buffer ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "buffer", "seconds"),
    [
        (timedelta(hours=1), 0.05, 3420.0),  # a fraction: 5 % kept in reserve
        (timedelta(hours=1), 0.0, 3600.0),
        (timedelta(hours=1), 0.9, 360.0),
        (timedelta(hours=1), 1.0, 3599.0),  # from 1 on: seconds
        (timedelta(hours=1), 300.0, 3300.0),
        (timedelta(seconds=2), 0.5, 1.0),
        (None, 0.5, None),
        (None, 1e9, None),
    ],
)
def test_buffer_is_a_fraction_below_one_and_seconds_from_one_on(
    limit: timedelta | None, buffer: float, seconds: float | None
) -> None:
    assert run_seconds(limit, buffer) == pytest.approx(seconds)


@pytest.mark.parametrize("buffer", [-0.1, -5.0, float("nan"), float("inf")])
def test_negative_or_non_numeric_buffers_are_refused(buffer: float) -> None:
    with pytest.raises(InputError) as info:
        run_seconds(timedelta(hours=1), buffer)
    assert info.value.field == "buffer"
    assert info.value.hint


@pytest.mark.parametrize(
    ("limit", "buffer"),
    [(timedelta(seconds=10), 10.0), (timedelta(seconds=10), 60.0), (timedelta(0), 0.05)],
)
def test_a_buffer_that_uses_up_the_limit_is_refused(limit: timedelta, buffer: float) -> None:
    with pytest.raises(InputError, match="leaves no time"):
        run_seconds(limit, buffer)


# -- the library function, in process -------------------------------------------


def test_the_exit_code_comes_back_and_handlers_are_restored() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    code = run_with_time_limit(["sh", "-c", "exit 3"], limit=timedelta(minutes=1), buffer=0.05)
    assert code == 3
    assert before == {s: signal.getsignal(s) for s in before}


def test_no_time_is_left_before_anything_starts(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(InputError, match="buffer"):
        run_with_time_limit(["touch", str(marker)], limit=timedelta(seconds=5), buffer=5)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("command", "grace", "field"),
    [([], 1.0, "command"), ("sleep 1", 1.0, "command"), (["true"], -1.0, "grace")],
)
def test_bad_arguments_are_input_errors(command: list[str], grace: float, field: str) -> None:
    with pytest.raises(InputError) as info:
        run_with_time_limit(command, limit=None, buffer=0.05, grace=grace)
    assert info.value.field == field


def test_it_runs_in_a_thread_without_forwarding() -> None:
    import threading

    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            run_with_time_limit(["sh", "-c", "exit 4"], limit=None, buffer=0)
        )
    )
    thread.start()
    thread.join(30)
    assert codes == [4]


# -- autojob run: exit codes ----------------------------------------------------


@pytest.mark.parametrize("code", [0, 3])
def test_a_command_that_finishes_in_time_gives_its_exit_code(tmp_path: Path, code: int) -> None:
    result = run("run", "--time-limit", "1:00", "sh", "-c", f"exit {code}", cwd=tmp_path)
    assert result.returncode == code, result.stderr
    no_traceback(result)


def test_the_command_keeps_its_output_and_its_own_options(tmp_path: Path) -> None:
    result = run(
        "run", "-b", "0.1", "sh", "-c", 'echo "$@"', "sh", "-b", "--help", "-t", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "-b --help -t\n"


def test_options_after_a_double_dash_go_to_the_command(tmp_path: Path) -> None:
    result = run("run", "--time-limit", "5", "--", sys.executable, "-c",
                 "import sys; print(sys.argv[1:])", "--x", "1", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['--x', '1']"


def test_a_single_argument_with_spaces_is_split_like_a_shell(tmp_path: Path) -> None:
    result = run("run", "--time-limit", "5", "sh -c 'echo \"a  b\"; exit 5'", cwd=tmp_path)
    assert result.returncode == 5, result.stderr
    assert result.stdout == "a  b\n"


def test_a_command_killed_by_a_signal_gives_128_plus_n(tmp_path: Path) -> None:
    result = run("run", "sh", "-c", "kill -USR1 $$", cwd=tmp_path)
    assert result.returncode == 128 + signal.SIGUSR1
    no_traceback(result)


def test_a_command_that_is_not_found_gives_127(tmp_path: Path) -> None:
    result = run("run", "--time-limit", "5", "no-such-command-xyz", "--flag", cwd=tmp_path)
    assert result.returncode == 127
    assert "no-such-command-xyz: command not found" in result.stderr
    no_traceback(result)


def test_a_command_that_cannot_be_executed_gives_126(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("not a program\n")
    result = run("run", "./data.txt", cwd=tmp_path)
    assert result.returncode == 126
    assert "./data.txt: cannot run it" in result.stderr
    no_traceback(result)


# -- autojob run: time limits ---------------------------------------------------


def test_a_command_past_its_limit_is_stopped_with_124(tmp_path: Path) -> None:
    result, took = timed(
        "run", "--time-limit", "0:02", "--buffer", "0.5", "sleep", "60", cwd=tmp_path
    )
    assert result.returncode == 124, result.stderr
    assert took < 20
    assert "time limit reached" in result.stderr
    no_traceback(result)


def test_a_buffer_in_seconds_shortens_the_limit(tmp_path: Path) -> None:
    # 60 s less 58 s: stopped after about 2 s, long before the 60 s limit
    result, took = timed("run", "--time-limit", "1", "--buffer", "58", "sleep", "60", cwd=tmp_path)
    assert result.returncode == 124, result.stderr
    assert took < 30


def test_the_limit_comes_from_the_time_source_script(tmp_path: Path) -> None:
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/bash\n#SBATCH --job-name=x\n#SBATCH --time=00:00:02\n\nsleep 60\n")
    result, took = timed("run", "-t", job, "-b", "0.5", "sleep", "60", cwd=tmp_path)
    assert result.returncode == 124, result.stderr
    assert took < 20


def test_the_task_script_in_the_current_directory_is_the_default_source(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/bash\n#SBATCH --time=00:00:02\n")
    result, took = timed("run", "-b", "0.5", "sleep", "60", cwd=tmp_path)
    assert result.returncode == 124, result.stderr
    assert took < 20


def test_the_limit_of_a_time_source_is_what_the_script_allows(tmp_path: Path) -> None:
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/bash\n#SBATCH --time=10\n")  # 10 minutes: 600 s
    result = run("run", "-t", job, "sh", "-c", "exit 0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # a buffer of 600 s leaves nothing of a limit of 600 s or less
    refused = run("run", "-t", job, "-b", "600", "touch", "ran", cwd=tmp_path)
    assert refused.returncode == 1 and "leaves no time" in refused.stderr, refused.stderr
    assert not (tmp_path / "ran").exists()
    # a buffer of 598 s leaves 2 s of a limit of 600 s: the command is stopped then
    result, took = timed("run", "-t", job, "-b", "598", "sleep", "60", cwd=tmp_path)
    assert result.returncode == 124, result.stderr
    assert took < 20


def test_without_any_source_there_is_no_limit(tmp_path: Path) -> None:
    result = run("run", "-b", "0.99", "sh", "-c", "sleep 1; exit 6", cwd=tmp_path)
    assert result.returncode == 6, result.stderr


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    child = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open('pid', 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    result, took = timed(
        "run", "--time-limit", "0:02", "-b", "0.5", "--grace", "1", sys.executable, "-c", child,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 124, result.stderr
    assert took < 30
    assert "sending SIGKILL" in result.stderr
    assert not alive(int((tmp_path / "pid").read_text()))


def test_what_the_command_started_is_stopped_with_it(tmp_path: Path) -> None:
    script = "sleep 60 & echo $! > pid; wait"
    result = run("run", "--time-limit", "0:02", "-b", "0.5", "sh", "-c", script, cwd=tmp_path)
    assert result.returncode == 124, result.stderr
    pid = int((tmp_path / "pid").read_text())
    wait_until(lambda: not alive(pid), 10, f"what the command started (pid {pid}) to end")


# -- autojob run: signals -------------------------------------------------------


@pytest.mark.parametrize("name", ["TERM", "INT", "HUP", "USR1", "USR2"])
def test_signals_to_autojob_are_forwarded_to_the_command(tmp_path: Path, name: str) -> None:
    # the sleeper is started before 'started' exists, so the signal reaches it too
    # (a shell's background jobs ignore SIGINT, so that one outlives the shell)
    script = (
        f'trap "touch forwarded; exit 7" {name}; '
        "sleep 60 & echo $! > sleeper; touch started; wait $!"
    )
    with (tmp_path / "stderr").open("w") as stderr:
        proc = subprocess.Popen(
            [AUTOJOB, "run", "--time-limit", "5:00", "sh", "-c", script],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_for(tmp_path / "started")
        proc.send_signal(getattr(signal, f"SIG{name}"))
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
        sleeper = int((tmp_path / "sleeper").read_text())
        if alive(sleeper):
            os.kill(sleeper, signal.SIGKILL)
    assert (tmp_path / "forwarded").exists()
    assert code == 7, (tmp_path / "stderr").read_text()
    assert "Traceback" not in (tmp_path / "stderr").read_text()


# -- autojob run: mistakes -------------------------------------------------------


def test_a_bad_time_limit_names_the_value_and_the_forms(tmp_path: Path) -> None:
    result = run("run", "--time-limit", "25:61:00", "true", cwd=tmp_path)
    assert result.returncode == 1
    assert "'25:61:00'" in result.stderr
    assert "--time-limit" in result.stderr
    assert FORMS in result.stderr
    no_traceback(result)


def test_time_limit_and_time_source_together_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#SBATCH --time=5\n")
    result = run("run", "--time-limit", "5", "-t", "run.sh", "true", cwd=tmp_path)
    assert result.returncode == 2
    assert "not both" in result.stderr
    no_traceback(result)


def test_a_missing_time_source_is_a_usage_error(tmp_path: Path) -> None:
    result = run("run", "-t", "nope.sh", "true", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.sh" in result.stderr


def test_a_bad_time_line_in_the_source_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text("#SBATCH --time=1:99\n")
    result = run("run", "-t", "job.sh", "true", cwd=tmp_path)
    assert result.returncode == 1
    assert "job.sh" in result.stderr
    assert "'1:99'" in result.stderr
    no_traceback(result)


@pytest.mark.parametrize("buffer", ["--buffer=-1", "--buffer=10"])
def test_a_bad_buffer_is_refused_before_running(tmp_path: Path, buffer: str) -> None:
    result = run("run", "--time-limit", "0:05", buffer, "touch", "ran", cwd=tmp_path)
    assert result.returncode == 1
    assert "buffer" in result.stderr
    assert not (tmp_path / "ran").exists()
    no_traceback(result)


def test_a_misspelt_option_is_not_run_as_the_command(tmp_path: Path) -> None:
    result = run("run", "--bufer", "0.1", "true", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such option: --bufer" in result.stderr


def test_a_command_is_required(tmp_path: Path) -> None:
    result = run("run", "--time-limit", "5", cwd=tmp_path)
    assert result.returncode == 2
    assert "COMMAND" in result.stderr


def test_unbalanced_quotes_are_an_input_error(tmp_path: Path) -> None:
    result = run("run", "sh -c 'exit 1", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot split the command" in result.stderr
    no_traceback(result)


def test_help_shows_an_example(tmp_path: Path) -> None:
    result = run("run", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: autojob run [OPTIONS] COMMAND...")
    for text in ("--time-limit", "--time-source", "--buffer", "--grace", "autojob run -t run.sh"):
        assert text in result.stdout
