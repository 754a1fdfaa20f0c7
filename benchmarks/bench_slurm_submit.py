"""Benchmark: submitting N tasks to SLURM, as job arrays (ours) or one sbatch per task.

For each N, two identical studies of N tasks whose command is ``true`` are built
(untimed, with the library), the tasks split into ``--groups`` resource groups
(group g asks for ``--time`` of g + 1 minutes, so they cannot share an array)
and every task held (``scheduler_inputs`` ``{"hold": true}``: ``#SBATCH --hold``),
so nothing runs and the cluster only queues. Then, on the real cluster, after
``gc.collect()`` and ``os.sync()``:

``ours``
    What ``autojob submit --executor slurm`` does: ``select_tasks([root])``
    (discover the tasks, read their state and inputs: ``select``), then
    ``slurm_arrays(..., dry_run=False)``: ``cluster_limits()`` (one
    ``scontrol show config``), each task claimed (locked, marked queued),
    grouped by resources into arrays of at most ``MaxArraySize`` elements,
    each array's files written and submitted with one ``sbatch``, and each
    task's job id recorded (``submit``).

``naive``
    One ``sbatch --parsable --hold --chdir=<task dir> <task dir>/run.sh`` per
    task of the second tree (``subprocess.run``, as a Python loop would do it;
    the task script carries the same ``#SBATCH`` lines). ``--naive-max K``
    times only K of them and extrapolates linearly to N (marked ``*``).

After each timed run, untimed, ``squeue`` must show exactly the new jobs the
contender reported, whose work directories lie in its tree, all pending and held:
for ours as many job ids as arrays returned (the sbatch calls) holding N
elements, and every task recorded queued with its element's id; for naive one
job per call. Then everything submitted is cancelled (``scancel``) and the
benchmark waits until ``squeue`` shows none of it.

The controller keeps at most ``MaxJobCount`` jobs (each array element counts),
and cancelled jobs still count until it purges them, ``MinJobAge`` seconds
later. Before each submission the benchmark waits until the controller has room
for it (``--headroom`` slots left for others); a contender with more tasks than
fit at once is submitted in rounds of whole arrays (ours: exactly the arrays one
call would make) or of calls (naive), the times of the rounds added up.

Run ``.venv/bin/python benchmarks/bench_slurm_submit.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import common

from autojob import SETTINGS
from autojob.execution.slurm import ArrayJob, slurm_arrays
from autojob.execution.submit import DEFAULT_ONLY, Selected, select_tasks
from autojob.store.state import State, read_state
from autojob.study import Study
from autojob.tasks.task import Task, TaskInputs

TARGET_SPEEDUP = 20.0  # naive seconds / ours seconds at TARGET_SIZE
TARGET_SIZE = 1000
COMMAND = "true"
NAIVE_MAX = 1000
HEADROOM = 50  # job slots left free for other users of the cluster
SETTLE = 120.0  # seconds to wait for cancelled jobs to leave the queue
OUTAGE = 120.0  # seconds to wait for a controller that does not answer (restarted)


class ClusterError(RuntimeError):
    """A SLURM command failed, or the cluster did not do what was asked."""


# -- the cluster ---------------------------------------------------------------------


def slurm(*args: str, timeout: float = 120, patience: float = OUTAGE) -> str:
    """Run a SLURM command; return its standard output.

    While the controller does not answer (restarted by someone else), the
    command is retried for up to ``patience`` seconds.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            done = subprocess.run(
                list(args), capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            msg = f"{' '.join(args[:3])}: {exc}"
            raise ClusterError(msg) from exc
        if done.returncode == 0:
            return done.stdout
        if "unable to contact" not in done.stderr.lower() or time.monotonic() > deadline:
            msg = f"{' '.join(args[:3])} failed ({done.returncode}): {done.stderr.strip()}"
            raise ClusterError(msg)
        print("    the controller does not answer: retrying", file=sys.stderr, flush=True)
        time.sleep(5)


def cluster_problem() -> str | None:
    """Why no cluster can be used here; None when sinfo and scontrol answer."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "the SLURM commands (sinfo, sbatch) are not installed"
    try:
        slurm("sinfo", "--noheader", "--format=%P", timeout=30, patience=0)
        slurm("scontrol", "ping", timeout=30, patience=0)
    except ClusterError as exc:
        return str(exc)
    return None


@dataclass
class Cluster:
    version: str
    max_array_size: int
    max_job_count: int
    min_job_age: int
    partition: str
    headroom: int

    @property
    def capacity(self) -> int:
        """Jobs this benchmark may have in the controller at once."""
        return self.max_job_count - self.headroom


def read_cluster(partition: str | None, headroom: int) -> Cluster:
    """The limits that matter here, from ``scontrol show config``."""
    config: dict[str, str] = {}
    for line in slurm("scontrol", "show", "config").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            config[key.strip()] = value.strip()

    def number(key: str, default: int) -> int:
        digits = config.get(key, "").split(" ")[0]
        return int(digits) if digits.isdigit() else default

    if partition is None:
        names = slurm("sinfo", "--noheader", "--format=%P").split()
        starred = [name.rstrip("*") for name in names if name.endswith("*")]
        partition = starred[0] if starred else names[0]
    return Cluster(
        version=config.get("SLURM_VERSION", "?"),
        max_array_size=number("MaxArraySize", 1001),
        max_job_count=number("MaxJobCount", 10000),
        min_job_age=number("MinJobAge", 300),
        partition=partition,
        headroom=headroom,
    )


def jobs_in_memory() -> int:
    """Jobs the controller holds now, any user and state, each array element one."""
    out = slurm("squeue", "--noheader", "--all", "--states=all", "--array", "--format=%i")
    return sum(1 for line in out.splitlines() if line.strip())


@dataclass
class Queued:
    array_id: str  # the job id sbatch printed (an array's id for each of its elements)
    job_id: str
    state: str
    reason: str


def active_jobs_under(root: str) -> list[Queued]:
    """Pending and running jobs (array elements) whose work directory is below ``root``."""
    out = slurm("squeue", "--noheader", "--all", "--array", "--format=%F|%i|%T|%r|%Z")
    prefix = root.rstrip("/") + "/"
    found = []
    for line in out.splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5 and (parts[4] + "/").startswith(prefix):
            found.append(Queued(*parts[:4]))
    return found


def cancel_all(ids: Sequence[str], root: str) -> float:
    """Cancel ``ids`` and anything else queued below ``root``; wait until gone."""
    start = time.perf_counter()
    todo = sorted(set(ids) | {job.array_id for job in active_jobs_under(root)})
    for first in range(0, len(todo), 1000):
        # scancel complains about jobs that already ended: the squeue below decides
        subprocess.run(
            ["scancel", *todo[first : first + 1000]], capture_output=True, timeout=120, check=False
        )
    deadline = time.monotonic() + SETTLE
    while alive := active_jobs_under(root):
        if time.monotonic() > deadline:
            msg = f"{len(alive)} jobs below {root} still queued {SETTLE:g} s after scancel"
            raise ClusterError(msg)
        time.sleep(0.5)
    return time.perf_counter() - start


def wait_for_room(cluster: Cluster, needed: int) -> tuple[int, float]:
    """Wait until the controller has room for ``needed`` more jobs; return (room, s)."""
    start = time.monotonic()
    deadline = start + cluster.min_job_age + 240  # ended jobs are purged MinJobAge later
    told = 0.0
    while True:
        room = cluster.capacity - jobs_in_memory()
        if room >= needed:
            return room, time.monotonic() - start
        now = time.monotonic()
        if now > deadline:
            msg = (
                f"no room for {needed} jobs after {now - start:.0f} s: the controller holds"
                f" {cluster.max_job_count - cluster.headroom - room} of MaxJobCount"
                f" {cluster.max_job_count} (is someone else filling the queue?)"
            )
            raise ClusterError(msg)
        if now - told >= 30:
            print(
                f"    waiting for room for {needed:,} jobs: {max(room, 0):,} free of"
                f" MaxJobCount {cluster.max_job_count:,} (less {cluster.headroom} headroom);"
                f" ended jobs are purged MinJobAge = {cluster.min_job_age} s after they end",
                file=sys.stderr,
                flush=True,
            )
            told = now
        time.sleep(5)


# -- the trees (untimed) ------------------------------------------------------------


def time_of(group: int) -> str:
    return f"00:{group + 1:02d}:00"


def group_sizes(n: int, groups: int) -> list[int]:
    """Tasks per resource group: n split as evenly as possible."""
    return [n // groups + (1 if g < n % groups else 0) for g in range(groups)]


def build_tree(n: int, groups: int, partition: str, dest: str) -> str:
    """Write a study of n held tasks running ``true``; return its resolved root."""
    tasks = []
    for g, size in enumerate(group_sizes(n, groups)):
        inputs = {"time": time_of(g), "partition": partition, "hold": True}
        tasks += [
            Task(task_inputs=TaskInputs(command=COMMAND), scheduler_inputs=inputs)
            for _ in range(size)
        ]
    return os.path.realpath(Study(name="bench-slurm", tasks=tasks).to_directory(dest))


def fresh() -> None:
    gc.collect()
    os.sync()


# -- the contenders -----------------------------------------------------------------


@dataclass
class Result:
    seconds: float = 0.0  # what is compared (naive: extrapolated to N when capped)
    calls: int = 0  # sbatch calls (naive: extrapolated to N when capped)
    parts: dict[str, float] = field(default_factory=dict)
    measured_calls: int = 0  # sbatch calls made and timed
    rounds: int = 0
    waited: float = 0.0  # seconds waited for room in the controller (untimed)
    extrapolated: bool = False


def planned_arrays(
    selected: list[Selected], cluster: Cluster, batch_root: Path
) -> list[list[Selected]] | None:
    """The tasks of each array one call would make (``dry_run=True``); None if all fit.

    When the controller cannot hold all of them at once (more than MaxJobCount
    less the headroom), ours is submitted in rounds of whole arrays, in the
    planned order: each round's call then makes exactly the arrays (and as many
    sbatch calls) as one call would. Otherwise one call, once there is room.
    """
    if len(selected) <= cluster.capacity:
        return None
    plan = slurm_arrays(
        selected, allowed=DEFAULT_ONLY, max_parallel=None, batch_root=batch_root, dry_run=True
    )
    by_path = {s.spec.path: s for s in selected}
    return [[by_path[path] for path, _ in job.tasks] for job in plan]


def check_ours(jobs: list[ArrayJob], submitted: list[Selected], root: str) -> None:
    """squeue shows exactly these arrays, held; each task is recorded queued."""
    ids = [job.job_id or "" for job in jobs]
    if not all(i.isdigit() for i in ids) or len(set(ids)) != len(ids):
        msg = f"ours: sbatch returned job ids {ids}"
        raise AssertionError(msg)
    if sum(len(job.tasks) for job in jobs) != len(submitted):
        msg = f"ours: {sum(len(j.tasks) for j in jobs)} tasks in arrays, {len(submitted)} sent"
        raise AssertionError(msg)
    queued = active_jobs_under(root)
    seen = {q.array_id for q in queued}
    if seen != set(ids) or len(queued) != len(submitted):
        msg = (
            f"ours: squeue shows {len(seen)} jobs with {len(queued)} elements below the tree,"
            f" expected {len(ids)} with {len(submitted)}"
        )
        raise AssertionError(msg)
    check_held("ours", queued)
    for job in jobs:
        for index, (path, _) in enumerate(job.tasks):
            state = read_state(path)
            if state.state is not State.QUEUED or state.job_id != f"{job.job_id}_{index}":
                msg = f"ours: {path} is {state.state.value} with job id {state.job_id}"
                raise AssertionError(msg)


def check_held(name: str, queued: list[Queued]) -> None:
    running = [q for q in queued if q.state != "PENDING" or not q.reason.startswith("JobHeld")]
    if running:
        q = running[0]
        msg = f"{name}: {len(running)} jobs not held, e.g. {q.job_id} {q.state} ({q.reason})"
        raise AssertionError(msg)


def run_ours(n: int, groups: int, cluster: Cluster, base: str) -> Result:
    """select_tasks + slurm_arrays(dry_run=False), timed; checked and cancelled after."""
    root = build_tree(n, groups, cluster.partition, tempfile.mkdtemp(prefix=f"ours-{n}-", dir=base))
    batch_root = Path(root) / SETTINGS.INDEX_DIR / "slurm"
    result = Result()
    fresh()
    start = time.perf_counter()
    selected = select_tasks([Path(root)])
    result.parts["select"] = time.perf_counter() - start
    result.parts["submit"] = 0.0
    if len(selected) != n:
        msg = f"ours: {len(selected)} tasks selected of {n}"
        raise AssertionError(msg)
    arrays = planned_arrays(selected, cluster, batch_root)
    todo = [selected] if arrays is None else list(arrays)
    while todo:
        # the first round takes what fits now; later ones wait for room for the
        # rest (less one array's worth of slack for others), not one array at a time
        left = sum(len(tasks) for tasks in todo)
        needed = len(todo[0]) if not result.rounds else min(left, cluster.capacity - len(todo[0]))
        room, waited = wait_for_room(cluster, max(needed, len(todo[0])))
        result.waited += waited
        chosen: list[Selected] = []
        while todo and len(chosen) + len(todo[0]) <= room:
            chosen += todo.pop(0)
        # a second call in the same second would reuse the first one's batch
        # directory names (named by time, pid and index): give it its own root
        where = batch_root if not result.rounds else batch_root.with_name(f"slurm-{result.rounds}")
        fresh()
        start = time.perf_counter()
        try:
            jobs = slurm_arrays(
                chosen, allowed=DEFAULT_ONLY, max_parallel=None, batch_root=where, dry_run=False
            )
            result.parts["submit"] += time.perf_counter() - start
            check_ours(jobs, chosen, root)
        finally:
            cancel_all([], root)
        result.calls += len(jobs)
        result.rounds += 1
        if arrays is not None:
            print(
                f"    ours round {result.rounds}: {len(chosen):,} tasks in {len(jobs)} arrays,"
                f" {len(todo)} arrays left",
                file=sys.stderr,
                flush=True,
            )
    if arrays is not None and result.calls != len(arrays):
        msg = f"ours: {result.calls} arrays in {result.rounds} rounds, {len(arrays)} planned"
        raise AssertionError(msg)
    result.seconds = result.parts["select"] + result.parts["submit"]
    result.measured_calls = result.calls
    return result


def submit_one(folder: str) -> str:
    done = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--hold",
            f"--chdir={folder}",
            f"{folder}/{SETTINGS.DEFAULT_TASK_SCRIPT_FILE}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        msg = f"naive: sbatch failed ({done.returncode}) for {folder}: {done.stderr.strip()}"
        raise ClusterError(msg)
    return done.stdout.strip().split(";")[0]


def run_naive(n: int, groups: int, cluster: Cluster, base: str, cap: int) -> Result:
    """One sbatch per task (at most ``cap`` of them, extrapolated to n), timed."""
    k = min(n, cap)
    root = build_tree(
        k, groups, cluster.partition, tempfile.mkdtemp(prefix=f"naive-{n}-", dir=base)
    )
    folders = common.task_dirs(root, SETTINGS.TASK_METADATA_FILE)
    if len(folders) != k:
        msg = f"naive: the tree has {len(folders)} tasks, not {k}"
        raise AssertionError(msg)
    result = Result()
    done = 0
    while done < k:
        room, waited = wait_for_room(cluster, min(k - done, cluster.capacity))
        result.waited += waited
        chunk = folders[done : done + min(room, k - done)]
        ids: list[str] = []
        fresh()
        start = time.perf_counter()
        try:
            for folder in chunk:
                ids.append(submit_one(folder))
            result.seconds += time.perf_counter() - start
            queued = active_jobs_under(root)
            if {q.array_id for q in queued} != set(ids) or len(set(ids)) != len(chunk):
                msg = (
                    f"naive: squeue shows {len({q.array_id for q in queued})} jobs below the"
                    f" tree, {len(chunk)} submitted"
                )
                raise AssertionError(msg)
            check_held("naive", queued)
        finally:
            cancel_all(ids, root)
        done += len(chunk)
        result.rounds += 1
    result.measured_calls = k
    result.calls = n
    result.parts["per call"] = result.seconds / k
    if k < n:
        result.seconds *= n / k
        result.extrapolated = True
    return result


# -- measuring ---------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    run: Callable[[int, int, Cluster, str], Result]
    best: dict[int, Result] = field(default_factory=dict)


def describe(name: str, n: int, rep: str, result: Result) -> str:
    parts = "  ".join(f"{key} {value:.3f}" for key, value in result.parts.items())
    extra = f"  waited {result.waited:.0f} s for room" if result.waited >= 1 else ""
    star = f" (from {result.measured_calls:,} calls)" if result.extrapolated else ""
    return (
        f"  N={n:>7,} {rep} {name:<6} {result.seconds:8.3f} s{star}  {result.calls:,} sbatch"
        f" calls in {result.rounds} round(s)  {parts}{extra}"
    )


def benchmark(
    contenders: list[Contender],
    sizes: list[int],
    groups: int,
    repeats: int,
    cluster: Cluster,
    base: str,
) -> None:
    for contender in contenders:  # warm up: imports, sbatch and munge, the controller
        result = contender.run(20, min(groups, 20), cluster, base)
        print(describe(contender.name, 20, "warm-up", result), file=sys.stderr, flush=True)
    for n in sizes:
        for rep in range(repeats):
            shift = rep % len(contenders)  # rotate the order from repeat to repeat
            for contender in contenders[shift:] + contenders[:shift]:
                result = contender.run(n, groups, cluster, base)
                print(
                    describe(contender.name, n, f"run {rep + 1}/{repeats}", result),
                    file=sys.stderr,
                    flush=True,
                )
                best = contender.best.get(n)
                if best is None or result.seconds < best.seconds:
                    contender.best[n] = result


# -- reporting -------------------------------------------------------------------


def bound_of(n: int, groups: int, max_array_size: int) -> tuple[int, int]:
    """(ceil(N / MaxArraySize) + groups, the sum over groups of ceil(size / MaxArraySize))."""
    per_group = sum(math.ceil(size / max_array_size) for size in group_sizes(n, groups) if size)
    return math.ceil(n / max_array_size) + min(groups, n), per_group


def report(
    ours: Contender, naive: Contender, sizes: list[int], groups: int, cluster: Cluster
) -> bool:
    """Print the table; return whether ours' calls stayed within the bound at every size."""
    header = (
        f"{'N':>8} {'groups':>6} {'ours calls':>10} {'bound':>6} {'per group':>9}"
        f" {'naive calls':>12}"
        f" {'ours s':>8} {'(select':>8} {'submit)':>8} {'naive s':>9} {'naive/ours':>11}"
        f" {'rounds':>7}"
    )
    print(header)
    print("-" * len(header))
    within = True
    for n in sizes:
        o, v = ours.best[n], naive.best[n]
        bound, per_group = bound_of(n, groups, cluster.max_array_size)
        within = within and o.calls <= min(bound, per_group)
        star = "*" if v.extrapolated else ""
        rounds = f"{o.rounds}/{v.rounds}"
        print(
            f"{n:>8,} {min(groups, n):>6} {o.calls:>10,} {bound:>6,} {per_group:>9,}"
            f" {f'{v.calls:,}{star}':>12}"
            f" {o.seconds:>8.3f} {o.parts['select']:>8.3f} {o.parts['submit']:>8.3f}"
            f" {f'{v.seconds:.3f}{star}':>9} {f'{v.seconds / o.seconds:.1f}x{star}':>11}"
            f" {rounds:>7}"
        )
    print()
    print(
        "bound: ceil(N / MaxArraySize) + groups; per group: ceil(group size / MaxArraySize)"
        f" summed over the groups (MaxArraySize = {cluster.max_array_size:,}); ours' calls"
        " must stay within both."
    )
    print("per sbatch call:")
    for n in sizes:
        o, v = ours.best[n], naive.best[n]
        print(
            f"  N={n:>7,}: ours {1000 * o.parts['submit'] / o.calls:.1f} ms per array"
            f" (claim, plan, files, sbatch, records:"
            f" {1e6 * o.parts['submit'] / n:.0f} us per task);"
            f" naive {1000 * v.parts['per call']:.1f} ms per sbatch"
        )
    capped = [n for n in sizes if naive.best[n].extrapolated]
    if capped:
        made = ", ".join(f"{naive.best[n].measured_calls:,} at N={n:,}" for n in capped)
        print(f"* naive: extrapolated linearly to N from the calls timed (--naive-max): {made}.")
    if any(ours.best[n].rounds > 1 or naive.best[n].rounds > 1 for n in sizes):
        print(
            f"rounds (ours/naive): submissions split to fit MaxJobCount = {cluster.max_job_count:,}"
            f" (less {cluster.headroom} headroom; cancelled jobs count until purged"
            f" {cluster.min_job_age} s later); the times of the rounds are added."
        )
    return within


