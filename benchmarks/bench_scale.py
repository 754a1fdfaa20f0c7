"""Benchmark: every size at once, from 1,000 to 100,000 tasks (1,000,000 on request).

One tree per N, written through the API from a generator of tasks (a study
group holding one study of N one-task groups), then, on that same tree and in
the same run, each command against plain Python doing the same file work:

``create``
    In a fresh process: ``Study(...).to_directory(group, tasks=generator)``,
    its time per task and its peak resident memory (``VmHWM``); then, in
    another fresh process, ``autojob sweep`` of a spec of N combinations, its
    peak memory; then, each in a fresh process, ``autojob sweep --dry-run`` of
    a spec of 2N combinations into that study (N there, N new: the table of
    50 rows, every combination checked) and ``autojob sweep`` of it (the
    study grown by N). Target for each: the peak at the largest N <= 1.2x the
    peak at 10,000.
``load``
    ``StudyGroup.from_directory(root, strict_mode=True)`` against
    ``bench_load.lower`` (``os.scandir`` and ``json.loads`` of the same
    files). Target: <= 2x at every N.
``status``
    Each task gets the records its task script writes (bench_status's mix of
    states), untimed. ``lower``: a cold plain-Python scan
    (``bench_status.lower_bound``); ``cold``: ``collect(rescan=True)``; then 1%
    of the tasks end anew and ``warm``: ``collect(root)``. Targets: warm <=
    0.1x the cold scan at 100,000, and warm <= 1 s at 1,000,000.
``harvest``
    ``archive(root, out, fmt="json", incremental=False)`` against
    ``bench_harvest.lower`` (reading the same files and writing one JSON line
    each). Target: <= 2x at 10,000 and 100,000. And, each in a fresh process,
    the peak memory of iterating ``harvest(root)`` (the streaming API) and of
    ``list(harvest(root))`` (every record held): the first must stay flat
    (largest N <= 1.2x 10,000); the second holds N records by definition,
    and its bytes per task are printed.
``start``
    ``bench_startup``'s commands, once: ``autojob --version`` and ``autojob
    status --help`` against ``signac --help`` (target: <= 2x, medians).

Run ``.venv/bin/python benchmarks/bench_scale.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_harvest
import bench_load
import bench_startup
import bench_status
import common

from autojob import SETTINGS
from autojob.harvest.archiving import archive
from autojob.store.status_index import collect
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

DEFAULT_SIZES = [1_000, 10_000, 100_000]
MILLION = 1_000_000
MEMORY_BASE = 10_000  # peaks are compared with the peak at this N
TARGET_MEMORY = 1.2
TARGET_LOAD = 2.0
TARGET_WARM = 0.1
TARGET_WARM_SIZE = 100_000
TARGET_WARM_SECONDS = 1.0
TARGET_HARVEST = 2.0
HARVEST_TARGET_SIZES = (10_000, 100_000)
TARGET_START = 2.0
SKIPPABLE = ("sweep", "grow", "load", "status", "harvest", "memory", "start")


# -- children: one fresh process per memory figure --------------------------------------


def peak_rss() -> int:
    """This process's peak resident memory in bytes (``VmHWM``, which exec resets)."""
    return bench_harvest._peak_rss()


def make_task(i: int) -> Task:
    return Task(
        task_inputs=TaskInputs(command=bench_load.command_of(i)),
        task_metadata=TaskMetadata(label=f"task-{i}", tags=["bench"]),
    )


def create_child(count: str, dest: str) -> dict[str, Any]:
    """Write the tree of ``count`` tasks from a generator; its time and peak memory."""
    n = int(count)
    group = StudyGroup(name=f"bench-scale-{n}").to_directory(dest)
    start = time.perf_counter()
    Study(name="study").to_directory(group, tasks=(make_task(i) for i in range(n)))
    return {"seconds": time.perf_counter() - start, "rss": peak_rss(), "root": str(group)}


