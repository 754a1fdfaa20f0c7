"""The task script: rendered from Jinja2, portable bash, every value quoted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from autojob import SETTINGS
from autojob.errors import MetadataError, TemplateError
from autojob.next import create_task_tree
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch pwned)",
    "`touch pwned`",
    "a\nb; touch pwned",
    "semi; touch pwned",
    "$HOME ${PATH}",
    "back\\slash",
    "*",
    "-n",
]


def run_script(
    task_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = task_dir / "run.sh"
    return subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        cwd="/",
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_script_runs_the_command_in_the_task_directory(tmp_path: Path) -> None:
    task = Task(
        task_inputs=TaskInputs(
            command='pwd > where.txt && echo "$AUTOJOB_TASK_ID" > id.txt; exit 3'
        )
    )
    task_dir = create_task_tree(task, tmp_path)
    assert os.access(task_dir / "run.sh", os.X_OK)
    result = run_script(task_dir)
    assert result.returncode == 3
    assert (task_dir / "where.txt").read_text().strip() == str(task_dir)
    assert (task_dir / "id.txt").read_text().strip() == task.task_metadata.task_id


def test_script_without_command_fails_clearly(tmp_path: Path) -> None:
    task_dir = create_task_tree(Task(), tmp_path)
    result = run_script(task_dir)
    assert result.returncode == 2
    assert "has no command" in result.stderr and "inputs.json" in result.stderr


def test_default_script_is_portable_bash(tmp_path: Path) -> None:
    text = (
        create_task_tree(Task(task_inputs=TaskInputs(command="true")), tmp_path)
        .joinpath("run.sh")
        .read_text()
    )
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "module " not in text and "source " not in text
    assert subprocess.run(["bash", "-n", "-c", text], check=False).returncode == 0


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_reach_the_command_unchanged(tmp_path: Path, value: str) -> None:
    # the command prints its argument; quoting must keep the value exact
    command = "printf '%s' " + _sh_quote(value) + " > out.txt"
    task = Task(
        task_metadata=TaskMetadata(label=value, tags=[value]),
        task_inputs=TaskInputs(command=command),
        scheduler_inputs={"job-name": value, "comment": value} if "\n" not in value else {},
    )
    task_dir = create_task_tree(task, tmp_path)
    result = run_script(task_dir)
    assert result.returncode == 0, result.stderr
    assert (task_dir / "out.txt").read_text() == value
    assert not list(tmp_path.rglob("pwned")) and not Path("/pwned").exists()


def _sh_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def test_scheduler_inputs_become_quoted_sbatch_lines(tmp_path: Path) -> None:
    task = Task(
        task_inputs=TaskInputs(command="true"),
        scheduler_inputs={
            "time": "01:00:00",
            "cpus_per_task": 4,
            "job-name": "a b",
            "partition": "short,long",
            "exclusive": True,
            "mem": None,
            "gres": "gpu:1",
        },
    )
    text = create_task_tree(task, tmp_path).joinpath("run.sh").read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("#SBATCH")]
    assert lines == [
        "#SBATCH --job-name='a b'",
        "#SBATCH --partition=short,long",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --time=01:00:00",
        "#SBATCH --exclusive",
        "#SBATCH --gres=gpu:1",
    ]


@pytest.mark.parametrize(
    ("inputs", "field", "message"),
    [
        ({"time\n#SBATCH --x": "1"}, "scheduler_inputs", "not a scheduler option name"),
        ({"comment": "a\ntouch pwned"}, "scheduler_inputs", "newline"),
        ({"job_name": "a\nb"}, "scheduler_inputs.job", "newline"),
        ({"time": "25:61:00"}, "scheduler_inputs.time", "days-hours:minutes:seconds"),
        ({"mem": "lots"}, "scheduler_inputs.mem", "not a memory amount"),
        ({"nodes": "two"}, "scheduler_inputs.nodes", "not a node count"),
        ({"mail_type": "END,SOMETIMES"}, "scheduler_inputs.mail", "unknown mail type"),
        ({"cpus_per_task": 0}, "scheduler_inputs.cpus", "greater than or equal to 1"),
    ],
)
def test_bad_scheduler_inputs_are_refused(
    tmp_path: Path, inputs: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        Task(scheduler_inputs=inputs)
    assert ".".join(str(p) for p in info.value.errors()[0]["loc"]).startswith(field)
    # from a file, the error names the file and field
    task_dir = create_task_tree(Task(task_inputs=TaskInputs(command="true")), tmp_path)
    data = json.loads((task_dir / "inputs.json").read_text())
    data["scheduler_inputs"] = inputs
    (task_dir / "inputs.json").write_text(json.dumps(data))
    with pytest.raises(MetadataError, match=message) as error:
        Task.from_directory(task_dir)
    assert error.value.path == task_dir / "inputs.json"
    assert (error.value.field or "").startswith(field)


def test_sbatch_lines_of_old_scripts_are_read_back(tmp_path: Path) -> None:
    script = (
        "#!/bin/bash\n#SBATCH --account=def-x\n#SBATCH --partition=a,b\n#SBATCH -c 8\n"
        "#SBATCH --mem-per-cpu=2G --time=1-00:00:00\n#SBATCH --mail-type=END,FAIL\n"
        "#SBATCH --exclusive\n\nmodule load vasp\n#SBATCH --time=5\n"
    )
    (tmp_path / "run.sh").write_text(script)
    (tmp_path / "inputs.json").write_text(json.dumps({"task_inputs": {"command": "x"}}))
    (tmp_path / "task.json").write_text(Task().task_metadata.model_dump_json())
    sched = Task.from_directory(tmp_path).scheduler_inputs
    assert sched.account == "def-x" and sched.partition == ["a", "b"]
    assert sched.cpus_per_task == 8 and sched.mem_per_cpu == "2G"
    assert sched.time == "1-00:00:00"  # lines after the first command do not count
    assert sched.mail_type == ["END", "FAIL"]
    assert sched.model_extra == {"exclusive": True}


def test_the_scheduler_inputs_section_is_authoritative(tmp_path: Path) -> None:
    # autojob renders the script's #SBATCH lines from the section, so with the
    # section present (even empty) the script is not read for more
    task_dir = create_task_tree(Task(task_inputs=TaskInputs(command="true")), tmp_path)
    script = task_dir / "run.sh"
    script.write_text("#!/bin/bash\n#SBATCH --time=5\n" + script.read_text())
    assert json.loads((task_dir / "inputs.json").read_text())["scheduler_inputs"] == {}
    assert Task.from_directory(task_dir).scheduler_inputs.time is None
    # without the section (python-autojob 0.0.2, flat inputs), the lines are read
    data = json.loads((task_dir / "inputs.json").read_text())
    del data["scheduler_inputs"]
    (task_dir / "inputs.json").write_text(json.dumps(data))
    assert Task.from_directory(task_dir).scheduler_inputs.time == "5"


def test_user_template_directory_overrides_the_package(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "run.sh.j2").write_text(
        "#!/bin/bash\n# site template\necho {{ metadata.label }}\n"
    )
    (templates / "other.j2").write_text("#!/bin/bash\necho other {{ inputs.command }}\n")
    SETTINGS.TEMPLATE_DIR = templates
    site = create_task_tree(Task(task_metadata=TaskMetadata(label="x y")), tmp_path)
    rendered, stamp = (site / "run.sh").read_text().rsplit("\n# autojob-rendered ", 1)
    assert rendered == "#!/bin/bash\n# site template\necho 'x y'"  # then the stamp line
    assert stamp.startswith("sources=")
    other = create_task_tree(
        Task(task_inputs=TaskInputs(command="$(x)", task_script_template="other.j2")), tmp_path
    )
    assert run_script(other).stdout == "other $(x)\n"


def test_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not found") as info:
        create_task_tree(Task(task_inputs=TaskInputs(task_script_template="nope.j2")), tmp_path)
    assert info.value.field == "task_inputs.task_script_template"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    shutil.which("shellcheck") is None and not os.environ.get("CI"),
    reason="shellcheck not installed (scripts/test.sh installs it)",
)
def test_default_script_passes_shellcheck(tmp_path: Path) -> None:
    task = Task(
        task_metadata=TaskMetadata(label="it's $(x)"),
        task_inputs=TaskInputs(command="python calc.py --ecut 400 && echo done"),
        scheduler_inputs={"time": "01:00:00", "job-name": "a 'b'"},
    )
    script = create_task_tree(task, tmp_path) / "run.sh"
    result = subprocess.run(
        ["shellcheck", "--shell=bash", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
