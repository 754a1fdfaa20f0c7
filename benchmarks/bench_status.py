"""Benchmark: ``autojob status`` on N tasks, against plain Python and signac-flow.

One tree per N is built first (untimed) with the library: a study group holding
one study of N task groups of one task each, as a parameter sweep makes them.
The task directories then get the records their task script would have written:
``autojob.started`` and ``autojob.ended`` (exit 0 or 1) for most, only
``autojob.started`` with a dead pid (a run that was lost) for some, nothing
(idle) for the rest. Every contender runs on that same tree, repeatedly (best
time kept), after ``gc.collect()`` and ``os.sync()``:

``lower`` (the lower bound)
    Plain Python walking the tree with ``os.scandir`` (no pathlib, no models),
    stopping at directories that hold ``task.json``, reading and parsing the
    record that decides the state (``autojob.ended``, else ``autojob.started``,
    whose pid it checks with ``os.kill(pid, 0)``). It writes nothing.

``cold``
    ``autojob.store.status_index.collect(root, rescan=True)``: the same walk, the
    state derived from the same files, and the index and journal written.

``warm``
    The index is present; then 1% of the tasks change (untimed): a new
    ``autojob.ended`` written as the task script run by the local executor
    writes it (temporary file, rename) and noted in the journal as the script
    notes it (the directory and a copy of the record:
    ``autojob.store.journal.entry_with_record``). Then ``collect(root)`` is timed.

``cli cold`` / ``cli warm``
    ``autojob status --json [--rescan] ROOT`` as a subprocess, once each:
    process start, imports, the JSON printed; ``cli start`` is
    ``autojob status --help`` (start and imports alone).

``flow``
    signac-flow's status on a signac project of N jobs holding the same state
    files, with two operations: ``compute`` (post: ``autojob.ended`` exists) and
    ``collect`` (pre: the record says exit 0, read as JSON; post: a file
    ``collected`` exists); timed is ``FlowProject.get_project(path)`` plus
    ``print_status()`` with its output discarded, i.e. ``python project.py status``
    without the process start.

After every run (untimed) the result is compared with the states the tree was
built with, task by task, so no contender can win by reading nothing; the warm
runs must come from the index and re-read exactly the changed tasks.

Run ``.venv/bin/python benchmarks/bench_status.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common

from autojob import SETTINGS
from autojob.store.journal import entry_with_record, journal_path
from autojob.store.state import this_host
from autojob.store.status_index import StatusReport, collect
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

TARGET_COLD = 1.5  # ours cold / lower, at every size
TARGET_WARM = 0.1  # ours warm / lower (cold), at the target size
TARGET_SIZE = 100_000
CHANGE_FRACTION = 0.01
#: the tasks of a tree started over this many seconds, an hour before it was built
SPREAD = 3600.0
SKIPPABLE = ("cli", "flow")

#: the share of each kind of task in the tree (the rest is idle)
MIX = (("success", 0.80), ("failed", 0.08), ("unknown", 0.04))

TASK_FILE = SETTINGS.TASK_METADATA_FILE
INPUTS_FILE = SETTINGS.INPUTS_FILE
STARTED = SETTINGS.STARTED_FILE
ENDED = SETTINGS.ENDED_FILE


# -- the tree (untimed) ----------------------------------------------------------


def dead_pid() -> int:
    """A pid no process can have: pids are below the kernel's pid_max."""
    try:
        with open("/proc/sys/kernel/pid_max", "rb") as stream:
            return int(stream.read())
    except (OSError, ValueError):
        return 2**22


def started_record(when: float, pid: int) -> bytes:
    """What the task script writes when it starts (``printf '%s\\n'``)."""
    text = f'{{"time": {when:.6f}, "host": "{this_host()}", "pid": {pid}, "job_id": ""}}\n'
    return text.encode("utf-8")


def ended_record(when: float, exit_code: int, executor: str = "", ran: float = 1.0) -> bytes:
    """What the task script writes when its command has ended (outside SLURM), ``ran`` s after
    it started.

    It repeats the start (time and host), so a reader needs this record alone
    (and the claim's executor, where ``executor`` is empty).
    """
    text = (
        f'{{"time": {when:.6f}, "exit_code": {exit_code}, "job_id": "", '
        f'"executor": "{executor}", "started_at": {when - ran:.6f}, "host": "{this_host()}"}}\n'
    )
    return text.encode("utf-8")


