"""Parameter sweeps: specs in TOML and YAML, their errors, and the studies they write."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autojob import SETTINGS
from autojob.create.sweep import load_spec, parse_spec, toml_key_lines, write_sweep
from autojob.errors import InputError
from autojob.store.completed_tasks import read_record
from autojob.store.workflow import load_workflow
from autojob.study import Study
from autojob.sweep import SweepSpec, step_id

from .helpers import run, run_bash, wait_until

SPEC = """\
name = "screen"
command = "python calc.py --ecut {ecut} --xc {xc}"
label = "e{ecut}-{xc}-{kind}"

[inputs]
files_to_carry_over = ["CHGCAR"]

[scheduler]
time = "01:00:00"

[parameters]
ecut = [300, 400]
xc = ["PBE", "r2SCAN"]

[zip]
kind = ["bulk", "slab"]
"scheduler_inputs.mem" = ["1G", "4G"]
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_combinations_are_the_product_times_the_zipped_rows(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, SPEC))
    combos = spec.combinations()
    assert len(combos) == 2 * 2 * 2
    assert combos[0] == {"ecut": 300, "xc": "PBE", "kind": "bulk", "scheduler_inputs.mem": "1G"}
    assert combos[1] == {"ecut": 300, "xc": "PBE", "kind": "slab", "scheduler_inputs.mem": "4G"}


