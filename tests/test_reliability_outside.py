"""Never outside, never twice: paths, names and ids that cannot be fooled.

Each case is built with real files in ``tmp_path``: symbolic links leaving a
task, settings and labels that take names autojob reserves, harvests killed
with SIGTERM, task directories copied or moved by hand. The counts go to the
reliability figures (paths escaped, temporary files left, duplicates found
against duplicates made).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.errors import ConfigError, UnsafePathError
from autojob.settings import STAGING_PREFIX, load_settings
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


# -- reserved names as labels ------------------------------------------------------


RESERVED_LABELS = [
    ".autojob",
    ".autojob-old",
    "autojob.history",
    "autojob.history-2",
    ".autojob-staging-x",
    "task.json",
    "inputs.json",
    "task_group.json",
    "study.json",
    "autojob.ended",
    ".study.json.lock",
]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    result = run("new", "--type", "study", "--name-template", "s", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "s"


@pytest.mark.parametrize("label", RESERVED_LABELS)
def test_a_reserved_name_from_a_label_is_refused_before_anything_is_written(
    study: Path, label: str
) -> None:
    before = snapshot(study.parent)
    for kind, dest in (("task_group", study), ("study", study.parent), ("task", study.parent)):
        result = run(
            *("new", "--type", kind, "--dest", dest, "--label", label),
            *("--name-template", "{label}"),
            cwd=study.parent,
        )
        assert result.returncode == 1, result.stdout
        assert "a name autojob reserves" in result.stderr
        assert "field 'label'" in result.stderr and "hint: choose another label" in result.stderr
        assert "Traceback" not in result.stderr
        assert snapshot(study.parent) == before
        _count("settings and names", "refused")


def test_a_reserved_group_name_cannot_hide_tasks_from_status(study: Path) -> None:
    ok = run(*("new", "--type", "task_group", "--dest", study, "--label", "g"), cwd=study.parent)
    assert ok.returncode == 0, ok.stderr
    refused = run(
        *("new", "--type", "task_group", "--dest", study, "--label", ".autojob"),
        *("--name-template", "{label}"),
        cwd=study.parent,
    )
    assert refused.returncode == 1
    status = run("status", "--json", study, cwd=study.parent)
    assert status.returncode == 0, status.stderr
    assert len(json.loads(status.stdout)["tasks"]) == 1
    study_file = json.loads((study / SETTINGS.STUDY_METADATA_FILE).read_text())
    assert len(study_file["task_groups"]) == 1


def test_reserved_names_from_python_templates_are_refused(tmp_path: Path) -> None:
    from autojob.study import Study
    from autojob.study_group import StudyGroup

    for name in ("autojob.history", "record.txt"):
        group = StudyGroup(name=name, studies=[Study(name="s", tasks=[Task()])])
        with pytest.raises(UnsafePathError, match="a name autojob reserves") as info:
            group.to_directory(tmp_path, study_group_template="{name}")
        assert info.value.field == "name"
        with pytest.raises(UnsafePathError, match="a name autojob reserves"):
            StudyGroup(name="sg", studies=[Study(name=name, tasks=[Task()])]).to_directory(
                tmp_path, study_group_template="sg", study_template="{name}"
            )
        _count("settings and names", "refused", 2)
    assert os.listdir(tmp_path) == []


def test_a_destination_inside_a_reserved_directory_is_refused(study: Path) -> None:
    index = study / SETTINGS.INDEX_DIR
    index.mkdir()
    result = run("new", "--type", "task", "--dest", index, cwd=study.parent)
    assert result.returncode == 1
    assert "field '--dest'" in result.stderr and "skip" in result.stderr
    assert os.listdir(index) == []
    _count("settings and names", "refused")


def test_a_task_script_named_like_autojobs_files_is_refused(tmp_path: Path) -> None:
    result = run("new", "--type", "task", "--set", "task_script=inputs.json", cwd=tmp_path)
    assert result.returncode == 1
    assert "task_inputs.task_script 'inputs.json' is a name autojob reserves" in result.stderr
    assert STAGING_PREFIX not in result.stderr
    assert os.listdir(tmp_path) == []
    _count("settings and names", "refused")


# -- figures ---------------------------------------------------------------------


def test_report_figures(figures: dict[str, Any]) -> None:
    for family, values in sorted(COUNTS.items()):
        figures[f"outside: {family}"] = dict(values)