def write_record(folder: str, name: str, data: bytes) -> None:
    """Write a record as the task script does: a temporary file, then rename."""
    tmp = f"{folder}/.{name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as stream:
        stream.write(data)
    os.replace(tmp, f"{folder}/{name}")


def write_state(folder: str, state: str, when: float, pid: int, ran: float = 1.0) -> None:
    """Give a task directory the records of ``state`` (idle: none; a record of a tree
    measured before, ``--tree``, is removed): started at ``when``, ended ``ran`` s later."""
    ended = state in ("success", "failed")
    for name, keep in ((STARTED, state != "idle"), (ENDED, ended)):
        if not keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{folder}/{name}")
    if state == "idle":
        return
    write_record(folder, STARTED, started_record(when, pid))
    if ended:
        code = 0 if state == "success" else 1
        write_record(folder, ENDED, ended_record(when + ran, code, ran=ran))


def states_for(n: int, seed: int) -> list[str]:
    """The state of each of n tasks, drawn with the shares of MIX."""
    rng = random.Random(seed)  # noqa: S311  (reproducible, not secret)
    states = []
    for _ in range(n):
        draw, state = rng.random(), "idle"
        for name, share in MIX:
            if draw < share:
                state = name
                break
            draw -= share
        states.append(state)
    return states


@dataclass
class Tree:
    """A tree of tasks and the state each of them must be reported in."""

    n: int
    root: str  # the study group directory, resolved
    truth: dict[str, str]  # task path relative to root -> state
    rng: random.Random = field(default_factory=random.Random)

    def counts(self) -> Counter[str]:
        return Counter(self.truth.values())


def build_tree(n: int, dest: str, seed: int) -> Tree:
    """Write the study with the library, then the state records of each task."""
    study = Study(
        name="bench-status",
        tasks=[
            Task(
                task_inputs=TaskInputs(command="true"),
                task_metadata=TaskMetadata(label=f"task-{i}"),
            )
            for i in range(n)
        ],
    )
    root = os.path.realpath(StudyGroup(studies=[study]).to_directory(dest))
    del study
    paths = [os.path.relpath(p, root) for p in common.task_dirs(root, TASK_FILE)]
    if len(paths) != n:
        msg = f"the tree in {root} has {len(paths)} tasks, not {n}"
        raise AssertionError(msg)
    pid, when = dead_pid(), time.time() - 3600.0
    truth = dict(zip(paths, states_for(n, seed), strict=True))
    times = random.Random(seed + 2)  # noqa: S311  (reproducible, not secret)
    for i, (rel, state) in enumerate(truth.items()):  # each its own start and run time
        start, ran = when - SPREAD * (n - i) / n, times.uniform(1.0, SPREAD / 6)
        write_state(f"{root}/{rel}", state, start, pid, ran)
    return Tree(n, root, truth, random.Random(seed + 1))  # noqa: S311


def change_some(tree: Tree) -> dict[str, float]:
    """End 1% of the tasks anew, as their task scripts would (run by the local executor).

    Each chosen task flips between success and not: a success fails, anything
    else succeeds. Each end is written, then noted in the tree's journal with
    a copy of the record, as the task script does. Returns the changed paths
    with the time they recorded.
    """
    k = max(1, round(tree.n * CHANGE_FRACTION))
    chosen = tree.rng.sample(sorted(tree.truth), k)
    when = time.time()
    entries = []
    for rel in chosen:
        folder = f"{tree.root}/{rel}"
        success = tree.truth[rel] != "success"
        record = ended_record(when, 0 if success else 1, "local")
        write_record(folder, ENDED, record)
        tree.truth[rel] = "success" if success else "failed"
        entries.append(entry_with_record(folder, ENDED, record.decode().rstrip("\n")))
    with open(journal_path(tree.root), "ab") as journal:
        journal.write(b"".join(entries))
    return dict.fromkeys(chosen, round(when, 6))


def build_flow_project(tree: Tree, dest: str) -> str:
    """A signac project with one job per task of ``tree``, in the same states."""
    import signac

    project = signac.init_project(dest)
    pid, when = dead_pid(), time.time() - 3600.0
    for i, state in enumerate(tree.truth.values()):
        job = project.open_job({"i": i}).init()
        write_state(job.path, state, when, pid)
    return dest