def int_list(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time submitting N held tasks to SLURM: job arrays (ours) vs one sbatch each.",
        epilog="See benchmarks/README.md for what each contender does.",
    )
    parser.add_argument(
        "--sizes", type=int_list, default=[1000, 10000], help="task counts (default: 1000,10000)"
    )
    parser.add_argument(
        "--groups", type=int, default=2, help="resource groups (different --time) per study (2)"
    )
    parser.add_argument(
        "--naive-max",
        type=int,
        default=NAIVE_MAX,
        help=f"time at most this many naive sbatch calls per size, extrapolate to N ({NAIVE_MAX})",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per size, best kept (1)")
    parser.add_argument(
        "--partition", default=None, help="partition to ask for (default: the cluster's default)"
    )
    parser.add_argument(
        "--headroom",
        type=int,
        default=HEADROOM,
        help=f"job slots of MaxJobCount left free for others ({HEADROOM})",
    )
    parser.add_argument(
        "--dir", default=None, help="where the trees go (default: the system temp dir)"
    )
    parser.add_argument(
        "--target", type=float, default=TARGET_SPEEDUP, help="target for naive/ours (20)"
    )
    parser.add_argument(
        "--target-size",
        type=int,
        default=TARGET_SIZE,
        help="N at which the speed-up target applies (1000; else the smallest size)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument("--keep", action="store_true", help="keep the trees, for inspection")
    args = parser.parse_args(argv)
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes: give positive task counts")
    if args.groups < 1 or args.naive_max < 1 or args.repeats < 1 or args.headroom < 0:
        parser.error("--groups, --naive-max and --repeats take positive numbers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes: list[int] = args.sizes
    base = os.path.realpath(args.dir or tempfile.gettempdir())
    if not os.path.isdir(base):
        sys.exit(f"--dir {base} is not a directory")
    problem = cluster_problem()
    if problem is not None:
        print(f"no SLURM cluster answers ({problem}): skipping; start one with scripts/slurm-up.sh")
        return 0
    cluster = read_cluster(args.partition, args.headroom)
    print(
        f"SLURM {cluster.version}: MaxArraySize {cluster.max_array_size:,}, MaxJobCount"
        f" {cluster.max_job_count:,}, MinJobAge {cluster.min_job_age} s, partition"
        f" {cluster.partition}; sizes {sizes}, groups {args.groups}, naive at most"
        f" {args.naive_max:,} calls, repeats {args.repeats}, in {base}",
        file=sys.stderr,
    )
    for n in sizes:
        if n > cluster.capacity:
            print(
                f"  N={n:,} held array elements do not fit in MaxJobCount {cluster.max_job_count:,}"
                f" (less {cluster.headroom} headroom): ours is submitted in rounds of whole"
                " arrays, cancelled in between",
                file=sys.stderr,
            )
    naive_max: int = args.naive_max
    ours = Contender("ours", run_ours)
    naive = Contender("naive", lambda n, g, c, b: run_naive(n, g, c, b, naive_max))
    root = tempfile.mkdtemp(prefix="autojob-bench-slurm-", dir=base)
    try:
        benchmark([ours, naive], sizes, args.groups, args.repeats, cluster, root)
    except ClusterError as exc:
        print(f"the cluster failed during the benchmark: {exc}", file=sys.stderr)
        return 2
    finally:
        try:
            cancel_all([], root)
        except ClusterError as exc:
            print(f"could not cancel the jobs below {root}: {exc}", file=sys.stderr)
        if args.keep:
            print(f"trees kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root)
    print()
    within = report(ours, naive, sizes, args.groups, cluster)
    target_n = args.target_size if args.target_size in sizes else min(sizes)
    speedup = naive.best[target_n].seconds / ours.best[target_n].seconds
    star = " (naive extrapolated)" if naive.best[target_n].extrapolated else ""
    fast = speedup >= args.target
    print()
    print(
        f"target: ours >= {args.target:g}x faster than naive at N={target_n:,}:"
        f" {speedup:.1f}x{star} -> {'MET' if fast else 'MISSED'}"
    )
    print(
        f"target: ours' sbatch calls within the bound at every size -> "
        f"{'MET' if within else 'MISSED'}"
    )
    return 1 if args.check and not (fast and within) else 0


if __name__ == "__main__":
    sys.exit(main())
