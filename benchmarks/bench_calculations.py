"""Creating and harvesting N EMT calculations, against plain ASE and python-autojob.

    .venv/bin/python benchmarks/bench_calculations.py [--size 1000]
        [--reference-python VENV/bin/python]

Creating: autojob writes N calculations (``Study(tasks=[Calculation...])
.to_directory``: checks, ``in.traj``, ``inputs.json``, ``task.json``, ``run.sh``,
``run.py``), against ``plain``: the same directories and files written with
``ase.io.write`` and ``json.dump`` and the scripts' text copied (target <= 1.5x).

Harvesting: each calculation's results (``final.traj`` with energy, forces and
stress; ``outputs.json``) are written once, untimed, as its ``run.py`` would.
autojob's harvest (``archive`` with the ``calculation`` and ``outputs``
harvesters, into ``archive.json``, no cache) is timed against ``plain``: a walk
reading every ``final.traj`` with ``ase.io.read`` and every ``outputs.json``
into the same values, dumped as one JSON file (target <= 2x), and against
python-autojob 0.0.2's ``harvest`` of the same tree, run with the interpreter
of a virtualenv where it is installed (``--reference-python``; target: autojob
>= 5x faster). Its harvest returns the tasks and writes no archive, so it does
less than autojob there. Each run is the best of ``--repeats`` (default 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from autojob import SETTINGS
from autojob.harvest import archive
from autojob.study import Study
from autojob.tasks.calculation import Calculation

REFERENCE_HARVEST = """
import json, logging, sys, time
logging.disable(logging.CRITICAL)
from autojob.harvest.harvest import harvest
started = time.perf_counter()
tasks = harvest(sys.argv[1], strictness="relaxed")
took = time.perf_counter() - started
outputs = [getattr(t, "calculation_outputs", None) for t in tasks]
energies = sum(1 for o in outputs if o is not None and o.energy is not None)
print(json.dumps({"seconds": took, "tasks": len(tasks), "energies": energies}))
"""


def structures(n: int) -> list[Any]:
    base = bulk("Cu", "fcc", a=3.7, cubic=True)
    made = []
    for i in range(n):
        atoms = base.copy()
        atoms.rattle(0.02, seed=i)
        made.append(atoms)
    return made


def create_ours(dest: Path, atoms: list[Any]) -> None:
    tasks = [
        Calculation.from_atoms(
            a, label=f"Cu-{i}", calculator="emt", optimizer="BFGS", opt_params={"fmax": 0.02}
        )
        for i, a in enumerate(atoms)
    ]
    Study(name="bench", tasks=tasks).to_directory(dest)


def create_plain(dest: Path, atoms: list[Any], scripts: dict[str, str]) -> None:
    """The same files: a directory per group and task, JSON by json.dump, traj by ASE."""
    study = dest / "plain"
    study.mkdir()
    (study / "study.json").write_text(json.dumps({"name": "bench"}, indent=4))
    for i, a in enumerate(atoms):
        task = study / f"c{i:09d}" / f"j{i:09d}"
        task.mkdir(parents=True)
        (task.parent / "task_group.json").write_text(json.dumps({"label": f"Cu-{i}"}, indent=4))
        write(task / "in.traj", a, format="traj")
        inputs = {
            "task_inputs": {"command": "python run.py", "atoms_filename": "in.traj"},
            "calculation_inputs": {
                "calculator": "emt",
                "optimizer": "BFGS",
                "opt_params": {"fmax": 0.02},
            },
        }
        (task / "inputs.json").write_text(json.dumps(inputs, indent=4))
        (task / "task.json").write_text(json.dumps({"label": f"Cu-{i}"}, indent=4))
        for name, text in scripts.items():
            (task / name).write_text(text)
            os.chmod(task / name, 0o755)  # noqa: S103  (scripts, as autojob makes them)


def write_results(root: Path) -> int:
    """What each run.py would leave, written once (untimed)."""
    count = 0
    for inputs in root.rglob(SETTINGS.INPUTS_FILE):
        task = inputs.parent
        atoms: Any = read(task / "in.traj")
        rng = np.random.default_rng(count)
        results = {
            "energy": float(rng.normal()),
            "forces": rng.normal(size=(len(atoms), 3)) * 0.01,
            "stress": rng.normal(size=6) * 0.01,
        }
        atoms.calc = SinglePointCalculator(atoms, **results)
        write(task / SETTINGS.OUTPUT_ATOMS_FILE, atoms, format="traj")
        (task / SETTINGS.OUTPUTS_FILE).write_text(json.dumps({"converged": True, "steps": 5}))
        count += 1
    return count


def harvest_ours(root: Path, out: Path) -> int:
    done = archive(root, out, harvesters=["calculation", "outputs"], incremental=False)
    return done.tasks


def harvest_plain(root: Path, out: Path) -> int:
    """A walk reading the same files into the same values, dumped as one JSON list."""
    records = []
    for dirpath, _dirs, files in os.walk(root):
        if SETTINGS.OUTPUT_ATOMS_FILE not in files:
            continue
        atoms: Any = read(os.path.join(dirpath, SETTINGS.OUTPUT_ATOMS_FILE), format="traj")
        forces = atoms.get_forces()
        with open(os.path.join(dirpath, SETTINGS.OUTPUTS_FILE), encoding="utf-8") as stream:
            report = json.load(stream)
        with open(os.path.join(dirpath, SETTINGS.TASK_METADATA_FILE), encoding="utf-8") as stream:
            metadata = json.load(stream)
        records.append(
            {
                "path": os.path.relpath(dirpath, root),
                "metadata": metadata,
                "outputs": {
                    "energy": atoms.get_potential_energy(),
                    "forces": forces.tolist(),
                    "max_force": float(np.linalg.norm(forces, axis=1).max()),
                    "stress": atoms.get_stress().tolist(),
                    "formula": atoms.get_chemical_formula(),
                    "cell": atoms.cell.tolist(),
                    **report,
                },
            }
        )
    out.write_text(json.dumps(records))
    return len(records)


def best(repeats: int, run: Callable[[int], object]) -> float:
    times = []
    for attempt in range(repeats):
        started = time.perf_counter()
        run(attempt)
        times.append(time.perf_counter() - started)
    return min(times)


def reference_harvest(python: str, root: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOJOB_")}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [python, "-c", REFERENCE_HARVEST, str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=True,
        timeout=3600,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where the trees go (default: temp)")
    parser.add_argument("--reference-python", default=None, help="python-autojob's interpreter")
    args = parser.parse_args()
    atoms = structures(args.size)
    work = Path(tempfile.mkdtemp(prefix="bench-calculations-", dir=args.dir))
    try:
        (work / "warm").mkdir()
        create_ours(work / "warm", atoms[:5])  # imports and templates, untimed
        sample = next((work / "warm").rglob(SETTINGS.INPUTS_FILE)).parent
        scripts = {n: (sample / n).read_text() for n in ("run.sh", "run.py")}

        def ours(i: int) -> None:
            (work / f"ours{i}").mkdir()
            create_ours(work / f"ours{i}", atoms)

        def plain(i: int) -> None:
            (work / f"plain{i}").mkdir()
            create_plain(work / f"plain{i}", atoms, scripts)

        created_ours = best(args.repeats, ours)
        created_plain = best(args.repeats, plain)
        print(
            f"create {args.size} calculations: autojob {created_ours:.2f} s, "
            f"plain ASE {created_plain:.2f} s, ratio {created_ours / created_plain:.2f}x "
            f"(target <= 1.5x)"
        )
        tree = work / "ours0"
        assert write_results(tree) == args.size
        harvested_ours = best(args.repeats, lambda i: harvest_ours(tree, work / f"a{i}.json"))
        harvested_plain = best(args.repeats, lambda i: harvest_plain(tree, work / f"p{i}.json"))
        assert len(json.loads((work / "a0.json").read_text())) == args.size
        print(
            f"harvest {args.size} calculations: autojob {harvested_ours:.2f} s, "
            f"plain ASE {harvested_plain:.2f} s, ratio "
            f"{harvested_ours / harvested_plain:.2f}x (target <= 2x)"
        )
        if args.reference_python:
            ref = reference_harvest(args.reference_python, tree)
            assert ref["tasks"] == args.size and ref["energies"] == args.size, ref
            print(
                f"harvest {args.size} calculations: python-autojob {ref['seconds']:.2f} s, "
                f"autojob {ref['seconds'] / harvested_ours:.1f}x faster (target >= 5x)"
            )
        else:
            print("python-autojob: not measured (give --reference-python)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
