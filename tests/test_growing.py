"""Readable directory names, input files put into tasks, and studies that grow.

Everything goes through the installed command line on real files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from autojob import SETTINGS

from .helpers import AUTOJOB, run, run_bash, snapshot, tree_listing


def ok(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = run(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


def read(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def task_dirs(group: Path) -> list[Path]:
    return sorted(p for p in group.iterdir() if (p / SETTINGS.TASK_METADATA_FILE).is_file())


def stamps(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under ``root``: its bytes (None for a directory) and mtime in ns."""
    return {
        str(p.relative_to(root)): (
            None if p.is_dir() else p.read_bytes(),
            p.lstat().st_mtime_ns,
        )
        for p in sorted(root.rglob("*"))
    }


# -- readable names ------------------------------------------------------------


def help_examples(command: str) -> list[str]:
    """The example command lines of ``autojob COMMAND --help`` (continuations joined)."""
    text = ok(command, "--help", cwd=Path()).stdout
    block = text.split("Examples:", 1)[1].split("Options:", 1)[0]
    joined = re.sub(r"\\\n\s*", "", block)
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("autojob ")]


def test_the_new_help_examples_run_as_written_one_after_another(tmp_path: Path) -> None:
    examples = help_examples("new")
    assert examples[:2] == [
        "autojob new --type study_group --label screening",
        "autojob new --type study --dest screening --label relax",
    ]
    result = run_bash("\n".join(examples), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read(tmp_path / "screening" / SETTINGS.STUDY_GROUP_METADATA_FILE)["name"] == "screening"
    group = tmp_path / "screening" / "relax" / "Cu"
    assert read(group / SETTINGS.TASK_GROUP_METADATA_FILE)["label"] == "Cu"
    # the second task joined the group as an attempt, named by its id
    tasks = task_dirs(group)
    assert len(tasks) == 2
    assert all(read(t / SETTINGS.TASK_METADATA_FILE)["task_id"] == t.name for t in tasks)


def test_names_follow_labels_and_a_taken_name_gets_the_id(tmp_path: Path) -> None:
    ok("new", "--type", "study_group", "--label", "screening", cwd=tmp_path)
    again = ok("new", "--type", "study_group", "--label", "screening", cwd=tmp_path)
    second_id = again.stdout.split()[3]
    assert (tmp_path / f"screening-{second_id}" / SETTINGS.STUDY_GROUP_METADATA_FILE).is_file()
    assert read(tmp_path / "screening" / SETTINGS.STUDY_GROUP_METADATA_FILE)["studies"] == []
    # a loose task is named by its label, a task without a label by its id
    ok("new", "--label", "relax-1", "--set", "command=true", cwd=tmp_path)
    plain = ok("new", "--set", "command=true", cwd=tmp_path).stdout.split()[2]
    assert (tmp_path / "relax-1" / SETTINGS.INPUTS_FILE).is_file()
    assert (tmp_path / plain / SETTINGS.INPUTS_FILE).is_file()
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["screening", f"screening-{second_id}", "relax-1", plain]
    )


def test_concurrent_creations_of_one_label_never_collide(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [str(AUTOJOB), "new", "--type", "study_group", "--label", "same"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    made = {out.split()[3]: Path(out.split()[-1]) for out, _ in outputs}
    assert len(made) == 8
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 8 and "same" in names
    for group_id, path in made.items():
        assert path.name in ("same", f"same-{group_id}")
        data = read(tmp_path / path / SETTINGS.STUDY_GROUP_METADATA_FILE)
        assert data["study_group_id"] == group_id


#: what a kind needs besides a label to be created (a task needs a command)
_COMMAND = {"task": ("--set", "command=true"), "study_group": (), "study": ()}


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("study_group", "a/b"),
        ("study", ".."),
        ("study_group", ".autojob"),
        ("task", SETTINGS.INPUTS_FILE),
        ("study_group", "autojob.history-1"),
    ],
)
def test_unsafe_labels_are_refused_and_nothing_is_written(
    tmp_path: Path, kind: str, label: str
) -> None:
    (tmp_path / "keep").write_text("x")
    before = snapshot(tmp_path)
    result = run("new", "--type", kind, "--label", label, *_COMMAND[kind], cwd=tmp_path)
    assert result.returncode == 1
    assert repr(label) in result.stderr and "Traceback" not in result.stderr
    assert "--name-template" in result.stderr
    assert snapshot(tmp_path) == before


# -- studies that grow ------------------------------------------------------------

SPEC = """\
name = "squares"
command = "python3 compute.py {x}"
label = "x{x}"
files = ["compute.py", {src = "structures/{shape}-{x}.txt", dest = "in.txt"}]
[parameters]
x = [1, 2]
shape = ["cube"]
"""


def sweep_project(root: Path, spec: str = SPEC) -> Path:
    (root / "structures").mkdir(parents=True)
    for x in (1, 2, 3):
        (root / "structures" / f"cube-{x}.txt").write_text(f"structure {x}\n")
    (root / "compute.py").write_text("import sys\nprint(int(sys.argv[1]) ** 2)\n")
    (root / "squares.toml").write_text(spec)
    return root / "squares.toml"


