"""Benchmark: create N tasks in a structured study, against plain Python and signac.

Each contender runs in a fresh temporary directory on the same file system
(``--dir``), repeatedly (best time kept), with ``os.sync()`` before every run:

``ours``
    ``Study(name=..., tasks=[Task(...) ...])`` and
    ``StudyGroup(studies=[study]).to_directory(dest)``: one task per task group,
    as a parameter sweep makes them. Model construction and writing are timed
    together and reported separately too.

``lower`` (the lower bound the target is measured against)
    Plain Python doing the same file work: the same directories (study group,
    study, one task group and one task directory per task), the same files with
    the same content, each JSON document ``json.dumps(dict, indent=4)`` (so the
    same bytes), ``run.sh`` by string formatting (and its stamp: two short
    sha256 digests) and ``fchmod`` 0o755, ids of
    the same form from the OS's random source. No pydantic, no Jinja, no
    pathlib, no staging directory.

``floor`` (a stricter bound)
    ``lower`` with the per-task JSON documents laid out by string formatting
    around values encoded by the json module's C string encoder: identical bytes
    again, but without the pure-Python encoder ``json.dumps(indent=4)`` uses.

``signac``
    ``project.open_job(state_point).init()`` plus the job document, with the
    state point holding what ``inputs.json`` holds and the document what
    ``task.json`` holds. signac writes one directory and two files per job where
    autojob writes two directories and four files (see README.md).

After timing (untimed), every tree is checked: ours must load back with
``StudyGroup.from_directory`` holding the N tasks, the plain trees must hold N
task directories with exactly ours' numbers of directories, files and bytes,
signac's project N jobs.

Run ``.venv/bin/python benchmarks/bench_create.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import common

from autojob.store.task_script import sources_digest, stamped
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

TARGET_RATIO = 1.5
TARGET_SIZE = 10_000
SKIPPABLE = ("floor", "signac")


# -- the contenders -----------------------------------------------------------
#
# Each takes (n, dest) and returns a dict of timings in seconds; "total" is the
# time compared. dest is an empty directory; the contender creates its tree in it.


def command_of(i: int) -> str:
    return f"python calc.py --i {i}"


def label_of(i: int) -> str:
    return f"task-{i}"


def run_ours(n: int, dest: str) -> dict[str, float]:
    """Build the study in autojob's models and write it with to_directory."""
    start = time.perf_counter()
    study = Study(
        name="bench",
        tasks=[
            Task(
                task_inputs=TaskInputs(command=command_of(i)),
                task_metadata=TaskMetadata(label=label_of(i)),
            )
            for i in range(n)
        ],
    )
    group = StudyGroup(studies=[study])
    built = time.perf_counter()
    group.to_directory(dest)
    done = time.perf_counter()
    return {"total": done - start, "model": built - start, "write": done - built}


# The plain-Python contenders write exactly what autojob writes.

ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE = len(ID_ALPHABET)


def fast_id(prefix: str) -> str:
    """A 10-character id like autojob's: prefix + 9 characters of ID_ALPHABET.

    From 128 bits of the OS's random source (as secrets uses), base-57 encoded
    as shortuuid does; one system call per id.
    """
    number = int.from_bytes(os.urandom(16))
    chars = [prefix]
    for _ in range(9):
        number, digit = divmod(number, _BASE)
        chars.append(ID_ALPHABET[digit])
    return "".join(chars)


def now_iso() -> str:
    return datetime.now(tz=UTC).isoformat()


def dumps(data: Any) -> bytes:
    """The same bytes autojob's dump_json gives."""
    text = json.dumps(data, indent=4, allow_nan=False, ensure_ascii=False) + "\n"
    return text.encode("utf-8")


