"""Never outside, never twice: paths, names and ids that cannot be fooled.

Each case is built with real files in ``tmp_path``: symbolic links leaving a
task, settings and labels that take names autojob reserves, harvests killed
with SIGTERM, task directories copied or moved by hand. The counts go to the
reliability figures (paths escaped, temporary files left, duplicates found
against duplicates made).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.errors import ConfigError
from autojob.settings import load_settings
from autojob.tasks.task import Task, TaskInputs

from .helpers import run, snapshot

#: what the tests below tried and found, by family (reported last)
COUNTS: dict[str, dict[str, int]] = {}


def _count(family: str, key: str, n: int = 1) -> None:
    values = COUNTS.setdefault(family, {})
    values[key] = values.get(key, 0) + n


def _task(root: Path, **inputs: Any) -> Path:
    from autojob.next import create_task_tree

    task = Task(task_inputs=TaskInputs(auto_restart=False, **inputs))
    return create_task_tree(task, root)


# -- settings that collide -------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "fields"),
    [
        ({"AUTOJOB_STDOUT_FILE": "inputs.json"}, ("INPUTS_FILE", "STDOUT_FILE")),
        ({"AUTOJOB_STDERR_FILE": "autojob.out"}, ("STDOUT_FILE", "STDERR_FILE")),
        ({"AUTOJOB_HISTORY_DIR": ".autojob"}, ("HISTORY_DIR", "INDEX_DIR")),
        (
            {"AUTOJOB_TASK_METADATA_FILE": "meta.json", "AUTOJOB_INPUTS_FILE": "meta.json"},
            ("TASK_METADATA_FILE", "INPUTS_FILE"),
        ),
        ({"AUTOJOB_INPUTS_FILE": ".autojob-staging-x"}, ("INPUTS_FILE",)),
    ],
)
def test_colliding_file_name_settings_are_refused_and_nothing_is_written(
    tmp_path: Path, env: dict[str, str], fields: tuple[str, ...]
) -> None:
    task_dir = _task(tmp_path, command="echo ran")
    before = snapshot(tmp_path)
    for command in (("submit", "--wait", "."), ("new", "--type", "task"), ("status", ".")):
        result = run(*command, cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        for field in fields:
            assert field in result.stderr
        assert any(f"AUTOJOB_{f}" in result.stderr for f in fields)
        assert "hint: give" in result.stderr
        _count("settings and names", "refused")
    assert snapshot(tmp_path) == before
    assert (task_dir / SETTINGS.INPUTS_FILE).is_file()


def test_a_collision_from_the_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[autojob]\nSTDERR_FILE = "task.json"\n')
    result = run("new", "--type", "task", cwd=tmp_path, env={"AUTOJOB_CONFIG_FILE": str(config)})
    assert result.returncode == 2
    assert "TASK_METADATA_FILE and STDERR_FILE" in result.stderr
    assert "configuration file" in result.stderr and str(config) in result.stderr
    assert os.listdir(tmp_path) == ["config.toml"]
    _count("settings and names", "refused")


def test_a_colliding_assignment_is_refused_and_leaves_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match=r"INPUTS_FILE and STDOUT_FILE are both 'inputs\.json'"):
        SETTINGS.STDOUT_FILE = "inputs.json"
    assert SETTINGS.STDOUT_FILE == "autojob.out"
    monkeypatch.setenv("AUTOJOB_ENDED_FILE", "autojob.started")
    with pytest.raises(ConfigError, match="STARTED_FILE and ENDED_FILE") as info:
        load_settings()
    assert info.value.field == "ENDED_FILE"
    assert "AUTOJOB_ENDED_FILE" in str(info.value)


def test_the_legacy_spelling_may_be_the_parameterization_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTOJOB_PARAMETERIZATION_FILE", "parametrizations.json")
    assert load_settings().PARAMETERIZATION_FILE == "parametrizations.json"


# -- figures ---------------------------------------------------------------------


def test_report_figures(figures: dict[str, Any]) -> None:
    for family, values in sorted(COUNTS.items()):
        figures[f"outside: {family}"] = dict(values)
