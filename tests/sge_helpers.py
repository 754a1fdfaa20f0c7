"""Helpers shared by the tests that run on the Grid Engine cluster (scripts/sge-up.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from autojob.execution.sge import reconcile
from autojob.store.state import FINAL_STATES, State, TaskState, read_state

from .helpers import wait_until


def sge(*args: str, cwd: Path | None = None) -> str:
    """Run a Grid Engine command; its stdout, stripped."""
    result = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def wait_final(paths: list[Path], timeout: float = 120) -> dict[Path, State]:
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
        details=lambda: {p.name: (s.state, s.accounted) for p, s in seen.items()},
        interval=0.5,
    )


def queued_elements() -> set[str]:
    """The array elements qstat lists as queued or running (not being deleted)."""
    out = sge("qstat", "-u", "*", "-g", "d")
    elements = set()
    for line in out.splitlines()[2:]:
        words = line.split()
        if len(words) >= 8 and "d" not in words[4]:
            elements.add(f"{words[0]}.{words[-1]}")
    return elements
