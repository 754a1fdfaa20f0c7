"""``autojob status --watch`` in a real terminal (tmux) while tasks run.

The view must redraw as tasks end (the counts advance), and Ctrl-C must end it
with exit status 0 and the terminal as it was: cursor shown, line editing and
echo on. tmux is Debian's package (scripts/test.sh installs it as root).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.helpers import AUTOJOB, run, study_of_commands, wait_until

TASKS = 5


def _screen(tmux: list[str]) -> str:
    shown = subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", "watch"], capture_output=True, text=True, check=False
    )
    return shown.stdout


def _done(screen: str) -> int | None:
    """Task groups done in the study's progress bar, as the view shows them."""
    found = re.search(rf"^s\s.*?(\d+)/{TASKS}\s*$", screen, re.MULTILINE)
    return int(found[1]) if found else None


def _stopped(tmux: list[str]) -> Callable[[], str | None]:
    def screen() -> str | None:
        shown = _screen(tmux)
        return shown if "EXIT=" in shown else None

    return screen


def test_watch_follows_running_tasks_and_stops_on_ctrl_c(tmp_path: Path, tmux: list[str]) -> None:
    study, _ = study_of_commands(tmp_path, {f"t{i}": "sleep 1" for i in range(TASKS)})
    submitted = run("submit", study, "-j", "1", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    watch = f"{shlex.quote(str(AUTOJOB))} status {shlex.quote(str(study))} --watch --interval 0.3"
    shell = f"{watch}; echo EXIT=$?; stty -a | tr '\\n' ' '; echo; sleep 600"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "watch", "-x", "100", "-y", "40", shell], check=True
    )
    try:
        first = wait_until(
            lambda: _done(_screen(tmux)) is not None, 30, "the view", details=lambda: _screen(tmux)
        )
        seen = _done(_screen(tmux)) or 0
        assert first
        later = wait_until(
            lambda: (n := _done(_screen(tmux))) is not None and n > seen and n,
            60,
            f"more than {seen} done",
            details=lambda: _screen(tmux),
        )
        assert later > seen
        assert "running" in _screen(tmux) or later == TASKS
        subprocess.run([*tmux, "send-keys", "-t", "watch", "C-c"], check=True)
        screen = wait_until(_stopped(tmux), 30, "the view to stop")
    finally:
        run("cancel", study, cwd=tmp_path)
    assert "EXIT=0" in screen, screen
    assert "Traceback" not in screen
    settings = screen.split("EXIT=0", 1)[1]
    assert re.search(r"(?<!-)icanon", settings) and re.search(r"(?<![-\w])echo\b", settings), (
        settings
    )
    cursor = subprocess.run(
        [*tmux, "display-message", "-p", "-t", "watch", "#{cursor_flag}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert cursor.stdout.strip() == "1"  # the cursor is shown again
