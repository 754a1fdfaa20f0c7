"""Benchmark: loading a tree of N tasks, against plain Python and python-autojob 0.0.2.

One tree per N is built first (untimed) with the library: a study group holding
one study of N task groups of one task each, as a parameter sweep makes them.
Every contender then loads that same tree, repeatedly (best time kept, the
order rotating from repeat to repeat), after ``gc.collect()`` and ``os.sync()``:

``ours``
    ``StudyGroup.from_directory(root, strict_mode=True)``: every metadata file
    read and checked against its model, the children listed in each metadata
    file matched with the directories found, the models linked.

``lower`` (the lower bound)
    Plain Python reading the same files: ``os.scandir`` of the study group, the
    study and each task group, and ``json.loads`` of each metadata file
    (``study_group.json``, ``study.json``, ``task_group.json``, ``task.json``)
    and of each ``inputs.json``. No pathlib, no sorting, no models, no checks:
    it builds nothing.

``lower-os`` (shown, not a target)
    The same files read with the system calls ours makes: each directory
    opened once and the files in it read by name from there with ``os.open``
    and ``os.read``, and each task's (absent) outputs file looked for. Ours
    over it is what the models and checks cost.

``python-autojob``
    ``StudyGroup.from_directory(root, strict_mode=False)`` of PyPI
    python-autojob 0.0.2, in its own virtualenv (``--reference-python``, or one
    made under ``--venv-dir``, as the interop tests make it), in a subprocess
    per repeat at N <= ``--reference-max``. Timed inside that interpreter:
    its start and imports are not counted (printed apart). Its strict mode
    needs an ``in.traj`` (atoms) in every task, which plain tasks do not have.

After every run (untimed) the result is checked: ours must hold the N tasks,
each with the command it was written with; the lower bound must have read N
tasks; python-autojob must report N tasks.

Run ``.venv/bin/python benchmarks/bench_load.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import common

from autojob import SETTINGS
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

TARGET_LOWER = 2.0  # ours / lower, at every size
TARGET_REFERENCE = 5.0  # python-autojob / ours, at the reference target size
REFERENCE_TARGET_SIZE = 10_000
DEFAULT_SIZES = [1_000, 10_000, 100_000]
MILLION = 1_000_000
WARM_UP_SIZE = 20
REFERENCE = "python-autojob==0.0.2"
SKIPPABLE = ("reference",)
T = TypeVar("T")


# -- the tree ----------------------------------------------------------------------


def command_of(i: int) -> str:
    return f"python3 scf.py --cutoff {1000 + i}"


def build_tree(n: int, dest: str) -> str:
    """Write a study group of one study of ``n`` one-task groups; return its path."""
    os.makedirs(dest)
    study = Study(
        name=f"bench-load-{n}",
        tasks=[
            Task(
                task_inputs=TaskInputs(command=command_of(i)),
                task_metadata=TaskMetadata(label=f"task-{i}", tags=["bench"]),
            )
            for i in range(n)
        ],
    )
    return os.path.realpath(StudyGroup(studies=[study]).to_directory(dest))


# -- contenders -------------------------------------------------------------------


def ours(root: str) -> StudyGroup:
    """Load the study group as users do, strictly."""
    return StudyGroup.from_directory(root, strict_mode=True)


def check_ours(group: StudyGroup, n: int) -> int:
    """The loaded group must hold the ``n`` tasks with their commands; return the count."""
    tasks = [task for study in group.studies for task in study.tasks]
    commands = {task.task_inputs.command for task in tasks}
    if len(tasks) != n or commands != {command_of(i) for i in range(n)}:
        msg = f"ours loaded {len(tasks)} tasks ({len(commands)} commands), not {n}"
        raise AssertionError(msg)
    return len(tasks)


def _same(count: int, _: int) -> int:
    return count


def lower(root: str) -> int:
    """Plain Python: list the directories, json-load each metadata and inputs file."""
    group_file, study_file = SETTINGS.STUDY_GROUP_METADATA_FILE, SETTINGS.STUDY_METADATA_FILE
    task_group_file, task_file = SETTINGS.TASK_GROUP_METADATA_FILE, SETTINGS.TASK_METADATA_FILE
    inputs_file = SETTINGS.INPUTS_FILE
    count = 0

    def load(path: str) -> Any:
        with open(path, "rb") as stream:
            return json.loads(stream.read())

    def subdirs(path: str) -> list[str]:
        with os.scandir(path) as entries:
            return [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]

    load(f"{root}/{group_file}")
    for study in subdirs(root):
        load(f"{study}/{study_file}")
        for group in subdirs(study):
            load(f"{group}/{task_group_file}")
            for task in subdirs(group):
                load(f"{task}/{task_file}")
                load(f"{task}/{inputs_file}")
                count += 1
    return count


def lower_os(root: str) -> int:
    """Plain Python making the system calls ours makes: the floor of ours' file work.

    As :func:`lower`, but each directory is opened once and the files in it
    (and in its task directories) read by name from there with ``os.open``
    and ``os.read`` to the end, and each task's absent outputs file looked
    for, as ``StudyGroup.from_directory`` does. Not a target: it shows what
    ours costs beyond reading files in the cheapest way Python has.
    """
    group_file, study_file = SETTINGS.STUDY_GROUP_METADATA_FILE, SETTINGS.STUDY_METADATA_FILE
    task_group_file, task_file = SETTINGS.TASK_GROUP_METADATA_FILE, SETTINGS.TASK_METADATA_FILE
    inputs_file, outputs_file = SETTINGS.INPUTS_FILE, SETTINGS.OUTPUTS_FILE
    count = 0

    def read(name: str, dir_fd: int) -> bytes | None:
        try:
            fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        try:
            data = os.read(fd, 1 << 16)
            while more := os.read(fd, 1 << 16):
                data += more
            return data
        finally:
            os.close(fd)

    def load(name: str, dir_fd: int) -> Any:
        raw = read(name, dir_fd)
        return None if raw is None else json.loads(raw)

    def subdirs(dir_fd: int) -> list[str]:
        with os.scandir(dir_fd) as entries:
            return [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]

    def opened(name: str, dir_fd: int | None) -> int:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)

    top = opened(root, None)
    load(group_file, top)
    for study_name in subdirs(top):
        study = opened(study_name, top)
        load(study_file, study)
        for group_name in subdirs(study):
            group = opened(group_name, study)
            load(task_group_file, group)
            for task in subdirs(group):
                load(f"{task}/{task_file}", group)
                load(f"{task}/{inputs_file}", group)
                load(f"{task}/{outputs_file}", group)
                count += 1
            os.close(group)
        os.close(study)
    os.close(top)
    return count


# -- python-autojob in its own virtualenv -----------------------------------------

REFERENCE_SCRIPT = """
import gc, json, logging, os, sys, time
logging.disable(logging.CRITICAL)
t0 = time.perf_counter()
from pathlib import Path
from autojob.study_group import StudyGroup
t1 = time.perf_counter()
warm_up, root = sys.argv[1:3]
StudyGroup.from_directory(Path(warm_up), strict_mode=False)
gc.collect()
os.sync()
t2 = time.perf_counter()
group = StudyGroup.from_directory(Path(root), strict_mode=False)
t3 = time.perf_counter()
count = sum(len(study.tasks) for study in group.studies)
print(json.dumps({"import": t1 - t0, "load": t3 - t2, "count": count}))
"""


def reference_python(given: str | None, venv_dir: str) -> str | None:
    """An interpreter whose ``autojob`` is python-autojob 0.0.2 (made if needed)."""
    if given:
        return given
    python = os.path.join(venv_dir, "bin", "python")
    if not os.path.exists(python):
        common.log(f"installing {REFERENCE} into {venv_dir} (once)")
        subprocess.run([sys.executable, "-m", "venv", venv_dir], check=True)
        done = subprocess.run([python, "-m", "pip", "install", "--quiet", REFERENCE], check=False)
        if done.returncode != 0:
            common.log(f"cannot install {REFERENCE}; skipping it")
            return None
    return python


def run_reference(python: str, warm_up: str, root: str) -> dict[str, float]:
    """Load ``root`` with python-autojob in a clean environment (after ``warm_up``)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env = {k: v for k, v in env.items() if not k.startswith("AUTOJOB_")}
    done = subprocess.run(
        [python, "-c", REFERENCE_SCRIPT, warm_up, root],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(root),
        check=False,
    )
    if done.returncode != 0:
        msg = f"python-autojob failed:\n{done.stderr[-3000:]}"
        raise RuntimeError(msg)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the run ----------------------------------------------------------------------------


