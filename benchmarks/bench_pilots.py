"""Benchmark: many no-op tasks through pilots, against one job per task, HyperQueue, a loop.

Each contender runs the same tasks (command ``true``, one task per task group,
built untimed with the library) from a fresh tree, timed from the moment it is
handed the tasks to the moment every task's end record is on disk:

``floor``
    The lower bound: a plain Python loop running every task's script
    (``bash run.sh`` with ``AUTOJOB_TASK_DIR`` set, output to the task's files)
    on a pool of ``--cores`` threads, each starting one process at a time.
``pilots``
    ``autojob submit --executor slurm --pilots CORES`` on the real cluster: one
    array of pilots with one core each, each claiming and running tasks.
``pilots-local``
    The same pilots as processes of this machine (``--executor local``).
``array``
    ``autojob submit --executor slurm``: one array element per task
    (``--array-tasks`` of them; 1,000 is enough to see the difference).
``hyperqueue``
    HyperQueue's Python API (PyPI ``hyperqueue``, installed by this script in a
    throwaway virtualenv, never a dependency): a ``LocalCluster`` with one
    worker of ``--cores`` cores in one process, a ``Client`` in another
    submitting one job of one program per task (the same ``bash run.sh``) and
    waiting for it.

For each it prints tasks per second and core-seconds per task (wall time times
cores, over tasks), and ratios against the floor; then, for the floor and the
pilots, the CPU time per task of the launcher itself (the floor's threads; the
pilots' workers, from their records) and of the task scripts (the floor's
children; each task's ``wait4`` accounting), which the machine's load changes
little. Then the cost of the claim
alone (``claim_tasks`` on one task, in this process) and of its parts: the
task's lock, reading its state, writing its queued record, noting it in the
status journal. Targets (issue): pilots >= 20x the array's throughput, pilots'
core-seconds per task <= 2x the floor's, and a higher throughput than
HyperQueue's.

Run ``.venv/bin/python benchmarks/bench_pilots.py --help`` for the options.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import fmt, log, new_parser, print_header, ratio, verdict

from autojob import SETTINGS
from autojob.execution.pilots.pool import HEARTBEAT
from autojob.store.state import read_state

AUTOJOB = Path(sys.executable).parent / "autojob"
HQ_VENV = Path(tempfile.gettempdir()) / "autojob-bench-hyperqueue"


def make_tree(root: Path, count: int) -> list[Path]:
    """A study of ``count`` one-task groups whose command is ``true`` (untimed)."""
    from autojob.study import Study
    from autojob.task_group import TaskGroup
    from autojob.tasks.task import Task, TaskInputs, TaskMetadata

    root.mkdir(parents=True)
    groups = [
        TaskGroup(
            label=f"t{i}",
            tasks=[
                Task(
                    task_metadata=TaskMetadata(label=f"t{i}"),
                    task_inputs=TaskInputs(command="true", auto_restart=False),
                )
            ],
        )
        for i in range(count)
    ]
    study = Study(name="s", task_groups=groups).to_directory(
        root, study_template="{name}", task_group_template="{label}"
    )
    return sorted(p for p in study.glob("t*/*") if p.is_dir())


def wait_ended(paths: list[Path], timeout: float) -> None:
    """Return once every task has an end record (checked in order, each once)."""
    deadline = time.monotonic() + timeout
    for path in paths:
        while not (path / SETTINGS.ENDED_FILE).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {path}")
            time.sleep(0.05)


def check_success(paths: list[Path]) -> None:
    """Every task succeeded (untimed): no contender wins by running nothing."""
    bad = [p for p in paths if read_state(p).state.value != "success"]
    if bad:
        raise SystemExit(f"{len(bad)} task(s) did not succeed, e.g. {bad[0]}")


def floor(paths: list[Path], cores: int) -> float:
    """The plain loop over a thread pool; its wall time."""

    def one(path: Path) -> None:
        env = {**os.environ, "AUTOJOB_TASK_DIR": str(path)}
        with (
            open(path / SETTINGS.STDOUT_FILE, "wb") as out,
            open(path / SETTINGS.STDERR_FILE, "wb") as err,
        ):
            subprocess.run(["bash", str(path / "run.sh")], env=env, stdout=out, stderr=err,
                           stdin=subprocess.DEVNULL, check=False)  # fmt: skip

    before = _usage()
    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(one, paths))
    seconds = time.perf_counter() - start
    after = _usage()
    CPU["floor"] = (after[0] - before[0], after[1] - before[1])
    return seconds


#: CPU seconds in all, by contender: (the launcher itself, the task scripts), where known
CPU: dict[str, tuple[float, float]] = {}


def _usage() -> tuple[float, float]:
    """CPU seconds of this process and of its children waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def pilot_cpu(paths: list[Path]) -> tuple[float, float] | None:
    """The pilots' own CPU seconds (their records) and their tasks' (``wait4``); None: no pilots."""
    from autojob.execution.pilots.pool import pools_under

    study = paths[0].parent.parent
    records = [r for pool in pools_under(study) for r in pool.pilots()]
    if not records:
        return None
    own = sum(float(r.get("cpu_seconds") or 0.0) for r in records)
    tasks = 0.0
    for path in paths:
        stats = json.loads((path / SETTINGS.SCHEDULER_STATS_FILE).read_text())
        tasks += stats["user_seconds"] + stats["system_seconds"]
    return own, tasks