def run_sh_format() -> str:
    """Return run.sh as a %-format string with slots for the task id and command.

    Made once, untimed, by rendering the package template for a sentinel task,
    so the lower bound's script stays byte for byte what autojob writes even as
    the template changes. The timed loop only fills it in with ``%``.
    """
    from autojob.store.render import render_task_script

    sentinel_id, sentinel_command = "jSENTINEL0", "SENTINEL --command 0"
    task = Task(
        task_inputs=TaskInputs(command=sentinel_command),
        task_metadata=TaskMetadata(task_id=sentinel_id),
    )
    text = render_task_script(task).replace("%", "%%")
    quoted = shlex.quote(sentinel_command)
    if not text.count(sentinel_id) or text.count(quoted) != 1:
        msg = "cannot derive run.sh from the template: a sentinel is missing or repeated"
        raise RuntimeError(msg)
    return text.replace(sentinel_id, "%(task_id)s").replace(quoted, "%(command)s")


RUN_SH = run_sh_format()

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_file(path: str, data: bytes, mode: int | None = None) -> None:
    fd = os.open(path, _NEW_FILE, 0o644)
    try:
        os.write(fd, data)
        if mode is not None:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


# The documents of one task, as dicts (what json.dumps gets) ...


def task_inputs_doc(command: str) -> dict[str, Any]:
    return {
        "task_inputs": {
            "command": command,
            "files_to_copy": [],
            "files_to_delete": [],
            "files_to_carry_over": [],
            "auto_restart": True,
            "max_attempts": 3,
            "restart_time_factor": 1.5,
            "restart_max_time": None,
            "task_script": "run.sh",
            "task_script_template": "run.sh.j2",
        },
        "scheduler_inputs": {},
    }


def task_group_doc(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "label": ids["label"],
        "study_group_id": ids["study_group_id"],
        "study_id": ids["study_id"],
        "task_group_id": ids["task_group_id"],
        "date_created": ids["stamp"],
        "tasks": [ids["task_id"]],
    }


def task_doc(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "label": ids["label"],
        "tags": [],
        "uri": None,
        "study_group_id": ids["study_group_id"],
        "study_id": ids["study_id"],
        "workflow_step_id": None,
        "task_id": ids["task_id"],
        "task_group_id": ids["task_group_id"],
        "date_created": ids["stamp"],
        "last_updated": ids["stamp"],
        "task_class": "task",
    }


SLOTS = ("label", "command", "study_group_id", "study_id", "task_group_id", "task_id", "stamp")
TaskDocs = Callable[[dict[str, str]], tuple[bytes, bytes, bytes]]


def dumped_docs(ids: dict[str, str]) -> tuple[bytes, bytes, bytes]:
    """task_group.json, inputs.json, task.json: json.dumps of each dict."""
    return (
        dumps(task_group_doc(ids)),
        dumps(task_inputs_doc(ids["command"])),
        dumps(task_doc(ids)),
    )


# ... and as %-format strings with a slot per string value, made once (untimed)
# from the same dicts, for the strict floor: identical bytes, but only the
# values pass through the json module's C string encoder.


def json_format(doc: Callable[[dict[str, str]], dict[str, Any]]) -> str:
    sentinels = {slot: f"@slot-{slot}@" for slot in SLOTS}
    text = dumps(doc(sentinels)).decode("utf-8").replace("%", "%%")
    for slot, sentinel in sentinels.items():
        text = text.replace(json.dumps(sentinel), f"%({slot})s")
    if "@slot-" in text:
        raise RuntimeError("a sentinel survived in a JSON format string")
    return text


TASK_GROUP_JSON = json_format(task_group_doc)
INPUTS_JSON = json_format(lambda ids: task_inputs_doc(ids["command"]))
TASK_JSON = json_format(task_doc)


def formatted_docs(ids: dict[str, str]) -> tuple[bytes, bytes, bytes]:
    """The same three documents by string formatting around JSON-encoded values."""
    values = {slot: encode_basestring(value) for slot, value in ids.items()}
    return (
        (TASK_GROUP_JSON % values).encode("utf-8"),
        (INPUTS_JSON % values).encode("utf-8"),
        (TASK_JSON % values).encode("utf-8"),
    )


def write_plain_tree(n: int, dest: str, docs: TaskDocs) -> dict[str, float]:
    """Write the same tree as ours, with os calls and str paths (no pathlib)."""
    start = time.perf_counter()
    study_group_id, study_id = fast_id("g"), fast_id("s")
    group_dir = f"{dest}/{study_group_id}"
    study_dir = f"{group_dir}/{study_id}"
    os.mkdir(group_dir)
    os.mkdir(study_dir)
    study_group = {
        "date_created": now_iso(),
        "study_group_id": study_group_id,
        "name": "",
        "notes": [],
        "studies": [study_id],
    }
    write_file(f"{group_dir}/study_group.json", dumps(study_group))
    task_group_ids = []
    for i in range(n):
        task_group_id, task_id = fast_id("c"), fast_id("j")
        task_group_ids.append(task_group_id)
        command = command_of(i)
        ids = {
            "label": label_of(i),
            "command": command,
            "study_group_id": study_group_id,
            "study_id": study_id,
            "task_group_id": task_group_id,
            "task_id": task_id,
            "stamp": now_iso(),
        }
        task_group_json, inputs_json, task_json = docs(ids)
        task_group_dir = f"{study_dir}/{task_group_id}"
        task_dir = f"{task_group_dir}/{task_id}"
        os.mkdir(task_group_dir)
        os.mkdir(task_dir)
        write_file(f"{task_group_dir}/task_group.json", task_group_json)
        write_file(f"{task_dir}/inputs.json", inputs_json)
        script = RUN_SH % {"task_id": task_id, "command": shlex.quote(command)}
        script = stamped(script, sources_digest(inputs_json, task_json))  # what it came from
        write_file(f"{task_dir}/run.sh", script.encode("utf-8"), 0o755)
        write_file(f"{task_dir}/task.json", task_json)
    study = {
        "date_created": now_iso(),
        "study_id": study_id,
        "study_group_id": study_group_id,
        "name": "bench",
        "notes": [],
        "task_groups": task_group_ids,
    }
    write_file(f"{study_dir}/study.json", dumps(study))
    return {"total": time.perf_counter() - start}


def run_lower_bound(n: int, dest: str) -> dict[str, float]:
    """The lower bound: each document is json.dumps(dict, indent=4)."""
    return write_plain_tree(n, dest, dumped_docs)


def run_floor(n: int, dest: str) -> dict[str, float]:
    """The strict floor: the same bytes, formatted around JSON-encoded values."""
    return write_plain_tree(n, dest, formatted_docs)


def run_signac(n: int, dest: str) -> dict[str, float]:
    """N signac jobs: state point = inputs.json's content, document = task.json's."""
    import signac

    start = time.perf_counter()
    project = signac.init_project(dest)
    for i in range(n):
        job = project.open_job(task_inputs_doc(command_of(i))).init()
        stamp = now_iso()
        job.document.update(
            {
                "label": label_of(i),
                "tags": [],
                "uri": None,
                "study_group_id": None,
                "study_id": None,
                "workflow_step_id": None,
                "task_id": fast_id("j"),
                "task_group_id": None,
                "date_created": stamp,
                "last_updated": stamp,
                "task_class": "task",
            }
        )
    return {"total": time.perf_counter() - start}


# -- checks (untimed) ----------------------------------------------------------


def tree_size(root: str) -> tuple[int, int, int]:
    """Return (directories, files, bytes) below ``root``."""
    dirs = files = size = 0
    for here, subdirs, names in os.walk(root):
        dirs += len(subdirs)
        files += len(names)
        size += sum(os.lstat(os.path.join(here, name)).st_size for name in names)
    return dirs, files, size


def only_child(dest: str) -> Path:
    children = [
        entry.name
        for entry in os.scandir(dest)
        if entry.is_dir() and not entry.name.startswith(".")
    ]
    if len(children) != 1:
        msg = f"expected one directory in {dest}, found {children}"
        raise AssertionError(msg)
    return Path(dest, children[0])


def check_ours(n: int, dest: str) -> tuple[int, int, int]:
    root = only_child(dest)
    loaded = StudyGroup.from_directory(root)
    tasks = [task for study in loaded.studies for task in study.tasks]
    if len(tasks) != n:
        msg = f"ours: {root} loads back with {len(tasks)} tasks, not {n}"
        raise AssertionError(msg)
    commands = {task.task_inputs.command for task in tasks}
    if commands != {command_of(i) for i in range(n)}:
        raise AssertionError("ours: the loaded tasks have the wrong commands")
    leftovers = [name for name in os.listdir(dest) if name.startswith(".")]
    if leftovers:
        msg = f"ours: staging left behind in {dest}: {leftovers}"
        raise AssertionError(msg)
    return tree_size(dest)


