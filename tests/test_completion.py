"""``autojob completion``: the scripts, sourced in real shells, complete commands and values.

bash, zsh and fish are Debian's packages (scripts/test.sh installs zsh and fish
as root); a test of a shell that is missing is skipped, saying so, outside CI
and fails under CI.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autojob.cli.options import EXECUTOR_ENTRY_POINTS
from autojob.execution.executor import EXECUTOR_GROUP, available_executors

from .helpers import run, wait_until

BIN = Path(sys.executable).parent

#: completes the words given (the last one may be empty: TAB after a space) as
#: bash does on TAB: fill COMP_WORDS and COMP_CWORD, call the function the
#: script registered for autojob, print COMPREPLY one a line
COMPLETE = """
source <(autojob completion bash)
spec=$(complete -p autojob)
function=$(sed -E 's/.* -F ([^ ]+) .*/\\1/' <<< "$spec")
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMPREPLY=()
"$function" autojob
printf '%s\\n' "${{COMPREPLY[@]}}"
"""


def in_shell(command: list[str], cwd: Path) -> str:
    """What ``command`` (a shell given a script) prints, autojob on its PATH."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def complete(line: str, cwd: Path) -> list[str]:
    """What bash offers on TAB at the end of ``line``, with the sourced script."""
    words = [shlex.quote(w) for w in line.split(" ")]
    shown = in_shell(["bash", "-c", COMPLETE.format(words=" ".join(words))], cwd)
    return [w for w in shown.splitlines() if w]


class Prompt:
    """An interactive shell in tmux (started by ``command`` in ``cwd``), typed at."""

    def __init__(self, tmux: list[str], command: str, cwd: Path) -> None:
        self.tmux = tmux
        session = [*tmux, "new-session", "-d", "-s", "tab", "-x", "150", "-y", "10"]
        subprocess.run([*session, "-c", str(cwd), command], check=True)

    def shown(self) -> str:
        """The screen now."""
        return subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", "tab"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def wait(self, expected: str) -> None:
        """Wait until ``expected`` is on the screen."""
        wait_until(lambda: expected in self.shown(), 30, repr(expected), details=self.shown)

    def typed(self, keys: str, expected: str) -> str:
        """Type ``keys`` and TAB, wait for ``expected``; the screen then; clear the line."""
        subprocess.run([*self.tmux, "send-keys", "-t", "tab", keys, "Tab"], check=True)
        self.wait(expected)
        screen = self.shown()
        subprocess.run([*self.tmux, "send-keys", "-t", "tab", "C-u"], check=True)
        return screen


def test_bash_completes_a_command(tmp_path: Path) -> None:
    assert complete("autojob sub", tmp_path) == ["submit"]
    assert "completion" in complete("autojob ", tmp_path)


def test_bash_completes_executors_states_and_formats(tmp_path: Path) -> None:
    executors = complete("autojob submit --executor ", tmp_path)
    assert executors == sorted(available_executors())
    assert {"local", "slurm", "sge"} <= set(executors)
    assert complete("autojob submit --executor sl", tmp_path) == ["slurm"]
    assert complete("autojob list --state f", tmp_path) == ["failed"]
    assert complete("autojob harvest -f json", tmp_path) == ["json", "jsonl"]
    assert complete("autojob submit --dry", tmp_path) == ["--dry-run"]


def test_bash_completes_paths_in_a_terminal(tmp_path: Path, tmux: list[str]) -> None:
    """Paths complete as bash completes them (directories for PATH, files for --output).

    Click leaves these to bash's own completion (``compopt``), which only runs
    at a prompt: an interactive bash in tmux, typing TAB.
    """
    (tmp_path / "studies-here").mkdir()
    (tmp_path / "report-notes.txt").write_text("")
    rc = tmp_path / "rc.bash"
    rc.write_text(
        f"PATH={shlex.quote(str(BIN))}:$PATH\nPS1='ready$ '\nsource <(autojob completion bash)\n"
    )
    prompt = Prompt(tmux, f"bash --noprofile --rcfile {shlex.quote(str(rc))} -i", tmp_path)
    prompt.wait("ready$")
    prompt.typed("autojob status stud", "ready$ autojob status studies-here/")
    prompt.typed("autojob report . -o report-n", "ready$ autojob report . -o report-notes.txt")


def test_completing_executors_names_the_group_executors_use() -> None:
    assert EXECUTOR_ENTRY_POINTS == EXECUTOR_GROUP


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("zsh", "#compdef autojob"), ("fish", "complete --no-files --command autojob")],
)
def test_scripts_for_zsh_and_fish(tmp_path: Path, shell: str, marker: str) -> None:
    result = run("completion", shell, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    assert "_AUTOJOB_COMPLETE" in result.stdout
    if shutil.which(shell):  # the shell parses it
        check = ["zsh", "-n"] if shell == "zsh" else ["fish", "--no-execute"]
        parsed = subprocess.run(
            check, input=result.stdout, text=True, capture_output=True, check=False
        )
        assert parsed.returncode == 0, parsed.stderr


def _shell(name: str) -> str:
    """The path of the shell ``name``: skip (fail under CI) where it is not installed."""
    found = shutil.which(name)
    if found is None:
        problem = f"{name} is not installed (scripts/test.sh installs it as root)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return found


def test_fish_completes_commands_and_executors(tmp_path: Path) -> None:
    """The fish script, sourced in fish, answers ``complete -C`` (what TAB shows)."""
    fish = _shell("fish")
    script = (
        "autojob completion fish | source\n"
        "complete -C 'autojob sub'; echo ---; complete -C 'autojob submit --executor '"
    )
    commands, executors = in_shell([fish, "--no-config", "-c", script], tmp_path).split("---\n")
    assert [line.split("\t")[0] for line in commands.splitlines()] == ["submit"]
    shown = [line.split("\t")[0] for line in executors.splitlines()]
    assert shown == sorted(available_executors()) and {"local", "slurm", "sge"} <= set(shown)


def test_zsh_completes_commands_and_executors_in_a_terminal(
    tmp_path: Path, tmux: list[str]
) -> None:
    """The zsh script, sourced in an interactive zsh (compinit) in tmux, completes on TAB."""
    zsh = _shell("zsh")
    (tmp_path / ".zshrc").write_text(
        f"PATH={shlex.quote(str(BIN))}:$PATH\nPS1='ready%% '\n"
        'autoload -Uz compinit && compinit -u -D\neval "$(autojob completion zsh)"\n'
    )
    prompt = Prompt(
        tmux, f"env ZDOTDIR={shlex.quote(str(tmp_path))} {shlex.quote(zsh)} -i", tmp_path
    )
    prompt.wait("ready%")
    prompt.typed("autojob sub", "ready% autojob submit")
    executors = sorted(available_executors())
    screen = prompt.typed("autojob submit --executor ", executors[-1])  # listed below the line
    listed = screen.split("--executor", 1)[1].split()
    assert listed == executors, screen
    prompt.typed("autojob submit --executor sl", "ready% autojob submit --executor slurm")


def test_an_unknown_shell_is_refused(tmp_path: Path) -> None:
    result = run("completion", "tcsh", cwd=tmp_path)
    assert result.returncode == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr
