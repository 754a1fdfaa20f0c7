"""Open dtool datasets, choose their items and split them into batches.

Items are chosen by a boolean overlay (one value per item) or, failing that, by
an annotation holding either a mapping from identifiers to booleans or a list
of identifiers. Batches are near-equal: their sizes differ by at most one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import dtoolcore

from autojob import SETTINGS
from autojob.errors import InputError, MissingFileError, UnsafePathError

__all__ = [
    "dataset_uri",
    "item_output_relpath",
    "local_path",
    "open_dataset",
    "select_identifiers",
    "split_batches",
]


def dataset_uri(location: str | Path) -> str:
    """A dataset location as given, local paths made absolute (URIs kept)."""
    text = os.fspath(location)
    if "://" in text:
        return text
    return os.path.abspath(text)


def _refuse_legacy(uri: str) -> None:
    """Refuse a dataset written by dtool before dtoolcore (0.x, as jobarchitect 0.7.0 used).

    Its ``.dtool/dtool`` names a ``dtool_version`` and no ``dtoolcore_version``;
    dtoolcore reads its metadata but not its manifest.
    """
    admin = os.path.join(uri, ".dtool", "dtool")
    if "://" in uri or not os.path.isfile(admin):
        return
    try:
        with open(admin, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return  # dtoolcore says what is wrong with it
    if isinstance(data, dict) and "dtoolcore_version" not in data and "dtool_version" in data:
        raise InputError(
            f"a dataset of dtool {data['dtool_version']}, whose format dtoolcore "
            "(and so autojob) no longer reads",
            path=admin,
            field="dtool_version",
            hint="make a dataset of it with a current dtool: 'dtool create NAME', copy "
            "its files (under its manifest_root) into NAME/data, then 'dtool freeze NAME'",
        )


def open_dataset(location: str | Path) -> dtoolcore.DataSet:
    """Open the frozen dtool dataset at ``location`` (a path or a URI).

    Raises:
        MissingFileError: nothing is there.
        InputError: something is there, but not a frozen dtool dataset.
    """
    uri = dataset_uri(location)
    if "://" not in uri and not os.path.exists(uri):
        raise MissingFileError(
            "dataset not found", path=uri, hint="give the path or URI of a dtool dataset"
        )
    _refuse_legacy(uri)
    try:
        return dtoolcore.DataSet.from_uri(uri)
    except (dtoolcore.DtoolCoreTypeError, dtoolcore.DtoolCoreKeyError, OSError) as exc:
        raise InputError(
            f"not a frozen dtool dataset: {exc}",
            path=uri,
            hint="freeze the dataset first ('dtool freeze'), or check the path",
        ) from exc
    except (KeyError, ValueError) as exc:
        raise InputError(
            f"cannot read the dataset: {exc!r}",
            path=uri,
            hint="check the dataset's .dtool directory (its metadata may be corrupt)",
        ) from exc


def _available_filters(dataset: dtoolcore.DataSet) -> str:
    names = sorted({*dataset.list_overlay_names(), *dataset.list_annotation_names()})
    return ", ".join(names) or "none"


def _from_overlay(dataset: dtoolcore.DataSet, name: str) -> list[str]:
    overlay: dict[str, Any] = dataset.get_overlay(name)
    chosen = []
    for identifier in sorted(dataset.identifiers):
        value = overlay.get(identifier)
        if not isinstance(value, bool):
            raise InputError(
                f"overlay {name!r} holds {value!r} for item {identifier}, not a boolean",
                path=dataset.uri,
                field=f"overlays.{name}",
                hint="filter on an overlay of true/false values",
            )
        if value:
            chosen.append(identifier)
    return chosen


def _from_annotation(dataset: dtoolcore.DataSet, name: str) -> list[str]:
    value = dataset.get_annotation(name)
    known = set(dataset.identifiers)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        wanted = set(value)
    elif isinstance(value, dict) and all(isinstance(v, bool) for v in value.values()):
        wanted = {key for key, flag in value.items() if flag}
    else:
        raise InputError(
            f"annotation {name!r} is neither a list of identifiers nor a mapping "
            "of identifiers to booleans",
            path=dataset.uri,
            field=f"annotations.{name}",
            hint="filter on a boolean overlay, or such an annotation",
        )
    unknown = sorted(wanted - known)
    if unknown:
        raise InputError(
            f"annotation {name!r} names items not in the dataset: {', '.join(unknown[:5])}",
            path=dataset.uri,
            field=f"annotations.{name}",
        )
    return sorted(wanted)


def select_identifiers(dataset: dtoolcore.DataSet, overlay_filter: str | None = None) -> list[str]:
    """The dataset's identifiers (sorted), or those its filter NAME marks true."""
    if overlay_filter is None:
        return sorted(dataset.identifiers)
    if overlay_filter in dataset.list_overlay_names():
        return _from_overlay(dataset, overlay_filter)
    if overlay_filter in dataset.list_annotation_names():
        return _from_annotation(dataset, overlay_filter)
    raise InputError(
        f"the dataset has no overlay or annotation named {overlay_filter!r} "
        f"(it has: {_available_filters(dataset)})",
        path=dataset.uri,
        hint="name a boolean overlay of the dataset with --overlay-filter",
    )


def split_batches(identifiers: Sequence[str], nchunks: int) -> list[list[str]]:
    """Split ``identifiers`` into ``nchunks`` batches whose sizes differ by at most 1.

    Fewer batches are made when there are fewer items than ``nchunks``; no batch
    is empty.
    """
    if nchunks < 1:
        raise InputError(f"{nchunks} batches asked for", hint="give --nchunks 1 or more")
    count = min(nchunks, len(identifiers))
    size, extra = divmod(len(identifiers), count) if count else (0, 0)
    batches, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        batches.append(list(identifiers[start:end]))
        start = end
    return batches


def item_output_relpath(relpath: str, identifier: str, source: str) -> PurePosixPath:
    """The path below the output root where an item's output goes.

    It is the item's relpath; a relpath that is absolute, holds ``..`` or would
    land in the provenance directory is refused.
    """
    rel = PurePosixPath(relpath)
    bad = (
        not relpath
        or "\0" in relpath
        or rel.is_absolute()
        or ".." in rel.parts
        or rel.parts[0] == SETTINGS.PROVENANCE_DIR
    )
    if bad:
        raise UnsafePathError(
            f"item {identifier} has the relpath {relpath!r}, which would leave the "
            "output root (or overwrite its provenance records)",
            path=source,
            field=f"manifest.items.{identifier}.relpath",
            hint="fix the dataset's manifest, or leave this identifier out",
        )
    return rel


def local_path(uri: str) -> str | None:
    """The directory of a dataset URI on this file system; None for other schemes."""
    if "://" not in uri:
        return uri
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme == "file" else None
