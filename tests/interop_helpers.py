"""The reference implementation, PyPI ``python-autojob`` 0.0.2, for the interop tests.

It is installed into a throwaway virtualenv (never a dependency of ours), once per
session (the ``reference_python`` fixture of tests/conftest.py). Scripts run with
that venv's interpreter, in an environment where our package is not importable,
so there ``import autojob`` is the reference implementation.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REFERENCE = "python-autojob==0.0.2"
INSTALL_TIMEOUT = 1800  # seconds; the reference pulls in ase, pymatgen, emmet-core
SCRIPT_TIMEOUT = 300
MARKER = "AUTOJOB-REFERENCE-JSON "


# -- the throwaway virtualenv ------------------------------------------------


@contextlib.contextmanager
def _uncaptured(config: pytest.Config) -> Iterator[None]:
    """Let progress lines through pytest's output capture."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


def _progress(config: pytest.Config, message: str) -> None:
    with _uncaptured(config):
        print(f"[interop] {message}", file=sys.stderr, flush=True)


def _clean_env() -> dict[str, str]:
    """The environment minus anything that could make our package importable
    there, or configure either package (AUTOJOB_*)."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"}
    return {
        key: value
        for key, value in os.environ.items()
        if key not in drop and not key.startswith("AUTOJOB_")
    }


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def install_reference(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Path:
    """A Python interpreter whose ``autojob`` is python-autojob 0.0.2."""
    venv_dir = tmp_path_factory.mktemp("python_autojob_venv")
    started = time.monotonic()
    _progress(pytestconfig, f"creating a virtualenv in {venv_dir}")
    subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(venv_dir)],
        check=True,
        env=_clean_env(),
        cwd=venv_dir,
        timeout=SCRIPT_TIMEOUT,
    )
    python = _venv_python(venv_dir)
    command = [str(python), "-m", "pip", "install", "--progress-bar", "off", REFERENCE]
    _progress(pytestconfig, f"installing {REFERENCE} (heavy dependencies, be patient)")
    log: list[str] = []
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_clean_env(),
        cwd=venv_dir,
    ) as process:
        # pip may stall without printing: a timer kills it at the deadline
        deadline = threading.Timer(INSTALL_TIMEOUT, process.kill)
        deadline.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log.append(line)
                if line.startswith(("Collecting", "Successfully", "ERROR")):
                    _progress(pytestconfig, line.rstrip())
            code = process.wait()
        finally:
            deadline.cancel()
    if time.monotonic() - started >= INSTALL_TIMEOUT:
        pytest.fail(f"installing {REFERENCE} took over {INSTALL_TIMEOUT} s")
    if code != 0:
        pytest.fail(f"pip install {REFERENCE} failed ({code}):\n{''.join(log[-40:])}")
    _progress(pytestconfig, f"{REFERENCE} installed in {time.monotonic() - started:.0f} s")

    check = run_reference(
        python,
        """
        import importlib.metadata, sys, autojob
        emit({"version": importlib.metadata.version("python-autojob"),
              "file": autojob.__file__, "prefix": sys.prefix})
        """,
        cwd=venv_dir,
    )
    assert check["version"] == "0.0.2"
    assert Path(check["file"]).is_relative_to(venv_dir), check
    return python


def run_reference(python: Path, body: str, *args: str, cwd: Path) -> Any:
    """Run ``body`` with the reference interpreter and return what it ``emit``\\ s.

    The script is written into ``cwd`` (never our source tree) and run with a
    clean environment, so ``import autojob`` there is python-autojob.
    """
    prelude = textwrap.dedent(
        f"""
        import json as _json
        def emit(value):
            print({MARKER!r} + _json.dumps(value, default=str), flush=True)
        """
    )
    script = Path(cwd, "reference_script.py")
    script.write_text(prelude + textwrap.dedent(body), encoding="utf-8")
    result = subprocess.run(
        [str(python), str(script), *args],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=cwd,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    if result.returncode != 0 or not lines:
        pytest.fail(
            f"the reference script failed ({result.returncode}):\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len(MARKER) :])


# -- trees written by python-autojob ------------------------------------------

WRITE_REFERENCE_TREES = """
import json
import sys
from pathlib import Path

import autojob
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

assert Path(autojob.__file__).is_relative_to(sys.prefix), autojob.__file__
dest = Path(sys.argv[1])


def task(label="", group=None, **inputs):
    meta = {"label": label, "tags": [f"tag-{label}"] if label else []}
    if group is not None:
        meta["task_group_id"] = group
    return Task(task_metadata=TaskMetadata(**meta), task_inputs=TaskInputs(**inputs))


def describe(sg, created):
    studies = []
    for study in sg.studies:
        groups = {}
        for t in study.tasks:
            groups.setdefault(str(t.task_metadata.task_group_id), []).append(
                str(t.task_metadata.task_id)
            )
        tasks = {
            str(t.task_metadata.task_id): {
                "metadata": t.task_metadata.model_dump(mode="json"),
                "inputs": t.task_inputs.model_dump(mode="json", exclude={"atoms"}),
            }
            for t in study.tasks
        }
        studies.append(
            {"study_id": str(study.study_id), "name": study.name,
             "task_groups": groups, "tasks": tasks}
        )
    dirs = {}
    for name, key in (("task.json", "task_id"), ("task_group.json", "task_group_id"),
                      ("study.json", "study_id")):
        for f in sorted(created.rglob(name)):
            data = json.loads(f.read_text())
            dirs[str(data[key])] = str(f.parent.relative_to(created))
    return {"path": str(created), "study_group_id": str(sg.study_group_id),
            "name": sg.name, "studies": studies, "dirs": dirs}


def build(name):
    relax = task("relax", files_to_carry_over=["WAVECAR", "CHGCAR"],
                 auto_restart=False, files_to_delete=["WAVECAR"])
    group = relax.task_metadata.task_group_id
    attempt = task("relax", group=group, files_to_carry_over=["CONTCAR"],
                   files_to_copy=["POSCAR"])
    third = task("relax-3", group=group)
    lone = task("single-point")
    plain = Task()
    other = task("other", files_to_carry_over=["out.txt"])
    return StudyGroup(
        name=name,
        notes=["written by python-autojob"],
        studies=[
            Study(name=f"{name}-study-a", notes=["a"],
                  tasks=[relax, lone, attempt, plain, third]),
            Study(name=f"{name}-study-b", tasks=[other]),
        ],
    )


plain_sg = build("plain")
templated_sg = build("templated")
emit({
    "plain": describe(plain_sg, plain_sg.to_directory(dest)),
    "templated": describe(
        templated_sg,
        templated_sg.to_directory(
            dest,
            study_group_template="{name}",
            study_template="{name}",
            task_group_template="tg-{label}-{structure}",
            task_template="{label}-{i}",
        ),
    ),
})
"""


def write_reference_trees(
    reference_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Trees written by python-autojob, and its summary of what it wrote."""
    work = tmp_path_factory.mktemp("reference_trees")
    dest = work / "trees"
    dest.mkdir()
    return run_reference(reference_python, WRITE_REFERENCE_TREES, str(dest), cwd=work)
