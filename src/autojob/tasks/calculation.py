"""Calculations: an ASE structure, a calculator and an optimizer, run by ``run.py``.

A :class:`Calculation` (task class ``calculation``) is written as the files of
every task plus its structure (``in.traj``, the ``atoms_filename`` of its task
inputs) and its calculation script (``run.py``, rendered from a Jinja2
template). ``inputs.json`` holds, beside ``task_inputs``, the section
``calculation_inputs``: the calculator and optimizer by their ASE names, with
their parameters. The script reads them at run time, so a calculation runs
wherever ASE (and the calculator's code) is installed::

    from ase.build import bulk
    from autojob.tasks.calculation import Calculation

    calc = Calculation.from_atoms(
        bulk("Cu", cubic=True), calculator="emt", optimizer="BFGS", opt_params={"fmax": 0.01}
    )

ASE is the ``ase`` extra (``pip install 'autojob[ase]'``); the rest of autojob
never imports this module.
"""

from __future__ import annotations

import difflib
import inspect
import io
import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from autojob.bases.task_base import TaskBase, TaskInputsBase, TaskMetadataBase, TaskOutputsBase
from autojob.errors import InputError, MetadataError
from autojob.ids import set_unvalidated

try:
    import ase.io
    import ase.optimize
    from ase import Atoms
    from ase.calculators.calculator import Calculator, FileIOCalculator, get_calculator_class
except ImportError as exc:  # pragma: no cover - the ase extra is missing
    raise ImportError(
        f"calculations need ASE, which is not installed ({exc}): pip install 'autojob[ase]'"
    ) from exc

__all__ = [
    "OPTIMIZER_RUN_KEYS",
    "Calculation",
    "CalculationInputs",
    "CalculationOutputs",
    "CalculationTaskInputs",
    "last_geometry",
    "read_structure",
    "structure_bytes",
]

#: keys of ``opt_params`` given to the optimizer's ``run`` (the rest to its constructor)
OPTIMIZER_RUN_KEYS = ("fmax", "steps")
#: VASP's last geometry, where a calculation ran VASP through its own script
CONTCAR = "CONTCAR"


def _settings() -> Any:
    from autojob import SETTINGS  # noqa: PLC0415

    return SETTINGS


class CalculationInputs(BaseModel):
    """The ``calculation_inputs`` section of ``inputs.json`` (python-autojob's fields)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    calculator: str = Field(
        default="vasp", description="the ASE name of the calculator (emt, lj, vasp, ...)"
    )
    calc_params: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the calculator"
    )
    optimizer: str | None = Field(
        default=None,
        description="the name of an ASE optimizer (BFGS, FIRE, ...); none: a single point",
    )
    opt_params: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the optimizer; fmax and steps go to its run()",
    )
    analyses: dict[str, Any] = Field(
        default_factory=dict,
        description="post-calculation analyses (python-autojob's); the default "
        "script runs none, so a calculation with some needs its own template",
    )
    calculation_script: str = Field(
        default_factory=lambda: _settings().DEFAULT_CALCULATION_SCRIPT_FILE,
        description="the calculation script's name",
    )
    calculation_script_template: str = Field(
        default_factory=lambda: _settings().CALCULATION_SCRIPT_TEMPLATE,
        description="the Jinja2 template rendered into the calculation script",
    )


class CalculationTaskInputs(TaskInputsBase):
    """A calculation's ``task_inputs``: those of every task and its structure."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    atoms_filename: str = Field(
        default_factory=lambda: _settings().INPUT_ATOMS_FILE,
        description="the file the structure is written to and the script reads",
    )
    atoms: Atoms | None = Field(
        default=None,
        exclude=True,
        description="the structure (in atoms_filename, not JSON); given as a path, "
        "the structure file read (the last frame of a trajectory)",
    )

    @field_validator("atoms", mode="before")
    @classmethod
    def _read_path(cls, value: Any) -> Any:
        if isinstance(value, str | os.PathLike):
            return read_structure(value, "task_inputs.atoms")
        return value


