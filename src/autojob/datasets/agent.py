"""The agent: run a smart tool (or a CWL tool) on items of a dtool dataset.

For each identifier the agent runs ``python TOOL --dataset-path DATASET
--identifier ID --output-path OUT/<item relpath>`` (or, with the CWL backend,
``cwltool TOOL`` with the reserved inputs ``input_file`` and ``output_file``),
writes a provenance record per item under the output root, and skips items
whose outputs are complete from an earlier run. Everything is checked before
any tool runs: the tool exists, the dataset opens, every identifier is in it,
and no output path leaves the output root.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dtoolcore
from pydantic import BaseModel, ConfigDict, Field

from autojob import SETTINGS
from autojob.datasets.batches import dataset_uri, item_output_relpath, open_dataset
from autojob.datasets.provenance import (
    AgentSummary,
    Backend,
    ItemPlan,
    ItemRecord,
    file_sha256,
    is_complete,
    read_record,
    record_path,
    write_record,
)
from autojob.datasets.runners import (
    ItemJob,
    Outcome,
    preload_dataset,
    run_forked,
    run_processes,
    smart_tool_argv,
)
from autojob.errors import AutojobError, InputError, MissingFileError
from autojob.store.atomic import dump_model, write_atomic

__all__ = ["AgentRequest", "check_tool", "run_agent"]


#: runs cwltool and exits with its status ('python -m cwltool' exits 0 even on failure)
CWLTOOL_MAIN = "import sys; from cwltool.main import run; sys.exit(run(sys.argv[1:]))"


class AgentRequest(BaseModel):
    """What the agent is asked to do (the options of ``_jobarchitect_agent``)."""

    model_config = ConfigDict(frozen=True)

    tool_path: Path
    dataset: str = Field(description="path or URI of the input dataset")
    output_root: Path
    identifiers: tuple[str, ...] = Field(default=(), description="empty: every item")
    cwl_backend: bool = False
    output_directory: bool = Field(
        default=False,
        description="give smart tools --output-directory (a directory the agent "
        "creates), as jobarchitect 0.7.0 did, instead of --output-path",
    )
    jobs: int = Field(default=1, ge=1)
    preload: bool = False
    record: Path | None = Field(default=None, description="also write the summary here")
    freeze_output: str | None = None


def check_tool(tool_path: Path, *, cwl_backend: bool) -> Path:
    """The tool's absolute path; an error if it is missing or cwltool is."""
    if not tool_path.is_file():
        raise MissingFileError(
            "tool not found",
            path=tool_path,
            hint="give the path of a smart tool (a Python script) or, with --cwl-backend, "
            "of a CWL CommandLineTool",
        )
    if cwl_backend and importlib.util.find_spec("cwltool") is None:
        raise InputError(
            "--cwl-backend needs cwltool, which is not installed",
            hint="pip install 'autojob[cwl]'",
        )
    return tool_path.absolute()


def _check_identifiers(dataset: dtoolcore.DataSet, wanted: Sequence[str]) -> list[str]:
    known = set(dataset.identifiers)
    if not wanted:
        return sorted(known)
    unknown = [identifier for identifier in wanted if identifier not in known]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InputError(
            f"{len(unknown)} identifier(s) not in the dataset: {shown}",
            path=dataset.uri,
            hint="list the dataset's identifiers with 'dtool identifiers DATASET'",
        )
    return list(dict.fromkeys(wanted))


class _Plan(BaseModel):
    """The expected record of each item, before anything runs."""

    summary: AgentSummary
    expected: dict[str, ItemPlan]


def _plan(request: AgentRequest, dataset: dtoolcore.DataSet, tool: Path) -> _Plan:
    root = request.output_root.absolute()
    backend: Backend = "cwl" if request.cwl_backend else "smart"
    if request.output_directory and not request.cwl_backend:
        backend = "smart-directory"
    tool_hash = file_sha256(tool)
    expected = {}
    for identifier in _check_identifiers(dataset, request.identifiers):
        props = dataset.item_properties(identifier)
        rel = item_output_relpath(props["relpath"], identifier, dataset.uri)
        expected[identifier] = ItemPlan(
            identifier=identifier,
            relpath=props["relpath"],
            item_hash=str(props.get("hash", "")),
            dataset_uuid=dataset.uuid,
            dataset_uri=dataset.uri,
            tool_path=str(tool),
            tool_sha256=tool_hash,
            backend=backend,
            output_path=str(root.joinpath(rel)),
        )
    summary = AgentSummary(
        dataset_uuid=dataset.uuid,
        dataset_uri=dataset.uri,
        dataset_name=dataset.name,
        tool_path=str(tool),
        tool_sha256=tool_hash,
        backend=backend,
        output_root=str(root),
        n_items=len(expected),
        n_run=0,
        n_skipped=0,
        n_failed=0,
    )
    return _Plan(summary=summary, expected=expected)


