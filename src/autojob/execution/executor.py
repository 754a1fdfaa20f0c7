"""The executor interface, and the registry that finds executors by name.

An executor runs tasks somewhere: ``local`` on this machine's cores, ``slurm``
on a SLURM cluster, or any executor a package adds. Each one does five things,
and nothing else in autojob knows how:

- :meth:`Executor.plan`: turn the selected tasks into jobs, with the exact
  scripts and command lines a ``--dry-run`` prints (:meth:`Plan.preview`);
- :meth:`Executor.submit`: claim the planned tasks (under each task's lock, so
  no task runs twice) and hand them to the scheduler;
- :meth:`Executor.reconcile`: ask the scheduler, in one batched query, about
  many tasks the files call queued or running, and write what it says;
- :meth:`Executor.cancel`: stop many tasks;
- :meth:`Executor.run_here` (optional): run a plan in this process, for
  ``submit --wait``; where an executor has none, ``--wait`` polls
  :meth:`Executor.reconcile` instead.

The executor that submitted a task is written in its claim (``autojob.queued``)
and in its start and end records, and status, cancel and resubmit ask that
executor, never guess from a job id. Executors are found through the
``autojob.executor`` entry-point group::

    [project.entry-points."autojob.executor"]
    mysched = "mypackage.executor:MySchedulerExecutor"

or registered in code with :func:`register_executor`.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from autojob.errors import ConfigError, InputError, PluginError
from autojob.store.state import State, TaskState

if TYPE_CHECKING:
    from autojob.execution.submit import Selected

__all__ = [
    "EXECUTOR_GROUP",
    "Executor",
    "Plan",
    "Preview",
    "Submission",
    "available_executors",
    "chosen_executor",
    "described_executors",
    "executor_for",
    "get_executor",
    "refresh_executors",
    "register_executor",
    "unregister_executor",
]

EXECUTOR_GROUP = "autojob.executor"
#: the executor of tasks run on this machine's cores with no scheduler
DEFAULT = "local"
#: called as each task run in this process ends
EndListener = Callable[[Path, TaskState], None]


@dataclass
class Preview:
    """What a dry run shows of a plan.

    Either a table (``columns`` and ``rows``) or blocks of exact text (each a
    comment line and the script or command it describes), then a summary.
    """

    title: str = ""
    columns: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""


@dataclass
class Plan:
    """The jobs an executor would submit for some selected tasks."""

    executor: str
    selected: list[Selected]
    #: tasks run at once (None: the executor's default)
    max_parallel: int | None = None
    #: the executor's own jobs (job arrays, a runner's task list, ...)
    jobs: list[object] = field(default_factory=list)
    #: where the executor writes its job scripts and logs for this submission
    batch_root: Path | None = None
    #: how the plan reads in a dry run
    preview: Preview = field(default_factory=Preview)

    @property
    def paths(self) -> list[Path]:
        """The task directories of the plan, in order."""
        return [s.spec.path for s in self.selected]


@dataclass
class Submission:
    """What a submit did."""

    #: how many tasks were claimed and handed on (others may have claimed the rest)
    count: int
    #: one line that says it, e.g. "submitted 3 task(s) in 1 job array(s): 812"
    message: str
    #: more lines worth showing (a log's path, how to follow the tasks)
    details: list[str] = field(default_factory=list)
    #: the tasks claimed, where the executor knows them here (a runner may not tell)
    tasks: list[Path] = field(default_factory=list)
    #: the scheduler's ids of the jobs submitted
    job_ids: list[str] = field(default_factory=list)


class Executor(ABC):
    """Runs tasks somewhere; one subclass per scheduler (module docstring)."""

    #: the name users give with --executor, recorded with every task it submits
    name: ClassVar[str]
    #: a few words for help texts: where the tasks run
    summary: ClassVar[str] = ""
    #: True when a scheduler other than the task files must be asked about tasks
    asks_scheduler: ClassVar[bool] = True
    #: True when tasks are submitted to this executor itself, in jobs of its own;
    #: False for one that runs tasks inside another executor's jobs (pilots): it is
    #: never taken for the owner of a job id recorded with no executor, and the
    #: conformance suite (tests/test_conformance.py) is for the others
    own_jobs: ClassVar[bool] = True
    #: True when :meth:`reconcile` writes the scheduler's accounting into each
    #: ended task (so a task is not done with until it is accounted)
    accounts: ClassVar[bool] = False

    def available(self) -> bool:
        """Whether this executor's commands can be used from this machine."""
        return True

    @abstractmethod
    def plan(self, selected: Sequence[Selected], *, max_parallel: int | None, root: Path) -> Plan:
        """Plan the jobs of ``selected`` (tasks found under ``root``); change nothing."""

    @abstractmethod
    def submit(self, plan: Plan, *, allowed: frozenset[State]) -> Submission:
        """Claim the plan's tasks still in ``allowed`` and submit them.

        A task another submit claimed meanwhile (or whose state changed) is left
        out, never run twice.
        """

    def run_here(
        self, plan: Plan, *, allowed: frozenset[State], on_claimed: Callable[[int], None],
        on_end: EndListener,
    ) -> dict[Path, TaskState] | None:  # fmt: skip
        """Run the plan in this process and return each task's final state.

        ``on_claimed`` is told how many tasks were claimed, ``on_end`` each end.
        None means this executor cannot: ``submit --wait`` then submits and polls.
        """
        return None

    def stop_here(self) -> None:  # noqa: B027  (optional, like run_here)
        """Stop what :meth:`run_here` runs (Ctrl-C): launch nothing more, end the rest."""

    def reconcile(self, tasks: Sequence[tuple[Path, TaskState]]) -> dict[Path, TaskState]:
        """Merge the scheduler's view into ``tasks``; return those whose state changed.

        Finished jobs get their end and accounting written in the task
        directory, so later readers need the files alone.
        """
        return {}

    @abstractmethod
    def cancel(self, tasks: Sequence[tuple[Path, TaskState]], *, grace: float) -> list[Path]:
        """Stop ``tasks`` (already marked cancelled under their locks).

        Queued tasks must never start afterwards; running ones get TERM, then
        KILL once ``grace`` seconds have passed. Returns the tasks of which
        something still runs (their end is then not recorded as cancelled).
        """


