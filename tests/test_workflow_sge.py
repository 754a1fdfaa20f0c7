"""The three-step workflow on the real Grid Engine cluster, with no one watching.

Each sweep task that succeeds calls ``autojob advance --submit`` from inside its
job, so the next steps are submitted with ``qsub`` by the jobs themselves; the
slow task stops itself before its h_rt and restarts with more time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autojob import SETTINGS

from .helpers import run, wait_until
from .workflow_helpers import attempts, check_finished_study, finished, squares_study

pytestmark = [pytest.mark.sge, pytest.mark.slow]


def test_a_three_step_workflow_runs_to_the_end_on_grid_engine(tmp_path: Path) -> None:
    study = squares_study(tmp_path, "00:00:20")
    result = run("submit", study, "--executor", "sge", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    wait_until(
        lambda: finished(study),
        300,
        "the workflow to finish",
        details=lambda: run("status", study, cwd=tmp_path).stdout,
        interval=0.5,
    )
    check_finished_study(study)
    slow = attempts(study / "x3")
    sched = json.loads((slow[-1] / SETTINGS.INPUTS_FILE).read_text())["scheduler_inputs"]
    assert sched["time"] == "00:00:30"  # the restart asked for more time
    (agg,) = attempts(study / "aggregate")
    started = json.loads((agg / SETTINGS.STARTED_FILE).read_text())
    assert started["executor"] == "sge" and "." in started["job_id"]  # a job submitted by a job
