"""Benchmark: what the command line adds to the library call it prints, at N tasks.

One tree per N is built first (untimed), as ``bench_status.py`` builds it: a
study group of one study of N one-task groups, the tasks' state records
written as their task scripts write them (success, failed, a lost run, idle).
Then, for each command, two processes are timed on that tree, best of
``--repeats`` (after ``gc.collect()`` and ``os.sync()``; the status index is
made once, untimed, so every run reads the same warm index):

``lib``
    A fresh Python that imports the library and makes the call the command
    prints, discarding its result: ``collect(root)`` then
    ``refresh_from_scheduler`` (what ``status`` prints), ``list_tree(root)``
    (what ``list`` prints), ``plan_submission([root], dry_run=True)`` with every
    state allowed (what ``submit --dry-run --only ...`` prints).

``cli``
    ``autojob status --json ROOT``, ``autojob list ROOT`` (the table: the first
    50 rows and a count by state), ``autojob list --json ROOT`` (JSON Lines),
    ``autojob submit --dry-run --only ... ROOT`` (the local executor's table,
    cut at 50 rows), their standard output written to a file.

Each process is started by a small launcher that times it and reads its peak
memory (``ru_maxrss``) alone.

Both pay the same process start and imports, so ``cli/lib`` is what printing
costs on top of the call; the target is ``cli/lib <= 2`` at N = 100,000. Each
output is checked (untimed): the JSON parses and holds N tasks, the tables
count N tasks. Peak memory and bytes printed are reported too.

Run ``.venv/bin/python benchmarks/bench_cli_output.py --help`` for the options.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import bench_status
import common

TARGET = 2.0  # cli / lib at the target size
TARGET_SIZE = 100_000
STATES = ("idle", "success", "failed", "unknown")
ONLY = [arg for state in STATES for arg in ("--only", state)]

#: each library call, as a script run by a fresh Python with the root as argv[1]
LIB = {
    "status": (
        "from pathlib import Path; import sys\n"
        "from autojob.store.status_index import collect\n"
        "from autojob.execution.track import refresh_from_scheduler\n"
        "report = collect(Path(sys.argv[1])); refresh_from_scheduler(report)\n"
        "assert len(report) == int(sys.argv[2])\n"
    ),
    "list": (
        "from pathlib import Path; import sys\n"
        "from autojob.create.listing import list_tree\n"
        "assert len(list_tree(Path(sys.argv[1])).rows) == int(sys.argv[2])\n"
    ),
    "submit": (
        "from pathlib import Path; import sys\n"
        "from autojob.execution.submit import plan_submission\n"
        "from autojob.store.state import State\n"
        f"allowed = frozenset(State(s) for s in {STATES!r})\n"
        "_, plan = plan_submission([Path(sys.argv[1])], executor='local', allowed=allowed,\n"
        "                          max_parallel=None, dry_run=True)\n"
        "assert len(plan.selected) == int(sys.argv[2])\n"
    ),
}
#: each command: the library call it prints, and its arguments before the root
CLI = {
    "status --json": ("status", ["status", "--json"]),
    "list": ("list", ["list"]),
    "list --json": ("list", ["list", "--json"]),
    "submit --dry-run": ("submit", ["submit", "--dry-run", "--executor", "local", *ONLY]),
}


@dataclass
class Run:
    """One process: its wall time, CPU time (user + system), peak memory, bytes printed."""

    seconds: float
    max_rss_mb: float
    out_bytes: int
    cpu_seconds: float = 0.0


#: runs its arguments as a process and reports, on stderr, the wall time, the CPU
#: time and the peak memory of that process alone: a child forked from this
#: benchmark would start with this benchmark's peak (ru_maxrss survives fork), this
#: small one does not
LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[1:])
took = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, code, file=sys.stderr)
"""


def timed_process(argv: list[str], check: Callable[[bytes], None] | None = None) -> Run:
    """Run ``argv`` with stdout to a file; time it, read its peak memory, check its output."""
    common.settle()
    with tempfile.TemporaryFile() as out:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *argv],
            stdout=out,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "100"},
            check=True,
        )
        took, cpu, peak, code = done.stderr.split()[-4:]
        if int(code):
            msg = f"{' '.join(argv)} exited with {int(code)}: {done.stderr.decode()[-2000:]}"
            raise AssertionError(msg)
        size = out.tell()
        if check is not None:
            out.seek(0)
            check(out.read())
    return Run(float(took), int(peak) / 1024, size, float(cpu))


def checker(name: str, n: int) -> Callable[[bytes], None]:
    """What must hold of a command's output (untimed)."""

    def check(output: bytes) -> None:
        if name == "status --json":
            got = len(json.loads(output)["tasks"])
        elif name == "list --json":
            got = sum(1 for line in output.splitlines() if json.loads(line))
        elif name == "list":
            got = int(output.split(b" task(s) under ", 1)[0])
        else:  # submit --dry-run
            got = int(output.split(b" task(s) would run", 1)[0])
        if got != n:
            msg = f"{name}: {got} task(s) in the output, not {n}"
            raise AssertionError(msg)

    return check


