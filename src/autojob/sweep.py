"""Parameter sweeps: a study specification and its combinations (pure models).

A :class:`SweepSpec` names a study, the command (or task class) of its tasks,
fixed inputs, scheduler inputs, the parameters to vary (``parameters``: every
combination, as a product; ``zip``: lists taken side by side) and the
templates of directory names and labels. Each combination becomes one task
group holding one task whose inputs carry the parameter values. ``steps``
adds workflow steps after the sweep (see :mod:`autojob.workflow`).

A parameter name is a dotted path into ``inputs.json`` (a bare name means
``task_inputs``; ``scheduler_inputs.mem`` varies memory). ``{name}`` in the
command is replaced by the shell-quoted value; in labels, directory names and
the paths of input files, by the value as text.

``files`` names input files copied (or linked) into every task: a path, or a
table ``{src, dest, link}``; ``src`` is relative to the spec file and, like
``dest``, may hold ``{parameter}``, ``{label}`` and ``{i}`` for per-combination
files (``structures/{name}.traj``). Each task group records its combination's
values under ``parameters`` in ``task_group.json``, so a second run of a grown
spec can tell which combinations exist.
"""

from __future__ import annotations

import shlex
import string
import uuid
from array import array
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from autojob.bases.input_files import InputFile
from autojob.bases.task_base import TaskBase
from autojob.errors import AutojobError, InputError
from autojob.input_keys import KeyProblem, check_input_document, path_problem
from autojob.plugins import get_task_class
from autojob.study import Study
from autojob.task_group import TaskGroup
from autojob.workflow import (
    Progression,
    Source,
    Step,
    VariableReference,
    Workflow,
    WorkflowGraph,
    split_set_path,
)

__all__ = [
    "SHARE_LISTS",
    "STEP_NAMESPACE",
    "SpecFile",
    "SpecKeyError",
    "SpecReference",
    "SweepSpec",
    "SweepStep",
    "build_study",
    "step_id",
    "sweep_groups",
]

#: step ids of named steps are UUID5s in this namespace, so a spec always gives the same ids
STEP_NAMESPACE = uuid.UUID("6f1c2f4e-8f1a-4d55-9a55-0a7b6c1d2e3f")


#: the parameter ``structures`` make: a structure file's path, relative to the spec
STRUCTURE = "structure"


def _stem(path: str) -> str:
    """A structure file's name without its suffix: its part of a label."""
    name = path.rsplit("/", 1)[-1]
    return name.split(".", 1)[0] if not name.startswith(".") else name


def step_id(name: str) -> str:
    """The step id (a UUID) of the step called ``name`` in a sweep spec."""
    return str(uuid.uuid5(STEP_NAMESPACE, name))


class SpecKeyError(ValueError):
    """A problem in a spec at a known key (``loc``: the path of keys to it)."""

    def __init__(self, message: str, *loc: str | int, hint: str | None = None) -> None:
        super().__init__(message)
        self.loc = loc
        self.hint = hint


def _refuse(problem: KeyProblem | None, *loc: str | int) -> None:
    if problem is not None:
        raise SpecKeyError(problem.message, *loc, hint=problem.hint)


def _task_class(name: str) -> type[TaskBase] | None:
    try:
        return get_task_class(name)
    except AutojobError:
        return None  # reported where the study is built


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


class SpecFile(BaseModel):
    """An input file of every task: ``src`` (relative to the spec), ``dest``, ``link``."""

    model_config = ConfigDict(extra="forbid")

    src: str = Field(min_length=1)
    dest: str | None = None
    link: bool = False


class SpecSource(BaseModel):
    """A source of a reference in a spec: a path and (optionally) a step by name."""

    model_config = ConfigDict(extra="forbid")

    path: str
    step: str | None = None