# -- the contenders -----------------------------------------------------------------


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lower_bound(root: str) -> dict[str, str]:
    """Walk ``root`` with os.scandir; derive each task's state from its record.

    A directory holding task.json (or inputs.json) is a task: its listing says
    which records exist, and the one that decides is read and parsed. Other
    directories are descended into, hidden ones skipped.
    """
    states = {}
    skip = len(root) + 1
    stack = [root]
    while stack:
        top = stack.pop()
        with os.scandir(top) as it:
            entries = list(it)
        names = {entry.name for entry in entries}
        if TASK_FILE in names or INPUTS_FILE in names:
            if ENDED in names:
                with open(f"{top}/{ENDED}", "rb") as stream:
                    record = json.loads(stream.read())
                state = "success" if record.get("exit_code") == 0 else "failed"
            elif STARTED in names:
                with open(f"{top}/{STARTED}", "rb") as stream:
                    record = json.loads(stream.read())
                state = "running" if _pid_alive(record.get("pid")) else "unknown"
            else:
                state = "idle"
            states[top[skip:]] = state
            continue
        for entry in entries:
            if entry.name[0] != "." and entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return states


def ours_cold(root: str) -> StatusReport:
    return collect(Path(root), rescan=True)


def ours_warm(root: str) -> StatusReport:
    return collect(Path(root))


def autojob_command() -> list[str]:
    script = Path(sys.executable).with_name("autojob")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from autojob.cli.main import main; main()"]


def run_cli(args: list[str]) -> tuple[float, bytes]:
    """Run ``autojob ARGS``; return the wall time and its standard output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        subprocess.run([*autojob_command(), *args], stdout=out, check=True)
        elapsed = time.perf_counter() - start
        out.seek(0)
        return elapsed, out.read()


def flow_project_class() -> type[Any]:
    """A FlowProject whose conditions read the files of each job."""
    from flow import FlowProject

    class StatusBench(FlowProject):  # type: ignore[misc]
        pass

    def succeeded(job: Any) -> bool:
        try:
            with open(job.fn(ENDED), "rb") as stream:
                return bool(json.loads(stream.read()).get("exit_code") == 0)
        except FileNotFoundError:
            return False

    @StatusBench.post.isfile(ENDED)  # type: ignore[untyped-decorator]
    @StatusBench.operation  # type: ignore[untyped-decorator]
    def compute(job: Any) -> None:  # it has run: its record is there
        pass

    @StatusBench.pre(succeeded)  # type: ignore[untyped-decorator]
    @StatusBench.post.isfile("collected")  # type: ignore[untyped-decorator]
    @StatusBench.operation  # type: ignore[untyped-decorator]
    def gather(job: Any) -> None:  # then its results are collected
        pass

    return StatusBench


def flow_status(project_class: type[Any], path: str) -> str:
    """``python project.py status`` without the process: open, print_status.

    In flow's standard environment, which has no scheduler: where SLURM is
    installed flow would otherwise query squeue on every status (and refuse a
    second query within 10 s), while autojob asks the scheduler only about
    tasks that have a job id, which none here has.
    """
    from flow.environment import StandardEnvironment

    out = io.StringIO()
    project = project_class.get_project(path, environment=StandardEnvironment)
    project.print_status(file=out, err=io.StringIO(), hide_progress=True)
    return out.getvalue()


# -- checks (untimed) --------------------------------------------------------------


def check_states(name: str, got: dict[str, str], tree: Tree) -> None:
    if got == tree.truth:
        return
    wrong = sorted(p for p in tree.truth.keys() | got.keys() if got.get(p) != tree.truth.get(p))
    first = wrong[0]
    msg = (
        f"{name}: {len(wrong)} task(s) reported wrongly, e.g. {first}:"
        f" {got.get(first)} instead of {tree.truth.get(first)}"
        f" ({len(got)} tasks reported, {tree.n} in the tree)"
    )
    raise AssertionError(msg)


def report_states(report: StatusReport) -> dict[str, str]:
    return {path: entry.state.state.value for path, entry in report.tasks.items()}


def check_cold(report: StatusReport, tree: Tree) -> None:
    if report.source != "scan":
        msg = f"cold: the report came from {report.source!r}, not a scan"
        raise AssertionError(msg)
    check_states("cold", report_states(report), tree)


def check_warm(report: StatusReport, tree: Tree, changed: dict[str, float]) -> None:
    if report.source != "index":
        msg = f"warm: the report came from {report.source!r}, not the index"
        raise AssertionError(msg)
    if report.reread != len(changed):
        msg = f"warm: {report.reread} task(s) re-read, {len(changed)} changed"
        raise AssertionError(msg)
    check_states("warm", report_states(report), tree)
    for rel, when in changed.items():
        ended = report.tasks[rel].state.ended_at
        if ended is None or abs(ended - when) > 1e-5:
            msg = f"warm: {rel} reports the end at {ended}, not the new {when}"
            raise AssertionError(msg)


def check_cli(output: bytes, tree: Tree, source: str) -> None:
    data = json.loads(output)
    if data["source"] != source:
        msg = f"cli: the report came from {data['source']!r}, not {source!r}"
        raise AssertionError(msg)
    check_states("cli", {t["path"]: t["state"] for t in data["tasks"]}, tree)


FLOW_ROW = re.compile(r"^(compute|gather)\s+(\d+)\s", re.MULTILINE)


def check_flow(output: str, tree: Tree) -> None:
    """The overview must count N jobs, and the eligible ones the tree's states give."""
    counts = tree.counts()
    if f"Overview: {tree.n} jobs/aggregates" not in output:
        raise AssertionError(f"flow: no overview of {tree.n} jobs in:\n{output[:1000]}")
    eligible = {name: int(number) for name, number in FLOW_ROW.findall(output)}
    expected = {
        "compute": counts["idle"] + counts["unknown"],  # no ended record yet
        "gather": counts["success"],  # ended with exit 0, not collected
    }
    if eligible != {k: v for k, v in expected.items() if v}:
        msg = f"flow: eligible jobs {eligible}, expected {expected}"
        raise AssertionError(msg)


