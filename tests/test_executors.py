"""The executor interface: the registry, one submission path, dispatch on the recorded executor.

The in-process executor of ``tests/memory_executor.py`` stands for a scheduler,
so submit, status, cancel, resubmit, restart and advance are checked here
without a cluster; the real-cluster tests are in ``test_slurm*.py``.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from autojob import SETTINGS
from autojob.cli.app import cli
from autojob.create.sweep import load_spec, write_sweep
from autojob.errors import InputError, PluginError
from autojob.execution.executor import (
    Executor,
    available_executors,
    executor_for,
    get_executor,
    refresh_executors,
    register_executor,
    unregister_executor,
)
from autojob.execution.local import LocalExecutor
from autojob.execution.sge import SgeExecutor
from autojob.execution.slurm import SlurmExecutor
from autojob.store.run_files import record
from autojob.store.state import State, TaskState, read_state

from .helpers import run, study_of_commands, wait_until
from .memory_executor import MemoryExecutor

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workflow"


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryExecutor]:
    """The in-process executor, registered for this test; SLURM must not be asked."""

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the SLURM executor was asked about a task it did not submit")

    for method in ("plan", "submit", "reconcile", "cancel"):
        monkeypatch.setattr(SlurmExecutor, method, never)
    register_executor(MemoryExecutor)
    executor = get_executor("memory")
    assert isinstance(executor, MemoryExecutor)
    yield executor
    unregister_executor("memory")


def succeeded_sweep_task(root: Path) -> tuple[Path, Path]:
    """The example workflow's study, and its task x = 1 recorded as succeeded."""
    for script in EXAMPLE.glob("*.py"):
        (root / script.name).write_bytes(script.read_bytes())
    (root / "squares.toml").write_text((EXAMPLE / "squares.toml").read_text())
    squares = write_sweep(load_spec(root / "squares.toml"), root)[1]
    (x1,) = [p for p in (squares / "x1").iterdir() if p.is_dir()]
    (x1 / SETTINGS.OUTPUTS_FILE).write_text(json.dumps({"value": 1}))
    record(x1, "ENDED_FILE", {"exit_code": 0})
    return squares, x1