class SpecReference(BaseModel):
    """A variable reference in a spec; steps are named, not given by id."""

    model_config = ConfigDict(extra="forbid")

    set_path: str
    constant: Any = None
    get_path: str | None = None
    sources: list[SpecSource] = Field(default_factory=list)
    composer: str | None = None

    def resolve(self) -> VariableReference:
        """The reference with step names turned into step ids."""
        data: dict[str, Any] = {"set_path": self.set_path, "composer": self.composer}
        if "constant" in self.model_fields_set:
            data["constant"] = self.constant
        if self.get_path is not None:
            data["get_path"] = self.get_path
        data["sources"] = [
            Source(path=s.path, step=step_id(s.step) if s.step else None) for s in self.sources
        ]
        return VariableReference.model_validate(data)


class SweepStep(BaseModel):
    """A workflow step after the sweep: one new task per trigger (or one in all)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    after: list[str] = Field(min_length=1)
    progression: Progression = "independent"
    task_class: str = "task"
    set: dict[str, Any] = Field(default_factory=dict)
    references: list[SpecReference] = Field(default_factory=list)

    def to_step(self) -> Step:
        """The :class:`Step` this spec entry describes."""
        refs = [VariableReference(set_path=key, constant=value) for key, value in self.set.items()]
        refs += [ref.resolve() for ref in self.references]
        return Step(
            name=self.name,
            task_class=self.task_class,
            progression=self.progression,
            parametrizations=[refs],
        )


#: a validation context key: take the lists of ``parameters`` and ``zip`` as
#: they are (``SweepSpec.model_validate(data, context={SHARE_LISTS: True})``)
SHARE_LISTS = "share_lists"


def _plain_lists(value: Any) -> bool:
    """Whether ``value`` is a dict of lists (or arrays) by name, as validation would give it."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and (type(v) is list or isinstance(v, array)) for k, v in value.items()
    )


def _refuse_single_values(value: Any, field: str) -> None:
    """Refuse a value given where a list of values belongs (``x = 300``, ``x = "ab"``)."""
    if not isinstance(value, dict):
        return  # validation refuses it
    for key, values in value.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            msg = f"{values!r} should be a valid list of values (one value: [{values!r}])"
            raise SpecKeyError(msg, field, key)


