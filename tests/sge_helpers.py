"""Helpers shared by the tests that run on the Grid Engine cluster (scripts/sge-up.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def sge(*args: str, cwd: Path | None = None) -> str:
    """Run a Grid Engine command; its stdout, stripped."""
    result = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result.stdout.strip()