def test_sweep_again_adds_only_the_new_combination_and_says_so(tmp_path: Path) -> None:
    spec = sweep_project(tmp_path / "project")
    out = tmp_path / "runs"
    out.mkdir()
    ok("sweep", spec, "--dest", out, cwd=tmp_path)
    study = out / "squares"
    # a group written by an older sweep has no recorded parameters: its inputs tell
    old_meta = study / "x1" / SETTINGS.TASK_GROUP_METADATA_FILE
    data = read(old_meta)
    del data["parameters"]
    old_meta.write_text(json.dumps(data))
    before = stamps(study / "x1") | {f"x2/{k}": v for k, v in stamps(study / "x2").items()}
    groups_before = read(study / SETTINGS.STUDY_METADATA_FILE)["task_groups"]

    spec.write_text(SPEC.replace("x = [1, 2]", "x = [1, 2, 3]"))
    dry = ok("sweep", spec, "--dest", out, "--dry-run", cwd=tmp_path).stdout
    assert re.search(r"x3\s.*\bnew\b", dry) and re.search(r"x1\s.*\bexists\b", dry)
    result = ok("sweep", spec, "--dest", out, cwd=tmp_path)
    assert "added 1 task group(s)" in result.stdout and "x3" in result.stdout
    assert "2 combination(s) there already" in result.stdout

    after = stamps(study / "x1") | {f"x2/{k}": v for k, v in stamps(study / "x2").items()}
    assert after == before  # the existing tasks: same bytes, same mtimes
    assert sorted(p.name for p in study.iterdir() if p.is_dir()) == ["x1", "x2", "x3"]
    groups = read(study / SETTINGS.STUDY_METADATA_FILE)["task_groups"]
    new_meta = read(study / "x3" / SETTINGS.TASK_GROUP_METADATA_FILE)
    assert groups == [*groups_before, new_meta["task_group_id"]]  # type: ignore[misc]
    assert new_meta["parameters"] == {"x": 3, "shape": "cube"}
    (task,) = task_dirs(study / "x3")
    assert (task / "in.txt").read_text() == "structure 3\n"
    assert (
        read(task / SETTINGS.TASK_METADATA_FILE)["study_id"]
        == read(study / SETTINGS.STUDY_METADATA_FILE)["study_id"]
    )

    again = ok("sweep", spec, "--dest", out, cwd=tmp_path)
    assert "nothing to add" in again.stdout
    assert sorted(p.name for p in study.iterdir() if p.is_dir()) == ["x1", "x2", "x3"]