def check_plain_tree(n: int, dest: str) -> tuple[int, int, int]:
    root = only_child(dest)
    study_dir = only_child(str(root))
    groups = [entry for entry in os.scandir(study_dir) if entry.is_dir()]
    tasks = sum(
        1
        for group in groups
        for entry in os.scandir(group.path)
        if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "task.json"))
    )
    if tasks != n:
        msg = f"plain tree: {tasks} task directories, not {n}"
        raise AssertionError(msg)
    return tree_size(dest)


def check_signac(n: int, dest: str) -> tuple[int, int, int]:
    import signac

    jobs = len(signac.get_project(dest))
    if jobs != n:
        msg = f"signac: {jobs} jobs, not {n}"
        raise AssertionError(msg)
    return tree_size(dest)


@dataclass
class Contender:
    name: str
    run: Callable[[int, str], dict[str, float]]
    check: Callable[[int, str], tuple[int, int, int]]
    best: dict[int, dict[str, float]] = field(default_factory=dict)
    trees: dict[int, tuple[int, int, int]] = field(default_factory=dict)


# -- measuring -----------------------------------------------------------------


def measure_once(contender: Contender, n: int, root: str) -> dict[str, float]:
    """Run a contender once in a fresh directory, then check its tree.

    Trees are removed only at the end of the benchmark: on ext4, creating many
    inodes right after deleting many is several times slower, so deleting one
    contender's tree would slow down whichever contender runs next.
    """
    dest = tempfile.mkdtemp(prefix=f"{contender.name}-{n}-", dir=root)
    measured = common.measure(lambda: contender.run(n, dest))
    times = measured.value
    times["user"] = measured.cpu.user
    times["sys"] = measured.cpu.system
    contender.trees[n] = contender.check(n, dest)
    return times


def repeats_for(sizes: list[int], repeats: list[int] | None) -> list[int]:
    if repeats is None:
        return [3 if n <= 1000 else 2 for n in sizes]
    if len(repeats) == 1:
        return repeats * len(sizes)
    if len(repeats) != len(sizes):
        sys.exit("--repeats takes one number, or one per size")
    return repeats


def benchmark(contenders: list[Contender], sizes: list[int], repeats: list[int], root: str) -> None:
    for contender in contenders:  # warm up: imports, template compilation, caches
        measure_once(contender, 20, root)
    for n, times in zip(sizes, repeats, strict=True):
        for rep in range(times):
            for contender in common.rotated(contenders, rep):
                result = measure_once(contender, n, root)
                common.log(
                    f"  N={n:>7,} run {rep + 1}/{times} {contender.name:<7}"
                    f" {result['total']:8.3f} s  {common.cpu_note(result['user'], result['sys'])}"
                )
                contender.best[n] = common.faster(result, contender.best.get(n), common.total)


def profile_ours(n: int, root: str, limit: int) -> str:
    dest = tempfile.mkdtemp(prefix=f"profile-{n}-", dir=root)
    common.settle()
    profiler = cProfile.Profile()
    profiler.runcall(run_ours, n, dest)
    return common.profile_text(limit, profiler)


# -- reporting -----------------------------------------------------------------


