"""SLURM's commands: how they are run, and what the cluster allows."""

from __future__ import annotations

import re
import subprocess

from autojob.execution.commands import SchedulerCommands

__all__ = ["COMMANDS", "cluster_limits", "partitions", "slurm_command"]


def _hint_for(stderr: str) -> str | None:
    lowered = stderr.lower()
    if "invalid partition" in lowered:
        return f"partitions on this cluster: {', '.join(partitions()) or 'none found'}"
    if "invalid account" in lowered:
        return "check the account with 'sacctmgr show associations user=$USER'"
    if "time limit" in lowered:
        return "ask for less time (see 'sinfo -o \"%P %l\"' for each partition's limit)"
    if "unable to contact" in lowered or "connection refused" in lowered:
        return "the SLURM controller is not answering: check 'scontrol ping'"
    return None


def partitions() -> list[str]:
    """The partitions of the cluster (empty if sinfo fails)."""
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted({line.strip() for line in out.splitlines() if line.strip()})


def cluster_limits() -> dict[str, int]:
    """``MaxArraySize`` of the cluster (``scontrol show config``)."""
    out = slurm_command(["scontrol", "show", "config"], what="reading the SLURM configuration")
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, flags=re.MULTILINE)
    return {"MaxArraySize": int(match[1]) if match else 1001}


#: SLURM's commands, with hints for their errors
COMMANDS = SchedulerCommands(
    missing_hint="run autojob where the SLURM commands are, or use --executor local",
    unreachable_hint="the controller may be down: try again, or check 'scontrol ping'",
    hint_for=_hint_for,
)
#: run a SLURM command and return its output (raises SchedulerError)
slurm_command = COMMANDS.run