def test_files_are_copied_per_combination_and_run(tmp_path: Path) -> None:
    spec = sweep_project(
        tmp_path,
        SPEC.replace(
            'files = ["compute.py", {src = "structures/{shape}-{x}.txt", dest = "in.txt"}]',
            'files = ["compute.py", {src = "structures/{shape}-{x}.txt", dest = "data/in.txt"},'
            ' {src = "structures", dest = "all", link = true}]',
        ),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok("sweep", spec, cwd=elsewhere)  # files are found relative to the spec
    for x in (1, 2):
        (task,) = task_dirs(elsewhere / "squares" / f"x{x}")
        assert (task / "compute.py").read_bytes() == (tmp_path / "compute.py").read_bytes()
        assert not (task / "compute.py").is_symlink()
        assert (task / "data" / "in.txt").read_text() == f"structure {x}\n"
        assert (task / "all").is_symlink()
        assert os.readlink(task / "all") == str(tmp_path / "structures")
        inputs = read(task / SETTINGS.INPUTS_FILE)["task_inputs"]
        assert inputs["files_to_copy"] == ["compute.py", "data"]  # type: ignore[index]
    result = ok("submit", elsewhere / "squares", "--wait", cwd=elsewhere)
    assert "2 of 2 task(s) succeeded" in result.stdout
    (task,) = task_dirs(elsewhere / "squares" / "x2")
    assert (task / SETTINGS.STDOUT_FILE).read_text() == "4\n"


def test_new_copy_puts_a_file_into_the_task(tmp_path: Path) -> None:
    (tmp_path / "calc.py").write_text("print('ok')\n")
    ok("new", "--type", "study", "--label", "relax", cwd=tmp_path)
    ok(
        "new", "--type", "task_group", "--dest", "relax", "--label", "Cu",
        "--copy", "calc.py", "--set", "command=python3 calc.py", cwd=tmp_path,
    )  # fmt: skip
    (task,) = task_dirs(tmp_path / "relax" / "Cu")
    assert (task / "calc.py").read_text() == "print('ok')\n"
    result = ok("submit", tmp_path / "relax", "--wait", cwd=tmp_path)
    assert "1 of 1 task(s) succeeded" in result.stdout


def test_a_missing_file_is_refused_with_its_combination_and_nothing_written(
    tmp_path: Path,
) -> None:
    spec = sweep_project(tmp_path)
    (tmp_path / "structures" / "cube-2.txt").unlink()
    before = tree_listing(tmp_path)
    result = run("sweep", spec, cwd=tmp_path)
    assert result.returncode == 1
    assert "structures/cube-2.txt" in result.stderr and "combination 1 (x2)" in result.stderr
    assert tree_listing(tmp_path) == before
    # the same when growing: the study stays as it was
    (tmp_path / "structures" / "cube-2.txt").write_text("structure 2\n")
    ok("sweep", spec, cwd=tmp_path)
    spec.write_text(SPEC.replace("x = [1, 2]", "x = [1, 2, 4]"))
    contents = snapshot(tmp_path)
    result = run("sweep", spec, cwd=tmp_path)
    assert result.returncode == 1 and "cube-4.txt" in result.stderr
    assert "combination 2 (x4)" in result.stderr
    assert snapshot(tmp_path) == contents
    # and for new --copy
    result = run("new", "--copy", "missing.py", "--set", "command=true", cwd=tmp_path)
    assert result.returncode == 1 and "missing.py" in result.stderr and "--copy" in result.stderr
    assert snapshot(tmp_path) == contents


@pytest.mark.parametrize(
    "dest",
    [
        "../outside.txt",
        "/tmp/absolute.txt",
        SETTINGS.INPUTS_FILE,
        SETTINGS.TASK_METADATA_FILE,
        SETTINGS.DEFAULT_TASK_SCRIPT_FILE,
        f"{SETTINGS.HISTORY_DIR}/x",
        f"{SETTINGS.INDEX_DIR}/x",
        "a/../../b",
    ],
)
def test_input_files_cannot_replace_autojobs_files_or_leave_the_task(
    tmp_path: Path, dest: str
) -> None:
    spec = sweep_project(
        tmp_path,
        SPEC.replace('dest = "in.txt"', f"dest = {json.dumps(dest)}"),
    )
    before = snapshot(tmp_path)
    result = run("sweep", spec, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert repr(dest) in result.stderr and "files.1" in result.stderr
    assert snapshot(tmp_path) == before


STEPS = """\
[[steps]]
name = "double"
after = ["sweep"]
set = { command = "true" }
"""

TRIPLE = """\
[[steps]]
name = "triple"
after = ["double"]
set = { command = "true" }
"""


def test_sweep_again_adds_new_steps_and_keeps_the_old_ones(tmp_path: Path) -> None:
    spec = sweep_project(tmp_path, SPEC + STEPS)
    ok("sweep", spec, cwd=tmp_path)
    study = tmp_path / "squares"
    graph_before = read(study / SETTINGS.WORKFLOW_FILE)
    spec.write_text(SPEC.replace("x = [1, 2]", "x = [1, 2, 3]") + STEPS + TRIPLE)
    result = ok("sweep", spec, cwd=tmp_path)
    assert "added 1 task group(s)" in result.stdout and "added step(s): triple" in result.stdout
    graph = read(study / SETTINGS.WORKFLOW_FILE)
    assert set(graph) > set(graph_before) and len(graph) == 3
    (task,) = task_dirs(study / "x3")
    meta = read(task / SETTINGS.TASK_METADATA_FILE)
    assert (
        meta["workflow_step_id"]
        == read(task_dirs(study / "x1")[0] / "task.json")["workflow_step_id"]
    )
    # a step the study has cannot change its definition
    before = snapshot(study)
    spec.write_text(SPEC + STEPS.replace('"true"', '"false"') + TRIPLE)
    result = run("sweep", spec, cwd=tmp_path)
    assert result.returncode == 1 and "step 'double' differs" in result.stderr
    assert snapshot(study) == before


def test_a_file_given_to_a_clone_wins_over_the_carried_one(tmp_path: Path) -> None:
    (tmp_path / "calc.py").write_text("old\n")
    ok("new", "--label", "a", "--copy", "calc.py", "--set", 'files_to_carry_over=["calc.py"]',
       "--set", "command=cat calc.py", cwd=tmp_path)  # fmt: skip
    (tmp_path / "calc.py").write_text("new\n")
    clone = ok("new", "--from", "a", "--label", "b", "--copy", "calc.py", cwd=tmp_path)
    assert clone.stdout.split()[-1] == "b"
    assert (tmp_path / "b" / "calc.py").read_text() == "new\n"
    assert (tmp_path / "a" / "calc.py").read_text() == "old\n"


def test_concurrent_sweeps_of_one_grown_spec_add_each_combination_once(tmp_path: Path) -> None:
    spec = sweep_project(tmp_path)
    ok("sweep", spec, cwd=tmp_path)
    spec.write_text(SPEC.replace("x = [1, 2]", "x = [1, 2, 3]"))
    procs = [
        subprocess.Popen(
            [str(AUTOJOB), "sweep", str(spec)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    assert sum("added 1 task group(s)" in out for out, _ in outputs) == 1
    assert sum("nothing to add" in out for out, _ in outputs) == 3
    study = tmp_path / "squares"
    assert sorted(p.name for p in study.iterdir() if p.is_dir()) == ["x1", "x2", "x3"]
    assert len(read(study / SETTINGS.STUDY_METADATA_FILE)["task_groups"]) == 3  # type: ignore[arg-type]
