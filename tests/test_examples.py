"""Every example of every ``--help``, of the README and of docs/ runs as written.

Where examples are found, and how they are marked:

- ``--help`` texts: the lines of an ``Examples:`` section, one shell command a
  line. A section ``Example <what> (NAME):`` holds a file, written to NAME
  before the examples after it run. Each help text (``autojob --help``, each
  command of ``COMMANDS``, each subcommand) is a document of its own: its
  examples run in order in a fresh directory, so they start from nothing.
- README.md and docs/*.md: each fenced ``bash`` or ``sh`` block is an example,
  run as one script; a block (in any language) whose first line is
  ``# file: NAME`` is written to NAME before the examples after it run. Each
  document's examples run in order in a fresh directory of their own.
- An example that needs what a test machine lacks says so, visibly: a block
  whose first line is ``# needs: slurm`` (or docker, graphviz, ...), or a help
  line ending in ``# needs: ...``. One that needs ``slurm`` (or ``sge``) is
  marked so and runs on that cluster (conftest.py skips it without one, and
  fails it under CI); any other is skipped here with that reason.

Examples run in bash (``-euo pipefail``) with the installed commands first on
PATH and the local executor. ``autojob ... --watch`` runs until Ctrl-C: here
it is stopped with SIGINT after a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from autojob.cli.app import COMMANDS

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
FILE = re.compile(r"^#\s*file:\s*(\S+)\s*$")
NEEDS = re.compile(r"\s*#\s*needs:\s*(.+?)\s*$")
EXAMPLES = re.compile(r"^(\s*)Examples?:\s*$")
FILE_SECTION = re.compile(r"^(\s*)Example [\w ]+ \((\S+)\):\s*$")

#: ``autojob ... --watch`` is stopped with SIGINT after this many seconds
WATCH_SECONDS = 3

#: examples that fail until another change lands; strict: once they pass,
#: the test fails until they are un-marked here
KNOWN_FAILURES: dict[str, str] = {}

#: what an example may need that a marker gives: conftest.py skips those tests
#: without their cluster, and fails them under CI
CLUSTERS = frozenset({"slurm", "sge"})
#: what an example may need that scripts/test.sh installs (Debian packages), by the
#: command it needs: run where it is installed, skipped elsewhere, failed under CI
INSTALLED = {"graphviz": "dot"}

PRELUDE = f"""
autojob() {{
    if [[ " $* " == *" --watch "* ]]; then  # runs until Ctrl-C: stop it so
        local code=0
        timeout -s INT {WATCH_SECONDS} {shlex.quote(str(BIN / "autojob"))} "$@" || code=$?
        [ "$code" -eq 0 ] || [ "$code" -eq 124 ] || [ "$code" -eq 130 ]
    else
        {shlex.quote(str(BIN / "autojob"))} "$@"
    fi
}}
"""


@dataclass(frozen=True)
class Example:
    """One example: where it is, the script, the files written before it, what it needs."""

    document: str
    where: str
    script: str
    files: tuple[tuple[str, str], ...] = ()
    needs: str | None = None


def _block_examples(path: Path) -> list[Example]:
    name = str(path.relative_to(ROOT))
    text = path.read_text()
    found: list[Example] = []
    files: list[tuple[str, str]] = []
    for match in FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        first, _, rest = body.partition("\n")
        if target := FILE.match(first):
            files.append((target.group(1), body))
            continue
        if language not in ("bash", "sh"):
            continue
        needs = NEEDS.match(first)
        found.append(
            Example(
                name,
                f"{name}:{line}",
                rest if needs else body,
                tuple(files),
                needs.group(1) if needs else None,
            )
        )
        files = []
    return found


def _help_text(*names: str) -> str:
    result = subprocess.run(
        [str(BIN / "autojob"), *names, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    )
    return result.stdout


def _help_pages() -> list[tuple[str, str]]:
    """Each help text, ``autojob --help`` first, then each command and its subcommands."""
    pages = [("autojob", _help_text())]
    for command in COMMANDS:
        text = _help_text(command)
        pages.append((f"autojob {command}", text))
        if "\nCommands:\n" in text:
            section = text.split("\nCommands:\n", 1)[1]
            for sub in re.findall(r"^  (\S+)", section, flags=re.MULTILINE):
                pages.append((f"autojob {command} {sub}", _help_text(command, sub)))
    return pages


def _indented_after(lines: list[str], start: int, indent: str) -> list[str]:
    """The lines after ``start`` indented deeper than ``indent``, up to a blank line."""
    taken = []
    for line in lines[start + 1 :]:
        if not line.strip() or not line.startswith(indent + " "):
            break
        taken.append(line)
    width = min(len(x) - len(x.lstrip()) for x in taken) if taken else 0
    return [x[width:] for x in taken]


def _help_examples() -> list[Example]:
    found: list[Example] = []
    for page, text in _help_pages():
        files: list[tuple[str, str]] = []
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if section := FILE_SECTION.match(line):
                body = _indented_after(lines, i, section.group(1))
                files.append((section.group(2), "\n".join(body) + "\n"))
            elif section := EXAMPLES.match(line):
                for command in _indented_after(lines, i, section.group(1)):
                    needs = NEEDS.search(command)
                    script = command[: needs.start()] if needs else command
                    found.append(
                        Example(
                            f"{page} --help",
                            f"{page} --help: {script.strip()}",
                            script,
                            tuple(files),
                            needs.group(1) if needs else None,
                        )
                    )
                    files = []
    return found


def _all_examples() -> list[Example]:
    found = _help_examples()
    for path in DOCUMENTS:
        found += _block_examples(path)
    return found


ALL = _all_examples()


@dataclass
class Document:
    """A document's directory and how far its examples have run."""

    directory: Path
    done: int = 0
    results: list[subprocess.CompletedProcess[str]] = field(default_factory=list)


