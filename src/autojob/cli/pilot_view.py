"""The pilots of a tree in ``autojob status`` (a table per pool), and ``cancel`` of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

    from autojob.execution.pilots.pool import Pool

__all__ = ["cancel_pools_under", "pilot_tables", "pilots_json", "stop_pools"]


def pilots_json(root: Path) -> list[dict[str, Any]]:
    """The pools of the tree at ``root`` with their pilots (``status --json`` "pilots").

    A pool with work left and no live pilot gets new pilots first (within its
    budget), so a study finishes with no one watching but ``status``.
    """
    from autojob.store.walk import tree_dir  # noqa: PLC0415

    if not (tree_dir(root) / "pilots").is_dir():
        return []  # no pool was ever kept here: the pilots' modules are not even imported
    from autojob.execution.pilots.report import pilot_report  # noqa: PLC0415

    return pilot_report(root, revive_idle=True)


def pilot_tables(root: Path) -> list[Table]:
    """One table per pool that has a pilot not ended, or pilots at all when none ended."""
    pools = pilots_json(root)
    if not pools:
        return []
    from rich.table import Table  # noqa: PLC0415

    from autojob.execution.pilots.report import clock, state_counts  # noqa: PLC0415

    tables = []
    for pool in pools:
        rows = pool["pilots"]
        shown = state_counts(pool)
        table = Table(
            title=f"pilots ({pool['executor']}): {shown}; {Path(pool['pool']).name}",
            title_justify="left",
            caption=_revived(pool),
            caption_justify="left",
        )
        for column in ("pilot", "state", "tasks done", "running", "time left", "why ended"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row["pilot"], row["state"], str(row["done"]), str(row["running"]),
                clock(row.get("seconds_left")), row.get("why") or "",
            )  # fmt: skip
        tables.append(table)
    return tables


def _revived(pool: dict[str, Any]) -> str | None:
    """What reviving the pool did, if anything."""
    if pool.get("revive_error"):
        return (
            f"work is left and no pilot lives, but none could be submitted: {pool['revive_error']}"
        )
    if pool.get("revived"):
        ids = ", ".join(pool["revived"])
        return f"work was left and no pilot lived: submitted pilot(s) {ids}"
    return None


def cancel_pools_under(paths: list[Path]) -> list[Pool]:
    """Mark cancelled each pool whose root lies under ``paths`` (its pilots claim no more).

    A pool is left alone when only some of its tasks are cancelled.
    """
    from autojob.execution.pilots.pool import pools_under  # noqa: PLC0415
    from autojob.store.walk import is_task_path  # noqa: PLC0415

    marked = []
    for path in paths:
        if is_task_path(path):
            continue  # one task: only it is cancelled, its pilots go on
        for pool in pools_under(path):
            root = Path(pool.settings.root)
            if not pool.cancelled and root.is_relative_to(path.resolve()):
                pool.cancel()
                marked.append(pool)
    return marked


def stop_pools(pools: list[Pool], *, grace: float) -> list[str]:
    """Stop the pilots of ``pools`` (their jobs cancelled); the pilots stopped."""
    from autojob.execution.pilots.launch import stop_pilots  # noqa: PLC0415

    return [pilot for pool in pools for pilot in stop_pilots(pool, grace=grace)]