@dataclass
class Result:
    """Best times (s) per contender at one size."""

    n: int
    times: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    least_cpu: dict[str, float] = field(default_factory=dict)
    reference_import: float | None = None

    def keep(self, name: str, seconds: float, cpu: tuple[float, float], process: float) -> None:
        """Keep the best time of ``name`` (and the CPU seconds of that run), and its least CPU."""
        if name not in self.times or seconds < self.times[name]:
            self.times[name] = seconds
            self.cpu[name] = cpu
        self.least_cpu[name] = min(process, self.least_cpu.get(name, float("inf")))


def timed_in_process(
    name: str, run: Callable[[], T], count: Callable[[T, int], int], result: Result
) -> None:
    """Time ``run`` here, then (untimed) ``count`` what it returned: N tasks or an error."""
    process_cpu: list[float] = []

    def run_alone() -> T:  # CPU time to the nanosecond (os.times counts in 10 ms ticks)
        start = time.process_time()
        value = run()
        process_cpu.append(time.process_time() - start)
        return value

    measured = common.measure(run_alone)
    found = count(measured.value, result.n)
    seconds, cpu = measured.seconds, measured.cpu
    del measured  # the loaded tree goes before the next run
    if found != result.n:
        msg = f"{name}: {found} tasks, not {result.n}"
        raise AssertionError(msg)
    common.log(
        f"  N={result.n:>9,} {name:<15} {seconds:8.3f} s  {common.cpu_note(cpu.user, cpu.system)}"
    )
    result.keep(name, seconds, (cpu.user, cpu.system), process_cpu[0])