# -- measuring -------------------------------------------------------------------


@dataclass
class Result:
    """The best time of one contender at one size, with its CPU seconds."""

    seconds: float
    user: float
    sys: float
    note: str = ""


def seconds_of(result: Result) -> float:
    return result.seconds


def timed(run: Callable[[], Any], drop_caches: bool = False) -> tuple[Result, Any]:
    """Time ``run``; its CPU seconds include those of its child processes."""
    measured = common.measure(run, drop_caches=drop_caches)
    cpu = measured.cpu
    user, system = cpu.user + cpu.children_user, cpu.system + cpu.children_system
    return Result(measured.seconds, user, system), measured.value


def progress(n: int, name: str, rep: str, result: Result) -> None:
    common.log(
        f"  N={n:>7,} {rep:<8} {name:<9} {result.seconds:8.3f} s"
        f"  {common.cpu_note(result.user, result.sys)}"
    )


@dataclass
class Options:
    repeats: int
    skip: set[str]
    flow_max: int | None
    drop_caches: bool
    seed: int
    profile_size: int | None = None  # profile ours at this size
    profile_limit: int = 30
    profiles: str = ""


def measure_size(n: int, base: str, opts: Options) -> dict[str, Result]:
    """Build the tree for n tasks, then time every contender on it."""
    best: dict[str, Result] = {}
    dest = tempfile.mkdtemp(prefix=f"tree-{n}-", dir=base)
    start = time.perf_counter()
    tree = build_tree(n, dest, opts.seed)
    common.log(
        f"N={n:,}: tree built in {time.perf_counter() - start:.1f} s"
        f" ({dict(sorted(tree.counts().items()))}) in {tree.root}"
    )

    # cold: lower bound and ours, alternating so neither always runs first
    for rep in range(opts.repeats):
        for name in common.rotated(("lower", "cold"), rep):
            result = measure_cold(name, tree, opts.drop_caches)
            progress(n, name, f"run {rep + 1}/{opts.repeats}", result)
            best[name] = common.faster(result, best.get(name), seconds_of)

    # warm: 1% changed, then the index and journal are read
    for rep in range(opts.repeats):
        changed = change_some(tree)
        result, report = timed(lambda: ours_warm(tree.root), opts.drop_caches)
        check_warm(report, tree, changed)
        progress(n, "warm", f"run {rep + 1}/{opts.repeats}", result)
        best["warm"] = common.faster(result, best.get("warm"), seconds_of)

    if "cli" not in opts.skip:
        measure_cli(tree, best, opts.drop_caches)
    if "flow" not in opts.skip:
        measure_flow(tree, base, opts, best)
    if n == opts.profile_size:
        opts.profiles = profile_ours(tree, opts.profile_limit)
    return best


