"""Build a sample study: a cutoff-convergence scan, one task group per cutoff.

Each task runs a small Python computation (a plane-wave-like sum whose value
converges as the cutoff grows) and writes its result to outputs.json, the file
harvesting reads. Run it with ``python examples/convergence_study.py DEST``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

CALCULATION = """\
import json, math, sys
cutoff = int(sys.argv[1])
energy = -sum(1.0 / (k * k) for k in range(1, cutoff + 1))
json.dump({"cutoff": cutoff, "energy": energy, "error": energy + math.pi ** 2 / 6},
          open("outputs.json", "w"))
print(f"cutoff={cutoff} energy={energy:.8f}")
"""


def build(dest: Path, cutoffs: list[int]) -> Path:
    """Write the study group into ``dest`` and return its directory."""
    groups = []
    for cutoff in cutoffs:
        command = f"python3 calc.py {cutoff}"
        task = Task(
            task_metadata=TaskMetadata(label=f"ecut-{cutoff}", tags=["convergence"]),
            task_inputs=TaskInputs(command=command, files_to_carry_over=["calc.py"]),
            scheduler_inputs={"time": "00:05:00", "cpus-per-task": 1},
        )
        groups.append(TaskGroup(label=f"ecut-{cutoff}", tasks=[task]))
    study = Study(name="convergence", task_groups=groups)
    group = StudyGroup(name="sample", studies=[study])
    root = group.to_directory(
        dest,
        study_group_template="{name}-{i}",
        study_template="{name}",
        task_group_template="{label}",
        task_template="attempt-{i}",
    )
    for task_dir in sorted(root.glob("convergence/*/attempt-*")):
        (task_dir / "calc.py").write_text(CALCULATION)
    return root


def main() -> None:
    """Parse arguments and build the study."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--cutoffs", type=int, nargs="+", default=[10, 100, 1000, 10000])
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    print(build(args.dest, args.cutoffs))


if __name__ == "__main__":
    main()
