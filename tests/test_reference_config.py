"""A configuration file of python-autojob 0.0.2 (its ``[tool.autojob]`` table)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from autojob.settings import load_settings

from .helpers import run

REFERENCE_CONFIG = """\
[tool.autojob]
INPUT_ATOMS_FILE = "start.traj"
SCHEDULER = "slurm"
LOG_LEVEL = 10
STRICT_MODE = false
VASP_KEEP_DOS = true
"""


def test_its_settings_are_read_where_they_exist_and_warned_about_where_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(REFERENCE_CONFIG)
    monkeypatch.setenv("AUTOJOB_CONFIG_FILE", str(config))
    with caplog.at_level(logging.WARNING):
        settings = load_settings()
    assert settings.INPUT_ATOMS_FILE == "start.traj"
    assert settings.DEFAULT_EXECUTOR == "slurm"  # its SCHEDULER
    assert settings.STRICT_MODE is False
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "LOG_LEVEL" in warned and "VASP_KEEP_DOS" in warned and str(config) in warned


def test_it_never_makes_a_command_fail(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(REFERENCE_CONFIG.replace('"slurm"', '"local"'))
    made = run(
        "new", "--label", "x", "--set", "command=true", cwd=tmp_path,
        env={"AUTOJOB_CONFIG_FILE": str(config)},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "LOG_LEVEL" in made.stderr