def measure_cold(name: str, tree: Tree, drop_caches: bool) -> Result:
    """Time one cold contender, then check what it found (untimed)."""
    if name == "lower":
        result, states = timed(lambda: lower_bound(tree.root), drop_caches)
        check_states("lower", states, tree)
    else:
        result, report = timed(lambda: ours_cold(tree.root), drop_caches)
        check_cold(report, tree)
    return result


def measure_cli(tree: Tree, best: dict[str, Result], drop_caches: bool) -> None:
    """``autojob status`` as a user runs it, once each: start, cold, warm."""
    for name, args in (
        ("cli start", ["status", "--help"]),
        ("cli cold", ["status", "--json", "--rescan", tree.root]),
        ("cli warm", ["status", "--json", tree.root]),
    ):
        if name == "cli warm":
            change_some(tree)
        result, (_, output) = timed(lambda args=args: run_cli(args), drop_caches)  # type: ignore[misc]
        if name != "cli start":
            check_cli(output, tree, "scan" if name == "cli cold" else "index")
        progress(tree.n, name, "once", result)
        best[name] = result


def measure_flow(tree: Tree, base: str, opts: Options, best: dict[str, Result]) -> None:
    """signac-flow's status of a project holding the same states (maybe fewer jobs)."""
    try:
        project_class = flow_project_class()
    except ImportError:
        common.log_not_installed("signac-flow")
        return
    m = tree.n if opts.flow_max is None else min(tree.n, opts.flow_max)
    jobs = Tree(m, "", dict(list(tree.truth.items())[:m]))
    start = time.perf_counter()
    path = build_flow_project(jobs, tempfile.mkdtemp(prefix=f"flow-{m}-", dir=base))
    common.log(
        f"N={tree.n:,}: signac project of {m:,} jobs built in {time.perf_counter() - start:.1f} s"
    )
    for rep in range(opts.repeats):
        result, output = timed(lambda: flow_status(project_class, path), opts.drop_caches)
        check_flow(output, jobs)
        if m != tree.n:
            result.note = f"{m:,} jobs"
        progress(tree.n, "flow", f"run {rep + 1}/{opts.repeats}", result)
        best["flow"] = common.faster(result, best.get("flow"), seconds_of)
    best["flow"].note = "" if m == tree.n else f"measured on {m:,} jobs (--flow-max)"


def profile_ours(tree: Tree, limit: int) -> str:
    """cProfile of one cold and one warm collect on ``tree``."""
    out = io.StringIO()
    for name, prepare, run in (
        ("cold: collect(root, rescan=True)", None, ours_cold),
        ("warm: 1% changed, then collect(root)", change_some, ours_warm),
    ):
        if prepare is not None:
            prepare(tree)
        common.settle()
        profiler = cProfile.Profile()
        profiler.runcall(run, tree.root)
        print(f"cProfile of ours {name} at N={tree.n:,}:", file=out)
        out.write(common.profile_text(limit, profiler))
    return out.getvalue()


# -- reporting -------------------------------------------------------------------


def flow_scale(results: dict[str, Result], n: int, flow_max: int | None) -> float:
    """Scale for flow's time when it ran on fewer jobs (per-job comparison)."""
    if "flow" not in results or flow_max is None or flow_max >= n:
        return 1.0
    return n / flow_max


def report(best: dict[int, dict[str, Result]], flow_max: int | None) -> None:
    columns = ["lower", "cold", "warm", "cli start", "cli cold", "cli warm", "flow"]
    header = (
        f"{'N':>8}"
        + "".join(f" {name + ' s':>11}" for name in columns)
        + f" {'cold/lower':>11} {'warm/lower':>11} {'cold/flow':>10} {'warm/flow':>10}"
    )
    common.print_header(header)
    notes = []
    for n, results in best.items():
        scale = flow_scale(results, n, flow_max)
        star = "*" if scale != 1.0 else ""
        s = {name: result.seconds for name, result in results.items()}
        print(
            f"{n:>8,}"
            + "".join(f" {common.fmt(s.get(name)):>11}" for name in columns)
            + f" {common.ratio(s.get('cold'), s.get('lower')):>11}"
            f" {common.ratio(s.get('warm'), s.get('lower')):>11}"
            f" {common.ratio(s.get('cold'), s.get('flow'), scale) + star:>10}"
            f" {common.ratio(s.get('warm'), s.get('flow'), scale) + star:>10}"
        )
        if star:
            notes.append(
                f"* N={n:,}: signac-flow {results['flow'].note}; its time is scaled"
                f" by {scale:.1f} (per job) for the ratios"
            )
    for note in notes:
        print(note)
    print()
    print("CPU seconds of those runs, user + system (with child processes):")
    for name in columns:
        cells = "  ".join(
            common.cpu_cell(n, r[name].user, r[name].sys) for n, r in best.items() if name in r
        )
        if cells:
            print(f"  {name:<9} {cells}")
    print()
    print(
        "lower: os.scandir walk + reading the deciding record; cold: collect(rescan=True)"
        " (walk, derive, write index and journal);"
    )
    print(
        f"warm: {CHANGE_FRACTION:.0%} of the tasks ended anew, then collect(root);"
        " cli: autojob status --json as a subprocess (cli start: status --help);"
    )
    print("flow: signac-flow print_status() on as many jobs with two file-based operations.")


