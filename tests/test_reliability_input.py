"""Hostile and broken input: a clear error or correct behaviour, never a traceback.

Generated with hypothesis (metadata files of any bytes or any JSON; directory
names with spaces, quotes, ``$()``, backticks and newlines) and from a list of
hand-made cases run through the command line (symlink loops, symlinks leaving
the tree, huge and non-UTF-8 files, unsafe name templates).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autojob import SETTINGS
from autojob.errors import AutojobError
from autojob.execution.local import LocalRunner
from autojob.execution.slurm import plan_arrays
from autojob.execution.submit import DEFAULT_ONLY, plan, select_tasks
from autojob.next import create_task_group_tree
from autojob.store.status_index import collect
from autojob.study import Study
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .helpers import run, snapshot

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("AUTOJOB_HOSTILE_EXAMPLES", "150"))
TRIED: dict[str, int] = {}
#: every traceback seen: an exception other than AutojobError out of the library,
#: or "Traceback" in the stderr of a command (what the input was, what was seen)
TRACEBACKS: list[str] = []


@contextlib.contextmanager
def noting_tracebacks(what: str) -> Iterator[None]:
    """Note an exception other than AutojobError (a traceback for a user); re-raise it."""
    try:
        yield
    except AutojobError:
        raise
    except Exception as exc:
        TRACEBACKS.append(f"{what}: {exc!r}")
        raise


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def file_contents() -> st.SearchStrategy[bytes]:
    """Bytes a metadata file might hold after a crash, a bad edit or a bad copy."""
    valid = json.dumps({"task_id": "jAbcdefghi", "label": "x"}).encode()
    return st.one_of(
        st.binary(max_size=200),  # anything, non-UTF-8 included
        json_values.map(lambda v: json.dumps(v).encode()),  # valid JSON, wrong shape
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),  # truncated
        st.dictionaries(
            st.sampled_from(["task_id", "label", "tags", "task_inputs", "tasks", "date_created"]),
            json_values,
        ).map(lambda d: json.dumps(d).encode()),  # known fields, wrong types
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    task = Task(task_inputs=TaskInputs(command="true"))
    return Study(name="s", tasks=[task]).to_directory(root, study_template="{name}")


def _files(study: Path) -> dict[str, Path]:
    group = next(p for p in study.iterdir() if p.is_dir() and not p.name.startswith("."))
    task = next(p for p in group.iterdir() if p.is_dir())
    return {
        "task.json": task / SETTINGS.TASK_METADATA_FILE,
        "inputs.json": task / SETTINGS.INPUTS_FILE,
        "task_group.json": group / SETTINGS.TASK_GROUP_METADATA_FILE,
        "study.json": study / SETTINGS.STUDY_METADATA_FILE,
    }


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(which=st.sampled_from(["task.json", "inputs.json", "task_group.json", "study.json"]),
       content=file_contents())  # fmt: skip
def test_any_metadata_file_content_is_loaded_or_refused_clearly(
    pristine: Path, tmp_path: Path, which: str, content: bytes
) -> None:
    study = tmp_path / "case"
    if study.exists():
        shutil.rmtree(study)
    shutil.copytree(pristine, study, symlinks=True)
    target = _files(study)[which]
    target.write_bytes(content)
    TRIED["metadata files"] = TRIED.get("metadata files", 0) + 1
    for load in (
        lambda: Study.from_directory(study, strict_mode=True),
        lambda: Study.from_directory(study, strict_mode=False),
        lambda: select_tasks([study], DEFAULT_ONLY, dry_run=True),
        lambda: collect(study, use_index=False),
    ):
        try:
            with noting_tracebacks(f"{which} holding {content[:80]!r}"):
                load()
        except AutojobError as exc:
            assert exc.path is not None, exc  # it names a file
            assert str(exc.path).startswith(str(study)), exc


NAME_CHARS = st.characters(exclude_characters="/\0", exclude_categories=["Cs"])
hostile_names = st.one_of(
    st.sampled_from(["it's", 'say "hi"', "$(touch pwned)", "`touch pwned`", "a\nb", "-n", "*"]),
    st.text(NAME_CHARS, min_size=1, max_size=20),
).filter(lambda n: n not in (".", "..") and not n.startswith("."))


@settings(
    max_examples=max(10, EXAMPLES // 5),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=hostile_names)
def test_hostile_directory_names_run_where_they_are(tmp_path: Path, name: str) -> None:
    case = tmp_path / "case"
    if case.exists():
        shutil.rmtree(case)
    case.mkdir()
    TRIED["directory names"] = TRIED.get("directory names", 0) + 1
    task = Task(
        task_metadata=TaskMetadata(label=name),
        task_inputs=TaskInputs(command="pwd > where.txt", auto_restart=False),
    )
    try:
        with noting_tracebacks(f"directory name {name!r}"):
            group = create_task_group_tree(
                TaskGroup(label=name, tasks=[task]),
                case,
                name_template="{label}",
                task_template="{label}",
            )
    except AutojobError:
        assert os.listdir(case) == []  # refused, nothing written
        return
    task_dir = next(p for p in group.iterdir() if p.is_dir())
    here = os.fsencode(os.path.realpath(task_dir)) + b"\n"
    # the local executor runs it in its directory
    with noting_tracebacks(f"directory name {name!r}"):
        runner = LocalRunner(plan(select_tasks([case])), max_parallel=1)
        runner.claim(DEFAULT_ONLY)
        (state,) = runner.run().values()
    assert state.state.value == "success"
    assert (task_dir / "where.txt").read_bytes() == here
    # the SLURM array script finds it too (run by bash as an array element would be)
    (job,) = plan_arrays([(task_dir, "run.sh")], batch_root=case / "b", max_array_size=10)
    job.batch_dir.mkdir(parents=True)
    (job.batch_dir / "tasks.list").write_bytes(
        f"{os.path.realpath(task_dir)}\0run.sh\0".encode("utf-8", "surrogateescape")
    )
    (task_dir / "where.txt").unlink()
    script = job.script()
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "1"},
        capture_output=True,
        check=False,
    )
    if b"Traceback" in done.stderr:
        TRACEBACKS.append(f"directory name {name!r}: the array script: {done.stderr!r}")
    assert done.returncode == 0, done.stderr
    assert (task_dir / "where.txt").read_bytes() == here
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


# -- hand-made cases through the command line ---------------------------------------


def _study(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    task = Task(task_inputs=TaskInputs(command="echo ran > ran.txt", auto_restart=False))
    return Study(name="s", tasks=[task]).to_directory(root, study_template="{name}")


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    if "Traceback" in result.stderr:
        TRACEBACKS.append(f"autojob {' '.join(map(str, result.args[1:]))}: {result.stderr}")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1, 2), result.stderr


def test_symlink_loops_and_links_out_of_the_tree(tmp_path: Path) -> None:
    study = _study(tmp_path / "in")
    outside = _study(tmp_path / "out")
    (study / "loop").symlink_to(study)
    (study / "self").symlink_to("self")
    (study / "away").symlink_to(outside)
    before = snapshot(tmp_path / "out")
    for args in (("list", study), ("status", study), ("submit", study, "--wait")):
        result = run(*args, cwd=tmp_path)
        _no_traceback(result)
        assert result.returncode == 0, result.stderr
    assert snapshot(tmp_path / "out") == before  # nothing outside the tree was run or written
    assert len(list(study.rglob("ran.txt"))) == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\xff\xfe{not utf-8", "UTF-8"),
        (b"", "empty"),
        (b'{"task_id": "jAbcdefghi", "label": "' + b"x" * 3_000_000, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, None),
        (json.dumps({"label": "x" * 5_000_000}).encode(), None),
    ],
    ids=["non-utf8", "empty", "huge-truncated", "deeply-nested", "huge-valid"],
)
def test_broken_files_through_the_command_line(
    tmp_path: Path, content: bytes, needle: str | None
) -> None:
    TRIED["hand-made files"] = TRIED.get("hand-made files", 0) + 1
    study = _study(tmp_path)
    task_json = next(study.rglob(SETTINGS.TASK_METADATA_FILE))
    task_json.write_bytes(content)
    for args in (("list", study), ("status", study), ("submit", study, "--dry-run")):
        result = run(*args, cwd=tmp_path)
        _no_traceback(result)
        told = result.stdout + result.stderr  # 'list' shows broken tasks in its table
        if result.returncode != 0:
            assert task_json.parent.name in told, told
            if needle:
                assert needle.lower() in told.lower(), told


@pytest.mark.parametrize(
    "template",
    ["../escape", "/abs/path", "a/../../b", "{label}/../../x", ".", ".."],
)
def test_unsafe_name_templates_are_refused(tmp_path: Path, template: str) -> None:
    TRIED["unsafe templates"] = TRIED.get("unsafe templates", 0) + 1
    study = _study(tmp_path / "root")
    before = snapshot(tmp_path)
    result = run(
        "new", "--set", "command=true", "--type", "task_group", "--dest", study, "--label", "..",
        "--name-template", template, cwd=tmp_path,
    )  # fmt: skip
    _no_traceback(result)
    assert result.returncode != 0
    assert snapshot(tmp_path) == before


def test_a_nul_byte_in_a_name_template_is_refused(tmp_path: Path) -> None:
    study = _study(tmp_path / "root")
    before = snapshot(tmp_path)
    with pytest.raises(AutojobError, match="name"):
        create_task_group_tree(TaskGroup(label="x"), study, name_template="nul\0byte")
    assert snapshot(tmp_path) == before


def test_report_inputs_tried(figures: dict[str, Any]) -> None:
    if not TRIED:
        pytest.skip("no hostile input was tried in this run (the tests above were left out)")
    figures["hostile input"] = {f"{k} tried": v for k, v in sorted(TRIED.items())}
    figures["hostile input"]["tracebacks"] = len(TRACEBACKS)
    assert TRACEBACKS == [], "\n".join(TRACEBACKS)
