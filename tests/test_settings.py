"""Settings: AUTOJOB_ environment variables, the TOML file, and bad values.

The conftest points ``AUTOJOB_CONFIG_FILE`` at a file that does not exist and
restores ``autojob.SETTINGS`` after each test; subprocesses inherit that
environment, so each test states its own configuration.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.errors import AutojobError, ConfigError
from autojob.next import create_task_tree
from autojob.settings import AutojobSettings, config_file_path, load_settings
from autojob.tasks.task import Task, TaskInputs

from .helpers import run

FILE_FIELDS = sorted(name for name in AutojobSettings.model_fields if name.endswith("_FILE"))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No AUTOJOB_ variable but the conftest's (missing) config file."""
    for key in list(os.environ):
        if key.upper().startswith("AUTOJOB_") and key.upper() != "AUTOJOB_CONFIG_FILE":
            monkeypatch.delenv(key)
    return monkeypatch


# -- defaults ----------------------------------------------------------------


def test_defaults_are_the_documented_file_names(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.STUDY_GROUP_METADATA_FILE == "study_group.json"
    assert settings.STUDY_METADATA_FILE == "study.json"
    assert settings.TASK_GROUP_METADATA_FILE == "task_group.json"
    assert settings.TASK_METADATA_FILE == "task.json"
    assert settings.INPUTS_FILE == "inputs.json"
    assert settings.DEFAULT_TASK_SCRIPT_FILE == "run.sh"
    assert settings.STRICT_MODE is True
    assert settings.LEGACY_MODE is True


def test_config_file_path(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(tmp_path / "x.toml"))
    assert config_file_path() == tmp_path / "x.toml"
    clean_env.delenv("AUTOJOB_CONFIG_FILE")
    clean_env.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_file_path() == tmp_path / "xdg" / "autojob" / "config.toml"


# -- environment variables -----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("TASK_METADATA_FILE", "meta.json"),
        ("INPUTS_FILE", "params.json"),
        ("TASK_GROUP_METADATA_FILE", "group.json"),
        ("DEFAULT_TASK_SCRIPT_FILE", "job.sh"),
    ],
)
def test_environment_variable_sets_a_file_name(
    clean_env: pytest.MonkeyPatch, field: str, value: str
) -> None:
    clean_env.setenv(f"AUTOJOB_{field}", value)
    assert getattr(load_settings(), field) == value
    clean_env.setenv(f"autojob_{field.lower()}", value)  # names are case-insensitive
    clean_env.delenv(f"AUTOJOB_{field}")
    assert getattr(load_settings(), field) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [("false", False), ("0", False), ("no", False), ("true", True), ("1", True)],
)
def test_strict_mode_from_the_environment(
    clean_env: pytest.MonkeyPatch, text: str, expected: bool
) -> None:
    clean_env.setenv("AUTOJOB_STRICT_MODE", text)
    assert load_settings().STRICT_MODE is expected


def test_empty_environment_variable_is_ignored(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AUTOJOB_TASK_METADATA_FILE", "")
    assert load_settings().TASK_METADATA_FILE == "task.json"


def test_monkeypatched_settings_rename_files_in_the_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SETTINGS, "TASK_METADATA_FILE", "meta.json")
    monkeypatch.setattr(SETTINGS, "INPUTS_FILE", "params.json")
    task = Task(task_inputs=TaskInputs(command="echo hi"))
    task_dir = create_task_tree(task, tmp_path, name_template="t")
    assert sorted(os.listdir(task_dir)) == ["meta.json", "params.json", "run.sh"]
    assert json.loads((task_dir / "meta.json").read_text())["task_id"] == task.task_metadata.task_id
    loaded = Task.from_directory(task_dir)
    assert loaded.task_metadata.task_id == task.task_metadata.task_id
    assert loaded.task_inputs.command == "echo hi"
    # a task without a command: its script's message names the renamed inputs file
    bare_dir = create_task_tree(Task(), tmp_path, name_template="bare")
    assert "params.json" in (bare_dir / "run.sh").read_text()


def test_settings_restored_after_monkeypatching() -> None:
    # runs after the test above (file order): the conftest and monkeypatch undo it
    assert SETTINGS.TASK_METADATA_FILE == "task.json"
    assert SETTINGS.INPUTS_FILE == "inputs.json"


