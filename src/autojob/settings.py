"""Global settings: every file name autojob reads or writes, and how it behaves.

Settings come, highest priority first, from keyword arguments, environment
variables prefixed ``AUTOJOB_`` (``AUTOJOB_INPUTS_FILE=params.json``), and a TOML
file: ``$AUTOJOB_CONFIG_FILE`` if set, else ``$XDG_CONFIG_HOME/autojob/config.toml``
(``~/.config/autojob/config.toml``). Keys in the TOML file are the field names
below, either at top level or under an ``[autojob]`` table.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "STAGING_PREFIX",
    "AutojobSettings",
    "NameCollisionError",
    "config_file_path",
    "load_settings",
    "setting_source",
]

#: directories being built carry this prefix until they are complete
STAGING_PREFIX = ".autojob-staging-"
#: settings that may name the same file: the legacy spelling is read as well
_MAY_SHARE = frozenset({"PARAMETERIZATION_FILE", "LEGACY_PARAMETERIZATION_FILE"})


def config_file_path() -> Path:
    """Return the TOML configuration file autojob reads (it may not exist)."""
    explicit = os.environ.get("AUTOJOB_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base, "autojob", "config.toml")


def _read_config_file(path: Path) -> dict[str, Any]:
    """Read the TOML config file; a missing file is an empty configuration."""
    from autojob.errors import ConfigError  # noqa: PLC0415  (errors imports nothing)

    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"cannot read the configuration file: {exc}",
            path=path,
            hint="fix the TOML syntax or point AUTOJOB_CONFIG_FILE elsewhere",
        ) from exc
    tool = data.get("tool")
    if set(data) == {"tool"} and isinstance(tool, dict) and isinstance(tool.get("autojob"), dict):
        return _reference_table(tool["autojob"], path)
    if "autojob" not in data:
        return data
    table = data["autojob"]
    if not isinstance(table, dict):
        raise ConfigError("[autojob] must be a table", path=path, field="autojob")
    outside = sorted(set(data) - {"autojob"})
    if outside:
        raise ConfigError(
            f"keys outside the [autojob] table: {', '.join(outside)}",
            path=path,
            hint="put every setting under [autojob], or drop the table header",
        )
    return table


#: python-autojob's settings that autojob names otherwise
_REFERENCE_NAMES = {
    "SCHEDULER": "DEFAULT_EXECUTOR",
    "PARAMETRIZATION_FILE": "LEGACY_PARAMETERIZATION_FILE",
}


def _reference_table(table: dict[str, Any], path: Path) -> dict[str, Any]:
    """The settings of python-autojob's ``[tool.autojob]`` table that autojob has.

    Its names for them are taken (``SCHEDULER`` is ``DEFAULT_EXECUTOR``); each
    of its settings autojob lacks (``LOG_LEVEL``, ``LOG_FILE``, ...) is warned
    about and left out, so that its configuration file never stops a command.
    """
    import logging  # noqa: PLC0415

    known = {name.upper() for name in AutojobSettings.model_fields}
    kept: dict[str, Any] = {}
    for key, value in table.items():
        name = _REFERENCE_NAMES.get(key.upper(), key.upper())
        if name in known:
            kept[name] = value
        else:
            logging.getLogger(__name__).warning(
                "%s: [tool.autojob] %s is a setting of python-autojob that autojob does "
                "not have; it is ignored",
                path,
                key,
            )
    return kept


class NameCollisionError(ValueError):
    """Two file-name settings name the same file, or one takes a reserved name."""

    def __init__(self, message: str, fields: tuple[str, ...]) -> None:
        super().__init__(message)
        self.fields = fields


#: the name fields of each settings class (they never change)
_NAME_FIELDS: dict[type, tuple[str, ...]] = {}


def _is_name_field(name: str) -> bool:
    return name.endswith(("_FILE", "_DIR")) and name != "TEMPLATE_DIR"


def _check_distinct(names: dict[str, Any]) -> None:
    """Refuse two file-name settings naming one file, or a name with a reserved prefix.

    ``names`` maps setting names to values (other fields are ignored).

    Raises:
        NameCollisionError: naming the settings at fault.
    """
    seen: dict[str, str] = {}
    for field, value in names.items():
        if not (_is_name_field(field) and isinstance(value, str)):
            continue
        if value.startswith(STAGING_PREFIX):
            msg = (
                f"{field} {value!r} begins with {STAGING_PREFIX!r}, which autojob reserves "
                "for directories being built"
            )
            raise NameCollisionError(msg, (field,))
        other = seen.get(value)
        if other is not None and {other, field} != _MAY_SHARE:
            msg = f"{other} and {field} are both {value!r}: each must name its own file"
            raise NameCollisionError(msg, (other, field))
        seen[value] = field


class _TomlSource(InitSettingsSource):
    """A settings source reading the user's TOML configuration file."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, _read_config_file(config_file_path()))


