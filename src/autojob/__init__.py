"""autojob: create, run, harvest and advance HPC jobs kept in plain files.

``SETTINGS`` names every file autojob reads and writes; see
:mod:`autojob.settings` for how to change them. It is built on first use, so a
broken configuration is reported as a :class:`~autojob.errors.ConfigError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autojob.__about__ import __version__
from autojob.settings import AutojobSettings

if TYPE_CHECKING:
    SETTINGS: AutojobSettings

__all__ = ["SETTINGS", "AutojobSettings", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "SETTINGS":
        from autojob.settings import load_settings  # noqa: PLC0415

        settings = load_settings()
        globals()["SETTINGS"] = settings
        return settings
    msg = f"module 'autojob' has no attribute {name!r}"
    raise AttributeError(msg)