def _cwl_argv(tool: Path, item_file: str, output: Path, job_file: Path) -> list[str]:
    """``cwltool`` on ``tool`` with a job binding ``input_file`` and ``output_file``.

    ``output_file`` is the output's file name; cwltool's output directory is the
    directory it goes in.
    """
    job = {"input_file": {"class": "File", "path": item_file}, "output_file": output.name}
    job_file.write_text(json.dumps(job), encoding="utf-8")
    return [
        sys.executable,
        "-c",
        CWLTOOL_MAIN,
        "--quiet",
        "--no-container",
        "--relax-path-checks",  # item paths may hold spaces and quotes
        "--outdir",
        os.fspath(output.parent),
        os.fspath(tool),
        os.fspath(job_file),
    ]


def _jobs(
    request: AgentRequest, dataset: dtoolcore.DataSet, todo: list[ItemPlan], job_dir: Path
) -> list[ItemJob]:
    uri = dataset_uri(request.dataset)
    jobs = []
    for record in todo:
        output, tool = Path(record.output_path), Path(record.tool_path)
        output.parent.mkdir(parents=True, exist_ok=True)
        directory = record.backend == "smart-directory"
        if directory:
            output.mkdir(exist_ok=True)
        if request.cwl_backend:
            item_file = dataset.item_content_abspath(record.identifier)
            argv = _cwl_argv(tool, item_file, output, job_dir / f"{record.identifier}.json")
        else:
            argv = smart_tool_argv(tool, uri, record.identifier, output, directory=directory)
        jobs.append(ItemJob(record.identifier, argv, output, quiet=request.cwl_backend))
    return jobs


@contextlib.contextmanager
def _job_dir() -> Iterator[Path]:
    """A temporary directory for the CWL job files of one run."""
    with tempfile.TemporaryDirectory(prefix="autojob-cwl-") as name:
        yield Path(name)


def _prepare_root(root: Path) -> None:
    try:
        (root / SETTINGS.PROVENANCE_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AutojobError(
            f"cannot create the output root: {exc.strerror}",
            path=root,
            hint="choose a directory you can write to",
        ) from exc


def run_agent(
    request: AgentRequest, on_done: Callable[[ItemRecord, bool], None] | None = None
) -> AgentSummary:
    """Run the tool on every requested item that is not complete yet.

    ``on_done(record, skipped)`` is called for each item as it is settled. A tool
    that fails does not stop the others: the summary counts and keeps it.
    """
    tool = check_tool(request.tool_path, cwl_backend=request.cwl_backend)
    dataset = open_dataset(request.dataset)
    plan = _plan(request, dataset, tool)
    root = Path(plan.summary.output_root)
    _prepare_root(root)
    records: dict[str, ItemRecord] = {}
    todo = []
    for identifier, expected in plan.expected.items():
        old = read_record(record_path(root, identifier))
        if old is not None and is_complete(old, expected):
            records[identifier] = old
            if on_done:
                on_done(old, True)
        else:
            todo.append(expected)

    def settle(outcome: Outcome) -> None:
        record = _finished(plan.expected[outcome.job.identifier], outcome)
        write_record(root, record)
        records[record.identifier] = record
        if on_done:
            on_done(record, False)

    with _job_dir() as job_dir:
        jobs = _jobs(request, dataset, todo, job_dir)
        if request.preload and not request.cwl_backend:
            preload_dataset(dataset_uri(request.dataset), dataset)
            run_forked(jobs, request.jobs, settle)
        else:
            run_processes(jobs, request.jobs, settle)
    summary = _summarise(plan, records, ran=len(todo))
    return _finish(request, dataset, summary)


def _finished(expected: ItemPlan, outcome: Outcome) -> ItemRecord:
    values = expected.model_dump()
    values.update(
        started=outcome.started,
        ended=outcome.ended,
        exit_code=outcome.exit_code,
        stderr_tail=outcome.stderr_tail if outcome.exit_code != 0 else "",
    )
    return ItemRecord.model_validate(values)


def _summarise(plan: _Plan, records: dict[str, ItemRecord], *, ran: int) -> AgentSummary:
    items = [records[identifier] for identifier in plan.expected]
    failed = sum(1 for item in items if item.exit_code != 0)
    return plan.summary.model_copy(
        update={"items": items, "n_run": ran, "n_skipped": len(items) - ran, "n_failed": failed}
    )


def _finish(
    request: AgentRequest, dataset: dtoolcore.DataSet, summary: AgentSummary
) -> AgentSummary:
    if request.freeze_output is not None and not summary.failures:
        from autojob.datasets.freeze import freeze_outputs  # noqa: PLC0415

        uri = freeze_outputs(Path(summary.output_root), request.freeze_output, dataset, summary)
        summary = summary.model_copy(update={"frozen_output_uri": uri})
    if request.record is not None:
        write_atomic(request.record, dump_model(summary, request.record))
    return summary