class CalculationOutputs(TaskOutputsBase):
    """What a calculation's script reports in ``outputs.json``."""

    converged: bool | None = None
    steps: int | None = None
    energy: float | None = None
    max_force: float | None = None


class Calculation(TaskBase):
    """An ASE calculation: a structure, a calculator and an optional optimizer.

    Its command is ``python run.py`` (the calculation script) unless given.
    """

    INPUT_SECTIONS: ClassVar[tuple[str, ...]] = (
        "task_inputs",
        "scheduler_inputs",
        "calculation_inputs",
    )

    task_metadata: TaskMetadataBase = Field(default_factory=TaskMetadataBase)
    task_inputs: CalculationTaskInputs = Field(default_factory=CalculationTaskInputs)
    calculation_inputs: CalculationInputs = Field(default_factory=CalculationInputs)
    task_outputs: CalculationOutputs | None = None

    #: whether its command is ``python run.py`` and run.py is rendered (a class
    #: that only loads python-autojob's tasks sets False)
    RUNS_CALCULATION_SCRIPT: ClassVar[bool] = True
    #: its command defaults to running its calculation script
    REQUIRES_COMMAND: ClassVar[bool] = False

    @model_validator(mode="after")
    def _default_command(self) -> Self:
        if self.task_inputs.command is None and self.RUNS_CALCULATION_SCRIPT:
            script = shlex.quote(self.calculation_inputs.calculation_script)
            set_unvalidated(self.task_inputs, "command", f"python {script}")
        return self

    @classmethod
    def from_atoms(cls, atoms: Atoms, *, label: str = "", **calculation: Any) -> Self:
        """A calculation of ``atoms``; ``calculation``: fields of :class:`CalculationInputs`."""
        return cls(
            task_metadata=TaskMetadataBase(label=label),
            task_inputs=CalculationTaskInputs(atoms=atoms),
            calculation_inputs=CalculationInputs(**calculation),
        )

    def input_sections(self) -> dict[str, Any]:
        """Return the content of ``inputs.json``, with ``calculation_inputs``."""
        sections = super().input_sections()
        sections["calculation_inputs"] = self.calculation_inputs.model_dump(mode="json")
        return sections

    def own_scripts(self) -> dict[str, str]:
        """The calculation script and its template."""
        if not self.RUNS_CALCULATION_SCRIPT:
            return {}
        inputs = self.calculation_inputs
        return {inputs.calculation_script: inputs.calculation_script_template}

    def own_files(self) -> dict[str, bytes | str]:
        """The structure, checked with the calculator and optimizer and serialised.

        Raises:
            InputError: no structure, an unknown calculator or optimizer, or
                parameters they refuse; naming the field at fault.
        """
        inputs = self.calculation_inputs
        check_calculation(inputs)
        atoms = self.task_inputs.atoms
        if atoms is None:
            raise InputError(
                "a calculation needs a structure",
                field="task_inputs.atoms",
                hint="give one: Calculation.from_atoms(atoms, ...) or a structure file",
            )
        return {self.task_inputs.atoms_filename: structure_bytes(atoms)}

    def read_own_files(self, task_dir: str) -> None:
        """Read the structure back from ``atoms_filename`` (None when it is missing).

        Raises:
            MetadataError: the file is there but is not a structure ASE reads.
        """
        path = os.path.join(task_dir, self.task_inputs.atoms_filename)
        if os.path.exists(path):
            self.task_inputs.atoms = read_structure(path, "task_inputs.atoms_filename")

    def prepare_attempt(self, previous: Path, source: TaskBase, *, resume: bool) -> None:
        """Start this new attempt from the last geometry ``previous`` reached (``resume``).

        Else (a copy, or an attempt that reached no geometry), from the structure
        of ``source``.
        """
        atoms = source.task_inputs.atoms if isinstance(source, Calculation) else None
        found = last_geometry(previous, atoms) if resume else None
        if found is not None:
            self.task_inputs.atoms = found
        elif atoms is not None:
            self.task_inputs.atoms = atoms.copy()

    def follow(self, previous: Path) -> None:
        """Start from the last geometry ``previous`` reached, unless given a structure."""
        if self.task_inputs.atoms is None:
            found = last_geometry(previous)
            if found is not None:
                self.task_inputs.atoms = found


