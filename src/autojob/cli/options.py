"""Option types shared by commands."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["DirPath", "ExistingDir"]

#: a directory that must exist
ExistingDir = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
#: a directory that may not exist yet
DirPath = click.Path(file_okay=False, dir_okay=True, path_type=Path)
