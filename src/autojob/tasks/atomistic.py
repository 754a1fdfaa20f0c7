"""python-autojob's other atomistic task classes, so that its trees load strictly.

``moleculardynamics`` (its ``md_inputs`` section) and ``bondscan`` (a
calculation with ``bond_scan_inputs``) load with their structure, and every
section of their ``inputs.json`` is kept and written back as it was. autojob
has no script that runs them: a task of these classes runs the command its
``task_inputs.command`` names, and without one is refused when submitted.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from autojob.tasks.calculation import Calculation, CalculationTaskInputs, structure_bytes

__all__ = ["BondScan", "MolecularDynamics"]


class _LoadedOnly(Calculation):
    """A calculation autojob loads and writes back, but has no script to run."""

    RUNS_CALCULATION_SCRIPT: ClassVar[bool] = False
    REQUIRES_COMMAND: ClassVar[bool] = True


class MolecularDynamics(_LoadedOnly):
    """python-autojob's molecular dynamics task (its ``md_inputs`` section is kept)."""

    INPUT_SECTIONS: ClassVar[tuple[str, ...]] = (*Calculation.INPUT_SECTIONS, "md_inputs")

    task_inputs: CalculationTaskInputs = Field(default_factory=CalculationTaskInputs)

    def input_sections(self) -> dict[str, object]:
        """The sections as read: no ``calculation_inputs`` where it had none."""
        sections = super().input_sections()
        if "calculation_inputs" not in self.model_fields_set:
            del sections["calculation_inputs"]
        return sections

    def own_files(self) -> dict[str, bytes | str]:
        """Its structure, written back where it has one; no calculation is checked."""
        atoms = self.task_inputs.atoms
        return {} if atoms is None else {self.task_inputs.atoms_filename: structure_bytes(atoms)}


class BondScan(_LoadedOnly):
    """python-autojob's bond scan (its ``bond_scan_inputs`` section is kept)."""

    INPUT_SECTIONS: ClassVar[tuple[str, ...]] = (*Calculation.INPUT_SECTIONS, "bond_scan_inputs")