def test_cli_with_renamed_files(tmp_path: Path) -> None:
    env = {
        "AUTOJOB_TASK_METADATA_FILE": "meta.json",
        "AUTOJOB_INPUTS_FILE": "params.json",
        "AUTOJOB_STUDY_METADATA_FILE": "st.json",
        "AUTOJOB_TASK_GROUP_METADATA_FILE": "tg.json",
    }
    result = run("new", "--type", "study", "--name-template", "study", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path / "study") == ["st.json"]
    result = run(
        "new", "--type", "task_group", "--dest", "study", "--name-template", "g",
        "--set", "command=true", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    group_dir = tmp_path / "study" / "g"
    [task_dir] = [p for p in group_dir.iterdir() if p.is_dir()]
    assert sorted(os.listdir(group_dir)) == sorted(["tg.json", task_dir.name])
    assert sorted(os.listdir(task_dir)) == ["meta.json", "params.json", "run.sh"]
    task_id = json.loads((task_dir / "meta.json").read_text())["task_id"]
    assert json.loads((group_dir / "tg.json").read_text())["tasks"] == [task_id]
    assert json.loads((tmp_path / "study" / "st.json").read_text())["task_groups"] == [
        json.loads((group_dir / "tg.json").read_text())["task_group_id"]
    ]

    listed = run("list", "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["task_id"] == task_id
    assert row["command"] == "true"
    # without the variables the default names are looked for: no task there
    plain = run("list", "--json", cwd=tmp_path)
    assert plain.returncode == 1
    assert plain.stdout == ""
    assert "no tasks under . (a task is a directory holding inputs.json)" in plain.stderr
    (tmp_path / "empty").mkdir()
    renamed = run("list", "--json", "empty", cwd=tmp_path, env=env)
    assert "no tasks under empty (a task is a directory holding params.json)" in renamed.stderr


# -- the TOML configuration file -----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'TASK_METADATA_FILE = "meta.json"\nSTRICT_MODE = false\n',
        '[autojob]\nTASK_METADATA_FILE = "meta.json"\nSTRICT_MODE = false\n',
        '[autojob]\ntask_metadata_file = "meta.json"\nstrict_mode = false\n',
    ],
    ids=["top-level", "autojob-table", "lower-case"],
)
def test_config_file(clean_env: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(config))
    settings = load_settings()
    assert settings.TASK_METADATA_FILE == "meta.json"
    assert settings.STRICT_MODE is False
    assert settings.INPUTS_FILE == "inputs.json"  # the rest keep their defaults

    result = run("new", "--set", "command=true", "--name-template", "t", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "t")) == ["inputs.json", "meta.json", "run.sh"]


def test_environment_beats_config_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('TASK_METADATA_FILE = "from-file.json"\nINPUTS_FILE = "p.json"\n')
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(config))
    clean_env.setenv("AUTOJOB_TASK_METADATA_FILE", "from-env.json")
    settings = load_settings()
    assert settings.TASK_METADATA_FILE == "from-env.json"
    assert settings.INPUTS_FILE == "p.json"
    assert load_settings(TASK_METADATA_FILE="kw.json").TASK_METADATA_FILE == "kw.json"


def test_xdg_config_home_is_read(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.delenv("AUTOJOB_CONFIG_FILE")
    config = tmp_path / "xdg" / "autojob" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('INPUTS_FILE = "xdg.json"\n')
    clean_env.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_settings().INPUTS_FILE == "xdg.json"


def test_missing_config_file_means_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(tmp_path / "nope.toml"))
    assert load_settings().TASK_METADATA_FILE == "task.json"


def test_invalid_toml_is_a_config_error(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('TASK_METADATA_FILE = "unterminated\n')
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError) as info:
        load_settings()
    err = info.value
    assert err.path == config
    assert str(err).startswith(f"{config}: cannot read the configuration file")
    assert "line 1" in str(err)
    assert "hint: fix the TOML syntax" in str(err)


def test_config_file_that_is_a_directory(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.path == tmp_path


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('STRICT_MODE = "maybe"\n', "STRICT_MODE", "valid boolean"),
        ("[autojob]\nLEGACY_MODE = [1]\n", "LEGACY_MODE", "valid boolean"),
        ("INPUTS_FILE = 3\n", "INPUTS_FILE", "valid string"),
        ('INPUTS_FILE = "a/b.json"\n', "INPUTS_FILE", "not a plain file name"),
        ("NO_SUCH_SETTING = 1\n", "NO_SUCH_SETTING", "Extra inputs are not permitted"),
    ],
)
def test_invalid_value_in_config_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, text: str, field: str, message: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError) as info:
        load_settings()
    err = info.value
    assert err.field == field
    assert f"field '{field}'" in str(err)
    assert err.path == config and str(err).startswith(f"{config}: ")
    assert "invalid setting from the configuration file" in str(err)
    assert message in str(err)
    assert f"hint: fix {field} in the configuration file" in str(err)


