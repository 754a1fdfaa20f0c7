"""Ways of running a tool on items: a process per item, or a fork per item.

Every runner takes a list of :class:`ItemJob` and calls ``on_done`` with each
job's :class:`Outcome` as it ends, at most ``jobs`` items at once.

- :func:`run_processes` starts a command per item (``python TOOL ...`` or
  ``cwltool ...``) from a pool of threads.
- :func:`run_forked` (the agent's ``--preload``) forks this process, which has
  already imported dtoolcore and opened the dataset, once per item; the child
  runs the unchanged smart tool as ``__main__`` with the argv it would have had.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import dtoolcore

__all__ = [
    "ItemJob",
    "Outcome",
    "preload_dataset",
    "run_forked",
    "run_processes",
    "stderr_tail",
]

#: characters of a tool's standard error kept in a failure's report and record
TAIL_CHARS = 2000
#: colour and cursor sequences, dropped from the tail (cwltool colours its log)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class ItemJob:
    """One item to process: its identifier and the command line that processes it."""

    identifier: str
    argv: list[str]
    output_path: Path
    #: drop the command's standard output (cwltool prints its output object there)
    quiet: bool = False


@dataclass(frozen=True)
class Outcome:
    """How one item's tool ended."""

    job: ItemJob
    started: datetime
    ended: datetime
    exit_code: int
    stderr_tail: str


OnDone = Callable[[Outcome], None]


def stderr_tail(stream: IO[bytes]) -> str:
    """The last :data:`TAIL_CHARS` characters written to ``stream`` (a temporary file)."""
    stream.flush()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - 4 * TAIL_CHARS))
    text = stream.read().decode("utf-8", errors="replace")
    return ANSI_ESCAPE.sub("", text)[-TAIL_CHARS:]


def _now() -> datetime:
    return datetime.now(UTC)


def _run_one(job: ItemJob) -> Outcome:
    started = _now()
    with tempfile.TemporaryFile() as err:
        try:
            code = subprocess.run(
                job.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if job.quiet else None,
                stderr=err,
                check=False,
            )
            exit_code = code.returncode
            tail = stderr_tail(err)
        except OSError as exc:
            exit_code, tail = 127, f"cannot start {job.argv[0]}: {exc.strerror or exc}"
    return Outcome(job, started, _now(), exit_code, tail)


def run_processes(jobs: Sequence[ItemJob], parallel: int, on_done: OnDone) -> None:
    """Run each job's command in its own process, ``parallel`` at once."""
    if parallel <= 1:
        for job in jobs:
            on_done(_run_one(job))
        return
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for outcome in pool.map(_run_one, jobs):
            on_done(outcome)


# -- fork mode ---------------------------------------------------------------------


def _exit_status(code: object) -> int:
    """The process exit status ``sys.exit(code)`` gives."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _child(job: ItemJob, err_fd: int) -> None:  # pragma: no cover  (runs in a fork)
    """Run the tool as ``__main__`` with the job's argv, then leave the process."""
    status = 1
    try:
        os.dup2(err_fd, 2)
        os.close(err_fd)
        tool = job.argv[1]
        sys.argv = job.argv[1:]
        sys.path[0] = os.path.dirname(os.path.abspath(tool))
        runpy.run_path(tool, run_name="__main__")
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                status = status or 1
        os._exit(status)


def _start(job: ItemJob) -> tuple[int, IO[bytes], datetime]:
    err = tempfile.TemporaryFile()  # noqa: SIM115  (closed when the child is reaped)
    started = _now()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child)
        _child(job, err.fileno())
    return pid, err, started


def preload_dataset(uri: str, dataset: dtoolcore.DataSet) -> None:
    """Make ``DataSet.from_uri(uri)`` return the dataset opened already, in this process.

    Opening a dataset looks up dtool's storage brokers through the installed
    packages' entry points, most of the time a smart tool spends opening it.
    Forked children inherit the opened dataset, so the tool's own
    ``DataSet.from_uri(uri)`` costs nothing; other URIs open as usual.
    """
    original = dtoolcore.DataSet.from_uri.__func__
    if getattr(original, "_autojob_preloaded", None) is not None:
        original = original._autojob_preloaded

    def from_uri(cls: type[dtoolcore.DataSet], wanted: str) -> dtoolcore.DataSet:
        if wanted == uri and cls is type(dataset):
            return dataset
        return original(cls, wanted)

    from_uri._autojob_preloaded = original  # type: ignore[attr-defined]
    dtoolcore.DataSet.from_uri = classmethod(from_uri)


def run_forked(jobs: Sequence[ItemJob], parallel: int, on_done: OnDone) -> None:
    """Fork this process once per job, ``parallel`` children at once.

    The child sees ``sys.argv`` as ``python TOOL ARGS...`` would set it, the
    tool's directory first on ``sys.path``, and every module this process has
    imported already.
    """
    pending = list(reversed(jobs))
    running: dict[int, tuple[ItemJob, IO[bytes], datetime]] = {}
    while pending or running:
        while pending and len(running) < max(1, parallel):
            job = pending.pop()
            pid, err, started = _start(job)
            running[pid] = (job, err, started)
        pid, status = os.wait()
        if pid not in running:
            continue
        job, err, started = running.pop(pid)
        with err:
            tail = stderr_tail(err)
        on_done(Outcome(job, started, _now(), os.waitstatus_to_exitcode(status), tail))


def smart_tool_argv(
    tool: Path, dataset_uri: str, identifier: str, output: Path, *, directory: bool = False
) -> list[str]:
    """``python TOOL --dataset-path URI --identifier ID --output-path OUT``.

    ``directory``: ``--output-directory OUT`` instead, as jobarchitect 0.7.0 passed it.
    """
    return [
        sys.executable,
        os.fspath(tool),
        "--dataset-path",
        dataset_uri,
        "--identifier",
        identifier,
        "--output-directory" if directory else "--output-path",
        os.fspath(output),
    ]
