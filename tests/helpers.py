"""Helpers shared by the tests: run the installed command, snapshot trees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: the console script installed next to the running interpreter
AUTOJOB = Path(sys.executable).parent / "autojob"


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``autojob`` script in ``cwd`` (a wide terminal)."""
    return subprocess.run(
        [str(AUTOJOB), *(str(a) for a in args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="surrogateescape",  # paths that are not UTF-8 come back as they are
        env={**os.environ, "COLUMNS": "400", **(env or {})},
        timeout=120,
        check=False,
    )


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root`` (hidden ones too): file bytes, None for dirs."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def tree_listing(root: Path) -> list[str]:
    """Every path under ``root`` (hidden ones too), relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