def sweep_child(spec: str, dest: str, *options: str) -> dict[str, Any]:
    """``autojob sweep SPEC --dest DEST [OPTIONS]`` in this process; its time and peak memory."""
    from autojob.cli.main import main

    start = time.perf_counter()
    try:
        main(["-q", "sweep", spec, "--dest", dest, *options])
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    return {"seconds": time.perf_counter() - start, "rss": peak_rss()}


def harvest_child(root: str, keep: str) -> dict[str, Any]:
    """Iterate ``harvest(root)`` (``keep == "list"``: into a list); time and peak memory."""
    from autojob.harvest.harvesting import harvest

    start = time.perf_counter()
    if keep == "list":
        count = len(list(harvest(root, strict=False)))
    else:
        count = sum(1 for _ in harvest(root, strict=False))
    return {"seconds": time.perf_counter() - start, "rss": peak_rss(), "tasks": count}


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "create": create_child,
    "sweep": sweep_child,
    "harvest": harvest_child,
}


def in_child(name: str, *args: str) -> dict[str, Any]:
    """Run ``CHILDREN[name](*args)`` in a fresh interpreter; what it printed last."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        msg = f"{name} child failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- one size -------------------------------------------------------------------------


@dataclass
class Size:
    """What was measured at one N (seconds, bytes); None where skipped."""

    n: int
    figures: dict[str, float] = field(default_factory=dict)

    def get(self, name: str) -> float | None:
        return self.figures.get(name)


def best_of(
    repeats: int, runs: dict[str, Callable[[], Any]], before: Callable[[], Any] = lambda: None
) -> dict[str, float]:
    """Best wall time of each run over ``repeats``, the order rotating; ``before`` untimed."""
    best: dict[str, float] = {}
    names = list(runs)
    for rep in range(repeats):
        for name in common.rotated(names, rep):
            before()
            took = common.measure(runs[name]).seconds
            best[name] = min(took, best.get(name, took))
    return best


def sweep_spec(n: int, folder: str, name: str = "scale.toml") -> str:
    """A spec of ``n`` combinations (one parameter of ``n`` values)."""
    path = os.path.join(folder, name)
    values = ", ".join(str(i) for i in range(n))
    with open(path, "w", encoding="utf-8") as out:
        out.write(
            f'name = "scale"\ncommand = "python3 calc.py {{x}}"\n[parameters]\nx = [{values}]\n'
        )
    return path


def measure_create(size: Size, base: str, skip: set[str]) -> str:
    folder = os.path.join(base, f"create-{size.n}")
    os.mkdir(folder)
    common.log(f"N={size.n:,}: creating the tree from a generator")
    made = in_child("create", str(size.n), folder)
    size.figures |= {"create": made["seconds"], "create rss": made["rss"]}
    if "sweep" not in skip:
        common.log(f"N={size.n:,}: autojob sweep of {size.n:,} combinations")
        out = os.path.join(base, f"sweep-{size.n}")
        os.mkdir(out)
        swept = in_child("sweep", sweep_spec(size.n, base), out)
        size.figures |= {"sweep": swept["seconds"], "sweep rss": swept["rss"]}
        if "grow" not in skip:
            grown = sweep_spec(2 * size.n, base, "grown.toml")
            common.log(f"N={size.n:,}: autojob sweep --dry-run of {2 * size.n:,} (N there)")
            dry = in_child("sweep", grown, out, "--dry-run")
            common.log(f"N={size.n:,}: autojob sweep of {2 * size.n:,} (N there, N added)")
            grew = in_child("sweep", grown, out)
            size.figures |= {"dry-run": dry["seconds"], "dry-run rss": dry["rss"]}
            size.figures |= {"grow": grew["seconds"], "grow rss": grew["rss"]}
    return os.path.realpath(str(made["root"]))


def measure_load(size: Size, root: str, repeats: int) -> None:
    common.log(f"N={size.n:,}: load")
    held: list[StudyGroup] = []

    def ours() -> None:
        held.append(bench_load.ours(root))

    def lower() -> None:
        if bench_load.lower(root) != size.n:
            raise AssertionError("the lower bound read another number of tasks")

    held.append(bench_load.ours(root))  # warm-up, and a check
    bench_load.check_ours(held[0], size.n)
    # the previous run's models are dropped before each run, untimed
    best = best_of(repeats, {"load": ours, "load lower": lower}, before=held.clear)
    held.clear()
    size.figures |= best


def measure_status(size: Size, root: str, repeats: int, warm_runs: int) -> None:
    common.log(f"N={size.n:,}: status (records written first)")
    pid, when = bench_status.dead_pid(), time.time() - 3600.0
    dirs = common.task_dirs(root, SETTINGS.TASK_METADATA_FILE)
    truth = {}
    for folder, state in zip(dirs, bench_status.states_for(size.n, 1), strict=True):
        bench_status.write_state(folder, state, when, pid)
        truth[os.path.relpath(folder, root)] = state
    tree = bench_status.Tree(size.n, root, truth)
    size.figures |= best_of(
        repeats,
        {
            "status lower": lambda: bench_status.lower_bound(root),
            "status cold": lambda: collect(Path(root), rescan=True),
        },
    )
    warm = []
    for _ in range(warm_runs or repeats):
        changed = bench_status.change_some(tree)
        measured = common.measure(lambda: collect(Path(root)))
        bench_status.check_warm(measured.value, tree, changed)
        warm.append(measured.seconds)
    add_runs(size, "status warm", warm)
    # the command as a user runs it: a process, imports, the table printed
    cli = []
    for _ in range(warm_runs or repeats):
        bench_status.change_some(tree)
        took, out = bench_status.run_cli(["status", root])
        count = max(1, round(size.n * bench_status.CHANGE_FRACTION))
        if f"{size.n} task(s); {count} read from disk (index)" not in out.decode():
            raise AssertionError(f"autojob status did not re-read the changed tasks: {out!r}")
        cli.append(took)
    add_runs(size, "status warm cli", cli)


def add_runs(size: Size, name: str, runs: list[float]) -> None:
    """The best of ``runs`` as ``name``; their mean (what a run costs, the delta's replay
    and the index's whole rewrites spread over them) and worst too when there are several."""
    if runs:
        size.figures[name] = min(runs)
    if len(runs) > 1:
        size.figures[f"{name} mean"] = sum(runs) / len(runs)
        size.figures[f"{name} max"] = max(runs)


def measure_harvest(size: Size, root: str, base: str, repeats: int, skip: set[str]) -> None:
    common.log(f"N={size.n:,}: harvest to archive.json")
    out = os.path.join(base, f"archive-{size.n}.json")
    lower_out = os.path.join(base, f"lower-{size.n}.jsonl")

    def ours() -> None:
        found = archive(root, out, fmt="json", strict=False, incremental=False).tasks
        if found != size.n:
            raise AssertionError(f"archive holds {found} tasks, not {size.n}")

    def lower() -> None:
        if bench_harvest.lower(root, lower_out) != size.n:
            raise AssertionError("the lower bound read another number of tasks")

    size.figures |= best_of(repeats, {"harvest": ours, "harvest lower": lower})
    if "memory" in skip:
        return
    for keep in ("iterate", "list"):
        common.log(f"N={size.n:,}: peak memory of harvest() ({keep})")
        found = in_child("harvest", root, keep)
        if found["tasks"] != size.n:
            raise AssertionError(f"harvest() gave {found['tasks']} tasks, not {size.n}")
        size.figures[f"harvest {keep} rss"] = found["rss"]


def one_size(n: int, base: str, args: argparse.Namespace) -> Size:
    size = Size(n)
    folder = os.path.join(base, f"n{n}")
    os.mkdir(folder)
    if args.tree:
        common.log(f"N={n:,}: the tree given, {args.tree} (not created)")
        root = os.path.realpath(args.tree)
    else:
        root = measure_create(size, folder, args.skip)
    repeats = args.repeats if n < MILLION else 1
    if "load" not in args.skip:
        measure_load(size, root, repeats)
    if "status" not in args.skip:
        measure_status(size, root, repeats, args.warm_runs)
    if "harvest" not in args.skip:
        measure_harvest(size, root, folder, repeats, args.skip)
    return size


# -- the report --------------------------------------------------------------------------


def per_task(seconds: float | None, n: int) -> str:
    return "-" if seconds is None else f"{seconds / n * 1e6:.0f}"


def mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def print_times(sizes: list[Size]) -> None:
    common.print_header(
        f"{'N':>9} {'what':<16} {'ours s':>8} {'lower s':>8} {'ours µs/task':>12}"
        f" {'lower µs/task':>13} {'ours/lower':>10}"
    )
    rows = (
        ("create", "create", None),
        ("sweep", "sweep", None),
        ("sweep dry-run 2N", "dry-run", None),
        ("sweep grow +N", "grow", None),
        ("load", "load", "load lower"),
        ("status cold", "status cold", "status lower"),
        ("status warm 1%", "status warm", "status lower"),
        ("  mean of runs", "status warm mean", "status lower"),
        ("  worst run", "status warm max", "status lower"),
        ("`status` warm 1%", "status warm cli", "status lower"),
        ("  mean of runs", "status warm cli mean", "status lower"),
        ("  worst run", "status warm cli max", "status lower"),
        ("harvest json", "harvest", "harvest lower"),
    )
    for size in sizes:
        for label, ours, lower in rows:
            mine = size.get(ours)
            theirs = size.get(lower) if lower else None
            if mine is None:
                continue
            print(
                f"{size.n:>9,} {label:<16} {common.fmt(mine):>8} {common.fmt(theirs):>8}"
                f" {per_task(mine, size.n):>12} {per_task(theirs, size.n):>13}"
                f" {common.ratio(mine, theirs):>10}"
            )


def print_memory(sizes: list[Size]) -> None:
    print()
    common.print_header(
        f"{'N':>9} {'create MB':>9} {'sweep MB':>8} {'dry-run MB':>10} {'grow MB':>7}"
        f" {'harvest() MB':>12} {'list(harvest()) MB':>18} {'list bytes/task':>15}"
    )
    for size in sizes:
        listed = size.get("harvest list rss")
        iterated = size.get("harvest iterate rss")
        extra = None if listed is None or iterated is None else (listed - iterated) / size.n
        print(
            f"{size.n:>9,} {mb(size.get('create rss')):>9} {mb(size.get('sweep rss')):>8}"
            f" {mb(size.get('dry-run rss')):>10} {mb(size.get('grow rss')):>7}"
            f" {mb(iterated):>12} {mb(listed):>18} {'-' if extra is None else f'{extra:.0f}':>15}"
        )


def check(label: str, value: float | None, target: float, unit: str = "x") -> bool:
    if value is None:
        return True
    ok = value <= target
    print(f"{label} = {value:.3f}{unit} (target <= {target}{unit}: {common.verdict(ok)})")
    return ok


def ratio_of(size: Size | None, a: str, b: str) -> float | None:
    if size is None:
        return None
    x, y = size.get(a), size.get(b)
    return None if x is None or y is None else x / y


def memory_targets(sizes: list[Size]) -> bool:
    base = next((s for s in sizes if s.n == MEMORY_BASE), None)
    met = True
    for size in sizes:
        if base is None or size.n <= MEMORY_BASE:
            continue
        for name, label in (
            ("create rss", "create"),
            ("sweep rss", "sweep"),
            ("dry-run rss", "sweep --dry-run"),
            ("grow rss", "sweep growing a study"),
            ("harvest iterate rss", "iterating harvest()"),
        ):
            theirs = base.get(name)
            mine = size.get(name)
            value = None if mine is None or theirs is None else mine / theirs
            met &= check(f"{label} peak memory at N={size.n:,} / N={MEMORY_BASE:,}", value, 1.2)
    return met


def targets(sizes: list[Size], start: float | None) -> bool:
    print()
    met = True
    for size in sizes:
        met &= check(f"load / lower at N={size.n:,}", ratio_of(size, "load", "load lower"), 2.0)
    for size in sizes:
        if size.n in HARVEST_TARGET_SIZES:
            value = ratio_of(size, "harvest", "harvest lower")
            met &= check(f"harvest to archive.json / lower at N={size.n:,}", value, TARGET_HARVEST)
    warm_at = next((s for s in sizes if s.n == TARGET_WARM_SIZE), None)
    value = ratio_of(warm_at, "status warm", "status lower")
    met &= check(f"warm status / cold plain scan at N={TARGET_WARM_SIZE:,}", value, TARGET_WARM)
    million = next((s for s in sizes if s.n == MILLION), None)
    if million is not None:
        seconds = million.get("status warm")
        met &= check("warm status at N=1,000,000", seconds, TARGET_WARM_SECONDS, " s")
        seconds = million.get("status warm cli")
        met &= check("warm `autojob status` at N=1,000,000", seconds, TARGET_WARM_SECONDS, " s")
    met &= memory_targets(sizes)
    met &= check("CLI start / signac --help (slowest of ours, medians)", start, TARGET_START)
    return met


def measure_start(runs: int) -> float | None:
    common.log("start-up: autojob --version, autojob status --help, signac --help")
    found = bench_startup.contenders({"python", "help"})
    bench_startup.measure(found, runs, 2)
    print()
    bench_startup.report(found, TARGET_START)
    signac = next((c for c in found if c.name == "signac --help"), None)
    if signac is None:
        return None
    return max(c.median for c in found if c.target) / signac.median


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.new_parser(__doc__.split("\n", 1)[0])
    common.add_sizes(parser, DEFAULT_SIZES)
    parser.add_argument(
        "--million",
        action="store_true",
        help="add N = 1,000,000: about 6 million inodes on --dir (tmpfs rarely has them), "
        "about 7 GB of memory for the load, and tens of minutes",
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each, best kept")
    parser.add_argument("--start-runs", type=int, default=15, help="runs of each start-up command")
    parser.add_argument(
        "--warm-runs",
        type=int,
        default=0,
        help="warm statuses in a row, each after 1%% of the tasks changed, of the library "
        "call and then of the command (default: --repeats; 1 at 1,000,000): the best, the "
        "mean (the delta's replays and the index's whole rewrites spread over the runs: "
        "try 20) and the worst are printed",
    )
    common.add_dir(parser)
    common.add_skip(parser, SKIPPABLE, "parts")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the trees")
    parser.add_argument(
        "--tree",
        default=None,
        help="measure this tree of one study of N one-task groups (--sizes N, one size; "
        "kept by an earlier run with --keep: n*/create-*/bench-scale-*) instead of creating "
        "one; its status records are written anew",
    )
    args = parser.parse_args(argv)
    if args.tree and len(args.sizes) != 1:
        parser.error("--tree measures one tree: give its size alone in --sizes")
    common.check_skip(parser, args.skip, SKIPPABLE)
    common.check_sizes(parser, args.sizes)
    if args.million and MILLION not in args.sizes:
        args.sizes.append(MILLION)
    return args


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](*sys.argv[3:])))
        return 0
    args = parse_args(argv)
    common.byte_compile_autojob()
    print(
        f"# bench_scale: sizes {', '.join(f'{n:,}' for n in args.sizes)}; Python "
        f"{common.python_version()}; load average {os.getloadavg()[0]:.2f} at the start"
    )
    sizes = []
    with common.bench_root(common.base_dir(args.dir), "autojob-bench-scale-", args.keep) as base:
        for n in args.sizes:
            sizes.append(one_size(n, base, args))
    start = None if "start" in args.skip else measure_start(args.start_runs)
    print()
    print_times(sizes)
    print_memory(sizes)
    met = targets(sizes, start)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
