"""The README's Python tour and sample study run as written (so they never go stale).

Its shell examples run in tests/test_examples.py, with every other example.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_starts_with_the_two_commands() -> None:
    marker, *first = blocks("bash")[0].splitlines()
    assert marker.startswith("# needs:")  # not run by test_examples: it runs the suite
    assert [line.split()[0] for line in first] == ["scripts/demo.sh", "scripts/test.sh"]
    root = README.parent
    for line in first:
        assert os.access(root / line.split()[0], os.X_OK)
    assert "scripts/test.sh" in (root / ".ci" / "run").read_text()


def test_python_tour_runs(tmp_path: Path) -> None:
    # the tour (python blocks starting "# file: NAME" are files a later example uses)
    (code,) = [b for b in blocks("python") if not b.startswith("# file:")]
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    assert (tmp_path / "screening" / "relax" / "ecut-400" / "task_group.json").is_file()


def test_sample_study_runs_with_failures_on_purpose(tmp_path: Path) -> None:
    example = README.parent / "examples" / "scf_sweep.py"
    args = [str(example), str(tmp_path), "--mixing", "0.5", "1.7", "--cutoff", "200"]
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)
    root = Path(out.stdout.strip())
    autojob = Path(sys.executable).parent / "autojob"
    result = subprocess.run(
        [str(autojob), "submit", str(root), "--wait"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "1 of 2 task(s) succeeded" in result.stdout
    status = subprocess.run(
        [str(autojob), "status", str(root), "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(status.stdout)["counts"] == {"success": 1, "failed": 1}
    (good,) = root.glob("scf-sweep/mix0.5-cut200/*/outputs.json")
    assert json.loads(good.read_text())["n"] > 1.2
