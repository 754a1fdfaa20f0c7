"""Users of the released jobarchitect 0.7.0: its tools and its agent's name run unchanged.

jobarchitect 0.7.0 calls its agent ``_analyse_by_ids`` and runs a smart tool as
``python TOOL --dataset-path P --identifier ID --output-directory DIR``, DIR
being ``OUTPUT_ROOT/<item relpath>``, a directory the agent creates. Its
datasets were written by dtool 0.x, which dtoolcore no longer reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from .datasets_helpers import AGENT, BIN, ITEMS, SKETCHJOB, call, dataset_path, make_dataset

ANALYSE_BY_IDS = BIN / "_analyse_by_ids"

#: a tool written for jobarchitect 0.7.0: it writes into the directory it is given
TOOL_070 = """\
import argparse, os
import dtoolcore

parser = argparse.ArgumentParser()
parser.add_argument("--dataset-path")
parser.add_argument("--identifier")
parser.add_argument("--output-directory")
args = parser.parse_args()
dataset = dtoolcore.DataSet.from_uri(args.dataset_path)
with open(dataset.item_content_abspath(args.identifier)) as stream:
    text = stream.read()
assert os.path.isdir(args.output_directory)
with open(os.path.join(args.output_directory, "length.txt"), "w") as out:
    out.write(str(len(text)))
"""


def test_a_070_tool_runs_through_analyse_by_ids(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data")
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL_070)
    root = tmp_path / "out"
    done = call(
        ANALYSE_BY_IDS, f"--tool_path={tool}", f"--input_dataset_path={dataset_path(dataset)}",
        f"--output_root={root}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for relpath, content in ITEMS.items():
        assert (root / relpath / "length.txt").read_text() == str(len(content))
    written = {p: p.stat().st_mtime_ns for p in root.rglob("length.txt")}
    again = call(
        AGENT, "--output-directory", f"--tool_path={tool}",
        f"--input_dataset_path={dataset_path(dataset)}", f"--output_root={root}", cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in root.rglob("length.txt")} == written  # skipped


def test_sketchjob_writes_scripts_for_070_tools(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data")
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL_070)
    root = tmp_path / "out"
    sketch = call(SKETCHJOB, tool, dataset_path(dataset), root, "--output-directory", cwd=tmp_path)
    assert sketch.returncode == 0, sketch.stderr
    assert sketch.stdout.count("--output-directory") == 1
    script = tmp_path / "job.sh"
    script.write_text(sketch.stdout)
    ran = call(Path("/bin/bash"), script, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert sorted(p.parent.relative_to(root).as_posix() for p in root.rglob("length.txt")) == (
        sorted(ITEMS)
    )


def test_an_old_dtool_dataset_gets_a_clear_error(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / ".dtool").mkdir(parents=True)
    (old / "data").mkdir()
    (old / "data" / "a.txt").write_text("hello")
    admin = {"dtool_version": "0.9.0", "type": "dataset", "name": "old", "manifest_root": "data",
             "uuid": "1e47c076-2eb0-43b2-b219-fc7d419f1f16",
             "manifest_path": ".dtool/manifest.json"}  # fmt: skip
    (old / ".dtool" / "dtool").write_text(json.dumps(admin))
    manifest = {"dtool_version": "0.9.0", "hash_function": "shasum",
                "file_list": [{"path": "a.txt", "hash": "x", "size": 5, "mtime": 1.0}]}  # fmt: skip
    (old / ".dtool" / "manifest.json").write_text(json.dumps(manifest))
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL_070)
    for command, args in (
        (ANALYSE_BY_IDS, [f"--tool_path={tool}", f"--input_dataset_path={old}", "--output_root=o"]),
        (SKETCHJOB, [tool, old, "o"]),
    ):
        result = call(command, *args, cwd=tmp_path)
        assert result.returncode == 1
        assert "dtool 0.9.0" in result.stderr and "dtool create" in result.stderr
        assert "bug" not in result.stderr
    assert not (tmp_path / "o").exists()
