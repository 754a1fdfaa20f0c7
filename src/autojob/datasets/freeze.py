"""Freeze an agent's output root as a new dtool dataset.

The new dataset sits beside the output root, holds every file under it (the
provenance records too) and has a README naming the input dataset and the tool.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dtoolcore

from autojob.datasets.batches import dataset_uri
from autojob.datasets.provenance import AgentSummary
from autojob.errors import AutojobError, InputError

__all__ = ["freeze_outputs", "readme_text"]


def readme_text(source: dtoolcore.DataSet, summary: AgentSummary) -> str:
    """The new dataset's README (YAML; every value a JSON string, hence quoted)."""

    def q(value: str) -> str:
        return json.dumps(value)

    return "\n".join(
        [
            f"description: {q(f'outputs of {summary.tool_path} on dataset {source.name}')}",
            "input_dataset:",
            f"  name: {q(source.name)}",
            f"  uuid: {q(source.uuid)}",
            f"  uri: {q(source.uri)}",
            "tool:",
            f"  path: {q(summary.tool_path)}",
            f"  sha256: {q(summary.tool_sha256)}",
            f"  backend: {q(summary.backend)}",
            f"items: {summary.n_items}",
            "",
        ]
    )


def _output_files(root: Path) -> list[tuple[Path, str]]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            files.append((path, path.relative_to(root).as_posix()))
    return files


def freeze_outputs(root: Path, name: str, source: dtoolcore.DataSet, summary: AgentSummary) -> str:
    """Make the files under ``root`` a frozen dataset ``name`` beside it; return its URI."""
    base = root.parent
    if os.path.lexists(base / name):
        raise InputError(
            f"cannot freeze the outputs as {name!r}: it exists already",
            path=base / name,
            hint="choose another --freeze-output name, or remove the old dataset",
        )
    try:
        proto = dtoolcore.create_proto_dataset(
            name, dataset_uri(base), readme_content=readme_text(source, summary)
        )
    except dtoolcore.DtoolCoreInvalidNameError as exc:
        raise InputError(
            f"{name!r} is not a valid dataset name",
            field="--freeze-output",
            hint="use letters, digits, '-', '_' and '.'",
        ) from exc
    try:
        for path, relpath in _output_files(root):
            proto.put_item(os.fspath(path), relpath)
        proto.freeze()
    except OSError as exc:
        raise AutojobError(f"cannot freeze the outputs: {exc}", path=base / name) from exc
    return str(proto.uri)
