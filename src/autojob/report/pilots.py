"""The pilots of a tree on the report's page: a section when there are any.

What ``autojob status`` shows of them (:mod:`autojob.execution.pilots.report`),
read only: a report submits no pilot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["pilot_section"]


def pilot_section(root: Path) -> list[dict[str, Any]]:
    """Each pool of the tree at ``root``, as the page shows it (empty: no pilots)."""
    from autojob.execution.pilots.report import clock, pilot_report, state_counts  # noqa: PLC0415

    pools = []
    for pool in pilot_report(root):
        budget = pool["budget"]
        limit = budget["max_pilots"]
        pools.append(
            {
                "name": Path(pool["pool"]).name,
                "executor": pool["executor"],
                "per_pilot": pool["tasks_per_pilot"],
                "pilot_time": clock(pool["pilot_seconds"]) or "no limit",
                "budget": f"{budget['used'].get('pilots', 0)} of {limit or 'any number'}",
                "states": state_counts(pool),
                "cancelled": pool["cancelled"],
                "done": sum(int(row.get("done") or 0) for row in pool["pilots"]),
                "pilots": [
                    {**row, "left": clock(row.get("seconds_left")), "why": row.get("why") or ""}
                    for row in pool["pilots"]
                ],
            }
        )
    return pools