class AutojobSettings(BaseSettings):
    """Settings for autojob; one field per file name it uses on disk."""

    model_config: ClassVar[SettingsConfigDict] = SettingsConfigDict(
        env_prefix="AUTOJOB_",
        case_sensitive=False,
        env_ignore_empty=True,
        extra="forbid",
        validate_assignment=True,
    )

    # metadata files
    STUDY_GROUP_METADATA_FILE: str = Field("study_group.json", description="study group metadata")
    STUDY_METADATA_FILE: str = Field("study.json", description="study metadata")
    TASK_GROUP_METADATA_FILE: str = Field("task_group.json", description="task group metadata")
    TASK_METADATA_FILE: str = Field("task.json", description="task metadata")
    INPUTS_FILE: str = Field("inputs.json", description="task inputs")
    OUTPUTS_FILE: str = Field(
        "outputs.json", description="outputs a task's command writes for harvest"
    )
    # workflow files
    WORKFLOW_FILE: str = Field("workflow.json", description="a study's step DAG")
    PARAMETERIZATION_FILE: str = Field(
        "parameterizations.json", description="what each workflow step creates"
    )
    LEGACY_PARAMETERIZATION_FILE: str = Field(
        "parametrizations.json",
        description="the reference implementation's spelling, read as well",
    )
    RECORD_FILE: str = Field("record.txt", description="ids of completed tasks")
    PENDING_TASK_GROUPS_FILE: str = Field(
        "task_groups.pending",
        description="ids of a large study's new task groups, not yet merged into study.json",
    )
    STOP_FILE: str = Field(
        "autojob.stop", description="present in a task: never restart or advance it"
    )
    # scripts and results
    DEFAULT_TASK_SCRIPT_FILE: str = Field("run.sh", description="the task script")
    DEFAULT_CALCULATION_SCRIPT_FILE: str = Field(
        "run.py", description="calculation script of calculation tasks"
    )
    INPUT_ATOMS_FILE: str = Field("in.traj", description="the structure a calculation starts from")
    OUTPUT_ATOMS_FILE: str = Field(
        "final.traj", description="a calculation's final structure, with its results"
    )
    OPTIMIZER_TRAJECTORY_FILE: str = Field(
        "opt.traj", description="every step of a calculation's optimizer"
    )
    CAUSE_FILE: str = Field(
        "autojob.cause",
        description="why a task's command failed (e.g. not_converged), if it says",
    )
    ARCHIVE_FILE: str = Field("archive.json", description="harvest archive")
    SCHEDULER_STATS_FILE: str = Field(
        "job_stats.json", description="scheduler accounting of a task"
    )
    # state of a run, written in the task directory
    QUEUED_FILE: str = Field("autojob.queued", description="written when submitted")
    STARTED_FILE: str = Field("autojob.started", description="written by the task script")
    ENDED_FILE: str = Field("autojob.ended", description="written when the task ends")
    CANCEL_FILE: str = Field("autojob.cancel", description="a request to cancel the task")
    STDOUT_FILE: str = Field("autojob.out", description="standard output of the task")
    STDERR_FILE: str = Field("autojob.err", description="standard error of the task")
    COMMAND_FILE: str = Field(
        "autojob.command",
        description="the session a task's command runs in, while it runs (autojob run)",
    )
    HISTORY_DIR: str = Field(
        "autojob.history", description="state files of earlier runs of the task"
    )
    INDEX_DIR: str = Field(
        ".autojob", description="status index and journal, under the directory given"
    )
    # execution
    DEFAULT_EXECUTOR: str = Field("local", description="executor used by submit")
    MAX_PARALLEL: int | None = Field(
        None, ge=1, description="tasks run at once by the local executor (default: cores)"
    )
    SLURM_POLL_INTERVAL: float = Field(
        10.0, ge=0, description="seconds between two queries of squeue/sacct"
    )
    SGE_MEMORY_RESOURCE: str = Field(
        "h_vmem",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Grid Engine resource scheduler_inputs.mem asks for (per slot)",
    )
    SGE_PARALLEL_ENVIRONMENT: str = Field(
        "smp",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="Grid Engine parallel environment of tasks with several cores",
    )
    INDEX_MAX_AGE: float = Field(
        3600.0, ge=0, description="seconds after which status rescans the whole tree"
    )
    # templates
    TEMPLATE_DIR: Path | None = Field(
        None, description="a directory searched for templates before the package's"
    )
    TASK_SCRIPT_TEMPLATE: str = Field(
        "run.sh.j2", description="the template rendered into the task script"
    )
    CALCULATION_SCRIPT_TEMPLATE: str = Field(
        "run.py.j2", description="the template rendered into a calculation's script"
    )
    # behaviour
    STRICT_MODE: bool = Field(True, description="raise on the first broken file instead of warning")
    LEGACY_MODE: bool = Field(
        True,
        description="ids are 10-character alphanumerics prefixed g/s/c/j; UUID4s when False",
    )
    DEFAULT_TASK: str = Field("task", description="task class of new tasks")
    # datasets (sketchjob and the agent)
    PROVENANCE_DIR: str = Field(
        "autojob.provenance",
        description="per-item provenance records, under an agent's output root",
    )
    HARVEST_VERIFY_AGE: float = Field(
        3600.0,
        ge=0,
        description="seconds after which a harvest checks every watched file of the tasks "
        "it takes from its cache, not only their directories (0: always)",
    )
    HARVEST_CACHE_FILE: str = Field(
        "harvest-cache.jsonl",
        description="incremental-harvest cache, kept beside an archive as .<archive>.<this>",
    )

    @field_validator("*", mode="after")
    @classmethod
    def _file_names_are_plain(cls, value: Any, info: Any) -> Any:
        name = info.field_name or ""
        if name.endswith(("_FILE", "_DIR")) and isinstance(value, str):
            bad = not value or value in {".", ".."} or "/" in value or "\0" in value
            if bad:
                msg = f"{value!r} is not a plain file name (no '/', not empty)"
                raise ValueError(msg)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _assigned_name_is_distinct(cls, value: Any, info: Any) -> Any:
        # on assignment ``info.data`` holds every other field: refuse before the
        # value is set (a model validator would leave it set)
        name = info.field_name or ""
        if _is_name_field(name):
            _check_distinct({**{k: v for k, v in info.data.items() if k != name}, name: value})
        return value

    @model_validator(mode="after")
    def _file_names_are_distinct(self) -> AutojobSettings:
        _check_distinct(self.file_names())
        return self

    @classmethod
    def name_fields(cls) -> tuple[str, ...]:
        """The settings that name a file or directory autojob writes."""
        fields = _NAME_FIELDS.get(cls)
        if fields is None:
            fields = _NAME_FIELDS[cls] = tuple(n for n in cls.model_fields if _is_name_field(n))
        return fields

    def file_names(self) -> dict[str, str]:
        """Every setting that names a file or directory autojob writes, with its value."""
        return {
            name: value
            for name, value in self.__dict__.items()
            if _is_name_field(name) and isinstance(value, str)
        }

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read keyword arguments, then the environment, then the TOML file."""
        return (init_settings, env_settings, _TomlSource(settings_cls))


def _source_of(field: str, overrides: dict[str, Any]) -> tuple[str, Path | None]:
    """Where the value of ``field`` came from, and the configuration file if there."""
    env_name = f"AUTOJOB_{field.upper()}"
    if field.upper() in {key.upper() for key in overrides}:
        return "the value given", None
    if any(key.upper() == env_name and value for key, value in os.environ.items()):
        return f"the environment variable {env_name}", None
    path = config_file_path()
    if field in _read_config_file(path) or field.lower() in _read_config_file(path):
        return "the configuration file", path
    return "the default", None


def setting_source(field: str) -> tuple[str, Path | None]:
    """Where the value of the setting ``field`` came from, in words, and its file if any.

    E.g. ``("the environment variable AUTOJOB_DEFAULT_EXECUTOR", None)``.
    """
    return _source_of(field, {})


def load_settings(**overrides: Any) -> AutojobSettings:
    """Build the settings, turning validation errors into a ConfigError."""
    from pydantic import ValidationError  # noqa: PLC0415

    from autojob.errors import ConfigError  # noqa: PLC0415

    try:
        return AutojobSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        error = first.get("ctx", {}).get("error")
        if isinstance(error, NameCollisionError):
            raise _collision_error(error, overrides) from exc
        field = ".".join(str(p) for p in first["loc"])
        source, path = _source_of(field, overrides)
        if source == "the default":
            source, path = "the configuration file", config_file_path()
        raise ConfigError(
            f"invalid setting from {source}: {first['msg']}",
            path=path,
            field=field,
            hint=f"fix {field} in {source}",
        ) from exc


def _collision_error(error: NameCollisionError, overrides: dict[str, Any]) -> Exception:
    from autojob.errors import ConfigError  # noqa: PLC0415

    sources = [(field, *_source_of(field, overrides)) for field in error.fields]
    where = "; ".join(f"{field} from {source}" for field, source, _ in sources)
    # the fix goes to a setting the user gave (a default cannot be changed there)
    given = [s for s in sources if s[1] != "the default"] or sources
    field, source, path = given[-1]
    return ConfigError(
        f"settings collide: {error} ({where})",
        path=path,
        field=field,
        hint=f"give {field} another name in {source}"
        if source != "the default"
        else f"set {field} to another name",
    )