def report(contenders: dict[str, Contender], sizes: list[int]) -> None:
    def best(name: str, n: int) -> float | None:
        contender = contenders.get(name)
        return contender.best[n]["total"] if contender else None

    ours = contenders["ours"]
    header = (
        f"{'N':>8} {'ours s':>8} {'(model':>8} {'write)':>8} {'lower s':>8} {'floor s':>8}"
        f" {'signac s':>9} {'ours/lower':>11} {'ours/floor':>11} {'ours/signac':>12}"
    )
    common.print_header(header)
    for n in sizes:
        o = ours.best[n]
        lo, fl, sg = best("lower", n), best("floor", n), best("signac", n)
        print(
            f"{n:>8,} {common.fmt(o['total']):>8} {common.fmt(o['model']):>8}"
            f" {common.fmt(o['write']):>8} {common.fmt(lo):>8} {common.fmt(fl):>8}"
            f" {common.fmt(sg):>9} {common.ratio(o['total'], lo):>11}"
            f" {common.ratio(o['total'], fl):>11} {common.ratio(o['total'], sg):>12}"
        )
    print()
    print("CPU seconds of those runs, user + system (the rest is waiting on the file system):")
    for contender in contenders.values():
        cells = "  ".join(
            common.cpu_cell(n, contender.best[n]["user"], contender.best[n]["sys"]) for n in sizes
        )
        print(f"  {contender.name:<7} {cells}")
    print()
    print("trees written (directories, files, bytes; checked after timing):")
    for contender in contenders.values():
        for n in sizes:
            dirs, files, size = contender.trees[n]
            print(
                f"  {contender.name:<7} N={n:>7,}: {dirs:>7,} dirs"
                f" {files:>7,} files {size:>12,} bytes"
            )
    for name in ("lower", "floor"):
        plain = contenders.get(name)
        for n in sizes:
            if plain and plain.trees[n] != ours.trees[n]:
                print(
                    f"WARNING: at N={n:,} the {name} tree differs from ours"
                    f" ({plain.trees[n]} vs {ours.trees[n]}): it no longer does the same work"
                )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.new_parser("Time creating N tasks: autojob vs plain Python vs signac.")
    common.add_sizes(parser, [1000, TARGET_SIZE])
    parser.add_argument(
        "--repeats",
        type=common.int_list,
        default=None,
        help="runs per size, best kept: one number, or one per size "
        "(default: 3 for N <= 1000, else 2)",
    )
    common.add_dir(parser)
    common.add_skip(parser, SKIPPABLE, "contenders")
    parser.add_argument(
        "--target", type=float, default=TARGET_RATIO, help="target for ours/lower (1.5)"
    )
    parser.add_argument(
        "--target-against",
        choices=["lower", "floor"],
        default="lower",
        help="the bound the target is measured against (default: lower)",
    )
    parser.add_argument(
        "--target-size",
        type=int,
        default=TARGET_SIZE,
        help="N at which the target applies (default: 10000; if it is not among "
        "--sizes, the largest size is used)",
    )
    common.add_check_profile_keep(
        parser,
        target="the target",
        profile="afterwards, profile ours once at the target size with cProfile",
        profile_limit=40,
    )
    args = parser.parse_args(argv)
    common.check_skip(parser, args.skip, SKIPPABLE)
    if args.target_against in args.skip:
        parser.error(f"--target-against {args.target_against} is skipped")
    common.check_sizes(parser, args.sizes)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes: list[int] = args.sizes
    repeats = repeats_for(sizes, args.repeats)
    base = common.base_dir(args.dir)

    contenders = [
        Contender("ours", run_ours, check_ours),
        Contender("lower", run_lower_bound, check_plain_tree),
    ]
    if "floor" not in args.skip:
        contenders.append(Contender("floor", run_floor, check_plain_tree))
    if "signac" not in args.skip:
        try:
            import signac
        except ImportError:
            common.log_not_installed("signac")
        else:
            common.log(f"signac {signac.__version__}")
            contenders.append(Contender("signac", run_signac, check_signac))

    common.log(f"sizes {sizes}, repeats {repeats}, in {base}, python {common.python_version()}")
    target_n = common.size_for_target(args.target_size, sizes)
    profile = ""
    with common.bench_root(base, "autojob-bench-", args.keep) as root:
        benchmark(contenders, sizes, repeats, root)
        if args.profile:
            profile = profile_ours(target_n, root, args.profile_limit)
    by_name = {contender.name: contender for contender in contenders}
    print()
    report(by_name, sizes)

    bound = by_name[args.target_against]
    got = by_name["ours"].best[target_n]["total"] / bound.best[target_n]["total"]
    met = got <= args.target
    print()
    print(
        f"target: ours <= {args.target:g}x {args.target_against} at N={target_n:,}:"
        f" {got:.2f}x -> {common.verdict(met)}"
    )
    if args.profile:
        print()
        print(f"cProfile of ours at N={target_n:,}:")
        print(profile)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