def check_targets(best: dict[int, dict[str, Result]], args: argparse.Namespace) -> bool:
    met = True
    target_cold: float = args.target_cold
    target_warm: float = args.target_warm
    for n, results in best.items():
        got = results["cold"].seconds / results["lower"].seconds
        ok = got <= target_cold
        met &= ok
        print(
            f"target: ours cold <= {args.target_cold:g}x lower at N={n:,}:"
            f" {got:.2f}x -> {common.verdict(ok)}"
        )
    n = common.size_for_target(args.target_size, best)
    got = best[n]["warm"].seconds / best[n]["lower"].seconds
    ok = got <= target_warm
    met &= ok
    print(
        f"target: ours warm <= {args.target_warm:g}x lower (cold) at N={n:,}:"
        f" {got:.3f}x -> {common.verdict(ok)}"
    )
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "Time autojob status on N tasks: cold, warm, CLI, plain Python, signac-flow."
    )
    common.add_sizes(parser, [10_000, TARGET_SIZE])
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per contender, best kept (3)"
    )
    common.add_dir(parser)
    common.add_skip(parser, SKIPPABLE, "parts")
    parser.add_argument(
        "--flow-max",
        type=int,
        default=None,
        help="run signac-flow on at most this many jobs (ratios are then per job)",
    )
    parser.add_argument(
        "--drop-caches",
        action="store_true",
        help="drop the kernel's page, dentry and inode caches before every timed run "
        "(root only; for a disk file system's cold cache)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the task states (1)")
    parser.add_argument(
        "--target-cold", type=float, default=TARGET_COLD, help="target for cold/lower (1.5)"
    )
    parser.add_argument(
        "--target-warm", type=float, default=TARGET_WARM, help="target for warm/lower (0.1)"
    )
    parser.add_argument(
        "--target-size",
        type=int,
        default=TARGET_SIZE,
        help="N at which the warm target applies (default: 100000; if it is not among "
        "--sizes, the largest size is used)",
    )
    common.add_check_profile_keep(
        parser,
        target="a target",
        profile="then profile ours (cold and warm) once at the target size with cProfile",
        profile_limit=30,
    )
    args = parser.parse_args(argv)
    common.check_skip(parser, args.skip, SKIPPABLE)
    common.check_sizes(parser, args.sizes)
    if args.repeats < 1 or (args.flow_max is not None and args.flow_max < 1):
        parser.error("--repeats and --flow-max take positive numbers")
    if args.drop_caches and not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        parser.error("--drop-caches needs root (writing /proc/sys/vm/drop_caches)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.byte_compile_autojob()
    sizes: list[int] = args.sizes
    base = common.base_dir(args.dir)
    target_n = common.size_for_target(args.target_size, sizes)
    opts = Options(
        repeats=args.repeats,
        skip=args.skip,
        flow_max=args.flow_max,
        drop_caches=args.drop_caches,
        seed=args.seed,
        profile_size=target_n if args.profile else None,
        profile_limit=args.profile_limit,
    )
    versions = ""
    if "flow" not in args.skip:
        try:
            import flow
            import signac

            versions = f", signac {signac.__version__}, signac-flow {flow.__version__}"
        except ImportError:
            pass
    common.log(
        f"sizes {sizes}, repeats {args.repeats}, in {base},"
        f" python {common.python_version()}{versions}"
    )
    best: dict[int, dict[str, Result]] = {}
    with common.bench_root(base, "autojob-bench-status-", args.keep) as root:
        for n in sizes:
            best[n] = measure_size(n, root, opts)
            gc.collect()
    print()
    report(best, args.flow_max)
    print()
    met = check_targets(best, args)
    if opts.profiles:
        print()
        print(opts.profiles)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