def _run(example: Example, cwd: Path) -> subprocess.CompletedProcess[str]:
    for name, content in example.files:
        (cwd / name).write_text(content)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", PRELUDE + example.script],
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def documents() -> Iterator[dict[str, Document]]:
    made: dict[str, Document] = {}
    yield made
    for document in made.values():  # stop what a background runner still runs
        subprocess.run(
            [str(BIN / "autojob"), "cancel", "."],
            cwd=document.directory,
            capture_output=True,
            check=False,
        )


def run_through(
    documents: dict[str, Document], tmp_path_factory: pytest.TempPathFactory, example: Example
) -> subprocess.CompletedProcess[str]:
    """Run the document's examples up to ``example`` (those before it first); its result."""
    mine = [e for e in ALL if e.document == example.document]
    document = documents.get(example.document)
    if document is None:
        slug = re.sub(r"\W+", "-", example.document)
        document = documents[example.document] = Document(tmp_path_factory.mktemp(slug))
    target = mine.index(example)
    while document.done <= target:
        earlier = mine[document.done]
        if earlier.needs is None:
            document.results.append(_run(earlier, document.directory))
        else:
            document.results.append(subprocess.CompletedProcess([], 0, "", "skipped"))
        document.done += 1
    return document.results[target]


def _param(example: Example) -> object:
    marks = []
    for text, reason in KNOWN_FAILURES.items():
        if text in example.where:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
    if example.needs in CLUSTERS:  # run on the cluster scripts/test.sh starts
        marks.append(getattr(pytest.mark, example.needs))
    return pytest.param(example, id=example.where, marks=marks)


@pytest.mark.parametrize("example", [_param(e) for e in ALL])
def test_example_runs(
    example: Example,
    documents: dict[str, Document],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if example.needs in INSTALLED and shutil.which(INSTALLED[example.needs]) is None:
        problem = f"needs {example.needs} (scripts/test.sh installs it as root)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    elif example.needs is not None and example.needs not in (CLUSTERS | INSTALLED.keys()):
        pytest.skip(f"needs {example.needs}")
    result = run_through(documents, tmp_path_factory, example)
    assert result.returncode == 0, (
        f"{example.where} failed with exit status {result.returncode}\n"
        f"--- script\n{example.script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr


def test_examples_are_found_everywhere() -> None:
    """Every help page with examples, and every document's bash blocks, are found."""
    pages = {e.document.removesuffix(" --help") for e in ALL if e.document.endswith(" --help")}
    assert {"autojob new", "autojob submit", "autojob sweep", "autojob harvest"} <= pages
    assert "autojob workflow show" in pages
    documents = {e.document for e in ALL}
    assert {"README.md", "docs/datasets.md", "docs/reliability.md"} <= documents
    assert any(e.needs == "slurm" for e in ALL)
    assert all("# needs:" not in e.script for e in ALL)


def test_readme_tour_writes_what_it_says(
    documents: dict[str, Document], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tour = next(e for e in ALL if e.document == "README.md" and "autojob list" in e.script)
    result = run_through(documents, tmp_path_factory, tour)
    assert result.returncode == 0, result.stderr
    assert "Cu-fcc" in result.stdout
    root = documents["README.md"].directory
    (task,) = (root / "screening" / "relax" / "Cu-fcc").glob("j*")
    assert "#SBATCH --time=01:00:00" in (task / "run.sh").read_text()
    inputs = json.loads((task / "inputs.json").read_text())
    assert inputs["task_inputs"]["command"] == "python calc.py --ecut 400"