_registered: dict[str, type[Executor]] = {}
_instances: dict[str, Executor] = {}


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=EXECUTOR_GROUP)}


def refresh_executors() -> None:
    """Forget cached entry points and executors, e.g. after installing a package."""
    _entry_points.cache_clear()
    _instances.clear()


def register_executor(executor: type[Executor]) -> None:
    """Register ``executor`` under its name for this process."""
    if not (isinstance(executor, type) and issubclass(executor, Executor)):
        raise PluginError(f"{executor!r} is not a subclass of Executor")
    _registered[executor.name] = executor
    _instances.pop(executor.name, None)


def unregister_executor(name: str) -> None:
    """Forget an executor registered with :func:`register_executor`."""
    _registered.pop(name, None)
    _instances.pop(name, None)


def available_executors() -> list[str]:
    """The names of every executor that can be loaded, entry points first."""
    names = list(_entry_points())
    return names + [n for n in _registered if n not in names]


def get_executor(name: str, *, field_name: str = "--executor") -> Executor:
    """The executor registered under ``name``.

    Raises:
        InputError: no executor has that name.
        PluginError: it is installed but cannot be imported.
    """
    if name in _instances:
        return _instances[name]
    cls = _registered.get(name)
    if cls is None:
        entry_point = _entry_points().get(name)
        if entry_point is None:
            raise InputError(
                f"unknown executor {name!r}",
                field=field_name,
                hint="use " + " or ".join(described_executors()),
            )
        cls = _load(name)
    instance = _instances[name] = cls()
    return instance


def chosen_executor(name: str | None) -> Executor:
    """The executor ``name`` (given with ``--executor``), else ``SETTINGS.DEFAULT_EXECUTOR``.

    Raises:
        InputError: no executor is called ``name``.
        ConfigError: no executor has the name of the setting; the error says
            where the setting came from (environment variable, configuration file).
        PluginError: the executor is installed but cannot be imported.
    """
    from autojob import SETTINGS  # noqa: PLC0415  (settings are read when first used)
    from autojob.settings import setting_source  # noqa: PLC0415

    if name is not None:
        return get_executor(name)
    default = SETTINGS.DEFAULT_EXECUTOR
    try:
        return get_executor(default, field_name="DEFAULT_EXECUTOR")
    except InputError as exc:
        source, path = setting_source("DEFAULT_EXECUTOR")
        raise ConfigError(
            f"unknown executor {default!r} in the setting DEFAULT_EXECUTOR, from {source}",
            path=path,
            hint=f"change it there or give --executor; {exc.hint}",
        ) from exc


def described_executors() -> list[str]:
    """Each installed executor as ``name (summary)``; one that cannot be loaded says so."""
    described = []
    for name in available_executors():
        try:
            summary = _load(name).summary
        except PluginError:
            summary = "cannot be loaded"
        described.append(f"{name} ({summary})" if summary else name)
    return described


def _load(name: str) -> type[Executor]:
    if name in _registered:
        return _registered[name]
    entry_point = _entry_points()[name]
    try:
        loaded = entry_point.load()
    except Exception as exc:  # any import failure of a third-party plugin
        raise PluginError(
            f"executor {name!r} ({entry_point.value}) failed to import: {exc}",
            hint="fix or uninstall the package that provides it",
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Executor)):
        raise PluginError(f"entry point {name!r} ({entry_point.value}) is not an Executor")
    return loaded


def executor_for(
    state: TaskState, *, first_scheduler: Callable[[], Executor | None] | None = None
) -> Executor | None:
    """The executor that runs the task whose files say ``state``, or None.

    The executor recorded with the task decides. A task with a job id but no
    executor recorded (its script was submitted by hand with an older task
    script) belongs to the first scheduler executor available on this machine;
    a task with neither ran on this machine's cores (:data:`DEFAULT`).
    """
    if state.executor:
        try:
            return get_executor(state.executor, field_name="executor")
        except (InputError, PluginError):
            return None
    if not state.job_id:
        return get_executor(DEFAULT)
    return (first_scheduler or _first_scheduler)()


def _first_scheduler() -> Executor | None:
    """The first scheduler executor whose commands are on this machine."""
    for name in available_executors():
        try:
            executor = get_executor(name)
        except PluginError:
            continue
        if executor.asks_scheduler and executor.own_jobs and executor.available():
            return executor
    return None


def by_executor(
    tasks: Sequence[tuple[Path, TaskState]],
) -> dict[str, tuple[Executor, list[tuple[Path, TaskState]]]]:
    """Group tasks by the executor that runs them (tasks with none are left out)."""
    groups: dict[str, tuple[Executor, list[tuple[Path, TaskState]]]] = {}
    first = functools.cache(_first_scheduler)  # asked once, not once per task
    for path, state in tasks:
        executor = executor_for(state, first_scheduler=first)
        if executor is not None:
            groups.setdefault(executor.name, (executor, []))[1].append((path, state))
    return groups
