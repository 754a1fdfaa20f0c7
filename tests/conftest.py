"""Shared fixtures: every test runs with a private configuration."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# the helper modules assert too: pytest explains their failed asserts as it does
# those of the test modules (registered before they are first imported)
pytest.register_assert_rewrite(
    "tests.helpers",
    "tests.datasets_helpers",
    "tests.harvest_helpers",
    "tests.interop_helpers",
    "tests.cluster_helpers",
    "tests.pilot_helpers",
    "tests.workflow_helpers",
)

from autojob import SETTINGS  # noqa: E402
from tests.interop_helpers import install_reference, write_reference_trees  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point the config file at a path that does not exist; restore SETTINGS."""
    config = tmp_path_factory.mktemp("config") / "config.toml"
    monkeypatch.setenv("AUTOJOB_CONFIG_FILE", str(config))
    saved = SETTINGS.model_dump()
    yield
    for key, value in saved.items():
        if getattr(SETTINGS, key) != value:
            setattr(SETTINGS, key, value)


# --- the reference implementation, for the tests marked interop ---


@pytest.fixture(scope="session")
def reference_python(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """A Python interpreter whose ``autojob`` is python-autojob 0.0.2."""
    return install_reference(tmp_path_factory, pytestconfig)


@pytest.fixture(scope="module")
def reference_trees(
    reference_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Trees written by python-autojob, and its summary of what it wrote."""
    return write_reference_trees(reference_python, tmp_path_factory)


# --- tests marked slurm / sge run on the clusters that scripts/*-up.sh start ---

NO_SLURM = "no SLURM cluster: run scripts/slurm-up.sh"
NO_SGE = "no Grid Engine cluster: run scripts/sge-up.sh"


def _command_problem(command: list[str]) -> str | None:
    """Why COMMAND cannot ask the cluster; None when it answers."""
    if shutil.which(command[0]) is None:
        return f"{command[0]} is not installed"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return f"{command[0]} did not answer within 30 s"
    if result.returncode != 0:
        return f"{command[0]} failed: {result.stderr.strip()}"
    return None


@functools.cache
def _slurm_problem() -> str | None:
    """Why the SLURM cluster cannot be used; None when ``sinfo`` answers."""
    return _command_problem(["sinfo", "--noheader", "--format=%P"])


@functools.cache
def _sge_problem() -> str | None:
    """Why the Grid Engine cluster cannot be used; None when it has an execution host."""
    return _command_problem(["qconf", "-sel"])


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip slurm- and sge-marked tests without their cluster; in CI (``CI`` set), fail them."""
    for marker, problem_of, hint in (
        ("slurm", _slurm_problem, NO_SLURM),
        ("sge", _sge_problem, NO_SGE),
    ):
        if item.get_closest_marker(marker) is None or (problem := problem_of()) is None:
            continue
        if os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}:
            pytest.fail(f"CI needs the {marker} cluster ({problem}): {hint}", pytrace=False)
        pytest.skip(f"{hint} ({problem})")


# --- a real terminal ---


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    """A tmux server of this test's own (its own socket), killed afterwards.

    tmux is Debian's package (scripts/test.sh installs it as root).
    """
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed (scripts/test.sh installs it as root)")
        pytest.skip("tmux is not installed (scripts/test.sh installs it as root)")
    command = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    try:
        yield command
    finally:
        subprocess.run([*command, "kill-server"], capture_output=True, check=False)


# --- figures of the reliability suite (docs/reliability.md) ---

#: what each reliability test family tried and found, filled in by the tests
FIGURES: dict[str, dict[str, int | float | str]] = {}


@pytest.fixture
def figures() -> dict[str, dict[str, int | float | str]]:
    """The reliability figures of this session, by family."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reliability figures; write them as JSON where asked to."""
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for family, values in sorted(FIGURES.items()):
        shown = ", ".join(f"{k} {v}" for k, v in values.items())
        terminalreporter.write_line(f"{family}: {shown}")
    target = os.environ.get("AUTOJOB_RELIABILITY_FIGURES")
    if target:
        import json

        with open(target, "w", encoding="utf-8") as stream:
            json.dump(FIGURES, stream, indent=2, sort_keys=True)