# -- checks ---------------------------------------------------------------------


def _unknown(word: str, choices: list[str], what: str, field: str) -> InputError:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    guess = f"did you mean {', '.join(close)}? " if close else ""
    return InputError(
        f"{word!r} is not an ASE {what}",
        field=field,
        hint=f"{guess}known: {', '.join(choices)}",
    )


def calculator_class(name: str) -> type[Calculator]:
    """The ASE calculator class called ``name``.

    Raises:
        InputError: ASE knows no such calculator, or its module fails to import.
    """
    from ase.calculators import calculator as module  # noqa: PLC0415

    names: list[str] = list(getattr(module, "names", []))
    try:
        found: type[Calculator] = get_calculator_class(name.lower())
    except (ImportError, KeyError, ValueError) as exc:
        if name.lower() in names:
            raise InputError(
                f"calculator {name!r} cannot be imported: {exc}",
                field="calculation_inputs.calculator",
                hint="install the package it needs",
            ) from exc
        raise _unknown(name, names, "calculator", "calculation_inputs.calculator") from exc
    return found


def optimizer_class(name: str) -> type[Any]:
    """The ASE optimizer class called ``name`` (``BFGS``, ``FIRE``, ...).

    Raises:
        InputError: :mod:`ase.optimize` has no optimizer of that name.
    """
    from ase.optimize.optimize import Dynamics  # noqa: PLC0415

    found = getattr(ase.optimize, name, None)
    if not (isinstance(found, type) and issubclass(found, Dynamics)):
        known = sorted(
            n
            for n, v in vars(ase.optimize).items()
            if isinstance(v, type) and issubclass(v, Dynamics)
        )
        raise _unknown(name, known, "optimizer", "calculation_inputs.optimizer")
    return found


def _check_calc_params(cls: type[Calculator], params: Mapping[str, Any]) -> None:
    """Refuse parameters the calculator refuses, or does not know (where it lists them)."""
    field = "calculation_inputs.calc_params"
    defaults = getattr(cls, "default_parameters", None) or {}
    if defaults and not issubclass(cls, FileIOCalculator):  # a complete list of its parameters
        for key in params:
            if key not in defaults:
                raise _unknown(key, sorted(defaults), f"{cls.__name__} parameter", field)
    try:
        cls(**params)
    except Exception as exc:  # any refusal of a third-party constructor
        raise InputError(
            f"{cls.__name__} refuses these parameters: {exc}",
            field=field,
            hint="see the calculator's documentation in ASE",
        ) from exc


def _check_opt_params(cls: type[Any], params: Mapping[str, Any]) -> None:
    field = "calculation_inputs.opt_params"
    run_params = {k: v for k, v in params.items() if k in OPTIMIZER_RUN_KEYS}
    built = {k: v for k, v in params.items() if k not in OPTIMIZER_RUN_KEYS}
    try:
        inspect.signature(cls.run).bind(None, **run_params)
        cls(Atoms("H"), logfile=None, **built)
    except Exception as exc:  # any refusal of the optimizer's constructor
        raise InputError(
            f"{cls.__name__} refuses these parameters: {exc}",
            field=field,
            hint=f"{', '.join(OPTIMIZER_RUN_KEYS)} go to run(); the others to the constructor",
        ) from exc


def check_calculation(inputs: CalculationInputs) -> None:
    """Check that ASE can build the calculator and optimizer ``inputs`` name.

    The inputs of a study's calculations are often alike: each distinct one is
    checked once a process.

    Raises:
        InputError: naming the field at fault.
    """
    key = json.dumps(inputs.model_dump(mode="json"), sort_keys=True, default=str)
    if key not in _CHECKED:
        _check_calculation(inputs)
        if len(_CHECKED) > _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED.add(key)


#: the calculation inputs checked already (as JSON), up to a bound
_CHECKED: set[str] = set()
_CHECKED_MAX = 4096


