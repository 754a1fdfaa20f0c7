"""Grid Engine's commands: how they are run, and what the cluster allows."""

from __future__ import annotations

import re
import subprocess

from autojob.execution.commands import SchedulerCommands

__all__ = ["COMMANDS", "DEFAULT_MAX_AJ_TASKS", "cluster_limits", "queues", "sge_command"]

#: Grid Engine's default largest array (``max_aj_tasks`` of ``qconf -sconf``)
DEFAULT_MAX_AJ_TASKS = 75000


def _hint_for(stderr: str) -> str | None:
    lowered = stderr.lower()
    if "unknown queue" in lowered:
        found = ", ".join(queues()) or "none found"
        return f"queues on this cluster: {found} (scheduler_inputs.partition)"
    if "parallel environment" in lowered:
        return (
            "list them with 'qconf -spl'; set AUTOJOB_SGE_PARALLEL_ENVIRONMENT to one "
            "whose allocation_rule is $pe_slots"
        )
    if "unknown resource" in lowered:
        return (
            "list the cluster's resources with 'qconf -sc'; set AUTOJOB_SGE_MEMORY_RESOURCE "
            "to the site's memory resource"
        )
    if "unable to contact qmaster" in lowered or "commlib error" in lowered:
        return "sge_qmaster is not answering: check 'qstat -f' and $SGE_ROOT/$SGE_CELL"
    return None


def queues() -> list[str]:
    """The cluster queues (empty if qconf fails)."""
    try:
        out = subprocess.run(
            ["qconf", "-sql"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted({line.strip() for line in out.splitlines() if line.strip()})


def cluster_limits() -> dict[str, int]:
    """``max_aj_tasks`` of the cluster (``qconf -sconf``): the largest array."""
    out = sge_command(["qconf", "-sconf"], what="reading the Grid Engine configuration")
    match = re.search(r"^max_aj_tasks\s+(\d+)", out, flags=re.MULTILINE)
    limit = int(match[1]) if match else DEFAULT_MAX_AJ_TASKS
    return {"max_aj_tasks": limit if limit > 0 else DEFAULT_MAX_AJ_TASKS}


#: Grid Engine's commands, with hints for their errors
COMMANDS = SchedulerCommands(
    missing_hint="run autojob where the Grid Engine commands (qsub, qstat) are, "
    "or use --executor local",
    unreachable_hint="sge_qmaster may be down or busy: try again, or check 'qstat -f'",
    hint_for=_hint_for,
)
#: run a Grid Engine command and return its output (raises SchedulerError)
sge_command = COMMANDS.run
