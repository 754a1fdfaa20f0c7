"""Shared task ids are found with a filter of fixed size, and confirmed by a second walk.

A filter far too small for the tree makes most ids suspects; only the real
copy may be reported, naming both of its paths.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from autojob import SETTINGS
from autojob.harvest.identity import IdCheck
from autojob.store.walk import walk_task_dirs
from autojob.study import Study
from autojob.tasks.task import Task, TaskInputs, TaskMetadata


def noted(root: str, check: IdCheck) -> None:
    for top, rel, *_ in walk_task_dirs(root):
        meta = json.loads(Path(top, SETTINGS.TASK_METADATA_FILE).read_text())
        check.note(meta["task_id"], rel)


def test_only_the_real_copy_is_reported_however_full_the_filter(tmp_path: Path) -> None:
    tasks = [
        Task(task_inputs=TaskInputs(command="true"), task_metadata=TaskMetadata(label=f"t{i}"))
        for i in range(30)
    ]
    study = Study(name="s", tasks=tasks).to_directory(tmp_path)
    group = next(p for p in sorted(study.iterdir()) if p.is_dir())
    original = next(p for p in group.iterdir() if p.is_dir())
    shutil.copytree(original, group / "zz-copy")
    root = os.path.realpath(study)
    tiny, full = IdCheck(root, bits=64), IdCheck(root)
    noted(root, tiny)
    noted(root, full)
    assert len(tiny.repeats) > 1  # a 64-bit filter suspects many ids
    for check in (tiny, full):
        (problem,) = check.problems()
        assert problem[0] == os.path.relpath(group / "zz-copy", root)
        assert os.path.relpath(original, root) in problem[1]["message"]
