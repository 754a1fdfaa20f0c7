"""Harvesters of calculations: energies, forces and structures, read with ASE.

``calculation`` runs on the calculations of autojob and python-autojob
(task classes ``calculation``, ``bondscan``, ``moleculardynamics``). From the
final structure (``final.traj``, which keeps the calculator's results) it
gives ``energy``, ``forces`` (with the constraints applied, as
``atoms.get_forces()`` gives them), ``max_force`` (the largest of them),
``stress`` where computed, ``formula``, ``cell``, ``pbc`` and ``natoms``;
from ``outputs.json`` (written by autojob's ``run.py``) ``converged`` and
``steps``. A tree python-autojob ran has no such file: there
a calculation converged when it left its final structure (its rule), and no
further than the ``fmax`` of its ``opt_params`` where it has one.

``structures`` (chosen by name: ``--harvester calculation --harvester
structures``) adds the input and final structures themselves, in ASE's JSON
form (``ase.io.jsonio``), as ``input_structure`` and ``final_structure``.

ASE is imported when a calculation is harvested, so that an installation
without the ``ase`` extra harvests every other task as before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from autojob import SETTINGS
from autojob.errors import MetadataError
from autojob.harvest.harvesters import Harvester, TaskFiles, read_json_file

__all__ = ["CALCULATION_CLASSES", "CalculationHarvester", "StructuresHarvester"]

#: the task classes of calculations, autojob's and python-autojob's
CALCULATION_CLASSES = ("calculation", "bondscan", "moleculardynamics")
#: how far over fmax a force may be and still count as converged (rounding)
_FMAX_SLACK = 1e-6


def _read(path: str, field: str) -> Any:
    """The last structure in ``path``, with the results kept beside it.

    Raises:
        MetadataError: ASE is not installed, or cannot read the file.
    """
    try:
        from autojob.tasks.calculation import read_structure  # noqa: PLC0415  (needs ASE)
    except ImportError as exc:
        raise MetadataError(
            f"harvesting a calculation needs ASE: {exc}",
            path=path,
            hint="pip install 'autojob[ase]'",
        ) from exc
    return read_structure(path, field)


def _results(atoms: Any) -> dict[str, Any]:
    """What the calculator attached to ``atoms`` computed, as JSON values."""
    calc = atoms.calc
    found: dict[str, Any] = {}
    results = calc.results if calc is not None else {}
    if "energy" in results:
        found["energy"] = float(results["energy"])
    if "free_energy" in results:
        found["free_energy"] = float(results["free_energy"])
    if "forces" in results:
        # as atoms.get_forces() gives them: with the constraints applied, as an
        # optimizer sees them (zero on a fixed atom)
        forces = atoms.get_forces().tolist()
        found["forces"] = forces
        norms = [math.sqrt(sum(f * f for f in row)) for row in forces]
        found["max_force"] = max(norms, default=0.0)
    if "stress" in results:
        found["stress"] = results["stress"].tolist()
    if "magmom" in results:
        found["magmom"] = float(results["magmom"])
    return found


def _describe(atoms: Any) -> dict[str, Any]:
    return {
        "formula": atoms.get_chemical_formula(),
        "natoms": len(atoms),
        "cell": atoms.cell.tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
    }


def _fmax(task: TaskFiles) -> float | None:
    calculation = task.inputs.get("calculation_inputs")
    if not isinstance(calculation, Mapping) or not calculation.get("optimizer"):
        return None
    params = calculation.get("opt_params")
    fmax = params.get("fmax") if isinstance(params, Mapping) else None
    return float(fmax) if isinstance(fmax, int | float) else None


class CalculationHarvester(Harvester):
    """Energy, forces, stress and convergence of a calculation (see the module)."""

    name = "calculation"
    task_classes = CALCULATION_CLASSES
    version = "1"

    @property
    def files(self) -> tuple[str, ...]:  # type: ignore[override]
        """The final structure and the outputs file named in SETTINGS."""
        return (SETTINGS.OUTPUT_ATOMS_FILE, SETTINGS.OUTPUTS_FILE)

    def harvest(self, task: TaskFiles) -> Mapping[str, Any] | None:
        """Read the final structure and the script's report, if the calculation left them."""
        final = SETTINGS.OUTPUT_ATOMS_FILE
        report = None
        if SETTINGS.OUTPUTS_FILE in task.names:
            report = read_json_file(task.file(SETTINGS.OUTPUTS_FILE))
        if final not in task.names:
            return {"converged": False} if report is not None else None
        atoms = _read(task.file(final), final)
        found = {**_results(atoms), **_describe(atoms)}
        if report is not None and isinstance(report.get("converged"), bool):
            found["converged"] = report["converged"]
            steps = report.get("steps")
            found["steps"] = steps if isinstance(steps, int) else None
        else:  # python-autojob's rule: converged when the final structure is there
            fmax = _fmax(task)
            found["converged"] = fmax is None or found.get("max_force", 0.0) <= fmax + _FMAX_SLACK
        return found


class StructuresHarvester(Harvester):
    """The input and final structures of a calculation, in ASE's JSON form."""

    name = "structures"
    task_classes = ()  # only when named
    version = "1"

    @property
    def files(self) -> tuple[str, ...]:  # type: ignore[override]
        """The final structure named in SETTINGS (the input one is never rewritten)."""
        return (SETTINGS.OUTPUT_ATOMS_FILE,)

    def harvest(self, task: TaskFiles) -> Mapping[str, Any] | None:
        """Both structures, where present."""
        inputs = task.inputs.get("task_inputs")
        name = inputs.get("atoms_filename") if isinstance(inputs, Mapping) else None
        found: dict[str, Any] = {}
        places = (("input_structure", name), ("final_structure", SETTINGS.OUTPUT_ATOMS_FILE))
        for key, file_name in places:
            if isinstance(file_name, str) and file_name in task.names:
                found[key] = _as_json(_read(task.file(file_name), file_name))
        return found or None


def _as_json(atoms: Any) -> Any:
    """``atoms`` in ASE's JSON form (``ase.io.jsonio``), as a JSON value."""
    from ase.io.jsonio import encode  # noqa: PLC0415

    atoms = atoms.copy()  # the structure alone: results are harvested as outputs
    return json.loads(encode(atoms))
