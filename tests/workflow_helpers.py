"""Helpers shared by the tests that run the example workflow (examples/workflow):
the squares sweep, its attempts, and what a finished run must hold; and a sweep
of N tasks that succeeded, to advance from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from autojob import SETTINGS
from autojob.create.sweep import load_spec, write_sweep
from autojob.store.completed_tasks import read_record
from autojob.store.state import State, read_state
from autojob.sweep import SweepSpec, SweepStep, step_id

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workflow"

# the sweep task with x = 3 runs past its time limit once (a long first attempt),
# then finishes in the attempt restarted with the file it carried over
COMPUTE = """\
import json, time
from pathlib import Path
x = json.loads(Path("inputs.json").read_text())["task_inputs"]["x"]
if x == 3 and not Path("part1").exists():
    Path("part1").touch()
    time.sleep(120)
Path("outputs.json").write_text(json.dumps({"value": x * x}))
"""


def squares_study(tmp_path: Path, time_limit: str) -> Path:
    """The example sweep (x = 1..4, then double and aggregate) with a slow x = 3."""
    for script in EXAMPLE.glob("*.py"):
        shutil.copy(script, tmp_path)
    (tmp_path / "compute.py").write_text(COMPUTE)
    text = (EXAMPLE / "squares.toml").read_text().replace('"00:01:00"', f'"{time_limit}"')
    (tmp_path / "squares.toml").write_text(text)
    spec = load_spec(tmp_path / "squares.toml")
    return write_sweep(spec, tmp_path)[1]


def set_compute(study: Path, text: str) -> None:
    """Replace the copy of compute.py in every sweep task of the study."""
    for script in study.glob("x*/*/compute.py"):
        script.write_text(text)


def attempts(group: Path) -> list[Path]:
    """The attempts of a task group, oldest first."""

    def created(path: Path) -> str:
        return str(json.loads((path / SETTINGS.TASK_METADATA_FILE).read_text())["date_created"])

    return sorted((p for p in group.iterdir() if p.is_dir() and p.name[0] != "."), key=created)


def finished(study: Path) -> bool:
    """The aggregate and every double task have succeeded."""
    last = ["aggregate", *(f"double.x{x}" for x in (1, 2, 3, 4))]
    return all(
        (study / name).is_dir()
        and all(read_state(p).state is State.SUCCESS for p in attempts(study / name))
        for name in last
    )


def check_finished_study(study: Path) -> None:
    """Every step ran; the timed-out attempt was restarted; record and outputs agree."""
    (agg,) = attempts(study / "aggregate")
    assert json.loads((agg / SETTINGS.OUTPUTS_FILE).read_text()) == {"total": 30, "count": 4}
    slow = attempts(study / "x3")
    assert [read_state(p).state for p in slow][:1] == [State.TIMEOUT]
    assert read_state(slow[-1]).state is State.SUCCESS
    record = read_record(study)
    assert slow[0].name not in record and slow[-1].name in record
    for x in (1, 2, 3, 4):
        (double,) = attempts(study / f"double.x{x}")
        state = read_state(double)
        assert state.state is State.SUCCESS, (double, state)
        assert json.loads((double / SETTINGS.OUTPUTS_FILE).read_text()) == {"doubled": 2 * x * x}
        last = attempts(study / f"x{x}")[-1]
        assert last.name in record
        meta = json.loads((double / SETTINGS.TASK_METADATA_FILE).read_text())
        assert meta["workflow_step_id"] == step_id("double")
        assert f"advanced-from:{last.name}" in meta["tags"]
    assert len(set(record)) == len(record)
    dirs = sorted(p.name for p in study.iterdir() if p.is_dir() and p.name[0] != ".")
    assert dirs == ["aggregate", *[f"double.x{x}" for x in (1, 2, 3, 4)], "x1", "x2", "x3", "x4"]


# -- a sweep of N tasks that succeeded, steps after it ----------------------------------


def step(name: str, progression: str = "independent") -> SweepStep:
    return SweepStep.model_validate(
        {
            "name": name,
            "after": ["sweep"],
            "progression": progression,
            "set": {"command": f"echo {name}"},
            "references": [{"set_path": "value", "get_path": "outputs.value"}],
        }
    )


def finished_sweep(
    dest: Path, n: int, steps: tuple[str, ...] = ("double",), progression: str = "independent"
) -> Path:
    """A study of ``n`` sweep tasks that succeeded (outputs written), then ``steps``."""
    spec = SweepSpec(
        name="s",
        command="true",
        parameters={"x": list(range(n))},
        steps=[step(name, progression) for name in steps],
    )
    study = write_sweep(spec, dest)[1]
    for i, task in enumerate(sweep_tasks(study)):
        (task / SETTINGS.OUTPUTS_FILE).write_text(json.dumps({"value": i}))
        (task / SETTINGS.ENDED_FILE).write_text('{"time": 0, "exit_code": 0}\n')
    return study


def sweep_tasks(study: Path) -> list[Path]:
    return sorted(t.parent for t in study.glob(f"x-*/*/{SETTINGS.TASK_METADATA_FILE}"))
