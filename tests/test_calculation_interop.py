"""Calculations between autojob and python-autojob 0.0.2 (in its throwaway virtualenv).

python-autojob writes a study of two EMT relaxations; one is run there as its
job would run it (its own run.py imports a site package, ``ccu``, so the same
ASE calls are made directly) and left as python-autojob leaves a finished job:
``final.traj``, SLURM's ``slurm-<id>.out`` and the job's ``sacct --json``
record in ``job_stats.json``, which python-autojob's own parser reads. autojob
must load that tree strictly, know the finished relaxation for a success that
is never submitted again, harvest its energy and restart it from its last
geometry; and python-autojob must load the calculations autojob writes and runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read as ase_read

from autojob import SETTINGS
from autojob.store.state import State, read_state
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.calculation import Calculation
from tests.interop_helpers import run_reference

from .helpers import run

pytestmark = pytest.mark.interop


def read(path: Path) -> Any:
    return ase_read(path)


ENV = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

WRITE_AND_RUN = """
import json
import sys
import time
from pathlib import Path

import ase.io
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.optimize import BFGS
from autojob.harvest.harvesters.default import load_calculation_results
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.calculation import Calculation, CalculationInputs
from autojob.tasks.task import TaskInputs, TaskMetadata
from autojob.utils.parsing import parse_job_stats_file

dest = Path(sys.argv[1])
metal = bulk("Cu", "fcc", a=3.7, cubic=True)
metal.rattle(0.05, seed=1)
gas = molecule("N2", vacuum=4.0)


def relaxation(atoms, label):
    return Calculation(
        task_metadata=TaskMetadata(label=label),
        task_inputs=TaskInputs(atoms=atoms),
        calculation_inputs=CalculationInputs(
            calculator="emt", optimizer="BFGS", opt_params={"fmax": 0.02}
        ),
    )


sg = StudyGroup(name="ref", studies=[Study(name="relax", tasks=[
    relaxation(metal, "Cu"), relaxation(gas, "N2")])])
root = sg.to_directory(dest)
tasks = {json.loads(p.read_text())["label"]: p.parent for p in root.rglob("task.json")}

# the Cu job, as python-autojob's job script would run it and leave it
done = tasks["Cu"]
atoms = ase.io.read(done / "in.traj")
atoms.calc = EMT()
BFGS(atoms, logfile=None).run(fmax=0.02)
atoms.write(done / "final.traj")
(done / "slurm-4242.out").write_text("relaxed\\n")
end = int(time.time())
record = {"jobs": [{
    "job_id": 4242, "partition": "debug", "max_rss": "10.5 M",
    "state": {"current": ["COMPLETED"], "reason": "None"},
    "exit_code": {"status": ["SUCCESS"], "return_code": {"set": True, "number": 0}},
    "time": {"elapsed": 3, "start": end - 3, "end": end, "submission": end - 5},
    "steps": [{"nodes": {"list": ["localhost"]}}],
}]}
(done / "job_stats.json").write_text(json.dumps(record))
emit({
    "root": str(root),
    "tasks": {label: str(path) for label, path in tasks.items()},
    "energy": atoms.get_potential_energy(),
    "parsed_state": parse_job_stats_file(done)["state"],
    "converged": load_calculation_results(done)["converged"],
})
"""

LOAD_OURS = """
import sys
from pathlib import Path

from autojob.tasks.calculation import Calculation
from autojob.tasks.task import Task

