"""Harvesting: collect the results of any tree of tasks into one archive.

::

    from autojob.harvest import archive, harvest, load_archive

    for task in harvest("study_group", strict=False):
        print(task.path, task.state_name, task.outputs)

    archive("study_group", "archive.json")      # atomic; incremental next time
    tasks = load_archive("archive.json")        # the same HarvestedTask objects

Outputs come from harvesters (:mod:`autojob.harvest.harvesters`), plugins of
the ``autojob.harvest`` entry-point group; the default one reads each task's
``outputs.json``.
"""

from __future__ import annotations

from autojob.harvest.archiving import archive, default_archive, load_archive
from autojob.harvest.harvesters import (
    HARVEST_GROUP,
    Harvester,
    OutputsHarvester,
    TaskFiles,
    available_harvesters,
    get_harvester,
    read_json_file,
    refresh_harvesters,
    register_harvester,
)
from autojob.harvest.harvesting import Condition, Harvest, HarvestSummary, harvest, parse_condition
from autojob.harvest.models import Attempts, HarvestedTask, Problem
from autojob.harvest.writers import Format

__all__ = [
    "HARVEST_GROUP",
    "Attempts",
    "Condition",
    "Format",
    "Harvest",
    "HarvestSummary",
    "HarvestedTask",
    "Harvester",
    "OutputsHarvester",
    "Problem",
    "TaskFiles",
    "archive",
    "available_harvesters",
    "default_archive",
    "get_harvester",
    "harvest",
    "load_archive",
    "parse_condition",
    "read_json_file",
    "refresh_harvesters",
    "register_harvester",
]
