"""The scaffolding the benchmark scripts share: options, timing, profiles, tables.

The scripts run as ``python benchmarks/bench_x.py``, which puts this directory
first on ``sys.path``, so they import this module as ``common``; mypy, given the
``benchmarks`` directory, resolves it the same way. What is here only sets up,
times and prints: what each script measures stays in the script.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: what a contender's run returns: timings in seconds by name ("total" compared)
Timings = dict[str, float]


# -- the command line -----------------------------------------------------------


def int_list(text: str) -> list[int]:
    """Parse ``"1000,10000"`` into ``[1000, 10000]`` (empty items ignored)."""
    return [int(item) for item in text.split(",") if item]


def name_set(text: str) -> set[str]:
    """Parse ``"floor,signac"`` into ``{"floor", "signac"}`` (empty items ignored)."""
    return {item for item in text.split(",") if item}


def new_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser whose epilog points to benchmarks/README.md."""
    return argparse.ArgumentParser(
        description=description,
        epilog="See benchmarks/README.md for what each contender does.",
    )


def add_sizes(parser: argparse.ArgumentParser, default: list[int]) -> None:
    """``--sizes``: comma-separated task counts."""
    parser.add_argument(
        "--sizes",
        type=int_list,
        default=default,
        help=f"comma-separated task counts (default: {','.join(map(str, default))})",
    )


def add_dir(parser: argparse.ArgumentParser, hint: str = "or /dev/shm for CPU costs alone") -> None:
    """``--dir``: where the temporary trees go; ``hint`` ends its help."""
    parser.add_argument(
        "--dir",
        default=None,
        help="where the temporary trees go (default: the system temp dir); "
        f"use the file system your tasks live on, {hint}",
    )


def add_skip(parser: argparse.ArgumentParser, choices: Sequence[str], what: str) -> None:
    """``--skip``: comma-separated ``what`` (contenders, parts) to leave out."""
    parser.add_argument(
        "--skip",
        type=name_set,
        default=set(),
        help=f"comma-separated {what} to leave out: {', '.join(choices)}",
    )


def add_check_profile_keep(
    parser: argparse.ArgumentParser, *, target: str, profile: str, profile_limit: int
) -> None:
    """``--check`` (when ``target`` is missed), ``--profile``, ``--profile-limit``, ``--keep``."""
    parser.add_argument(
        "--check", action="store_true", help=f"exit with status 1 when {target} is missed"
    )
    parser.add_argument("--profile", action="store_true", help=profile)
    parser.add_argument(
        "--profile-limit", type=int, default=profile_limit, help="rows of profile to print"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the trees written, for inspection"
    )


def check_skip(parser: argparse.ArgumentParser, skip: set[str], choices: Sequence[str]) -> None:
    """Exit with a usage error if ``skip`` names something not in ``choices``."""
    unknown = skip - set(choices)
    if unknown:
        parser.error(f"--skip: only {' and '.join(choices)} can be left out, not {sorted(unknown)}")


def check_sizes(parser: argparse.ArgumentParser, sizes: list[int]) -> None:
    """Exit with a usage error unless ``sizes`` holds positive task counts only."""
    if not sizes or min(sizes) < 1:
        parser.error("--sizes: give positive task counts")


def base_dir(path: str | None) -> str:
    """The directory ``--dir`` names (default: the system temp dir); exit if it is none."""
    base = path or tempfile.gettempdir()
    if not os.path.isdir(base):
        sys.exit(f"--dir {base} is not a directory")
    return base


def size_for_target(wanted: int, sizes: Collection[int]) -> int:
    """``wanted`` if it is among ``sizes``, else the largest size."""
    return wanted if wanted in sizes else max(sizes)


def task_dirs(root: str, marker: str) -> list[str]:
    """The directories below ``root`` holding the file ``marker`` (task.json), sorted.

    Hidden directories (autojob's index, staging) are not entered, and a task
    directory's own subdirectories are not searched.
    """
    found = []
    for here, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        if marker in names:
            found.append(here)
            subdirs[:] = []
    return sorted(found)


def python_version() -> str:
    """This Python's version, e.g. ``3.11.7``."""
    return sys.version.split()[0]


def byte_compile_autojob() -> None:
    """Byte-compile the autojob package, as installing it does, before processes are timed.

    An editable install compiles each module on its first import and keeps
    it, unless ``PYTHONDONTWRITEBYTECODE`` is set: then every process started
    compiles the package's modules from source again (40-80 ms a start on the
    development machine), which no installed package pays. ``compileall``
    writes the compiled files whatever that variable says.
    """
    import compileall

    import autojob

    if not compileall.compile_dir(os.path.dirname(autojob.__file__), quiet=1):
        log("autojob could not be byte-compiled: its processes compile it at each start")


