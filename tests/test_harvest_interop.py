"""Trees written by python-autojob 0.0.2 harvest like ours.

The reference implementation is installed in a throwaway virtualenv by the
shared fixtures of tests/conftest.py (never a dependency of ours); it writes
two study groups there, which are harvested here in strict mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autojob.harvest import archive, harvest, load_archive

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("tree", ["plain", "templated"])
def test_reference_tree_harvests(
    reference_trees: dict[str, Any], tree: str, tmp_path: Path
) -> None:
    summary = reference_trees[tree]
    root = Path(summary["path"])
    written = {k: v for s in summary["studies"] for k, v in s["tasks"].items()}

    tasks = list(harvest(root, strict=True, magic=True))

    assert sorted(t.task_id or "" for t in tasks) == sorted(written)
    for task in tasks:
        expected = written[task.task_id or ""]
        assert task.metadata["label"] == expected["metadata"]["label"]
        inputs = task.inputs["task_inputs"]
        for field, value in expected["inputs"].items():
            assert inputs[field] == value, field
        assert task.state_name == "idle"
        assert task.problems == []
        assert task.path == summary["dirs"][task.task_id or ""]
    groups = [g for s in summary["studies"] for g in s["task_groups"].values()]
    shared = next(ids for ids in groups if len(ids) == 3)
    attempts = sorted((t.attempts for t in tasks if t.task_id in shared), key=lambda a: a.number)
    assert [(a.number, a.count) for a in attempts] == [(1, 3), (2, 3), (3, 3)]
    assert [a.current for a in attempts] == [False, False, True]

    out = tmp_path / "archive.jsonl"
    assert archive(root, out, strict=True).tasks == len(written)
    assert load_archive(out) == list(harvest(root, strict=True))