class SweepSpec(BaseModel):
    """A study specification: what ``autojob sweep SPEC`` reads (TOML or YAML)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    command: str | None = None
    task_class: str = "task"
    inputs: dict[str, Any] = Field(default_factory=dict)
    scheduler: dict[str, Any] = Field(default_factory=dict)
    #: the values of each parameter: lists; a long list of integers read from a spec
    #: file is an ``array("q")`` (8 bytes a value), read as a list is
    parameters: dict[str, Sequence[Any]] = Field(default_factory=dict)
    zip: dict[str, Sequence[Any]] = Field(default_factory=dict)
    label: str | None = None
    study_template: str = "{name}"
    task_group_template: str = "{label}"
    task_template: str | None = None
    step: str = "sweep"
    steps: list[SweepStep] = Field(default_factory=list)
    files: list[str | SpecFile] = Field(default_factory=list)
    structures: list[str] = Field(default_factory=list)
    #: the directory of the spec's file (set by ``load_spec``): ``files`` are relative to it
    _base: Path | None = PrivateAttr(default=None)
    _structure_paths: dict[str, Path] | None = PrivateAttr(default=None)

    @field_validator("parameters", "zip", mode="wrap")
    @classmethod
    def _lists_of_values(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> dict[str, Sequence[Any]]:
        """Refuse an empty list of values; with :data:`SHARE_LISTS`, keep the lists given.

        A spec just parsed (``parse_spec``) gives lists (and arrays) nothing
        else holds: they are taken as they are, not copied, so a long list is
        held once.
        """
        shared = isinstance(info.context, dict) and info.context.get(SHARE_LISTS)
        if shared and _plain_lists(value):
            checked: dict[str, Sequence[Any]] = dict(value)
        else:  # lists of their own, as for any model (a tuple or an array given: a list)
            _refuse_single_values(value, info.field_name or "parameters")
            checked = {key: list(values) for key, values in handler(value).items()}
        for key, values in checked.items():
            if not values:
                msg = "an empty list of values gives an empty sweep"
                raise SpecKeyError(msg, info.field_name or "parameters", key)
        return checked

    @model_validator(mode="after")
    def _a_sweep(self) -> Self:
        if not self.parameters and not self.zip and not self.structures:
            msg = (
                "nothing to sweep: give [parameters] (a product), [zip] (lists side by "
                "side) or structures (structure files)"
            )
            raise SpecKeyError(msg, "parameters")
        self._check_structures()
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            msg = f"the lists differ in length ({sorted(lengths)}); they are taken side by side"
            raise SpecKeyError(msg, "zip")
        both = set(self.parameters) & set(self.zip)
        if both:
            msg = "in both parameters and zip"
            raise SpecKeyError(msg, "zip", sorted(both)[0])
        unknown = [f for f in _fields(self.command or "") if f not in self.names()]
        if unknown:
            msg = f"{{{unknown[0]}}} is not a parameter ({', '.join(self.names())})"
            raise SpecKeyError(msg, "command")
        self._check_steps()
        self._check_keys()
        allowed = {"i", "name", *(n.replace(".", "_") for n in self.names())}
        bad = [f for f in _fields(self.label or "") if f not in allowed]
        if bad:
            msg = f"{{{bad[0]}}} is not a parameter ({', '.join(sorted(allowed))})"
            raise SpecKeyError(msg, "label")
        self._check_files()
        return self

    def _check_structures(self) -> None:
        cls = _task_class(self.task_class)
        if not self.structures or cls is None:
            return
        inputs = cls.model_fields["task_inputs"].annotation
        if not (isinstance(inputs, type) and "atoms" in getattr(inputs, "model_fields", {})):
            msg = f"task class {self.task_class!r} holds no structure"
            raise SpecKeyError(msg, "structures", hint='set task_class = "calculation"')
        if STRUCTURE in {*self.parameters, *self.zip}:
            msg = f"{STRUCTURE!r} is the parameter structures make; name yours otherwise"
            raise SpecKeyError(msg, "parameters", STRUCTURE)

    def structure_paths(self) -> dict[str, Path]:
        """The files ``structures`` match (globs, relative to the spec's directory).

        Keyed by the path as matched, relative to that directory; read once.

        Raises:
            InputError: a pattern matches no file.
        """
        if self._structure_paths is None:
            base = self.base or Path()
            found: dict[str, Path] = {}
            for index, pattern in enumerate(self.structures):
                matched = sorted(p for p in base.glob(pattern) if p.is_file())
                if not matched:
                    raise InputError(
                        f"structures[{index}] {pattern!r} matches no file",
                        path=base,
                        field="structures",
                        hint="give paths or globs relative to the spec's directory",
                    )
                found.update((p.relative_to(base).as_posix(), p) for p in matched)
            self._structure_paths = found
        return self._structure_paths

    def _file_fields(self) -> set[str]:
        return {"i", "label", *(n.replace(".", "_") for n in self.names())}

    def _check_files(self) -> None:
        allowed = self._file_fields()
        for index, entry in enumerate(self.files):
            spec = entry if isinstance(entry, SpecFile) else SpecFile(src=entry)
            for key in ("src", "dest"):
                text = getattr(spec, key) or ""
                try:
                    bad = [f for f in _fields(text) if not f.isidentifier() or f not in allowed]
                except ValueError as exc:
                    raise SpecKeyError(
                        f"{text!r} is not a path template: {exc}", "files", index, key
                    ) from exc
                if bad:
                    msg = f"{{{bad[0]}}} is not a parameter ({', '.join(sorted(allowed))})"
                    raise SpecKeyError(msg, "files", index, key)

    def _check_steps(self) -> None:
        known = {self.step, *(s.name for s in self.steps)}
        if len(known) != len(self.steps) + 1:
            msg = f"two steps share a name (the sweep itself is step {self.step!r})"
            raise SpecKeyError(msg, "steps")
        for index, step in enumerate(self.steps):
            for name in step.after + [src.step for r in step.references for src in r.sources]:
                if name is not None and name not in known:
                    msg = f"step {step.name!r} refers to unknown step {name!r}"
                    key = "after" if name in step.after else "references"
                    raise SpecKeyError(msg, "steps", index, key)
        try:
            self.workflow()
        except ValidationError as exc:
            names = {step_id(n): n for n in known}
            text = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            for sid, name in names.items():
                text = text.replace(sid, name)
            raise SpecKeyError(text, "steps") from exc

    @property
    def base(self) -> Path | None:
        """The directory ``files`` are relative to: the spec file's, once read from one."""
        return self._base

    def read_from(self, path: Path) -> Self:
        """Say that the spec was read from the file ``path`` (its files are relative to it)."""
        self._base = path.parent
        return self

    def _check_keys(self) -> None:
        """Refuse keys the task classes do not take (see :mod:`autojob.input_keys`)."""
        cls = _task_class(self.task_class)
        if cls is not None:
            for key, value in self.inputs.items():
                _refuse(path_problem(cls, ("task_inputs", key), value), "inputs", key)
            for key, value in self.scheduler.items():
                _refuse(path_problem(cls, ("scheduler_inputs", key), value), "scheduler", key)
            for table, names in (("parameters", self.parameters), ("zip", self.zip)):
                for name, values in names.items():
                    for value in values:
                        _refuse(path_problem(cls, split_set_path(name), value), table, name)
            self._check_command(cls)
        for index, step in enumerate(self.steps):
            step_class = _task_class(step.task_class)
            if step_class is None:
                continue
            for key, value in step.set.items():
                problem = path_problem(step_class, split_set_path(key), value)
                _refuse(problem, "steps", index, "set", key)
            for number, ref in enumerate(step.references):
                problem = path_problem(step_class, split_set_path(ref.set_path), None)
                _refuse(problem, "steps", index, "references", number, "set_path")
            paths = [*step.set, *(ref.set_path for ref in step.references)]
            commanded = any(split_set_path(p) == ("task_inputs", "command") for p in paths)
            if step_class.REQUIRES_COMMAND and not commanded:
                msg = f"the tasks of step {step.name!r} have no command to run"
                hint = 'give one: set = { command = "python3 next.py" }'
                raise SpecKeyError(msg, "steps", index, "set", hint=hint)

    def _check_command(self, cls: type[TaskBase]) -> None:
        varied = {tuple(split_set_path(name)) for name in self.names()}
        given = self.command is not None or "command" in self.inputs
        if not given and ("task_inputs", "command") not in varied and cls.REQUIRES_COMMAND:
            msg = "the tasks have no command to run"
            raise SpecKeyError(msg, "command", hint='give one: command = "python calc.py --x {x}"')

    def names(self) -> list[str]:
        """The parameter names, product first, then ``structure`` (of ``structures``)."""
        return [*self.parameters, *self.zip, *([STRUCTURE] if self.structures else [])]

    def combinations(self) -> list[dict[str, Any]]:
        """Every combination of parameter values, in order."""
        return list(self.iter_combinations())

    def iter_combinations(self) -> Iterator[dict[str, Any]]:
        """Every combination of parameter values, in order, one at a time."""
        zipped = [
            dict(zip(self.zip, values, strict=True))
            for values in zip(*self.zip.values(), strict=True)
        ] or [{}]
        names: list[str | None] = [*self.structure_paths()] if self.structures else [None]
        for name in names:
            for values in _product(list(self.parameters.values())):
                first = dict(zip(self.parameters, values, strict=True))
                for second in zipped:
                    both = {**first, **second}
                    yield both if name is None else {STRUCTURE: name, **both}

    def workflow(self) -> Workflow | None:
        """The workflow the spec's steps describe (None without steps)."""
        if not self.steps:
            return None
        graph: dict[str, list[str]] = {step_id(self.step): []} | {
            step_id(s.name): [step_id(a) for a in s.after] for s in self.steps
        }
        steps = {step_id(self.step): Step(name=self.step, task_class=self.task_class)}
        steps |= {step_id(s.name): s.to_step() for s in self.steps}
        return Workflow(graph=WorkflowGraph(graph), steps=steps)

    def label_of(self, values: dict[str, Any], index: int) -> str:
        """The label of the combination ``values`` (number ``index``)."""
        if self.label is None:
            return "_".join(
                _stem(v) if k == STRUCTURE else f"{k.rsplit('.', 1)[-1]}-{v}"
                for k, v in values.items()
            )
        plain = {k.replace(".", "_"): v for k, v in values.items()}
        if STRUCTURE in plain:
            plain[STRUCTURE] = _stem(plain[STRUCTURE])
        return self.label.format(i=index, name=self.name, **plain)

    def files_of(self, values: dict[str, Any], index: int, base: Path) -> list[InputFile]:
        """The input files of the task of one combination; ``src`` relative to ``base``."""
        context = {k.replace(".", "_"): v for k, v in values.items()}
        context.update(i=index, label=self.label_of(values, index))
        files = []
        for entry in self.files:
            spec = entry if isinstance(entry, SpecFile) else SpecFile(src=entry)
            target = spec.dest.format_map(context) if spec.dest is not None else None
            source = base / spec.src.format_map(context)
            files.append(InputFile(source=source, target=target, link=spec.link))
        return files

    def command_of(self, values: dict[str, Any]) -> str | None:
        """The command with ``{name}`` replaced by shell-quoted values."""
        if self.command is None:
            return None
        quoted = {k: shlex.quote(str(v)) for k, v in values.items()}
        return self.command.format_map(quoted)

    def sections_of(self, values: dict[str, Any]) -> dict[str, Any]:
        """The ``inputs.json`` sections of the task of one combination."""
        sections: dict[str, Any] = {
            "task_inputs": dict(self.inputs),
            "scheduler_inputs": dict(self.scheduler),
        }
        command = self.command_of(values)
        if command is not None:
            sections["task_inputs"]["command"] = command
        for key, value in values.items():
            if key == STRUCTURE:
                sections["task_inputs"]["atoms"] = str(self.structure_paths()[value])
                continue
            node = sections
            *parents, last = split_set_path(key)
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return sections


def _product(lists: list[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    """``itertools.product(*lists)``, without the copy of every list it makes first."""
    if not lists:
        yield ()
        return
    first, rest = lists[0], lists[1:]
    for value in first:
        for tail in _product(rest):
            yield (value, *tail)


def build_study(
    spec: SweepSpec | Mapping[str, Any], *, only: Collection[int] | None = None
) -> Study:
    """The study of a spec: one task group per combination (no I/O).

    ``only``: the numbers of the combinations to build (all by default).
    Every task is checked as writing it would check it, so a dry run refuses
    what the real run refuses.

    Raises:
        InputError: a combination gives an invalid value or a key autojob refuses.
    """
    if not isinstance(spec, SweepSpec):
        spec = SweepSpec.model_validate(spec)
    groups = [group for _, group in sweep_groups(spec, only=only)]
    return Study(name=spec.name, task_groups=groups)


def sweep_groups(
    spec: SweepSpec,
    *,
    only: Collection[int] | None = None,
    skip: Callable[[dict[str, Any]], bool] | None = None,
) -> Iterator[tuple[int, TaskGroup]]:
    """The task group of each combination with its number, built one at a time.

    What :func:`build_study` makes, without holding more than one group: a
    sweep of a million combinations is written from this. ``skip``: a
    combination whose values it is true of is not built (one a study has).

    Raises:
        InputError: as :func:`build_study`, when the combination at fault is reached.
    """
    task_class = get_task_class(spec.task_class)
    workflow_step = step_id(spec.step) if spec.steps else None
    for index, values in enumerate(spec.iter_combinations()):
        if (only is not None and index not in only) or (skip is not None and skip(values)):
            continue
        label = spec.label_of(values, index)
        document = spec.sections_of(values)
        document["task_metadata"] = {"label": label, "workflow_step_id": workflow_step}
        try:
            task = task_class.model_validate(document)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InputError(
                f"combination {index} ({label}): {error['msg']}",
                field=".".join(str(p) for p in error["loc"]),
                hint="fix the fixed inputs or the values of the parameter at fault",
            ) from exc
        check_input_document(task_class, task.input_sections(), prefix=f"combination {index}: ")
        yield index, TaskGroup(label=label, tasks=[task], parameters=values)
