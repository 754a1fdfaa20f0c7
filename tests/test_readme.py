"""The README's tour runs as written (so it never goes stale)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_starts_with_the_two_commands() -> None:
    first = blocks("bash")[0].splitlines()
    assert [line.split()[0] for line in first] == ["scripts/demo.sh", "scripts/test.sh"]
    root = README.parent
    for line in first:
        assert os.access(root / line.split()[0], os.X_OK)
    assert "scripts/test.sh" in (root / ".ci" / "run").read_text()


def test_python_tour_runs(tmp_path: Path) -> None:
    (code,) = blocks("python")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    assert (tmp_path / "screening" / "relax" / "ecut-400" / "task_group.json").is_file()


def test_command_line_tour_runs(tmp_path: Path) -> None:
    tour = blocks("bash")[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Cu-fcc" in result.stdout
    (task_dir,) = (tmp_path / "screening" / "relax" / "Cu-fcc").glob("j*")
    assert "#SBATCH --time=01:00:00" in (task_dir / "run.sh").read_text()
    assert "python calc.py --ecut 400" in (task_dir / "inputs.json").read_text()


def test_demo_example_builds_a_study(tmp_path: Path) -> None:
    example = README.parent / "examples" / "convergence_study.py"
    out = subprocess.run(
        [sys.executable, str(example), str(tmp_path), "--cutoffs", "3", "5"],
        capture_output=True,
        text=True,
        check=True,
    )
    root = Path(out.stdout.strip())
    scripts = sorted(root.glob("convergence/*/attempt-1/run.sh"))
    assert len(scripts) == 2
    for script in scripts:
        subprocess.run(["bash", str(script)], check=True, capture_output=True)
        assert '"energy"' in (script.parent / "outputs.json").read_text()
