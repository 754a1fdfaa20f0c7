"""Calculations: ASE structures relaxed with EMT, run, harvested and restarted for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.io import read as ase_read
from ase.io import write
from ase.optimize import BFGS

import autojob
from autojob import SETTINGS
from autojob.errors import InputError, MetadataError
from autojob.store.state import State, read_state
from autojob.study import Study
from autojob.task_group import TaskGroup
from autojob.tasks.calculation import Calculation

from .helpers import run, wait_until

FMAX = 0.02
#: python (with ASE) first on PATH, as in an activated environment: 'python run.py'
ENV = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def read(path: Path, index: int | str = -1) -> Any:
    """A structure (or, with index ':', a list of them) as ase.io.read gives it."""
    return ase_read(path, index)


def structures() -> dict[str, Atoms]:
    """A bulk metal, a molecule in a box and a slab whose bottom layer is fixed."""
    metal = bulk("Cu", "fcc", a=3.7, cubic=True)
    metal.rattle(0.05, seed=1)
    gas = molecule("N2", vacuum=4.0)
    gas.set_distance(0, 1, 1.3)
    gas.info["note"] = "stretched"
    slab = fcc111("Cu", size=(2, 2, 2), vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=slab.get_tags() == 2))
    slab.rattle(0.05, seed=2)
    return {"metal": metal, "gas": gas, "slab": slab}


def relaxed_by_ase(atoms: Atoms, fmax: float = FMAX) -> tuple[Atoms, int]:
    """What ASE itself gives for the same structure and settings."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    optimizer = BFGS(atoms, logfile=None)
    optimizer.run(fmax=fmax)
    return atoms, optimizer.nsteps


def calculation(atoms: Atoms, label: str, **opt: Any) -> Calculation:
    return Calculation.from_atoms(
        atoms,
        label=label,
        calculator="emt",
        optimizer="BFGS",
        opt_params={"fmax": FMAX, **opt},
    )


def write_study(tmp_path: Path, tasks: list[Calculation], **scheduler: str) -> Path:
    for task in tasks:
        task.task_inputs.auto_restart = bool(scheduler)
        task.scheduler_inputs = task.scheduler_inputs.model_validate(scheduler)
    groups = [TaskGroup(label=t.task_metadata.label, tasks=[t]) for t in tasks]
    return Study(name="relax", task_groups=groups).to_directory(
        tmp_path, study_template="{name}", task_group_template="{label}"
    )


def the_task(study: Path, label: str) -> Path:
    (task,) = [p for p in (study / label).iterdir() if p.is_dir()]
    return task


def harvested(root: Path, *harvesters: str) -> dict[str, dict[str, Any]]:
    names = [a for h in harvesters for a in ("--harvester", h)]
    result = run("harvest", root, "-o", root / "archive.json", *names, cwd=root)
    assert result.returncode == 0, result.stderr
    records = json.loads((root / "archive.json").read_text())
    return {r["metadata"]["label"]: r for r in records}