def test_sweep_writes_one_task_group_per_combination(tmp_path: Path) -> None:
    result = run("sweep", write(tmp_path, SPEC), "--dest", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = Study.from_directory(tmp_path / "screen")
    assert study.name == "screen" and len(study.task_groups) == 8
    labels = sorted(g.label for g in study.task_groups)
    assert labels[0] == "e300-PBE-bulk" and (tmp_path / "screen" / "e400-r2SCAN-slab").is_dir()
    group = next(g for g in study.task_groups if g.label == "e400-r2SCAN-slab")
    (task,) = group.tasks
    assert task.task_inputs.command == "python calc.py --ecut 400 --xc r2SCAN"
    assert task.task_inputs.files_to_carry_over == ["CHGCAR"]
    assert task.scheduler_inputs.mem == "4G" and task.scheduler_inputs.time == "01:00:00"
    extra = task.task_inputs.model_extra or {}
    assert extra["ecut"] == 400 and extra["kind"] == "slab"
    assert not (tmp_path / "screen" / SETTINGS.WORKFLOW_FILE).exists()


def test_dry_run_prints_the_table_and_writes_nothing(tmp_path: Path) -> None:
    spec = write(tmp_path, SPEC)
    result = run("sweep", spec, "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "8 combination(s) of screen" in result.stdout
    assert "e400-r2SCAN-slab" in result.stdout and "4G" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


def test_values_reach_the_command_shell_quoted(tmp_path: Path) -> None:
    spec = SweepSpec(
        name="q", command="echo {word} > out.txt", parameters={"word": ["a b; rm -rf x", "$(id)"]}
    )
    study = Study.from_sweep(spec)
    commands = [t.task_inputs.command for t in study.tasks]
    assert commands == [f"echo {shlex.quote('a b; rm -rf x')} > out.txt", "echo '$(id)' > out.txt"]


@pytest.mark.parametrize(
    ("change", "field", "line", "message"),
    [
        (("[inputs]", "[input]"), "input", 5, "unknown key"),
        (('label = "e', 'lable = "e'), "lable", 3, "unknown key"),
        (("ecut = [300, 400]", "ecut = []"), "parameters.ecut", 12, "empty sweep"),
        (("ecut = [300, 400]", "ecut = 300"), "parameters.ecut", 12, "valid list"),
        (('kind = ["bulk", "slab"]', 'kind = ["bulk"]'), "zip", 15, "differ in length"),
        (("--xc {xc}", "--xc {functional}"), "command", 2, "{functional} is not a parameter"),
        (('name = "screen"', "name = 5"), "name", 1, "valid string"),
    ],
)
def test_spec_errors_name_the_key_and_its_line(
    tmp_path: Path,
    change: tuple[str, str],
    field: str,
    line: int,
    message: str,
) -> None:
    text = SPEC.replace(*change)
    assert text != SPEC
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert info.value.field == field
    assert f"line {line}:" in info.value.message and message in info.value.message
    result = run("sweep", path, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"field '{field}'" in result.stderr and f"line {line}" in result.stderr


def test_nothing_to_sweep_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing to sweep"):
        parse_spec('name = "x"\ncommand = "true"\n', tmp_path / "s.toml")


def test_yaml_specs_and_their_errors_name_the_line(tmp_path: Path) -> None:
    text = "name: y\ncommand: echo {n}\nparameters:\n  n: [1, 2, 3]\nsteps:\n  - name: sum\n"
    text += "    after: [sweep]\n    progression: dependent\n    set: {command: python3 sum.py}\n"
    text += "    colour: red\n"
    with pytest.raises(InputError) as info:
        load_spec(write(tmp_path, text, "spec.yaml"))
    assert info.value.field == "steps.0.colour" and "line 10: unknown key" in info.value.message
    spec = load_spec(write(tmp_path, text.replace("    colour: red\n", ""), "spec.yml"))
    assert len(spec.combinations()) == 3
    bad = write(tmp_path, "name: [unclosed\n", "bad.yaml")
    with pytest.raises(InputError, match="not valid YAML"):
        load_spec(bad)


def test_steps_in_a_spec_become_the_study_workflow(tmp_path: Path) -> None:
    text = SPEC + (
        '\n[[steps]]\nname = "summary"\nafter = ["sweep"]\nprogression = "dependent"\n'
        'set = { command = "python summary.py" }\n'
        '[[steps.references]]\nset_path = "energies"\nget_path = "outputs.energy"\n'
        'composer = "list"\n'
    )
    spec = load_spec(write(tmp_path, text))
    study, path = write_sweep(spec, tmp_path)
    flow = load_workflow(path)
    assert flow.graph.root == {step_id("sweep"): [], step_id("summary"): [step_id("sweep")]}
    assert flow.steps[step_id("summary")].progression == "dependent"
    assert {t.task_metadata.workflow_step_id for t in study.tasks} == {step_id("sweep")}
    meta = json.loads(next(path.glob("*/*/task.json")).read_text())
    assert meta["workflow_step_id"] == step_id("sweep")


def test_unknown_steps_in_a_spec_are_named_with_their_line(tmp_path: Path) -> None:
    text = SPEC + '\n[[steps]]\nname = "summary"\nafter = ["sweeep"]\n'
    with pytest.raises(InputError) as info:
        load_spec(write(tmp_path, text))
    assert info.value.field == "steps.0.after"
    assert "line 21:" in info.value.message and "unknown step 'sweeep'" in info.value.message


def test_toml_key_lines_follow_tables_and_arrays_of_tables() -> None:
    text = 'a = 1\n[t]\nb = 2\n"c.d" = 3\n[[s]]\nx = 1\n[[s]]\nx = 2\n'
    lines = toml_key_lines(text)
    assert lines[("a",)] == 1 and lines[("t", "b")] == 3 and lines[("t", "c.d")] == 4
    assert lines[("s", 0, "x")] == 6 and lines[("s", 1, "x")] == 8


def test_the_readme_sweep_section_runs(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    (spec,) = re.findall(r"```toml\n(.*?)```", readme, flags=re.DOTALL)
    (commands,) = re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
    for script in (Path(__file__).parents[1] / "examples" / "workflow").glob("*.py"):
        shutil.copy(script, tmp_path)
    (tmp_path / "squares.toml").write_text(spec)
    result = run_bash(commands, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "4 combination(s) of squares" in result.stdout and "flowchart" not in result.stdout
    assert "digraph workflow" in result.stdout and "workflow of squares" in result.stdout
    wait_until(
        (tmp_path / "squares" / "aggregate").is_dir,
        120,
        "the workflow to reach its aggregate step",
        details=lambda: run("status", tmp_path / "squares", cwd=tmp_path).stdout,
        interval=0.5,
    )
    assert len(read_record(tmp_path / "squares")) >= 4


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    parameters=st.dictionaries(
        NAMES, st.lists(st.integers(-9, 99), min_size=1, max_size=3), min_size=1, max_size=4
    ),
    where=st.integers(0, 10),
)
def test_any_spec_sweeps_the_product_and_names_the_line_of_a_bad_key(
    parameters: dict[str, list[int]], where: int
) -> None:
    lines = ['name = "p"', 'command = "true"', "[parameters]"]
    lines += [f"{key} = {json.dumps(values)}" for key, values in parameters.items()]
    spec = parse_spec("\n".join(lines) + "\n", Path("p.toml"))
    expected = 1
    for values in parameters.values():
        expected *= len(values)
    assert len(spec.combinations()) == expected
    at = min(where, 2)  # a bad key among the top-level keys, before [parameters]
    bad = [*lines[:at], "colour = 1", *lines[at:]]
    with pytest.raises(InputError) as info:
        parse_spec("\n".join(bad) + "\n", Path("p.toml"))
    assert info.value.field == "colour" and f"line {at + 1}:" in info.value.message
