"""Provenance of the agent's work: one record per item, and a run's summary.

Each item's record is written atomically to
``<output root>/<SETTINGS.PROVENANCE_DIR>/<identifier>.json`` once its tool has
ended; an item counts as complete when its record says exit code 0 for the same
dataset, item content and tool, and its output exists.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autojob import SETTINGS
from autojob.errors import AutojobError, MetadataError
from autojob.store.atomic import dump_model, read_json_object, write_atomic

__all__ = [
    "AgentSummary",
    "ItemPlan",
    "ItemRecord",
    "file_sha256",
    "is_complete",
    "read_record",
    "record_path",
    "write_record",
]

#: how the tool ran: a smart tool given --output-path, one given --output-directory
#: (jobarchitect 0.7.0's interface), or a CWL tool
Backend = Literal["smart", "smart-directory", "cwl"]


class ItemPlan(BaseModel):
    """The work planned for one item: which input, which tool, which output."""

    model_config = ConfigDict(extra="allow")

    identifier: str
    relpath: str
    item_hash: str = Field(description="the item's hash in the dataset's manifest")
    dataset_uuid: str
    dataset_uri: str
    tool_path: str
    tool_sha256: str
    backend: Backend
    output_path: str


class ItemRecord(ItemPlan):
    """What happened to one item: the plan, when it ran, and how it ended."""

    started: datetime
    ended: datetime
    exit_code: int
    stderr_tail: str = ""


class AgentSummary(BaseModel):
    """One agent run over a list of items: the dataset, the tool and every item's record."""

    dataset_uuid: str
    dataset_uri: str
    dataset_name: str
    tool_path: str
    tool_sha256: str
    backend: Backend
    output_root: str
    n_items: int
    n_run: int
    n_skipped: int
    n_failed: int
    frozen_output_uri: str | None = None
    items: list[ItemRecord] = Field(default_factory=list)

    @property
    def failures(self) -> list[ItemRecord]:
        """The records of items whose tool failed."""
        return [item for item in self.items if item.exit_code != 0]


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise AutojobError(f"cannot read the file: {exc.strerror}", path=path) from exc
    return digest.hexdigest()


def record_path(output_root: Path, identifier: str) -> Path:
    """Where the provenance record of ``identifier`` is kept."""
    return output_root / SETTINGS.PROVENANCE_DIR / f"{identifier}.json"


def write_record(output_root: Path, record: ItemRecord) -> Path:
    """Write an item's record atomically; return its path."""
    path = record_path(output_root, record.identifier)
    return write_atomic(path, dump_model(record, path))


def read_record(path: Path) -> ItemRecord | None:
    """The record in ``path``; None when there is none or it is unreadable."""
    try:
        return ItemRecord.model_validate(read_json_object(path))
    except (MetadataError, ValidationError):
        return None


def is_complete(record: ItemRecord | None, expected: ItemPlan) -> bool:
    """Whether ``record`` shows the work ``expected`` describes was done and succeeded."""
    if record is None or record.exit_code != 0:
        return False
    same = (
        record.dataset_uuid == expected.dataset_uuid
        and record.item_hash == expected.item_hash
        and record.tool_sha256 == expected.tool_sha256
        and record.backend == expected.backend
        and record.output_path == expected.output_path
    )
    return same and Path(record.output_path).exists()