@pytest.fixture(scope="module")
def relaxed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three structures and one relaxation cut short, run by the local executor."""
    tmp_path = tmp_path_factory.mktemp("relaxed")
    tasks = [calculation(atoms, label) for label, atoms in structures().items()]
    tasks.append(calculation(structures()["metal"], "short", steps=1))
    study = write_study(tmp_path, tasks)
    result = run("submit", study, "--wait", cwd=tmp_path, env=ENV)
    assert result.returncode == 1, result.stdout + result.stderr  # 'short' fails
    return study


@pytest.mark.slow
def test_relaxations_give_what_ase_gives(relaxed: Path) -> None:
    records = harvested(relaxed, "calculation", "outputs")
    for label, atoms in structures().items():
        task = the_task(relaxed, label)
        assert read_state(task).state is State.SUCCESS, label
        expected, steps = relaxed_by_ase(atoms)
        outputs = records[label]["outputs"]
        assert outputs["energy"] == pytest.approx(expected.get_potential_energy(), abs=1e-9)
        assert np.allclose(outputs["forces"], expected.get_forces(), atol=1e-9)
        assert outputs["converged"] is True and outputs["steps"] == steps
        assert outputs["max_force"] <= FMAX
        assert outputs["formula"] == atoms.get_chemical_formula()
        assert np.allclose(outputs["cell"], atoms.cell[:])
        if label == "metal":  # computed where the cell is periodic in 3-D
            assert np.allclose(outputs["stress"], expected.get_stress(), atol=1e-9)
        final = read(task / SETTINGS.OUTPUT_ATOMS_FILE)
        assert np.allclose(final.positions, expected.positions, atol=1e-9)
    slab_in = structures()["slab"]
    slab_out = read(the_task(relaxed, "slab") / SETTINGS.OUTPUT_ATOMS_FILE)
    fixed = slab_in.get_tags() == 2
    assert np.array_equal(slab_out.positions[fixed], slab_in.positions[fixed])
    assert len(slab_out.constraints) == 1
    assert read(the_task(relaxed, "gas") / SETTINGS.OUTPUT_ATOMS_FILE).info["note"] == "stretched"


@pytest.mark.slow
def test_an_unconverged_relaxation_fails_with_its_cause(relaxed: Path) -> None:
    task = the_task(relaxed, "short")
    state = read_state(task)
    assert (state.state, state.reason, state.exit_code) == (State.FAILED, "not_converged", 3)
    outputs = harvested(relaxed, "calculation")["short"]["outputs"]
    assert outputs["converged"] is False and outputs["steps"] == 1
    assert outputs["max_force"] > FMAX
    listed = run("status", relaxed, "--json", cwd=relaxed)
    assert json.loads(listed.stdout)["counts"] == {"success": 3, "failed": 1}


@pytest.mark.slow
def test_structures_are_harvested_in_ase_json_on_request(relaxed: Path) -> None:
    from ase.io.jsonio import decode

    records = harvested(relaxed, "structures")
    task = the_task(relaxed, "gas")
    outputs = records["gas"]["outputs"]
    assert "energy" not in outputs  # only the harvesters named run
    start = decode(json.dumps(outputs["input_structure"]))
    end = decode(json.dumps(outputs["final_structure"]))
    assert start == read(task / "in.traj") and end == read(task / SETTINGS.OUTPUT_ATOMS_FILE)


@pytest.mark.slow
def test_restart_continues_from_the_last_geometry(relaxed: Path, tmp_path: Path) -> None:
    old = the_task(relaxed, "short")
    refused = run("restart", old, "--calc-set", "cutof=true", cwd=tmp_path)
    assert refused.returncode == 1 and "calculation_inputs.calc_params" in refused.stderr
    assert "asap_cutoff" in refused.stderr  # the parameter meant
    assert [p for p in (relaxed / "short").iterdir() if p.is_dir()] == [old]
    made = run("restart", old, "--calc-set", "asap_cutoff=true", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    (new,) = [p for p in (relaxed / "short").iterdir() if p.is_dir() and p != old]
    start = read(new / "in.traj")
    last = read(old / SETTINGS.OUTPUT_ATOMS_FILE)
    assert np.array_equal(start.positions, last.positions)
    assert start.calc is None  # the structure alone, not the old results
    inputs = json.loads((new / SETTINGS.INPUTS_FILE).read_text())["calculation_inputs"]
    assert inputs["calc_params"] == {"asap_cutoff": True}
    assert not (new / SETTINGS.OUTPUT_ATOMS_FILE).exists()  # never carried over


def _slow_first_attempt(template_dir: Path) -> str:
    """The package's run.py template, slowed to two steps a second in a first attempt."""
    text = (Path(str(autojob.__file__)).parent / "templates" / "run.py.j2").read_text()
    anchor = "    converged = bool(optimizer.run(**run))\n"
    assert anchor in text
    slow = (
        "{% if not metadata.tags %}\n    import time\n"
        "    optimizer.attach(lambda: time.sleep(0.5))\n{% endif %}\n"
    )
    (template_dir / "slow_run.py.j2").write_text(text.replace(anchor, slow + anchor))
    return "slow_run.py.j2"