def invoke(*args: str | Path) -> Result:
    """Run the command line in this process (where the memory executor is registered)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_local_and_slurm_are_found_through_the_entry_point_group() -> None:
    assert {"local", "slurm"} <= set(available_executors())
    assert isinstance(get_executor("local"), LocalExecutor)
    assert isinstance(get_executor("slurm"), SlurmExecutor)


def test_an_unknown_executor_is_refused_naming_those_installed(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        get_executor("slrum")
    assert caught.value.field == "--executor"
    assert "local" in str(caught.value.hint) and "slurm" in str(caught.value.hint)
    study, _ = study_of_commands(tmp_path, {"a": "true"})
    result = run("submit", study, "--executor", "slrum", cwd=tmp_path)
    assert result.returncode == 1
    assert "unknown executor 'slrum'" in result.stderr
    assert not list(study.rglob(SETTINGS.QUEUED_FILE))


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real installed distribution (dist-info on sys.path) adding an executor."""
    site = tmp_path / "site"
    (site / "extrasched").mkdir(parents=True)
    (site / "extrasched" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from autojob.execution.executor import Executor, Plan

            class ExtraExecutor(Executor):
                name = "extra"
                summary = "a scheduler from another package"

                def plan(self, selected, *, max_parallel, root):
                    return Plan(self.name, list(selected), max_parallel)

                def submit(self, plan, *, allowed):
                    raise NotImplementedError

                def cancel(self, tasks, *, grace):
                    raise NotImplementedError
            """
        )
    )
    dist = site / "extrasched-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extrasched\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[autojob.executor]\nextra = extrasched:ExtraExecutor\nbroken = extrasched:Nothing\n"
    )
    monkeypatch.syspath_prepend(str(site))
    refresh_executors()
    yield "extra"
    sys.modules.pop("extrasched", None)
    refresh_executors()


def test_a_package_adds_an_executor_through_its_entry_point(third_party: str) -> None:
    assert third_party in available_executors()
    executor = get_executor(third_party)
    assert isinstance(executor, Executor)
    assert executor.name == "extra"
    with pytest.raises(PluginError, match="'broken'"):
        get_executor("broken")
    # the help of --executor lists what is installed, the broken one too
    text = invoke("submit", "--help").output
    assert "extra (a scheduler from another package)" in " ".join(text.split())
    assert "broken (cannot be loaded)" in " ".join(text.split())


def test_submit_status_and_wait_ask_the_executor_that_runs_the_tasks(
    tmp_path: Path, memory: MemoryExecutor
) -> None:
    study, (good, bad) = study_of_commands(tmp_path, {"good": "echo hi > out.txt", "bad": "exit 3"})
    dry = invoke("submit", study, "--executor", "memory", "--dry-run")
    assert dry.exit_code == 0
    assert f"# job for {good}" in dry.output and "2 task(s) would be queued" in dry.output
    assert not memory.calls and not list(study.rglob(SETTINGS.QUEUED_FILE))

    done = invoke("submit", study, "--executor", "memory")
    assert done.exit_code == 0, done.output
    assert "queued 2 task(s) in memory" in done.output
    queued = {path: read_state(path) for path in (good, bad)}
    assert {s.state for s in queued.values()} == {State.QUEUED}
    assert {s.executor for s in queued.values()} == {"memory"}
    assert {s.job_id for s in queued.values()} == set(memory.jobs)

    memory.run_pending()
    # the task scripts recorded who ran them, with the job id the executor gave
    started = json.loads((good / SETTINGS.STARTED_FILE).read_text())
    assert started["executor"] == "memory" and started["job_id"] == queued[good].job_id
    status = invoke("status", study, "--rescan")
    assert status.exit_code == 0, status.output
    asked = [ids for call, ids in memory.calls if call == "reconcile"]
    assert asked and set(asked[-1]) == {queued[good].job_id, queued[bad].job_id}
    assert read_state(good).state is State.SUCCESS and read_state(good).accounted
    assert read_state(bad).state is State.FAILED and read_state(bad).accounted


def test_wait_follows_the_scheduler_until_every_task_is_accounted(
    tmp_path: Path, memory: MemoryExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SETTINGS, "SLURM_POLL_INTERVAL", 0.0)
    memory.autorun = True  # the queue moves on each time it is asked
    study, (good, bad) = study_of_commands(tmp_path, {"good": "true", "bad": "exit 3"})
    result = invoke("submit", study, "--executor", "memory", "--wait")
    assert result.exit_code == 1
    assert "1 of 2 task(s) succeeded" in result.output
    assert read_state(good).accounted and read_state(bad).accounted


def test_cancel_asks_the_executor_recorded_with_each_task(
    tmp_path: Path, memory: MemoryExecutor
) -> None:
    study, tasks = study_of_commands(tmp_path, {"a": "touch ran", "b": "touch ran"})
    assert invoke("submit", study, "--executor", "memory").exit_code == 0
    ids = {read_state(path).job_id for path in tasks}
    result = invoke("cancel", study, "--grace", "1")
    assert result.exit_code == 0, result.output
    assert [set(i) for c, i in memory.calls if c == "cancel"] == [ids]
    memory.run_pending()
    for path in tasks:
        assert read_state(path).state is State.CANCELLED
        assert not (path / "ran").exists()


def test_resubmit_restart_and_advance_submit_through_one_path(
    tmp_path: Path, memory: MemoryExecutor
) -> None:
    study, (bad,) = study_of_commands(tmp_path, {"bad": "exit 3"})
    invoke("submit", study, "--executor", "memory")
    memory.run_pending()
    invoke("status", study, "--rescan")
    result = invoke("resubmit", study, "--executor", "memory")
    assert result.exit_code == 0, result.output
    (new,) = [p for p in bad.parent.iterdir() if p.is_dir() and p != bad]
    assert read_state(new).executor == "memory" and read_state(new).job_id in memory.jobs

    result = invoke("restart", bad, "--submit", "--executor", "memory")
    assert result.exit_code == 0, result.output
    assert "queued 1 task(s) in memory" in result.output

    # advance --submit: the next step's task goes to the same executor
    squares, x1 = succeeded_sweep_task(tmp_path)
    result = invoke("advance", x1, "--submit", "--executor", "memory")
    assert result.exit_code == 0, result.output
    (double,) = [p for p in (squares / "double.x1").iterdir() if p.is_dir()]
    assert read_state(double).executor == "memory"
    assert read_state(double).job_id in memory.jobs


def test_resubmit_asks_the_recorded_executor_unless_one_is_given(
    tmp_path: Path, memory: MemoryExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOJOB_DEFAULT_EXECUTOR", "local")
    study, (bad,) = study_of_commands(tmp_path, {"bad": "exit 3"})
    invoke("submit", study, "--executor", "memory")
    memory.run_pending()
    result = invoke("resubmit", study)  # no --executor: where the old attempt ran
    assert result.exit_code == 0, result.output
    (new,) = [p for p in bad.parent.iterdir() if p.is_dir() and p != bad]
    assert read_state(new).executor == "memory" and read_state(new).job_id in memory.jobs
    memory.run_pending()
    # --executor names where the new attempts go, whatever ran the old ones
    done = run("resubmit", study, "--executor", "local", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (newest,) = [p for p in bad.parent.iterdir() if p.is_dir() and p not in (bad, new)]
    assert read_state(newest).executor == "local"
    wait_until(lambda: read_state(newest).state is State.FAILED, 60, "the local attempt to end")


def test_advance_refuses_an_unknown_executor_before_creating_anything(tmp_path: Path) -> None:
    squares, x1 = succeeded_sweep_task(tmp_path)
    result = run("advance", x1, "--submit", "--executor", "slrum", cwd=tmp_path)
    assert result.returncode == 1 and "unknown executor 'slrum'" in result.stderr
    assert not (squares / "double.x1").exists()


def test_the_executor_of_a_task_is_the_one_recorded(
    memory: MemoryExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert executor_for(TaskState(State.RUNNING, executor="memory", job_id="5")) is memory
    assert isinstance(executor_for(TaskState(State.RUNNING, pid=5)), LocalExecutor)
    # an executor that is not installed here: nobody is asked in its place
    assert executor_for(TaskState(State.RUNNING, executor="pbs", job_id="5")) is None
    # a job id with no executor recorded: the first scheduler available here
    monkeypatch.setattr(SlurmExecutor, "available", lambda _self: False)
    monkeypatch.setattr(SgeExecutor, "available", lambda _self: False)
    assert executor_for(TaskState(State.RUNNING, job_id="5")) is memory


def test_local_refuses_a_task_that_waits_for_a_scheduler_job(tmp_path: Path) -> None:
    study, paths = study_of_commands(
        tmp_path, {"a": "echo a", "b": "echo b"}, dependency="afterok:812"
    )
    result = run("submit", study, "--executor", "local", cwd=tmp_path)
    assert result.returncode != 0
    assert "scheduler_inputs.dependency" in result.stderr
    assert str(paths[0] / SETTINGS.INPUTS_FILE) in result.stderr
    assert "--executor slurm or sge" in result.stderr
    for path in paths:  # nothing claimed, nothing run
        assert read_state(path).state is State.IDLE
        assert not (path / SETTINGS.QUEUED_FILE).exists()
