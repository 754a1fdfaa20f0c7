"""The code blocks of seed document 000 run as written and write what they say.

The seed is plain text (a web page saved as text), not markdown: each code block
starts at a line ``import json`` and runs until the first line of prose. Each
block is run unchanged, with our interpreter, in an empty directory; the file it
writes must hold the fields DESIGN.md gives that file, and read back through our
models and loaders.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autojob.bases.task_base import TASK_GROUP_FIELDS
from autojob.errors import MetadataError
from autojob.ids import check_id
from autojob.scheduler import SchedulerInputs
from autojob.settings import AutojobSettings
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .helpers import DESIGN_FIELDS

REPO = Path(__file__).resolve().parents[1]
SHARED_SEED = REPO.parent / "shared" / "seeds" / "000_321189c4557fb9f1.txt"
VENDORED_SEED = Path(__file__).resolve().parent / "data" / "seed_000.txt"

#: The headings the seed puts above its code blocks, in order.
HEADINGS = ["study_group.json", "study.json", "task_group.json", "task.json", "inputs.json"]

ID_PREFIX = {
    "study_group_id": "g",
    "study_id": "s",
    "task_group_id": "c",
    "task_id": "j",
}


def seed_path() -> Path:
    return SHARED_SEED if SHARED_SEED.is_file() else VENDORED_SEED


# -- extracting the blocks ---------------------------------------------------

_HEADING = re.compile(r"^[\w.-]+\.(?:json|txt)$")
_STATEMENTS = (
    ast.Import,
    ast.ImportFrom,
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
)


def is_code(line: str) -> bool:
    """Whether a line of the seed is Python code rather than prose.

    Blank and indented lines continue a block. Otherwise a line is code when it
    parses as a statement a code example is made of: an import, an assignment,
    a call, or the header of a compound statement (``with ...:``). A bare
    expression such as the heading ``study.json`` (valid Python!) is prose.
    """
    if not line.strip() or line[0] in " \t":
        return True
    try:
        tree = ast.parse(line)
    except SyntaxError:
        try:  # the header of a compound statement
            tree = ast.parse(line + "\n    pass")
        except SyntaxError:
            return False
        return len(tree.body) == 1 and not isinstance(tree.body[0], ast.Expr)
    if len(tree.body) != 1:
        return False
    node = tree.body[0]
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Call)
    return isinstance(node, _STATEMENTS)


@dataclass(frozen=True)
class Block:
    heading: str  #: the file the seed documents above the block
    first_line: int  #: 1-based line number in the seed
    code: str


def extract_blocks(text: str) -> list[Block]:
    """Return the seed's code blocks: from ``import json`` to the first prose."""
    lines = text.splitlines()
    blocks: list[Block] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if _HEADING.match(line.strip()):
            heading = line.strip()
        if line.rstrip() != "import json":
            i += 1
            continue
        start = i
        while i < len(lines) and is_code(lines[i]):
            i += 1
        body = lines[start:i]
        while body and not body[-1].strip():
            body.pop()
        blocks.append(Block(heading, start + 1, "\n".join(body) + "\n"))
    return blocks


@pytest.fixture(scope="module")
def blocks() -> list[Block]:
    return extract_blocks(seed_path().read_text(encoding="utf-8"))


def test_vendored_seed_is_a_verbatim_copy() -> None:
    if not SHARED_SEED.is_file():
        pytest.skip("the shared seed is not beside the repository")
    assert VENDORED_SEED.read_bytes() == SHARED_SEED.read_bytes()


def test_extractor_finds_the_five_blocks(blocks: list[Block]) -> None:
    assert [b.heading for b in blocks] == HEADINGS
    for block in blocks:
        compile(block.code, f"seed block at line {block.first_line}", "exec")
        lines = block.code.splitlines()
        assert lines[0] == "import json"
        # every block ends writing its file with json.dump inside a with
        assert lines[-1].startswith("    json.dump(")
        assert all(is_code(line) for line in lines)
    # the study group block, exactly as the seed shows it
    assert blocks[0].code.splitlines() == [
        "import json",
        "from pathlib import Path",
        "",
        "from autojob import SETTINGS",
        "from autojob.study_group import StudyGroup",
        "",
        "sg = StudyGroup()",
        "metadata_file = SETTINGS.STUDY_GROUP_METADATA_FILE",
        "",
        'with Path(metadata_file).open(mode="w", encoding="utf-8") as f:',
        "    json.dump(sg.model_dump(), f)",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("import json", True),
        ("from autojob import SETTINGS", True),
        ("sg = StudyGroup()", True),
        ('with Path(metadata_file).open(mode="w", encoding="utf-8") as f:', True),
        ("    json.dump(sg.model_dump(), f)", True),
        ("", True),
        ("study.json", False),
        ("parameterizations.json", False),
        ("This file is read when loading tasks from a directory and is used", False),
        ("A JSON dictionary containing study metadata such as the study ID.", False),
        ("Unstructured Directories", False),
    ],
)
def test_is_code(line: str, expected: bool) -> None:
    assert is_code(line) is expected


# -- running the blocks --------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    block: Block
    directory: Path
    written: dict[str, Any]  #: file name -> parsed JSON


def _default(setting: str) -> str:
    """The default of a settings field (independent of the test environment)."""
    value = AutojobSettings.model_fields[setting].default
    assert isinstance(value, str)
    return value