def measure_size(
    n: int, base: str, repeats: int, seed: int, skip: set[str], given: str | None = None
) -> dict[str, Run]:
    """Build the tree for n tasks (or take ``given``), then time each call and command on it."""
    start = time.perf_counter()
    if given is None:
        root = bench_status.build_tree(
            n, tempfile.mkdtemp(prefix=f"tree-{n}-", dir=base), seed
        ).root
    else:
        root = os.path.realpath(given)
    bench_status.ours_cold(root)  # the index every run reads
    common.log(f"N={n:,}: tree and index ready in {time.perf_counter() - start:.1f} s")
    best: dict[str, Run] = {}
    autojob = bench_status.autojob_command()
    for rep in range(repeats):
        for name, script in LIB.items():
            if name not in skip:
                run = timed_process([sys.executable, "-c", script, root, str(n)])
                keep(best, f"lib {name}", run, n, rep, repeats)
        for name, (lib, args) in CLI.items():
            if lib not in skip:
                run = timed_process([*autojob, *args, root], checker(name, n))
                keep(best, name, run, n, rep, repeats)
    return best


def keep(best: dict[str, Run], name: str, run: Run, n: int, rep: int, repeats: int) -> None:
    common.log(
        f"  N={n:>7,} run {rep + 1}/{repeats} {name:<18} {run.seconds:8.3f} s"
        f" ({run.cpu_seconds:.3f} s CPU) {run.max_rss_mb:7.0f} MB"
        f" {run.out_bytes / 1e6:8.2f} MB printed"
    )
    if name not in best or run.seconds < best[name].seconds:
        best[name] = run
    if cpu_key(name) not in best or run.cpu_seconds < best[cpu_key(name)].cpu_seconds:
        best[cpu_key(name)] = run  # the least CPU, kept apart from the best wall time


def cpu_key(name: str) -> str:
    """Where the run of ``name`` that took the least CPU time is kept."""
    return f"{name} (least CPU)"


def report(best: dict[int, dict[str, Run]]) -> None:
    header = f"{'N':>8} {'command':<18} {'cli s':>8} {'lib s':>8} {'cli/lib':>8}"
    header += f" {'cli CPU':>8} {'lib CPU':>8} {'CPU x':>6}"
    header += f" {'cli MB':>8} {'lib MB':>8} {'printed MB':>11} {'us/task':>8}"
    common.print_header(header)
    for n, runs in best.items():
        for name, (lib, _) in CLI.items():
            if name not in runs:
                continue
            cli, call = runs[name], runs[f"lib {lib}"]
            cli_cpu = runs[cpu_key(name)].cpu_seconds
            lib_cpu = runs[cpu_key(f"lib {lib}")].cpu_seconds
            print(
                f"{n:>8,} {name:<18} {cli.seconds:8.3f} {call.seconds:8.3f}"
                f" {common.ratio(cli.seconds, call.seconds):>8}"
                f" {cli_cpu:8.3f} {lib_cpu:8.3f} {common.ratio(cli_cpu, lib_cpu):>6}"
                f" {cli.max_rss_mb:8.0f} {call.max_rss_mb:8.0f} {cli.out_bytes / 1e6:11.2f}"
                f" {cli.seconds / n * 1e6:8.1f}"
            )
    print()
    print("cli: the command as a process, its output to a file; lib: a fresh Python making the")
    print("library call the command prints (same start and imports). s: best wall time; CPU:")
    print("least user + system seconds of the runs. MB: peak RSS (ru_maxrss).")


def check_target(best: dict[int, dict[str, Run]], target_size: int) -> bool:
    n = common.size_for_target(target_size, best)
    met = True
    for name, (lib, _) in CLI.items():
        if name not in best[n]:
            continue
        got = best[n][name].seconds / best[n][f"lib {lib}"].seconds
        ok = got <= TARGET
        met &= ok
        verdict = common.verdict(ok)
        cpu = best[n][cpu_key(name)].cpu_seconds / best[n][cpu_key(f"lib {lib}")].cpu_seconds
        print(
            f"target: {name} <= {TARGET:g}x its library call at N={n:,}: {got:.2f}x"
            f" (CPU time: {cpu:.2f}x) -> {verdict}"
        )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = common.new_parser(
        "Time status --json, list and submit --dry-run against their library calls."
    )
    common.add_sizes(parser, [1_000, 10_000, TARGET_SIZE])
    parser.add_argument("--repeats", type=int, default=2, help="runs per process, best kept (2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the task states (1)")
    common.add_dir(parser)
    common.add_skip(parser, list(LIB), "library calls (and the commands printing them)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the trees, for inspection")
    parser.add_argument(
        "--tree",
        default=None,
        help="time on this tree of N tasks (--sizes N, one size; e.g. one kept by "
        "bench_scale.py --keep) instead of building one",
    )
    args = parser.parse_args(argv)
    if args.tree and len(args.sizes) != 1:
        parser.error("--tree is one tree: give its size alone in --sizes")
    common.check_sizes(parser, args.sizes)
    common.check_skip(parser, args.skip, list(LIB))
    base = common.base_dir(args.dir)
    common.byte_compile_autojob()
    common.log(
        f"sizes {args.sizes}, repeats {args.repeats}, in {base}, python {common.python_version()}"
    )
    best: dict[int, dict[str, Run]] = {}
    with common.bench_root(base, "autojob-bench-cli-output-", args.keep) as root:
        for n in args.sizes:
            best[n] = measure_size(n, root, args.repeats, args.seed, args.skip, args.tree)
            gc.collect()
    print()
    report(best)
    print()
    met = check_target(best, TARGET_SIZE)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    common.log(f"this benchmark's own peak memory: {peak:.0f} MB")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