def timed_reference(python: str, warm_up: str, root: str, result: Result) -> None:
    """Time python-autojob in its interpreter (start and imports not counted)."""
    ref = run_reference(python, warm_up, root)
    if ref["count"] != result.n:
        msg = f"python-autojob loaded {ref['count']} tasks, not {result.n}"
        raise AssertionError(msg)
    common.log(
        f"  N={result.n:>9,} {'python-autojob':<15} {ref['load']:8.3f} s  "
        f"(its start and imports {ref['import']:.2f} s, not counted)"
    )
    if "python-autojob" not in result.times or ref["load"] < result.times["python-autojob"]:
        result.times["python-autojob"] = ref["load"]
    result.reference_import = ref["import"]


def run_size(
    n: int, repeats: int, base: str, args: argparse.Namespace, python: str | None
) -> tuple[Result, str]:
    """Build the tree of ``n`` tasks and time every contender on it."""
    result = Result(n)
    profile = ""
    with common.bench_root(base, f"bench-load-{n}-", args.keep) as dest:
        common.log(f"N={n:,}: building the tree (untimed)")
        root = build_tree(n, os.path.join(dest, "tree"))
        warm_up = build_tree(WARM_UP_SIZE, os.path.join(dest, "warm-up"))
        # warm up here: imports, pydantic's validators, the page cache of the tree
        check_ours(ours(warm_up), WARM_UP_SIZE)
        lower(root)
        lower_os(root)
        with_reference = python is not None and n <= args.reference_max
        contenders: list[tuple[str, Callable[[], None]]] = [
            ("ours", lambda: timed_in_process("ours", lambda: ours(root), check_ours, result)),
            ("lower", lambda: timed_in_process("lower", lambda: lower(root), _same, result)),
            (
                "lower-os",
                lambda: timed_in_process("lower-os", lambda: lower_os(root), _same, result),
            ),
        ]
        if with_reference:
            assert python is not None
            contenders.append(
                ("python-autojob", lambda: timed_reference(python, warm_up, root, result))
            )
        for rep in range(repeats):
            for _, run in common.rotated(contenders, rep):
                run()
        if args.profile and n == common.size_for_target(REFERENCE_TARGET_SIZE, args.sizes):
            common.settle()
            profiler = cProfile.Profile()
            profiler.runcall(ours, root)
            profile = common.profile_text(args.profile_limit, profiler)
    return result, profile


def repeats_for(sizes: list[int], repeats: list[int] | None) -> list[int]:
    """Runs per size: 3 up to 10,000 tasks, 2 above, unless ``--repeats`` says."""
    if repeats is None:
        return [3 if n <= 10_000 else 2 for n in sizes]
    if len(repeats) == 1:
        return repeats * len(sizes)
    if len(repeats) != len(sizes):
        sys.exit("--repeats takes one number, or one per size")
    return repeats


# -- reporting ----------------------------------------------------------------------


