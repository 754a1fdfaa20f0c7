"""The pilots of a tree as ``autojob status`` shows them (and ``--json`` gives them).

Each pilot is ``pending`` (submitted, not started), ``running``, ``ended``
(it recorded why) or ``lost`` (it died without recording its end: killed,
its node or allocation gone; or it left the queue without starting, "why"
``never started``). A pilot's state is read from its record and its
heartbeat, and, for a pilot whose heartbeat is stale, from the scheduler.

``autojob status`` asks :func:`pilot_report` to revive first each pool with
work left and no live pilot, so a study finishes with no one watching.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from autojob.errors import AutojobError
from autojob.execution.pilots.launch import FINISHED, revive
from autojob.execution.pilots.liveness import Liveness, live_pilots
from autojob.execution.pilots.pool import Pool, pools_under

__all__ = ["clock", "pilot_report", "state_counts"]


def _pilot_row(
    pool: Pool, pilot_id: str, liveness: Liveness, now: float, live: set[str]
) -> dict[str, Any]:
    record = pool.pilot(pilot_id)
    if record is None:
        if pilot_id in live:
            return {"pilot": pilot_id, "state": "pending", "done": 0, "running": 0}
        return {"pilot": pilot_id, "state": "lost", "why": "never started", "done": 0, "running": 0}
    if record.get("ended") is not None:
        state = "ended"
    else:
        state = "running" if liveness.alive(pool, pilot_id) else "lost"
    deadline = record.get("deadline")
    left = None
    if state == "running" and isinstance(deadline, int | float):
        left = max(0.0, deadline - now)
    beat = record.get("heartbeat")
    return {
        "pilot": pilot_id,
        "state": state,
        "host": record.get("host"),
        "started": record.get("started"),
        "ended": record.get("ended"),
        "why": record.get("why"),
        "done": record.get("done", 0),
        "running": record.get("running", 0) if state == "running" else 0,
        "seconds_left": left,
        "heartbeat_age": None if not isinstance(beat, int | float) else max(0.0, now - beat),
    }


def pilot_report(root: Path, *, revive_idle: bool = False) -> list[dict[str, Any]]:
    """Each pool of the tree at ``root``: its settings, budget and pilots.

    ``revive_idle``: first revive each pool with work left and no live pilot
    (:func:`.launch.revive`); its dict then names the pilots submitted
    ("revived"), or why none could be ("revive_error").
    """
    liveness = Liveness()
    now = time.time()
    pools = []
    for pool in pools_under(root):
        revived: list[str] = []
        error = None
        if revive_idle:
            try:
                revived = revive(pool, liveness=liveness)
            except (AutojobError, OSError) as exc:
                error = str(exc)
        settings = pool.settings
        recorded = [str(r.get("pilot")) for r in pool.pilots()]
        ids = list(dict.fromkeys([*pool.submitted_pilots(), *recorded]))
        live = live_pilots(pool, liveness)
        pools.append(
            {
                "pool": str(pool.dir),
                "executor": settings.executor,
                "tasks_per_pilot": settings.per_pilot,
                "pilot_seconds": settings.pilot_seconds,
                "cancelled": pool.cancelled,
                "finished": (pool.dir / FINISHED).exists(),
                "revived": revived,
                "revive_error": error,
                "budget": {
                    "max_pilots": settings.budget.max_pilots,
                    "pilot_hours": settings.budget.pilot_hours,
                    "used": pool.budget_used(),
                },
                "pilots": [_pilot_row(pool, i, liveness, now, live) for i in ids],
            }
        )
    return pools


def clock(seconds: float | None) -> str:
    """``H:MM:SS`` (empty for None): a pilot's time left, its time."""
    if seconds is None:
        return ""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{rest:02d}"


def state_counts(pool: dict[str, Any]) -> str:
    """The pool's pilots counted by state: ``ended 3, running 1``."""
    counts: dict[str, int] = {}
    for row in pool["pilots"]:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
