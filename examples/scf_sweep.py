"""Build the sample study: a sweep of a toy self-consistent-field calculation.

Each task solves ``n = F(n)`` for a "density" ``n`` by damped fixed-point
iteration (``n <- (1 - mixing) * n + mixing * F(n)``), where evaluating ``F``
integrates numerically over a grid whose size is the cutoff, so a task takes a
second or two. Too much mixing makes the iteration oscillate, and those tasks
fail on purpose ("SCF did not converge"), as real ones do. Each task writes
``outputs.json``.

Run: ``python examples/scf_sweep.py DEST``; then ``autojob submit DEST/... --wait``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

CALCULATION = '''\
"""Damped fixed-point iteration n = F(n); F integrates over a grid of size cutoff."""
import json, math, sys

mixing, cutoff = float(sys.argv[1]), int(sys.argv[2])


def F(n):
    h = 1.0 / cutoff  # midpoint rule for the integral of 2.2 * exp(-n x) over [0, 1]
    return 2.2 * h * sum(math.exp(-n * (i + 0.5) * h) for i in range(cutoff))


n = 0.5
for step in range(1, 61):
    if not -50 < n < 50:
        print(f"SCF diverged at step {step} (mixing {mixing} is too large)", file=sys.stderr)
        sys.exit(1)
    new = (1 - mixing) * n + mixing * F(n)
    if abs(new - n) < 1e-10:
        json.dump({"mixing": mixing, "cutoff": cutoff, "n": new, "steps": step},
                  open("outputs.json", "w"))
        print(f"converged in {step} steps: n = {new:.10f}")
        sys.exit(0)
    n = new
print(f"SCF did not converge in 60 steps (mixing {mixing} is too large)", file=sys.stderr)
sys.exit(1)
'''


def build(dest: Path, mixings: list[float], cutoffs: list[int]) -> Path:
    """Write the sample study group into ``dest`` and return its directory."""
    groups = []
    for mixing, cutoff in itertools.product(mixings, cutoffs):
        label = f"mix{mixing}-cut{cutoff}"
        task = Task(
            task_metadata=TaskMetadata(label=label, tags=["scf-sweep"]),
            task_inputs=TaskInputs(command=f"python3 scf.py {mixing} {cutoff}"),
            scheduler_inputs={"time": "00:05:00", "cpus-per-task": 1},
        )
        groups.append(TaskGroup(label=label, tasks=[task]))
    study = Study(name="scf-sweep", task_groups=groups)
    root = StudyGroup(name="sample", studies=[study]).to_directory(
        dest,
        study_group_template="{name}-{i}",
        study_template="{name}",
        task_group_template="{label}",
    )
    for script_dir in (root / "scf-sweep").glob("*/*"):
        if script_dir.is_dir():
            (script_dir / "scf.py").write_text(CALCULATION)
    return root


def main() -> None:
    """Parse arguments and build the study."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--mixing", type=float, nargs="+", default=[0.3, 0.6, 1.2, 1.7])
    parser.add_argument("--cutoff", type=int, nargs="+", default=[150000, 300000])
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    print(build(args.dest, args.mixing, args.cutoff))


if __name__ == "__main__":
    main()
