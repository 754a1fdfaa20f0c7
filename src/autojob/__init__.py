"""autojob: create, run, harvest and advance HPC jobs kept in plain files.

``SETTINGS`` names every file autojob reads and writes; see
:mod:`autojob.settings` for how to change them.
"""

from autojob.__about__ import __version__
from autojob.settings import AutojobSettings

SETTINGS = AutojobSettings()

__all__ = ["SETTINGS", "AutojobSettings", "__version__"]
