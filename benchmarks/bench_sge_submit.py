"""Benchmark: submitting N tasks to Grid Engine, as array jobs (ours) or one qsub per task.

For each N, two identical studies of N tasks whose command is ``true`` are built
(untimed, with the library), the tasks split into ``--groups`` resource groups
(group g asks for ``time`` of g + 1 minutes: ``-l h_rt``, so they cannot share an
array). Every task waits for a sentinel job submitted on hold (``qsub -h``):
``scheduler_inputs.dependency = afterany:<sentinel>`` (``-hold_jid``), so nothing
runs and the cluster only queues. Then, on the real cluster, after
``gc.collect()`` and ``os.sync()``:

``ours``
    What ``autojob submit --executor sge`` does: ``select_tasks([root])``
    (discover the tasks, read their state and inputs: ``select``), then the
    executor's ``plan`` (one ``qconf -sconf`` for ``max_aj_tasks``, the tasks
    grouped by resources) and ``submit`` (each task claimed, each array's files
    written and submitted with one ``qsub -t``, its job id recorded once).

``naive``
    One ``qsub -terse -hold_jid <sentinel> -l h_rt=... -wd <task dir>
    <task dir>/run.sh`` per task of the second tree (``subprocess.run``, as a
    Python loop would do it). ``--naive-max K`` times only K of them and
    extrapolates linearly to N (marked ``*``).

After each timed run, untimed, ``qstat`` must show the new array elements (ours:
N elements in as many jobs as qsub calls; naive: one job per call), all waiting;
then everything is deleted (``qdel``). The status part polls the N finished
tasks of a third tree (run for real, untimed) once through the executor and
counts the qstat and qacct calls it made: one of each, whatever N.

Run ``.venv/bin/python benchmarks/bench_sge_submit.py --help`` for the options.
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import common

from autojob import SETTINGS
from autojob.execution.sge import SgeArrayJob, SgeExecutor, cluster_limits
from autojob.execution.submit import DEFAULT_ONLY, select_tasks
from autojob.store.state import FINAL_STATES, read_state
from autojob.study import Study
from autojob.tasks.task import Task, TaskInputs

TARGET_SPEEDUP = 20.0
TARGET_SIZE = 1000
NAIVE_MAX = 300
COMMAND = "true"


class ClusterError(RuntimeError):
    """A Grid Engine command failed, or the cluster did not do what was asked."""


def sge(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        msg = f"{' '.join(args[:3])} failed ({done.returncode}): {done.stderr.strip()}"
        raise ClusterError(msg)
    return done.stdout


def cluster_problem() -> str | None:
    if shutil.which("qsub") is None or shutil.which("qacct") is None:
        return "the Grid Engine commands (qsub, qacct) are not installed"
    try:
        sge("qconf", "-sel")
    except ClusterError as exc:
        return str(exc)
    return None


def time_of(group: int) -> str:
    return f"00:{group + 1:02d}:00"


def group_sizes(n: int, groups: int) -> list[int]:
    return [n // groups + (1 if g < n % groups else 0) for g in range(groups)]


def build_tree(n: int, groups: int, dest: str, hold: str | None) -> str:
    """A study of n tasks running ``true`` (waiting for job ``hold``, if given)."""
    tasks = []
    for g, size in enumerate(group_sizes(n, groups)):
        inputs = {"time": time_of(g)}
        if hold:
            inputs["dependency"] = f"afterany:{hold}"
        tasks += [
            Task(task_inputs=TaskInputs(command=COMMAND), scheduler_inputs=inputs)
            for _ in range(size)
        ]
    return os.path.realpath(Study(name="bench-sge", tasks=tasks).to_directory(dest))


def fresh() -> None:
    gc.collect()
    os.sync()


def waiting_elements(job_ids: set[str]) -> int:
    """Array elements (and jobs) of ``job_ids`` qstat shows waiting."""
    out = sge("qstat", "-u", "*", "-g", "d")
    return sum(
        1
        for line in out.splitlines()
        if (w := line.split()) and w[0] in job_ids and "qw" in w[4] and "r" not in w[4]
    )


@dataclass
class Result:
    seconds: float = 0.0
    calls: int = 0
    parts: dict[str, float] = field(default_factory=dict)
    extrapolated: bool = False


def run_ours(n: int, groups: int, base: str, hold: str) -> Result:
    root = build_tree(n, groups, tempfile.mkdtemp(prefix=f"ours-{n}-", dir=base), hold)
    executor = SgeExecutor()
    fresh()
    start = time.perf_counter()
    selected = select_tasks([Path(root)])
    picked = time.perf_counter()
    plan = executor.plan(selected, max_parallel=None, root=Path(root))
    submission = executor.submit(plan, allowed=DEFAULT_ONLY)
    end = time.perf_counter()
    jobs = [j for j in plan.jobs if isinstance(j, SgeArrayJob)]
    ids = set(submission.job_ids)
    try:
        if submission.count != n or waiting_elements(ids) != n:
            msg = f"ours: {submission.count} submitted, qstat shows {waiting_elements(ids)} of {n}"
            raise AssertionError(msg)
    finally:
        sge("qdel", *sorted(ids))
    return Result(end - start, len(jobs), {"select": picked - start, "submit": end - picked})


def run_naive(n: int, groups: int, base: str, hold: str, cap: int) -> Result:
    k = min(n, cap)
    root = build_tree(k, groups, tempfile.mkdtemp(prefix=f"naive-{n}-", dir=base), None)
    folders = common.task_dirs(root, SETTINGS.TASK_METADATA_FILE)
    sizes = group_sizes(k, groups)
    limits = [time_of(g) for g, size in enumerate(sizes) for _ in range(size)]
    ids: list[str] = []
    fresh()
    start = time.perf_counter()
    try:
        for folder, limit in zip(folders, limits, strict=True):
            h, m, s = limit.split(":")
            seconds = int(h) * 3600 + int(m) * 60 + int(s)
            out = sge(
                "qsub", "-terse", "-hold_jid", hold, "-l", f"h_rt={seconds}", "-j", "y",
                "-o", "/dev/null", "-wd", folder, f"{folder}/{SETTINGS.DEFAULT_TASK_SCRIPT_FILE}",
            )  # fmt: skip
            ids.append(out.strip())
        seconds_taken = time.perf_counter() - start
        if waiting_elements(set(ids)) != k:
            msg = f"naive: qstat shows {waiting_elements(set(ids))} of {k} jobs waiting"
            raise AssertionError(msg)
    finally:
        for first in range(0, len(ids), 500):
            sge("qdel", *ids[first : first + 500])
    result = Result(seconds_taken, n, {"per call": seconds_taken / k})
    if k < n:
        result.seconds *= n / k
        result.extrapolated = True
    return result


def poll_calls(n: int, base: str) -> tuple[int, int, float]:
    """Run n tasks for real, then poll them once: (qstat calls, qacct calls, seconds)."""
    root = build_tree(n, 1, tempfile.mkdtemp(prefix=f"status-{n}-", dir=base), None)
    executor = SgeExecutor()
    selected = select_tasks([Path(root)])
    done = executor.submit(
        executor.plan(selected, max_parallel=None, root=Path(root)), allowed=DEFAULT_ONLY
    )
    paths = [s.spec.path for s in selected]
    limit = max(600, 2 * n)  # about a second a task on two slots of a busy machine
    deadline = time.monotonic() + limit
    while not all(read_state(p).state in FINAL_STATES for p in paths):
        if time.monotonic() > deadline:
            sge("qdel", *done.job_ids)  # leave nothing queued behind
            msg = f"the status tasks did not end within {limit} s"
            raise ClusterError(msg)
        time.sleep(1)
    time.sleep(3)  # qacct learns of the last ones a moment after they end
    calls: list[str] = []
    original = subprocess.run

    def counting(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command[0])
        done: subprocess.CompletedProcess[str] = original(command, **kwargs)
        return done

    with mock.patch.object(subprocess, "run", counting):
        start = time.perf_counter()
        executor.reconcile([(p, read_state(p)) for p in paths])
        seconds = time.perf_counter() - start
    accounted = sum(read_state(p).accounted for p in paths)
    if accounted != n:
        msg = f"status: {accounted} of {n} tasks accounted after one poll"
        raise AssertionError(msg)
    return calls.count("qstat"), calls.count("qacct"), seconds


def main(argv: list[str] | None = None) -> int:
    parser = common.new_parser(
        "Time submitting N held tasks to Grid Engine: arrays vs one qsub each."
    )
    common.add_sizes(parser, [1000])
    parser.add_argument("--groups", type=int, default=2, help="resource groups (2)")
    parser.add_argument(
        "--naive-max", type=int, default=NAIVE_MAX,
        help=f"time at most this many naive qsub calls, extrapolate to N ({NAIVE_MAX})",
    )  # fmt: skip
    parser.add_argument("--status-size", type=int, default=200, help="finished tasks polled (200)")
    parser.add_argument("--dir", default=None, help="where the trees go (the system temp dir)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    problem = cluster_problem()
    if problem is not None:
        print(f"no Grid Engine cluster answers ({problem}): skipping; run scripts/sge-up.sh")
        return 0
    limit = cluster_limits()["max_aj_tasks"]
    base = tempfile.mkdtemp(prefix="autojob-bench-sge-", dir=args.dir)
    hold = sge("qsub", "-terse", "-h", "-N", "bench-sentinel", "-o", "/dev/null", "-j", "y",
               "-b", "y", "true").strip()  # fmt: skip
    ok = True
    try:
        run_ours(20, 2, base, hold)  # warm up
        print(f"{'N':>7} {'groups':>6} {'ours calls':>10} {'bound':>6} {'naive calls':>11}"
              f" {'ours s':>8} {'naive s':>9} {'naive/ours':>10}")  # fmt: skip
        for n in args.sizes:
            ours = run_ours(n, args.groups, base, hold)
            naive = run_naive(n, args.groups, base, hold, args.naive_max)
            bound = math.ceil(n / limit) + min(args.groups, n)
            ratio = naive.seconds / ours.seconds
            star = "*" if naive.extrapolated else ""
            print(f"{n:>7,} {args.groups:>6} {ours.calls:>10} {bound:>6} {naive.calls:>10,}{star}"
                  f" {ours.seconds:>8.3f} {naive.seconds:>8.3f}{star} {ratio:>9.1f}x")  # fmt: skip
            ok = ok and ours.calls <= bound and (n != TARGET_SIZE or ratio >= TARGET_SPEEDUP)
        qstat, qacct, seconds = poll_calls(args.status_size, base)
        print(f"\nstatus of {args.status_size} finished tasks: {qstat} qstat and {qacct} qacct"
              f" call(s) in one poll, {seconds:.3f} s")  # fmt: skip
        ok = ok and qstat == 1 and qacct == 1
    finally:
        subprocess.run(["qdel", hold], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nbound: ceil(N / max_aj_tasks) + groups (max_aj_tasks = {limit:,});"
          f" target >= {TARGET_SPEEDUP:g}x at N = {TARGET_SIZE:,}; * naive extrapolated"
          f" -> {'MET' if ok else 'MISSED'}")  # fmt: skip
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