def _check_calculation(inputs: CalculationInputs) -> None:
    _check_calc_params(calculator_class(inputs.calculator), inputs.calc_params)
    if inputs.optimizer:
        _check_opt_params(optimizer_class(inputs.optimizer), inputs.opt_params)
    elif inputs.opt_params:
        raise InputError(
            "opt_params are given but no optimizer",
            field="calculation_inputs.opt_params",
            hint="name an optimizer (e.g. BFGS), or drop opt_params for a single point",
        )
    default_template = _settings().CALCULATION_SCRIPT_TEMPLATE
    if inputs.analyses and inputs.calculation_script_template == default_template:
        raise InputError(
            "the default calculation script runs no analyses",
            field="calculation_inputs.analyses",
            hint="run them from your own calculation_script_template, or drop them",
        )


# -- structures -----------------------------------------------------------------


def read_structure(
    source: str | os.PathLike[str], field: str | None = None, index: int | str = -1
) -> Atoms:
    """Read a structure (any format ASE reads; the last frame of a trajectory).

    Raises:
        MetadataError: the file is missing, unreadable or holds no structure.
    """
    path = Path(source)
    try:
        fmt = "traj" if path.suffix == ".traj" else None  # spares ASE its guess
        atoms = ase.io.read(path, index=index, format=fmt)
    except FileNotFoundError as exc:
        raise MetadataError("structure file not found", path=path, field=field) from exc
    except Exception as exc:  # ASE raises many kinds for a file it cannot parse
        raise MetadataError(
            f"not a structure ASE can read: {exc}",
            path=path,
            field=field,
            hint="give a .traj, .xyz, .cif, POSCAR or another format ase.io.read knows",
        ) from exc
    if not isinstance(atoms, Atoms):
        raise MetadataError("holds no structure", path=path, field=field)
    read: Atoms = atoms
    return read


def structure_bytes(atoms: Atoms) -> bytes:
    """``atoms`` as the bytes of an ASE trajectory file (one frame)."""
    buffer = io.BytesIO()
    ase.io.write(buffer, atoms, format="traj")
    return buffer.getvalue()


def _geometry_sources(task_dir: Path) -> list[Path]:
    settings = _settings()
    return [
        task_dir / settings.OUTPUT_ATOMS_FILE,
        task_dir / settings.OPTIMIZER_TRAJECTORY_FILE,
        task_dir / CONTCAR,
    ]


def last_geometry(task_dir: Path, template: Atoms | None = None) -> Atoms | None:
    """The last geometry a calculation reached, or None when it left none.

    The final structure, else the last readable frame of the optimizer's
    trajectory, else VASP's ``CONTCAR``. With ``template`` (the attempt's input
    structure), its tags, constraints, ``info`` and initial magnetic moments
    are kept when the atoms match.
    """
    for path in _geometry_sources(task_dir):
        if not path.is_file() or path.stat().st_size == 0:
            continue
        try:
            atoms = read_structure(path)
        except MetadataError:
            continue  # a trajectory cut off mid-frame by a time limit: the next source
        return _with_metadata(atoms, template)
    return None


def _with_metadata(atoms: Atoms, template: Atoms | None) -> Atoms:
    """A copy of ``atoms`` (no calculator) with the metadata of ``template``."""
    result: Atoms = atoms.copy()
    result.calc = None
    if template is None or len(template) != len(atoms):
        return result
    if list(template.numbers) != list(atoms.numbers):
        return result
    result.set_tags(template.get_tags())
    result.set_constraint([c.copy() for c in template.constraints])
    result.info = {**atoms.info, **template.info}
    result.set_initial_magnetic_moments(_magnetic_moments(atoms, template))
    return result


def _magnetic_moments(atoms: Atoms, template: Atoms) -> Any:
    """The final moments of the last run when it computed them, else the initial ones."""
    calc = atoms.calc
    moments = calc.results.get("magmoms") if calc is not None else None
    return moments if moments is not None else template.get_initial_magnetic_moments()