def test_autojob_key_that_is_not_a_table(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("autojob = 1\n")
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.path == config
    assert info.value.field == "autojob"


@pytest.mark.parametrize(
    "text",
    ['STRICT_MODE = "maybe"\n', "INPUTS_FILE = \n", 'INPUTS_FILE = "../x"\n'],
    ids=["bad-value", "bad-toml", "slash"],
)
def test_cli_bad_config_file(tmp_path: Path, text: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    work = tmp_path / "work"
    work.mkdir()
    result = run("new", cwd=work, env={"AUTOJOB_CONFIG_FILE": str(config)})
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert os.listdir(work) == []


# -- bad values from the environment, through the library and the CLI -----------


def test_bad_strict_mode_through_the_library(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AUTOJOB_STRICT_MODE", "maybe")
    with pytest.raises(ConfigError) as info:
        load_settings()
    err = info.value
    assert isinstance(err, AutojobError)
    assert err.field == "STRICT_MODE"
    assert "the environment variable AUTOJOB_STRICT_MODE" in str(err)
    assert "valid boolean" in str(err)
    assert "hint: fix STRICT_MODE in the environment variable AUTOJOB_STRICT_MODE" in str(err)


@pytest.mark.parametrize("command", [["new"], ["list"], ["new", "--type", "study_group"]])
def test_bad_strict_mode_through_the_cli(tmp_path: Path, command: list[str]) -> None:
    result = run(*command, cwd=tmp_path, env={"AUTOJOB_STRICT_MODE": "maybe"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: field 'STRICT_MODE': ")
    assert "AUTOJOB_STRICT_MODE" in result.stderr
    assert "valid boolean" in result.stderr
    assert "Traceback" not in result.stderr
    assert "this is a bug" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_bad_strict_mode_with_verbose_shows_the_traceback(tmp_path: Path) -> None:
    result = run("-v", "list", cwd=tmp_path, env={"AUTOJOB_STRICT_MODE": "maybe"})
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "autojob.errors.ConfigError" in result.stderr


def test_help_and_version_work_with_bad_settings(tmp_path: Path) -> None:
    env = {"AUTOJOB_STRICT_MODE": "maybe"}
    assert run("--help", cwd=tmp_path, env=env).returncode == 0
    assert run("--version", cwd=tmp_path, env=env).returncode == 0


# -- file names must be plain names ------------------------------------------------


@pytest.mark.parametrize("value", ["a/b.json", "../task.json", "/etc/passwd", "..", "."])
@pytest.mark.parametrize("field", FILE_FIELDS)
def test_file_name_with_a_path_is_refused_from_the_environment(
    clean_env: pytest.MonkeyPatch, field: str, value: str
) -> None:
    clean_env.setenv(f"AUTOJOB_{field}", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.field == field
    assert "not a plain file name" in str(info.value)
    assert f"AUTOJOB_{field}" in str(info.value)


@pytest.mark.parametrize("value", ["a/b.json", "..", "", "nul\0byte"])
def test_file_name_with_a_path_is_refused_on_assignment(value: str) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        SETTINGS.TASK_METADATA_FILE = value
    assert SETTINGS.TASK_METADATA_FILE == "task.json"


def test_file_name_with_a_path_is_refused_as_a_keyword(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(INPUTS_FILE="sub/inputs.json")
    assert info.value.field == "INPUTS_FILE"
    assert "not a plain file name" in str(info.value)


def test_cli_file_name_with_a_slash_is_refused(tmp_path: Path) -> None:
    result = run("new", cwd=tmp_path, env={"AUTOJOB_TASK_METADATA_FILE": "../escape.json"})
    assert result.returncode == 2
    assert "AUTOJOB_TASK_METADATA_FILE" in result.stderr
    assert "not a plain file name" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []
    assert not (tmp_path.parent / "escape.json").exists()


# -- where a bad value came from ---------------------------------------------------


def test_bad_keyword_is_not_blamed_on_the_config_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(tmp_path / "does-not-exist.toml"))
    with pytest.raises(ConfigError) as info:
        load_settings(INPUTS_FILE="sub/inputs.json")
    assert "does-not-exist.toml" not in str(info.value)


def test_bad_config_value_is_blamed_on_the_file_when_the_variable_is_empty(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('STRICT_MODE = "maybe"\n')
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(config))
    clean_env.setenv("AUTOJOB_STRICT_MODE", "")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.path == config
    assert "from the configuration file" in str(info.value)


def test_keys_outside_the_autojob_table_are_refused(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('INPUTS_FILE = "x.json"\n[autojob]\nRECORD_FILE = "r.txt"\n')
    clean_env.setenv("AUTOJOB_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError, match="outside the \\[autojob\\] table: INPUTS_FILE") as info:
        load_settings()
    assert info.value.path == config
