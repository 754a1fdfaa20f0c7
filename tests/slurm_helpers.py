"""Helpers shared by the tests that run on the SLURM cluster (scripts/slurm-up.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from autojob.execution.slurm import ArrayJob, reconcile, slurm_arrays
from autojob.execution.submit import DEFAULT_ONLY, select_tasks
from autojob.store.state import FINAL_STATES, State, TaskState, read_state

from .helpers import wait_until

#: states of a job that has not finished yet ("" while sacct has no record)
ACTIVE = {"", "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING"}


def slurm(*args: str, cwd: Path | None = None) -> str:
    """Run a SLURM command; its stdout, stripped."""
    result = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def submit(study: Path, max_parallel: int | None = None) -> list[ArrayJob]:
    """Submit the study's tasks as autojob submit --executor slurm does."""
    selected = select_tasks([study], DEFAULT_ONLY)
    batch_root = study / ".autojob" / "slurm"
    return slurm_arrays(
        selected,
        allowed=DEFAULT_ONLY,
        max_parallel=max_parallel,
        batch_root=batch_root,
        dry_run=False,
    )


def wait_final(paths: list[Path], timeout: float = 240) -> dict[Path, State]:
    """The final states of the tasks, once every one is final and accounted for."""
    seen: dict[Path, TaskState] = {}

    def final() -> dict[Path, State] | None:
        seen.update({p: read_state(p) for p in paths})
        seen.update(reconcile(list(seen.items())))
        if all(s.state in FINAL_STATES and s.accounted for s in seen.values()):
            return {p: s.state for p, s in seen.items()}
        return None

    return wait_until(
        final,
        timeout,
        "every task to end, accounted for",
        details=lambda: {p.name: s.state for p, s in seen.items()},
        interval=1,
    )