def log(text: str) -> None:
    """Print a line of progress to stderr (the report goes to stdout)."""
    print(text, file=sys.stderr, flush=True)


def log_not_installed(package: str) -> None:
    """Say on stderr that an optional peer is not installed and is skipped."""
    log(f"{package} is not installed (.venv/bin/pip install -e '.[bench]'); skipping it")


# -- temporary trees -------------------------------------------------------------


@contextmanager
def bench_root(base: str, prefix: str, keep: bool) -> Iterator[str]:
    """A fresh directory below ``base`` for all the trees of a run.

    Removed at the end (also on error) unless ``keep``, in which case its path
    is printed to stderr.
    """
    root = tempfile.mkdtemp(prefix=prefix, dir=base)
    try:
        yield root
    finally:
        if keep:
            print(f"trees kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root)


# -- timing ----------------------------------------------------------------------


def settle(drop_caches: bool = False) -> None:
    """Start each timed run alike: no garbage, no dirty pages (no page cache)."""
    gc.collect()
    os.sync()  # every run starts with no dirty pages from earlier runs
    if drop_caches:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as stream:
            stream.write("3\n")


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds spent between two ``os.times()``: this process and its children."""

    user: float
    system: float
    children_user: float
    children_system: float

    @classmethod
    def between(cls, before: os.times_result, after: os.times_result) -> CpuTimes:
        return cls(
            user=after.user - before.user,
            system=after.system - before.system,
            children_user=after.children_user - before.children_user,
            children_system=after.children_system - before.children_system,
        )

    @property
    def children(self) -> float:
        """The children's user + system seconds."""
        return self.children_user + self.children_system


@dataclass(frozen=True)
class Measured(Generic[T]):
    """What a timed call returned, its wall time and its CPU time."""

    value: T
    seconds: float
    cpu: CpuTimes


def measure(run: Callable[[], T], *, drop_caches: bool = False) -> Measured[T]:
    """Call ``run`` after :func:`settle`; time it (``perf_counter``) and its CPU."""
    settle(drop_caches)
    before, start = os.times(), time.perf_counter()
    value = run()
    elapsed, after = time.perf_counter() - start, os.times()
    return Measured(value, elapsed, CpuTimes.between(before, after))


def total(times: Timings) -> float:
    """The time a contender is compared on."""
    return times["total"]


def faster(new: T, old: T | None, seconds: Callable[[T], float]) -> T:
    """The better of two runs for best-of-k: ``new`` unless ``old`` is as fast."""
    return new if old is None or seconds(new) < seconds(old) else old


def rotated(items: Sequence[T], rep: int) -> list[T]:
    """``items`` rotated by ``rep``, so no contender always runs first or last."""
    shift = rep % len(items)
    return [*items[shift:], *items[:shift]]


# -- profiles and tables ---------------------------------------------------------


def profile_text(limit: int, *profiles: cProfile.Profile) -> str:
    """The profiles merged, by cumulative and by own time, ``limit`` rows each."""
    out = io.StringIO()
    stats = pstats.Stats(*profiles, stream=out)
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def print_header(header: str) -> None:
    """Print a table's header line, underlined."""
    print(header)
    print("-" * len(header))


def fmt(seconds: float | None) -> str:
    """Seconds with 3 decimals, ``-`` for none."""
    return "-" if seconds is None else f"{seconds:.3f}"


def ratio(a: float | None, b: float | None, scale: float = 1.0) -> str:
    """``a / (b * scale)`` as ``1.23x``, ``-`` if either is missing."""
    return "-" if a is None or b is None else f"{a / (b * scale):.2f}x"


def cpu_note(user: float, system: float, children: float | None = None) -> str:
    """``(cpu user U sys S[ children C])`` for a progress line."""
    more = "" if children is None else f" children {children:.2f}"
    return f"(cpu user {user:.2f} sys {system:.2f}{more})"


def cpu_cell(n: int, user: float, system: float) -> str:
    """``N=n: U + S``, one size's cell of a CPU-seconds line."""
    return f"N={n:,}: {user:.2f} + {system:.2f}"


def verdict(met: bool) -> str:
    """``MET`` or ``MISSED``."""
    return "MET" if met else "MISSED"
