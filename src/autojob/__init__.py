"""autojob: create, run, harvest and advance HPC jobs kept in plain files.

``SETTINGS`` names every file autojob reads and writes; see
:mod:`autojob.settings` for how to change them. It is built on first use, so a
broken configuration is reported as a :class:`~autojob.errors.ConfigError`.
Importing the package imports nothing else (``autojob --version`` stays quick):
``SETTINGS`` and ``AutojobSettings`` import :mod:`autojob.settings`, and with it
pydantic, when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autojob.__about__ import __version__

if TYPE_CHECKING:
    from autojob.settings import AutojobSettings

    SETTINGS: AutojobSettings

__all__ = ["SETTINGS", "AutojobSettings", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "SETTINGS":
        from autojob.settings import load_settings  # noqa: PLC0415

        settings = load_settings()
        globals()["SETTINGS"] = settings
        return settings
    if name == "AutojobSettings":
        from autojob.settings import AutojobSettings  # noqa: PLC0415

        return AutojobSettings
    msg = f"module 'autojob' has no attribute {name!r}"
    raise AttributeError(msg)
