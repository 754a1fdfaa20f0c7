"""Helpers shared by the tests of sketchjob and the agent: a real dtool dataset, a
real smart tool, the installed commands."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import dtoolcore

BIN = Path(sys.executable).parent
SKETCHJOB = BIN / "sketchjob"
AGENT = BIN / "_jobarchitect_agent"

#: a smart tool: hashes its item; items holding "fail" make it exit 3
SMART_TOOL = """\
import argparse
import hashlib
import pathlib
import sys

import dtoolcore

parser = argparse.ArgumentParser()
parser.add_argument("--dataset-path", required=True)
parser.add_argument("--identifier", required=True)
parser.add_argument("--output-path", required=True)
args = parser.parse_args()
dataset = dtoolcore.DataSet.from_uri(args.dataset_path)
data = pathlib.Path(dataset.item_content_abspath(args.identifier)).read_bytes()
if data.startswith(b"fail"):
    print(f"cannot hash item {args.identifier}: it says fail", file=sys.stderr)
    sys.exit(3)
pathlib.Path(args.output_path).write_text(hashlib.sha1(data).hexdigest() + "\\n")
"""

#: the items of the test dataset: relpath -> content
ITEMS = {
    "a/one.txt": "1",
    "a/two.txt": "2",
    "b/c/three.txt": "3",
    "b/four words.txt": "4",
    "five.txt": "5",
}


def make_dataset(
    base: Path, items: dict[str, str] = ITEMS, name: str = "images"
) -> dtoolcore.DataSet:
    """A frozen dataset ``base/name`` with ``items`` and an overlay ``odd``."""
    base.mkdir(parents=True, exist_ok=True)
    with dtoolcore.DataSetCreator(name, str(base)) as creator:
        for relpath, content in items.items():
            Path(creator.prepare_staging_abspath_promise(relpath)).write_text(content)
    dataset = dtoolcore.DataSet.from_uri(str(base / name))
    odd = {
        identifier: int(items[dataset.item_properties(identifier)["relpath"]]) % 2 == 1
        if items[dataset.item_properties(identifier)["relpath"]].isdigit()
        else False
        for identifier in dataset.identifiers
    }
    dataset.put_overlay("odd", odd)
    return dataset


def identifier_of(dataset: dtoolcore.DataSet, relpath: str) -> str:
    return next(i for i in dataset.identifiers if dataset.item_properties(i)["relpath"] == relpath)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest() + "\n"


def dataset_path(dataset: dtoolcore.DataSet) -> Path:
    return Path(dtoolcore.utils.generous_parse_uri(dataset.uri).path)


def call(command: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(command), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=300,
        check=False,
    )