def autojob_submit(*args: str) -> Callable[[list[Path], int], float]:
    """A contender that runs ``autojob submit STUDY ARGS`` and waits for every end."""

    def contender(paths: list[Path], cores: int) -> float:
        study = paths[0].parent.parent
        words = [a.replace("CORES", str(cores)) for a in args]
        start = time.perf_counter()
        done = subprocess.run([str(AUTOJOB), "submit", str(study), *words],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode:
            raise SystemExit(f"autojob submit failed: {done.stderr}")
        wait_ended(paths, timeout=3600)
        return time.perf_counter() - start

    return contender


HQ_DRIVER = r"""
import json, multiprocessing, subprocess, sys, time
from hyperqueue import Client, Job, LocalCluster
from hyperqueue.cluster import WorkerConfig
if sys.argv[1] == "client":
    server, listing = sys.argv[2], json.load(open(sys.argv[3]))
    client = Client(server)
    job = Job()
    for path in listing:
        job.program(["bash", path + "/run.sh"], env={"AUTOJOB_TASK_DIR": path}, cwd=path,
                    stdout=path + "/autojob.out", stderr=path + "/autojob.err")
    start = time.perf_counter()
    client.wait_for_jobs([client.submit(job)])
    print(time.perf_counter() - start)
else:
    cores, listing = int(sys.argv[2]), sys.argv[3]
    with LocalCluster(worker_config=WorkerConfig(cores=cores)) as cluster:
        server = str(cluster.cluster.server_dir)
        out = subprocess.run([sys.executable, __file__, "client", server, listing],
                             capture_output=True, text=True, check=True).stdout
        print(out.strip())
"""


def hyperqueue_python() -> Path | None:
    """The throwaway virtualenv's interpreter with hyperqueue installed (None: cannot)."""
    python = HQ_VENV / "bin" / "python"
    if not python.exists():
        log(f"installing hyperqueue in a throwaway virtualenv at {HQ_VENV}")
        made = subprocess.run([sys.executable, "-m", "venv", str(HQ_VENV)], check=False)
        pip = [str(HQ_VENV / "bin" / "pip"), "install", "-q", "hyperqueue==0.27.0"]
        if made.returncode or subprocess.run(pip, check=False).returncode:
            return None
    return python


def hyperqueue(paths: list[Path], cores: int) -> float:
    """HyperQueue from submit to done, as its client measures it."""
    python = hyperqueue_python()
    if python is None:
        raise SystemExit("hyperqueue could not be installed")
    work = paths[0].parent.parent.parent
    driver, listing = work / "hq_driver.py", work / "hq_tasks.json"
    driver.write_text(HQ_DRIVER)
    listing.write_text(json.dumps([str(p) for p in paths]))
    out = subprocess.run([str(python), str(driver), "server", str(cores), str(listing)],
                         capture_output=True, text=True, check=False, cwd=work)  # fmt: skip
    if out.returncode:
        raise SystemExit(f"hyperqueue failed: {out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def claim_costs(root: Path, count: int) -> dict[str, float]:
    """Microseconds per task: the claim, and each of its parts, on fresh tasks."""
    from autojob.execution.claims import claim_tasks
    from autojob.store.journal import note_changed
    from autojob.store.run_files import record
    from autojob.store.state import State
    from autojob.store.task_lock import task_lock

    paths = make_tree(root, count)
    allowed = frozenset({State.IDLE})

    def per_task(action: Callable[[Path], object]) -> float:
        start = time.perf_counter()
        for path in paths:
            action(path)
        return (time.perf_counter() - start) / count * 1e6

    def locked(path: Path) -> None:
        with task_lock(path):
            pass

    costs = {
        "lock": per_task(locked),
        "read state": per_task(read_state),
        "note in journal": per_task(lambda p: note_changed([p])),
    }
    costs["claim (all of it)"] = per_task(lambda p: claim_tasks([p], allowed, "pilot"))
    costs["write queued record"] = per_task(lambda p: record(p, "QUEUED_FILE", {}, note=False))
    return costs


CONTENDERS: dict[str, Callable[[list[Path], int], float]] = {
    "floor": floor,
    "pilots": autojob_submit("--executor", "slurm", "--pilots", "CORES", "--pilot-time", "1:00:00"),
    "pilots-local": autojob_submit("--pilots", "CORES"),
    "array": autojob_submit("--executor", "slurm"),
    "hyperqueue": hyperqueue,
}


def main() -> int:
    parser = new_parser(__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks (default 10,000)")
    parser.add_argument("--array-tasks", type=int, default=1_000,
                        help="tasks of the one-element-per-task array (default 1,000)")  # fmt: skip
    parser.add_argument("--cores", type=int, default=2, help="cores, pilots (default 2)")
    parser.add_argument("--skip", default="", help="contenders to leave out, comma-separated")
    parser.add_argument("--claims", type=int, default=2_000, help="tasks of the claim costs")
    args = parser.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    results: dict[str, tuple[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pilots-", dir="/dev/shm") as base:
        for name, contender in CONTENDERS.items():
            if name in skip:
                continue
            count = args.array_tasks if name == "array" else args.tasks
            paths = make_tree(Path(base, name), count)
            log(f"{name}: {count} task(s)")
            seconds = contender(paths, args.cores)
            check_success(paths)
            results[name] = (count, seconds)
            if name.startswith("pilots"):
                time.sleep(2 * HEARTBEAT)  # the pilots' last records, with their CPU time
                CPU[name] = pilot_cpu(paths) or (float("nan"), float("nan"))
        claims = claim_costs(Path(base, "claims"), args.claims)
    report(results, args.cores, claims)
    report_cpu(results)
    return 0


def report_cpu(results: dict[str, tuple[int, float]]) -> None:
    """CPU per task of the launcher and of the task scripts: what load does not change."""
    print_header("CPU per task, ms: the launcher itself, and the task scripts it ran")
    print(f"{'contender':14} {'launcher':>9} {'scripts':>9} {'vs floor':>9}")
    floor_all = sum(CPU["floor"]) / results["floor"][0] if "floor" in CPU else None
    for name, (launcher, scripts) in CPU.items():
        count = results[name][0]
        both = (launcher + scripts) / count
        versus = ratio(both, floor_all) if floor_all else "-"
        print(f"{name:14} {launcher / count * 1000:9.2f} {scripts / count * 1000:9.2f} {versus:>9}")


def report(results: dict[str, tuple[int, float]], cores: int, claims: dict[str, float]) -> None:
    """The table, the targets and the claim's costs."""
    print_header(f"no-op tasks on {cores} core(s): from handing them over to every end on disk")
    base = results.get("floor")
    per = {n: seconds * cores / count for n, (count, seconds) in results.items()}
    print(f"{'contender':14} {'tasks':>7} {'seconds':>9} {'tasks/s':>9} {'core-ms/task':>13} "
          f"{'vs floor':>9}")  # fmt: skip
    for name, (count, seconds) in results.items():
        versus = ratio(per[name], per["floor"]) if base else "-"
        print(f"{name:14} {count:7d} {fmt(seconds):>9} {count / seconds:9.1f} "
              f"{per[name] * 1000:13.2f} {versus:>9}")  # fmt: skip
    rate = {n: count / seconds for n, (count, seconds) in results.items()}
    if "pilots" in rate and "array" in rate:
        met = rate["pilots"] >= 20 * rate["array"]
        print(f"pilots / array throughput: {rate['pilots'] / rate['array']:.1f}x "
              f"(target >= 20x): {verdict(met)}")  # fmt: skip
    if "pilots" in per and base:
        met = per["pilots"] <= 2 * per["floor"]
        print(f"pilots / floor core-seconds per task: {per['pilots'] / per['floor']:.2f}x "
              f"(target <= 2x): {verdict(met)}")  # fmt: skip
    if "pilots" in rate and "hyperqueue" in rate:
        met = rate["pilots"] > rate["hyperqueue"]
        print(f"pilots / hyperqueue throughput: {rate['pilots'] / rate['hyperqueue']:.2f}x "
              f"(target > 1x): {verdict(met)}")  # fmt: skip
    print_header("the claim of one task, microseconds (in this process, fresh tasks)")
    for part, micro in claims.items():
        print(f"{part:22} {micro:9.1f}")


if __name__ == "__main__":
    sys.exit(main())