task_dir = Path(sys.argv[1])
calculation = Calculation.from_directory(task_dir, strict_mode=True)
magic = Task.from_directory(task_dir, strict_mode=True, magic_mode=True)
emit({
    "class": type(magic).__name__,
    "formula": calculation.task_inputs.atoms.get_chemical_formula(),
    "calculator": calculation.calculation_inputs.calculator,
    "optimizer": calculation.calculation_inputs.optimizer,
    "energy": calculation.calculation_outputs.energy,
    "converged": calculation.calculation_outputs.converged,
    "outcome": str(calculation.task_outputs.outcome),
})
"""


@pytest.fixture(scope="module")
def reference_run(reference_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("reference_calculations")
    (work / "trees").mkdir()
    summary = run_reference(reference_python, WRITE_AND_RUN, str(work / "trees"), cwd=work)
    # python-autojob's own reading of what its finished job left
    assert summary["parsed_state"] == "COMPLETED" and summary["converged"] is True
    return summary


def test_a_python_autojob_calculation_tree_loads_strictly(reference_run: Any) -> None:
    sg = StudyGroup.from_directory(reference_run["root"], strict_mode=True)
    (study,) = sg.studies
    assert sorted(type(t).__name__ for t in study.tasks) == ["Calculation", "Calculation"]
    for task in study.tasks:
        assert isinstance(task, Calculation)
        label = task.task_metadata.label
        given = read(Path(reference_run["tasks"][label], "in.traj"))
        assert task.task_inputs.atoms == given
        assert task.calculation_inputs.calculator == "emt"
        assert task.calculation_inputs.opt_params == {"fmax": 0.02}


def test_its_finished_relaxation_is_a_success_never_submitted_again(
    reference_run: Any, tmp_path: Path
) -> None:
    done, idle = Path(reference_run["tasks"]["Cu"]), Path(reference_run["tasks"]["N2"])
    state = read_state(done)
    assert (state.state, state.job_id, state.accounted) == (State.SUCCESS, "4242", True)
    assert read_state(idle).state is State.IDLE
    plan = run("submit", reference_run["root"], "--dry-run", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert idle.name in plan.stdout and done.name not in plan.stdout
    status = json.loads(run("status", reference_run["root"], "--json", cwd=tmp_path).stdout)
    assert status["counts"] == {"success": 1, "idle": 1}


def test_its_energies_harvest(reference_run: Any, tmp_path: Path) -> None:
    archive = tmp_path / "archive.json"
    result = run("harvest", reference_run["root"], "-o", archive, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = {r["metadata"]["label"]: r for r in json.loads(archive.read_text())}
    outputs = records["Cu"]["outputs"]
    assert outputs["energy"] == pytest.approx(reference_run["energy"], abs=1e-12)
    assert outputs["converged"] is True and outputs["formula"] == "Cu4"
    assert records["Cu"]["state"]["state"] == "success"
    assert records["N2"]["outputs"] in (None, {})  # never run


def test_its_relaxation_restarts_from_its_last_geometry(reference_run: Any, tmp_path: Path) -> None:
    done = Path(reference_run["tasks"]["Cu"])
    result = run("restart", done, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (new,) = [p for p in done.parent.iterdir() if p.is_dir() and p != done]
    start, last = read(new / "in.traj"), read(done / SETTINGS.OUTPUT_ATOMS_FILE)
    assert np.array_equal(start.positions, last.positions)
    assert read_state(new).state is State.IDLE  # its sacct record stays with the old attempt
    assert not (new / SETTINGS.SCHEDULER_STATS_FILE).exists()


def test_python_autojob_loads_the_calculations_autojob_runs(
    reference_python: Path, tmp_path: Path
) -> None:
    task = Calculation.from_atoms(
        bulk("Cu", "fcc", a=3.7, cubic=True),
        label="Cu",
        calculator="emt",
        optimizer="BFGS",
        opt_params={"fmax": 0.02},
    )
    study = Study(name="ours", tasks=[task]).to_directory(tmp_path)
    assert run("submit", study, "--wait", cwd=tmp_path, env=ENV).returncode == 0
    (task_dir,) = [p.parent for p in study.rglob(SETTINGS.TASK_METADATA_FILE)]
    final = read(task_dir / SETTINGS.OUTPUT_ATOMS_FILE)
    loaded = run_reference(reference_python, LOAD_OURS, str(task_dir), cwd=tmp_path)
    assert loaded == {
        "class": "Calculation",
        "formula": "Cu4",
        "calculator": "emt",
        "optimizer": "BFGS",
        "energy": pytest.approx(final.get_potential_energy(), abs=1e-12),
        "converged": True,
        "outcome": "success",
    }


WRITE_OTHERS = """
import sys
from pathlib import Path

from ase.build import molecule
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.md import MolecularDynamics
from autojob.tasks.scan import BondScan
from autojob.tasks.task import TaskInputs, TaskMetadata

gas = molecule("N2", vacuum=4.0)
tasks = [
    MolecularDynamics(task_metadata=TaskMetadata(label="md"), task_inputs=TaskInputs(atoms=gas)),
    BondScan(task_metadata=TaskMetadata(label="scan"), task_inputs=TaskInputs(atoms=gas)),
]
sg = StudyGroup(name="others", studies=[Study(name="others", tasks=tasks)])
emit({"root": str(sg.to_directory(Path(sys.argv[1])))})
"""


def test_its_molecular_dynamics_and_bond_scans_load_strictly(
    reference_python: Path, tmp_path: Path
) -> None:
    (tmp_path / "trees").mkdir()
    root = run_reference(reference_python, WRITE_OTHERS, str(tmp_path / "trees"), cwd=tmp_path)
    (study,) = StudyGroup.from_directory(root["root"], strict_mode=True).studies
    loaded = {t.task_metadata.label: t for t in study.tasks}
    assert type(loaded["md"]).__name__ == "MolecularDynamics"
    assert type(loaded["scan"]).__name__ == "BondScan"
    for task in loaded.values():
        assert isinstance(task, Calculation)
        assert task.task_inputs.atoms is not None
        assert task.task_inputs.atoms.get_chemical_formula() == "N2"
    assert "md_params" in loaded["md"].input_sections()["md_inputs"]
    assert "calculation_inputs" not in loaded["md"].input_sections()  # kept as it was
    assert loaded["scan"].input_sections()["bond_scan_inputs"]["scan_step"] == 0.1
