"""Benchmark: the local executor's throughput, against a plain Python process pool.

Each repeat builds two identical studies of N tasks whose command is ``true``
(untimed, with the library), on the same file system (``--dir``), then runs
every task of each with P at a time (default: the machine's cores), after
``gc.collect()`` and ``os.sync()``:

``ours``
    What ``autojob submit --wait`` does: ``select_tasks([root])`` and ``plan``
    (discover the tasks, read their state and inputs: ``select``), then
    ``LocalRunner(specs, max_parallel=P)``, ``claim(DEFAULT_ONLY)`` (each task
    locked and marked queued: ``claim``) and ``run()`` (each task script
    launched in its own session under its lock, waited for, its end checked:
    ``run``). Throughput and the target are measured on claim + run, the
    executor's work; select + claim + run is reported as well.

``plain``
    ``concurrent.futures.ThreadPoolExecutor(P)`` running
    ``subprocess.run(["bash", "run.sh"], cwd=task_dir)`` with standard output
    and error to the same files, for the task directories of the second tree
    (listed untimed). The task script is the same, and it gets the same
    environment (``AUTOJOB_TASK_DIR`` set, as ours sets it: without it the
    script finds its directory with ``$(dirname ...)``, one more process per
    task), so both trees get the same ``autojob.started`` / ``autojob.ended``
    records by the same work.

Afterwards (untimed) every task of both trees must have ended with exit code
0 (its ``autojob.ended`` read back), and ours must report every task a success.

Run ``.venv/bin/python benchmarks/bench_local.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import common

from autojob import SETTINGS
from autojob.execution.local import LocalRunner, RunSpec
from autojob.execution.submit import DEFAULT_ONLY, plan, select_tasks
from autojob.store.state import State, TaskState
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

TARGET_RATIO = 0.7  # ours' tasks/s >= 0.7x plain's
COMMAND = "true"


# -- the trees (untimed) -----------------------------------------------------------


def build_tree(n: int, dest: str) -> str:
    """Write a study of n tasks running ``true``; return its resolved root."""
    study = Study(
        name="bench-local",
        tasks=[
            Task(
                task_inputs=TaskInputs(command=COMMAND),
                task_metadata=TaskMetadata(label=f"task-{i}"),
            )
            for i in range(n)
        ],
    )
    return os.path.realpath(StudyGroup(studies=[study]).to_directory(dest))


# -- the contenders -----------------------------------------------------------------
#
# Each takes (root, folders, parallel) and returns its timings in seconds;
# "total" is what throughput and the target are measured on.


def run_ours(root: str, folders: list[str], parallel: int) -> dict[str, float]:
    """select_tasks + plan, then LocalRunner: claim, run."""
    start = time.perf_counter()
    specs = plan(select_tasks([Path(root)]))
    selected = time.perf_counter()
    runner = LocalRunner(specs, max_parallel=parallel)
    claimed = runner.claim(DEFAULT_ONLY)
    claimed_at = time.perf_counter()
    results = runner.run()
    done = time.perf_counter()
    check_ours(folders, specs, len(claimed), results)
    return {
        "select": selected - start,
        "claim": claimed_at - selected,
        "run": done - claimed_at,
        "total": done - selected,
        "end to end": done - start,
    }


def run_one_plain(folder: str) -> int:
    with (
        open(f"{folder}/{SETTINGS.STDOUT_FILE}", "wb") as out,
        open(f"{folder}/{SETTINGS.STDERR_FILE}", "wb") as err,
    ):
        return subprocess.run(
            ["bash", SETTINGS.DEFAULT_TASK_SCRIPT_FILE],
            cwd=folder,
            stdout=out,
            stderr=err,
            env={**os.environ, "AUTOJOB_TASK_DIR": folder},
            check=False,
        ).returncode


def run_plain(root: str, folders: list[str], parallel: int) -> dict[str, float]:
    """A thread pool of P running each task script with subprocess.run."""
    del root
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        codes = list(pool.map(run_one_plain, folders))
    done = time.perf_counter()
    if any(codes):
        msg = f"plain: {sum(1 for c in codes if c)} task script(s) exited non-zero"
        raise AssertionError(msg)
    return {"total": done - start, "end to end": done - start}


# -- checks (untimed) --------------------------------------------------------------


def check_ours(
    folders: list[str], specs: list[RunSpec], claimed: int, results: dict[Path, TaskState]
) -> None:
    if len(specs) != len(folders) or claimed != len(folders):
        msg = f"ours: {len(specs)} selected, {claimed} claimed, {len(folders)} in the tree"
        raise AssertionError(msg)
    bad = [path for path, state in results.items() if state.state is not State.SUCCESS]
    if len(results) != len(folders) or bad:
        msg = f"ours: {len(results)} results, {len(bad)} not successful (e.g. {bad[:1]})"
        raise AssertionError(msg)


def check_ended(name: str, folders: list[str]) -> None:
    """Every task has an autojob.ended record saying exit code 0."""
    bad = []
    for folder in folders:
        try:
            with open(f"{folder}/{SETTINGS.ENDED_FILE}", "rb") as stream:
                code = json.loads(stream.read()).get("exit_code")
        except (OSError, ValueError):
            code = None
        if code != 0:
            bad.append(folder)
    if bad:
        msg = f"{name}: {len(bad)} of {len(folders)} tasks did not end with exit 0, e.g. {bad[0]}"
        raise AssertionError(msg)


# -- measuring -------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    run: Callable[[str, list[str], int], dict[str, float]]
    best: dict[str, float] = field(default_factory=dict)


def measure_once(contender: Contender, n: int, parallel: int, base: str) -> dict[str, float]:
    """Build a fresh tree, run all its tasks, check that each ended with exit 0."""
    dest = tempfile.mkdtemp(prefix=f"{contender.name}-{n}-", dir=base)
    root = build_tree(n, dest)
    folders = common.task_dirs(root, SETTINGS.TASK_METADATA_FILE)
    if len(folders) != n:
        msg = f"{contender.name}: the tree has {len(folders)} tasks, not {n}"
        raise AssertionError(msg)
    measured = common.measure(lambda: contender.run(root, folders, parallel))
    times = measured.value
    times["user"] = measured.cpu.user
    times["sys"] = measured.cpu.system
    times["children"] = measured.cpu.children
    check_ended(contender.name, folders)
    return times


def benchmark(contenders: list[Contender], n: int, parallel: int, repeats: int, base: str) -> None:
    for contender in contenders:  # warm up: imports, template compilation, caches
        measure_once(contender, 20, parallel, base)
    for rep in range(repeats):
        for contender in common.rotated(contenders, rep):
            result = measure_once(contender, n, parallel, base)
            parts = "  ".join(
                f"{key} {result[key]:.3f}" for key in ("select", "claim", "run") if key in result
            )
            cpu = common.cpu_note(result["user"], result["sys"], result["children"])
            common.log(
                f"  N={n:,} P={parallel} run {rep + 1}/{repeats} {contender.name:<6}"
                f" {result['total']:8.3f} s  {n / result['total']:7.1f} tasks/s  {parts}  {cpu}"
            )
            # contender.best is {} until its first run
            contender.best = common.faster(result, contender.best or None, common.total)


class ProfiledRunner(LocalRunner):
    """A LocalRunner whose worker threads are profiled too (cProfile sees one thread)."""

    def __init__(self, specs: list[RunSpec], *, max_parallel: int) -> None:
        super().__init__(specs, max_parallel=max_parallel)
        self.profiles: dict[int, cProfile.Profile] = {}
        self._profiles_lock = threading.Lock()

    def _run_one(self, spec: RunSpec) -> TaskState:
        with self._profiles_lock:
            profile = self.profiles.setdefault(threading.get_ident(), cProfile.Profile())
        profile.enable()
        try:
            return super()._run_one(spec)
        finally:
            profile.disable()


def profile_ours(n: int, parallel: int, base: str, limit: int) -> str:
    """cProfile of select + claim (main thread) and of run (every worker thread)."""
    dest = tempfile.mkdtemp(prefix=f"profile-{n}-", dir=base)
    root = build_tree(n, dest)
    common.settle()
    main = cProfile.Profile()
    main.enable()
    specs = plan(select_tasks([Path(root)]))
    runner = ProfiledRunner(specs, max_parallel=parallel)
    runner.claim(DEFAULT_ONLY)
    main.disable()
    runner.run()
    check_ended("profile", common.task_dirs(root, SETTINGS.TASK_METADATA_FILE))
    out = io.StringIO()
    for title, profiles in (
        ("select_tasks + plan + claim (main thread)", [main]),
        (
            f"run: the {len(runner.profiles)} worker threads together"
            " (wall time per thread, waiting on the task scripts included)",
            list(runner.profiles.values()),
        ),
    ):
        print(f"cProfile of ours at N={n:,}, P={parallel}: {title}", file=out)
        out.write(common.profile_text(limit, *profiles))
    return out.getvalue()


# -- reporting -------------------------------------------------------------------


def report(ours: Contender, plain: Contender, n: int, parallel: int) -> float:
    o, p = ours.best, plain.best
    ours_rate, plain_rate = n / o["total"], n / p["total"]
    e2e_rate = n / o["end to end"]
    header = (
        f"{'N':>6} {'P':>3} {'select s':>9} {'claim s':>8} {'run s':>8} {'plain s':>8}"
        f" {'ours tasks/s':>13} {'(with select)':>14} {'plain tasks/s':>14}"
        f" {'ours/plain':>11} {'(with select)':>14}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{n:>6,} {parallel:>3} {o['select']:>9.3f} {o['claim']:>8.3f} {o['run']:>8.3f}"
        f" {p['total']:>8.3f} {ours_rate:>13.1f} {e2e_rate:>14.1f} {plain_rate:>14.1f}"
        f" {ours_rate / plain_rate:>10.2f}x {e2e_rate / plain_rate:>13.2f}x"
    )
    print()
    print("CPU seconds of those runs (this process user + system; the task scripts):")
    for contender in (ours, plain):
        b = contender.best
        print(
            f"  {contender.name:<6} {b['user']:.2f} + {b['sys']:.2f}; children {b['children']:.2f}"
        )
    print()
    print(
        "ours tasks/s: N / (claim + run), the executor's work; (with select):"
        " N / (select_tasks + plan + claim + run), as `autojob submit --wait`."
    )
    return ours_rate / plain_rate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "Time the local executor on N tasks running `true`, vs a plain pool."
    )
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per tree (1000)")
    parser.add_argument(
        "--parallel",
        type=int,
        default=os.cpu_count() or 1,
        help=f"tasks run at once, for both (default: os.cpu_count() = {os.cpu_count()})",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs each, best kept (3)")
    common.add_dir(parser, hint="or /dev/shm")
    parser.add_argument(
        "--target", type=float, default=TARGET_RATIO, help="target for ours/plain tasks/s (0.7)"
    )
    common.add_check_profile_keep(
        parser,
        target="the target",
        profile="afterwards, profile ours once with cProfile (main and worker threads)",
        profile_limit=30,
    )
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.parallel < 1 or args.repeats < 1:
        parser.error("--tasks, --parallel and --repeats take positive numbers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n: int = args.tasks
    parallel: int = args.parallel
    base = common.base_dir(args.dir)
    if shutil.which("bash") is None:
        sys.exit("bash is not on PATH: the task scripts need it")
    ours = Contender("ours", run_ours)
    plain = Contender("plain", run_plain)
    common.log(
        f"N={n:,}, P={parallel}, repeats {args.repeats}, in {base},"
        f" python {common.python_version()}"
    )
    profile = ""
    with common.bench_root(base, "autojob-bench-local-", args.keep) as root:
        benchmark([ours, plain], n, parallel, args.repeats, root)
        if args.profile:
            profile = profile_ours(n, parallel, root, args.profile_limit)
    print()
    got = report(ours, plain, n, parallel)
    met = got >= args.target
    print()
    print(
        f"target: ours >= {args.target:g}x plain tasks/s at N={n:,}, P={parallel}:"
        f" {got:.2f}x -> {common.verdict(met)}"
    )
    if profile:
        print()
        print(profile)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