def report(results: list[Result], args: argparse.Namespace) -> bool:
    """Print the table and the targets; return whether every target is met."""
    header = (
        f"{'N':>9} {'ours s':>9} {'lower s':>9} {'lower-os s':>10} {'p-autojob s':>12}"
        f" {'ours µs/task':>13} {'lower µs/task':>14} {'p-a µs/task':>12}"
        f" {'ours/lower':>11} {'ours/lower-os':>14} {'p-a/ours':>9}"
    )
    common.print_header(header)
    for r in results:
        o, lo, ref = r.times["ours"], r.times["lower"], r.times.get("python-autojob")
        floor = r.times["lower-os"]
        per_task = [None if t is None else t / r.n * 1e6 for t in (o, lo, ref)]
        cells = " ".join(
            f"{'-' if us is None else f'{us:.1f}':>{width}}"
            for us, width in zip(per_task, (13, 14, 12), strict=True)
        )
        print(
            f"{r.n:>9,} {common.fmt(o):>9} {common.fmt(lo):>9} {common.fmt(floor):>10}"
            f" {common.fmt(ref):>12} {cells}"
            f" {common.ratio(o, lo):>11} {common.ratio(o, floor):>14} {common.ratio(ref, o):>9}"
        )
    print()
    print("CPU seconds of those runs, user + system:")
    for name in ("ours", "lower", "lower-os"):
        cells = "  ".join(common.cpu_cell(r.n, *r.cpu[name]) for r in results)
        print(f"  {name:<8} {cells}")
    imports = [f"N={r.n:,}: {r.reference_import:.2f} s" for r in results if r.reference_import]
    if imports:
        print(f"  python-autojob's start and imports (not counted): {', '.join(imports)}")
    print("Least CPU seconds of any run (time.process_time; a machine shared with other")
    print("work stretches wall time, CPU time less), and ours over them:")
    for r in results:
        o, lo, floor = (r.least_cpu[name] for name in ("ours", "lower", "lower-os"))
        print(
            f"  N={r.n:,}: ours {o:.3f}, lower {lo:.3f}, lower-os {floor:.3f}:"
            f" ours / lower {common.ratio(o, lo)}, ours / lower-os {common.ratio(o, floor)}"
        )
    print()
    met = True
    for r in results:
        ok = r.times["ours"] / r.times["lower"] <= args.target
        met &= ok
        print(
            f"N={r.n:,}: ours / lower = {common.ratio(r.times['ours'], r.times['lower'])}"
            f" (target <= {args.target}x: {common.verdict(ok)})"
        )
    by_n = {r.n: r for r in results if "python-autojob" in r.times}
    if by_n:
        at = by_n[common.size_for_target(args.reference_size, list(by_n))]
        speedup = at.times["python-autojob"] / at.times["ours"]
        ok = speedup >= args.target_reference
        met &= ok
        print(
            f"N={at.n:,}: python-autojob / ours = {speedup:.2f}x"
            f" (target >= {args.target_reference}x: {common.verdict(ok)})"
        )
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = common.new_parser(
        "Time loading a study group of N tasks: ours (StudyGroup.from_directory), "
        "plain Python reading the same files, python-autojob 0.0.2."
    )
    common.add_sizes(parser, DEFAULT_SIZES)
    parser.add_argument(
        "--million",
        action="store_true",
        help="add N = 1,000,000: about 6 million inodes on --dir, several GB of memory "
        "and many minutes (building the tree alone takes most of them)",
    )
    parser.add_argument(
        "--repeats",
        type=common.int_list,
        default=None,
        help="runs per size, best kept: one number, or one per size "
        "(default: 3 up to N = 10,000, else 2)",
    )
    common.add_dir(parser)
    common.add_skip(parser, SKIPPABLE, "contenders")
    parser.add_argument("--reference-python", help="an interpreter with python-autojob 0.0.2")
    parser.add_argument(
        "--venv-dir",
        default=os.path.join(os.path.expanduser("~"), ".cache", "autojob-bench", "python-autojob"),
        help="where the python-autojob virtualenv is made when none is given",
    )
    parser.add_argument(
        "--reference-max",
        type=int,
        default=REFERENCE_TARGET_SIZE,
        help="largest N python-autojob loads (default: 10000; it takes over a minute at 100,000)",
    )
    parser.add_argument(
        "--target", type=float, default=TARGET_LOWER, help="target for ours/lower (2.0)"
    )
    parser.add_argument(
        "--target-reference",
        type=float,
        default=TARGET_REFERENCE,
        help="target for python-autojob/ours (5.0)",
    )
    parser.add_argument(
        "--reference-size",
        type=int,
        default=REFERENCE_TARGET_SIZE,
        help="N of the python-autojob target (default: 10000; else the largest N it ran at)",
    )
    common.add_check_profile_keep(
        parser,
        target="a target",
        profile="afterwards, profile ours once at N = 10,000 (or the largest N) with cProfile",
        profile_limit=30,
    )
    args = parser.parse_args(argv)
    common.check_skip(parser, args.skip, SKIPPABLE)
    if args.million and MILLION not in args.sizes:
        args.sizes = [*args.sizes, MILLION]
    common.check_sizes(parser, args.sizes)
    args.sizes = sorted(args.sizes)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    args = parse_args(argv)
    base = common.base_dir(args.dir)
    repeats = repeats_for(args.sizes, args.repeats)
    python = None
    if "reference" not in args.skip:
        python = reference_python(args.reference_python, args.venv_dir)
    common.log(
        f"sizes {args.sizes}, repeats {repeats}, in {base}, python {common.python_version()}"
    )
    results, profiles = [], []
    for n, times in zip(args.sizes, repeats, strict=True):
        result, profile = run_size(n, times, base, args, python)
        results.append(result)
        profiles.append(profile)
    print()
    print(f"load benchmark, Python {common.python_version()}, {os.cpu_count()} cores, in {base}")
    met = report(results, args)
    for profile in profiles:
        if profile:
            print()
            print(profile)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