@pytest.mark.slow
def test_a_relaxation_stopped_by_its_time_limit_restarts_from_its_last_geometry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    monkeypatch.setenv("AUTOJOB_TEMPLATE_DIR", str(templates))
    SETTINGS.TEMPLATE_DIR = templates
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.15, seed=3)
    task = calculation(atoms, "long")
    task.calculation_inputs.calculation_script_template = _slow_first_attempt(templates)
    study = write_study(tmp_path, [task], time="0:10")  # stopped after 5 s
    result = run("submit", study, cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr

    def attempts() -> list[Path]:
        return sorted((p for p in (study / "long").iterdir() if p.is_dir()), key=_created)

    wait_until(
        lambda: len(attempts()) == 2 and read_state(attempts()[1]).state in _ENDED,
        90,
        "a second attempt to end",
        details=lambda: [read_state(p) for p in attempts()],
        interval=0.5,
    )
    first, second = attempts()
    assert read_state(first).state is State.TIMEOUT
    assert not (first / SETTINGS.OUTPUT_ATOMS_FILE).exists()
    frames = read(first / SETTINGS.OPTIMIZER_TRAJECTORY_FILE, ":")
    assert len(frames) > 1  # it moved, and was stopped before converging
    start = read(second / "in.traj")
    assert np.array_equal(start.positions, frames[-1].positions)
    assert read_state(second).state is State.SUCCESS
    report = json.loads((second / SETTINGS.OUTPUTS_FILE).read_text())
    assert report["converged"] is True


_ENDED = {State.SUCCESS, State.FAILED, State.TIMEOUT}


def _created(task: Path) -> str:
    return str(json.loads((task / SETTINGS.TASK_METADATA_FILE).read_text())["date_created"])


def test_a_restart_reads_contcar_and_keeps_the_structures_metadata(tmp_path: Path) -> None:
    """No final structure and no trajectory: VASP's CONTCAR, with what it cannot hold kept."""
    slab = fcc111("Cu", size=(2, 2, 2), vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=slab.get_tags() == 2))
    slab.set_initial_magnetic_moments([0.5] * len(slab))
    slab.info["adsorbate"] = "none"
    old = the_task(write_study(tmp_path, [calculation(slab, "slab")]), "slab")
    moved = slab.copy()
    moved.positions[slab.get_tags() == 1] += [0.0, 0.0, 0.1]  # the free top layer moved
    write(old / "CONTCAR", moved, format="vasp")
    assert not read(old / "CONTCAR").get_tags().any()  # which a CONTCAR cannot hold
    made = run("restart", old, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    (new,) = [p for p in old.parent.iterdir() if p.is_dir() and p != old]
    start = read(new / "in.traj")
    assert np.allclose(start.positions, moved.positions)
    assert np.array_equal(start.get_tags(), slab.get_tags())
    assert start.info["adsorbate"] == "none"
    assert np.array_equal(start.get_initial_magnetic_moments(), [0.5] * len(slab))
    (fixed,) = start.constraints
    assert isinstance(fixed, FixAtoms)
    assert sorted(fixed.index) == sorted(np.flatnonzero(slab.get_tags() == 2))


# -- bad input: clear errors, nothing written ----------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "meant"),
    [
        ({"calculator": "emtt"}, "calculation_inputs.calculator", "emt"),
        ({"optimizer": "BFSG"}, "calculation_inputs.optimizer", "BFGS"),
        ({"calc_params": {"sigmaa": 1.0}, "calculator": "lj"}, "calc_params", "sigma"),
        ({"opt_params": {"fmax": 0.1, "maxstepp": 0.1}}, "calculation_inputs.opt_params", None),
    ],
)
def test_bad_calculation_inputs_are_refused_before_anything_is_written(
    tmp_path: Path, change: dict[str, Any], field: str, meant: str | None
) -> None:
    task = Calculation.from_atoms(bulk("Cu"), calculator="emt", optimizer="BFGS")
    for key, value in change.items():
        setattr(task.calculation_inputs, key, value)
    with pytest.raises(InputError) as caught:
        Study(name="bad", tasks=[task]).to_directory(tmp_path)
    assert field in str(caught.value)
    if meant is not None:
        assert meant in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_a_missing_or_unreadable_structure_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match=r"nowhere\.traj.*not found"):
        Calculation(task_inputs={"atoms": tmp_path / "nowhere.traj"})
    garbage = tmp_path / "broken.xyz"
    garbage.write_text("3\nnot\nan xyz file\n")
    with pytest.raises(MetadataError, match=r"broken\.xyz.*not a structure"):
        Calculation(task_inputs={"atoms": garbage})
    with pytest.raises(InputError, match=r"task_inputs\.atoms"):
        Study(name="empty", tasks=[Calculation()]).to_directory(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["broken.xyz"]


def test_a_calculation_round_trips_with_its_structure(tmp_path: Path) -> None:
    slab = structures()["slab"]
    slab.set_initial_magnetic_moments([0.5] * len(slab))
    write(tmp_path / "slab.cif", slab)
    task = Calculation(
        task_inputs={"atoms": slab},
        calculation_inputs={"calculator": "emt", "optimizer": "FIRE"},
    )
    group = task.task_metadata.task_group_id
    assert group is not None
    folder = Study(name="s", tasks=[task]).to_directory(tmp_path) / group
    loaded = Calculation.from_directory(folder / task.task_metadata.task_id, magic_mode=True)
    assert isinstance(loaded, Calculation)
    assert loaded.task_inputs.atoms == slab
    assert list(loaded.task_inputs.atoms.get_initial_magnetic_moments()) == [0.5] * len(slab)
    assert loaded.task_inputs.command == "python run.py"
    assert loaded.calculation_inputs == task.calculation_inputs


def test_the_core_needs_no_ase(tmp_path: Path) -> None:
    """Without ASE: the core imports, and the harvest of other tasks works."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "ase").mkdir()
    (blocker / "ase" / "__init__.py").write_text("raise ImportError('no ASE here')\n")
    script = (
        "import sys\n"
        "from autojob.harvest import harvest\n"
        "from autojob.study import Study\n"
        "from autojob.tasks.task import Task, TaskInputs\n"
        f"root = Study(name='s', tasks=[Task(task_inputs=TaskInputs(command='true'))])"
        f".to_directory({str(tmp_path)!r})\n"
        "tasks = list(harvest(root))\n"
        "print(len(tasks), [p for t in tasks for p in t.problems])\n"
        "try:\n    import autojob.tasks.calculation\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(blocker)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "1 []"
    assert "pip install 'autojob[ase]'" in result.stdout


# -- sweeps over structure files ------------------------------------------------------

SWEEP = """\
name = "screen"
task_class = "calculation"
structures = ["structures/*.traj", "structures/*.cif", "POSCAR"]

[parameters]
"calculation_inputs.calculator" = ["emt"]
"calculation_inputs.optimizer" = ["BFGS", "FIRE"]
"""


def test_a_sweep_makes_one_calculation_per_structure_and_combination(tmp_path: Path) -> None:
    (tmp_path / "structures").mkdir()
    given = {
        "structures/Cu.traj": bulk("Cu", cubic=True),
        "structures/Al.cif": bulk("Al", cubic=True),
        "POSCAR": bulk("Ni", cubic=True),
    }
    for name, atoms in given.items():
        write(tmp_path / name, atoms, format="vasp" if name == "POSCAR" else None)
    (tmp_path / "spec.toml").write_text(SWEEP)
    made = run("sweep", "spec.toml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    study = tmp_path / "screen"
    groups = sorted(p.name for p in study.iterdir() if p.is_dir())
    assert groups == [
        f"{stem}_calculator-emt_optimizer-{opt}"
        for stem in ("Al", "Cu", "POSCAR")
        for opt in ("BFGS", "FIRE")
    ]
    for name, atoms in given.items():
        stem = Path(name).name.split(".")[0]
        for opt in ("BFGS", "FIRE"):
            task = the_task(study, f"{stem}_calculator-emt_optimizer-{opt}")
            start = read(task / "in.traj")
            assert start.get_chemical_formula() == atoms.get_chemical_formula()
            assert np.allclose(start.positions, atoms.positions)
            inputs = json.loads((task / SETTINGS.INPUTS_FILE).read_text())
            assert inputs["calculation_inputs"]["optimizer"] == opt
            group = json.loads((task.parent / SETTINGS.TASK_GROUP_METADATA_FILE).read_text())
            assert group["parameters"]["structure"] == name
    again = run("sweep", "spec.toml", cwd=tmp_path)
    assert "nothing to add" in again.stdout


def test_a_sweep_refuses_structures_it_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "spec.toml").write_text(SWEEP)
    missing = run("sweep", "spec.toml", cwd=tmp_path)
    assert missing.returncode == 1 and "structures" in missing.stderr
    assert "matches no file" in missing.stderr
    (tmp_path / "plain.toml").write_text('name = "x"\ncommand = "true"\nstructures = ["*.traj"]\n')
    wrong = run("sweep", "plain.toml", cwd=tmp_path)
    assert wrong.returncode == 1 and 'task_class = "calculation"' in wrong.stderr
    assert sorted(os.listdir(tmp_path)) == ["plain.toml", "spec.toml"]


@pytest.mark.slurm
def test_a_relaxation_runs_on_the_slurm_cluster(tmp_path: Path) -> None:
    atoms = structures()["metal"]
    study = write_study(tmp_path, [calculation(atoms, "metal")])
    done = run("submit", study, "--executor", "slurm", "--wait", cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    task = the_task(study, "metal")
    state = read_state(task)
    assert (state.state, state.executor) == (State.SUCCESS, "slurm")
    outputs = harvested(study, "calculation")["metal"]["outputs"]
    expected, steps = relaxed_by_ase(atoms)
    assert outputs["energy"] == pytest.approx(expected.get_potential_energy(), abs=1e-9)
    assert outputs["converged"] is True and outputs["steps"] == steps


WORKFLOW = """\
name = "flow"
task_class = "calculation"
structures = ["Cu.traj"]

[parameters]
"calculation_inputs.calculator" = ["emt"]
"calculation_inputs.optimizer" = ["BFGS"]
"calculation_inputs.opt_params.fmax" = [0.05]

[[steps]]
name = "single"
after = ["sweep"]
task_class = "calculation"

[steps.set]
"calculation_inputs.calculator" = "emt"
"calculation_inputs.calc_params.asap_cutoff" = true

[[steps.references]]
set_path = "relaxed_energy"
get_path = "outputs.energy"
"""


@pytest.mark.slow
def test_a_single_point_follows_a_relaxation_on_its_final_structure(tmp_path: Path) -> None:
    atoms = structures()["metal"]
    write(tmp_path / "Cu.traj", atoms)
    (tmp_path / "spec.toml").write_text(WORKFLOW)
    assert run("sweep", "spec.toml", cwd=tmp_path).returncode == 0
    study = tmp_path / "flow"
    done = run("submit", study, "--wait", cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    tasks = {
        json.loads(p.read_text())["label"]: p.parent
        for p in study.rglob(SETTINGS.TASK_METADATA_FILE)
    }
    relax = next(path for label, path in tasks.items() if label.startswith("Cu"))
    (single,) = [path for path in tasks.values() if path != relax]
    wait_until(
        lambda: read_state(single).state in _ENDED, 60, "the single point to end", interval=0.5
    )
    assert read_state(single).state is State.SUCCESS
    relaxed = read(relax / SETTINGS.OUTPUT_ATOMS_FILE)
    assert np.array_equal(read(single / "in.traj").positions, relaxed.positions)
    inputs = json.loads((single / SETTINGS.INPUTS_FILE).read_text())
    assert inputs["task_inputs"]["relaxed_energy"] == relaxed.get_potential_energy()
    assert inputs["calculation_inputs"]["optimizer"] is None  # a single point
    report = json.loads((single / SETTINGS.OUTPUTS_FILE).read_text())
    expected = relaxed.copy()
    expected.calc = EMT(asap_cutoff=True)
    assert report["energy"] == pytest.approx(expected.get_potential_energy(), abs=1e-9)
    assert report["steps"] == 0
