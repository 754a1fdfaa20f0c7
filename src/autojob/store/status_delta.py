"""The changes since the status index was last written whole, appended beside it.

Writing the whole index (``status.json``) after a status that re-read 1% of a
large tree would cost more than the re-reading: at 100,000 tasks, serialising
and writing its columns is about half of such a status. A status that changed
few rows instead appends them, with the journal offset it read up to, as one
line of ``.autojob/status.delta``: ``{"token": T, "offset": O, "rows": [...],
"at": [...], "dropped": [...]}``, each row the index's columns in order
(``COLUMNS``), ``at`` where each row sits in the index (null for a row added
since): a replay sets the rows there, after checking each row's path against
the index, rather than searching the index's paths for each.

A line belongs to the index whose ``token`` it names: an index written whole
gets a new token, so older lines are ignored (and the file removed). A line is
written with one ``write`` in append mode; a line cut short by a crash does
not parse and is skipped, and the journal entries it covered are re-read
(re-reading a task is always safe). The index is written whole again once the
rows appended since pass a twentieth of the tasks (at least one), so reading
the delta stays a small share of a status. Writing the index whole (from the
bytes it was read from, the changed values patched in) costs about as much
as replaying a few statuses' lines: measured at 100,000 tasks with 1% changed
before each status, a twentieth (or a thirtieth) gave the lowest mean over 20
statuses in a row, a tenth about a fifth more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from autojob import SETTINGS

__all__ = ["DELTA_SHARE", "append_delta", "delta_path", "read_delta", "remove_delta"]

logger = logging.getLogger(__name__)
#: the index is written whole when the rows in the delta would pass this share of the tasks
DELTA_SHARE = 0.05


def delta_path(root: str) -> str:
    """The delta file of the index of ``root``."""
    return os.path.join(root, SETTINGS.INDEX_DIR, "status.delta")


def read_delta(root: str, token: str) -> list[dict[str, Any]]:
    """The complete lines of the delta written for the index ``token``, oldest first."""
    try:
        with open(delta_path(root), "rb") as stream:
            text = stream.read()
    except OSError:
        return []
    found = []
    for line in text.split(b"\n"):
        try:
            data = json.loads(line)
        except ValueError:
            continue  # empty, or cut short by a crash: its journal entries are read again
        if isinstance(data, dict) and data.get("token") == token:
            found.append(data)
    return found


def append_delta(
    root: str,
    token: str,
    offset: int,
    rows: Sequence[Sequence[Any]],
    at: Sequence[int | None],
    dropped: Sequence[str],
) -> bool:
    """Append one line of changed ``rows`` and ``dropped`` paths; whether it was written.

    ``at``: where each row sits in the index (None: a row added since).
    """
    line = {"token": token, "offset": offset, "rows": rows, "at": at, "dropped": dropped}
    # a newline first too: a line cut short before this one does not swallow it
    text = "\n" + json.dumps(line, separators=(",", ":")) + "\n"
    data = text.encode("utf-8", "surrogateescape")
    try:
        fd = os.open(delta_path(root), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        logger.warning("status index changes not saved: %s", exc)
        return False
    return True


def remove_delta(root: str) -> None:
    """Remove the delta (the index was just written whole, or is rebuilt)."""
    with contextlib.suppress(OSError):
        os.unlink(delta_path(root))