@pytest.fixture(scope="module")
def ran(blocks: list[Block], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """Run every block unchanged, each in its own empty directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOJOB_")}
    env.pop("PYTHONPATH", None)
    results = {}
    for block in blocks:
        directory = tmp_path_factory.mktemp(block.heading.replace(".", "_"))
        env["AUTOJOB_CONFIG_FILE"] = str(directory.parent / "no-such-config.toml")
        result = subprocess.run(
            [sys.executable, "-c", block.code],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (
            f"seed block at line {block.first_line} failed:\n{result.stderr}"
        )
        written = {}
        for path in sorted(directory.iterdir()):
            assert path.is_file(), path
            data = json.loads(path.read_text(encoding="utf-8"))
            assert isinstance(data, dict), path
            written[path.name] = data
        results[block.heading] = Ran(block, directory, written)
    return results


#: The settings field each block names its file by. The task.json block names
#: its file by TASK_GROUP_METADATA_FILE, as the seed has it (a slip in the seed:
#: its prose says the block creates task.json); it runs unchanged regardless.
FILE_SETTING = {
    "study_group.json": "STUDY_GROUP_METADATA_FILE",
    "study.json": "STUDY_METADATA_FILE",
    "task_group.json": "TASK_GROUP_METADATA_FILE",
    "task.json": "TASK_GROUP_METADATA_FILE",
    "inputs.json": "INPUTS_FILE",
}


def written_by(ran: dict[str, Ran], heading: str) -> dict[str, Any]:
    run = ran[heading]
    setting = FILE_SETTING[heading]
    assert f"SETTINGS.{setting}" in run.block.code
    name = _default(setting)
    assert list(run.written) == [name], f"the {heading} block wrote {list(run.written)}"
    return run.written[name]


def _assert_ids(data: dict[str, Any]) -> None:
    for field, prefix in ID_PREFIX.items():
        if field in data:
            value = data[field]
            assert check_id(value) == value
            assert len(value) == 10, value
            assert value.startswith(prefix), (field, value)


@pytest.mark.parametrize("heading", HEADINGS)
def test_block_writes_the_documented_fields(ran: dict[str, Ran], heading: str) -> None:
    data = written_by(ran, heading)
    expected = DESIGN_FIELDS[heading]
    if heading == "task_group.json":
        # the seed's code dumps TASK_GROUP_FIELDS only; the "tasks" list its
        # prose mentions is added by the tree writers (create_task_group_tree)
        expected = expected - {"tasks"}
        assert set(data) == set(TASK_GROUP_FIELDS)
    assert expected <= set(data), f"{heading} lacks {sorted(expected - set(data))}"
    _assert_ids(data)
    if "date_created" in data:
        assert isinstance(data["date_created"], str)


def test_study_group_block_reads_back(ran: dict[str, Ran]) -> None:
    data = written_by(ran, "study_group.json")
    assert data["studies"] == []
    assert data["name"] == ""
    assert data["notes"] == []
    # the file lists study ids; the model holds studies, so validate without it
    sg = StudyGroup.model_validate({k: v for k, v in data.items() if k != "studies"})
    assert sg.study_group_id == data["study_group_id"]
    assert sg.model_dump(mode="json") == data
    loaded = StudyGroup.from_directory(ran["study_group.json"].directory)
    assert loaded.model_dump(mode="json") == data


def test_study_block_reads_back(ran: dict[str, Ran]) -> None:
    data = written_by(ran, "study.json")
    assert data["task_groups"] == []
    study = Study.model_validate({k: v for k, v in data.items() if k != "task_groups"})
    assert study.study_id == data["study_id"]
    assert study.model_dump(mode="json") == data
    loaded = Study.from_directory(ran["study.json"].directory)
    assert loaded.model_dump(mode="json") == data


def test_task_group_block_reads_back(ran: dict[str, Ran]) -> None:
    data = written_by(ran, "task_group.json")
    group = TaskGroup.model_validate(data)
    assert group.tasks == []
    assert group.model_dump(mode="json") == {**data, "tasks": []}
    # the same fields, read as task metadata
    meta = TaskMetadata.model_validate(data)
    assert meta.model_dump(mode="json", include=set(TASK_GROUP_FIELDS)) == data


def test_task_and_inputs_blocks_read_back_as_a_task(ran: dict[str, Ran], tmp_path: Path) -> None:
    metadata = written_by(ran, "task.json")
    inputs = written_by(ran, "inputs.json")
    assert metadata["task_class"] is None  # TaskMetadata() alone names no class
    assert TaskMetadata.model_validate(metadata).model_dump(mode="json") == metadata
    # the seed's inputs.json is the flat form; we read it as task_inputs
    assert "task_inputs" not in inputs
    assert TaskInputs.model_validate(inputs).model_dump(mode="json") == inputs

    task_dir = tmp_path / "task"
    task_dir.mkdir()
    (task_dir / _default("TASK_METADATA_FILE")).write_text(json.dumps(metadata))
    (task_dir / _default("INPUTS_FILE")).write_text(json.dumps(inputs))
    task = Task.from_directory(task_dir)
    assert type(task) is Task
    expected_metadata = {**metadata, "task_class": "task"}
    assert task.task_metadata.model_dump(mode="json") == expected_metadata
    assert task.task_inputs.model_dump(mode="json") == inputs
    assert task.scheduler_inputs == SchedulerInputs()
    # without a task class on disk, magic mode cannot choose one: strict
    # mode refuses, relaxed mode falls back to the calling class
    with pytest.raises(MetadataError, match="no task class"):
        Task.from_directory(task_dir, magic_mode=True, strict_mode=True)
    relaxed = Task.from_directory(task_dir, magic_mode=True, strict_mode=False)
    assert relaxed.task_metadata.task_id == metadata["task_id"]
