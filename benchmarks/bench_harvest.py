"""Benchmark: harvesting N completed tasks, against plain Python, python-autojob and signac.

One tree per N is built first (untimed) with the library: a study group holding
one study of N task groups of one task each, as a parameter sweep makes them;
each task then gets what a successful run leaves (``autojob.started``,
``autojob.ended`` with exit 0, and an ``outputs.json`` written by its command).
Every contender runs on that same tree (best of ``--repeats``), after
``gc.collect()`` and ``os.sync()``:

``lower``
    Plain Python: ``os.scandir`` walk stopping at directories that hold
    ``task.json``, ``json.loads`` of the files a harvest reads there
    (``task.json``, ``inputs.json``, ``autojob.ended``, ``outputs.json``), one
    dict per task written as a line of compact JSON to an archive file.

``json`` / ``jsonl``
    ``autojob.harvest.archive(root, out, fmt=...)`` as ``autojob harvest``
    runs it the first time: no cache yet, so every task is read, and the
    cache for the next harvest is written beside the archive.

``harvest``
    ``list(autojob.harvest.harvest(root, strict=False))``: the tasks as
    ``HarvestedTask`` models in memory, nothing written; what python-autojob's
    ``harvest`` does, so the two are compared on this one.

``incremental``
    After a ``json`` run, 1% of the tasks get a new ``outputs.json`` (written
    atomically, as a task's command would); then the same ``archive`` call,
    which checks the cached tasks by their directories (the default while the
    last check of every file is recent).

``verified``
    Right after, ``archive(..., verify=True)``: every watched file of every
    cached task is checked too (what a harvest does once
    ``HARVEST_VERIFY_AGE`` passed); the same 1% are read again (they changed
    too recently to be cached).

``python-autojob``
    ``autojob.harvest.harvest.harvest(root, strictness="relaxed")`` of PyPI
    python-autojob 0.0.2, in its own virtualenv (``--reference-python``, or one
    made under ``--venv-dir``), at N <= ``--reference-max`` (10,000). Its import
    time is printed apart and not counted.

``signac``
    A signac project of N jobs whose state points are the tasks' inputs and
    whose documents hold the metadata, end record and outputs (written
    untimed); timed is opening the project and reading every job's state point
    and document.

After every run (untimed) the archive is checked: N records, and after the
incremental run the changed tasks carry their new outputs. Peak memory of
streaming harvests (JSON Lines, CSV, JSON) is measured at each N in a fresh
process: the peak resident set (``VmHWM``) of a harvest, then the peak of
Python's allocations during a second one under ``tracemalloc``.

Run ``.venv/bin/python benchmarks/bench_harvest.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common

from autojob import SETTINGS
from autojob.harvest import archive, harvest
from autojob.study import Study
from autojob.study_group import StudyGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

TARGET_LOWER = 2.0  # ours / lower, at every size
TARGET_REFERENCE = 5.0  # python-autojob / ours, at N = 10,000
TARGET_INCREMENTAL = 0.1  # incremental / full, at the target size
TARGET_MEMORY = 1.2  # peak at the largest N / peak at the smallest, streaming
CHANGE_FRACTION = 0.01
REFERENCE = "python-autojob==0.0.2"
SKIPPABLE = ("reference", "signac", "memory", "jsonl")


# -- the tree ----------------------------------------------------------------------


def build_tree(n: int, dest: str) -> tuple[str, list[str]]:
    """Write the study with the library, then what a successful run leaves."""
    study = Study(
        name="bench-harvest",
        tasks=[
            Task(
                task_inputs=TaskInputs(command=f"python3 scf.py 0.3 {1000 + i}"),
                task_metadata=TaskMetadata(label=f"task-{i}", tags=["bench"]),
            )
            for i in range(n)
        ],
    )
    root = os.path.realpath(StudyGroup(studies=[study]).to_directory(dest))
    del study
    dirs = common.task_dirs(root, SETTINGS.TASK_METADATA_FILE)
    if len(dirs) != n:
        msg = f"the tree in {root} has {len(dirs)} tasks, not {n}"
        raise AssertionError(msg)
    when = time.time() - 3600.0
    for i, folder in enumerate(dirs):
        _write(folder, SETTINGS.STARTED_FILE, {"time": when, "host": "bench", "pid": 1})
        _write(folder, SETTINGS.ENDED_FILE, {"time": when + 1, "exit_code": 0})
        _write(folder, SETTINGS.OUTPUTS_FILE, outputs_of(i, 0))
    return root, dirs


def outputs_of(i: int, version: int) -> dict[str, Any]:
    """The outputs task ``i`` writes (``version`` changes with each rerun)."""
    return {"mixing": 0.3, "cutoff": 1000 + i, "n": 1.25 + i * 1e-9, "steps": 38 + version}


def _write(folder: str, name: str, data: dict[str, Any]) -> None:
    tmp = os.path.join(folder, f".{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as stream:
        json.dump(data, stream)
    os.replace(tmp, os.path.join(folder, name))


# -- contenders --------------------------------------------------------------------


def lower(root: str, out: str) -> int:
    """Plain Python: walk, json-load the files a harvest reads, write one line each."""
    meta, inputs, ended = SETTINGS.TASK_METADATA_FILE, SETTINGS.INPUTS_FILE, SETTINGS.ENDED_FILE
    outputs = SETTINGS.OUTPUTS_FILE
    count = 0

    def load(path: str) -> Any:
        try:
            with open(path, "rb") as stream:
                return json.loads(stream.read())
        except FileNotFoundError:
            return None

    with open(out, "w", encoding="utf-8") as sink:

        def walk(top: str, rel: str) -> None:
            nonlocal count
            with os.scandir(top) as it:
                entries = list(it)
            names = {e.name for e in entries}
            if meta in names:
                record = {
                    "path": rel,
                    "metadata": load(os.path.join(top, meta)),
                    "inputs": load(os.path.join(top, inputs)),
                    "state": load(os.path.join(top, ended)),
                    "outputs": load(os.path.join(top, outputs)),
                }
                sink.write(json.dumps(record, separators=(",", ":")) + "\n")
                count += 1
                return
            for name in sorted(e.name for e in entries if e.is_dir(follow_symlinks=False)):
                walk(os.path.join(top, name), f"{rel}/{name}")

        walk(root, ".")
    return count


def ours(root: str, out: str, fmt: str) -> int:
    """``archive`` as the CLI runs it."""
    return archive(root, out, fmt=fmt, strict=False).tasks


def models(root: str) -> int:
    """``harvest()``: every task as a model, in memory (python-autojob's API)."""
    return len(list(harvest(root, strict=False)))


def count_lines(path: str, fmt: str) -> int:
    """Records in an archive (one per line in json and jsonl)."""
    with open(path, "rb") as stream:
        lines = sum(1 for line in stream if line.strip())
    return lines - 2 if fmt == "json" else lines


def change_some(dirs: list[str], rng: random.Random, version: int) -> dict[str, int]:
    """Rewrite the outputs of 1% of the tasks; return {dir: index}."""
    chosen = rng.sample(range(len(dirs)), max(1, int(len(dirs) * CHANGE_FRACTION)))
    for i in chosen:
        _write(dirs[i], SETTINGS.OUTPUTS_FILE, outputs_of(i, version))
    return {dirs[i]: i for i in chosen}


def check_changed(out: str, root: str, changed: dict[str, int], version: int) -> None:
    """The archive holds the new outputs of every changed task."""
    wanted = {os.path.relpath(d, root): outputs_of(i, version) for d, i in changed.items()}
    seen = 0
    with open(out, encoding="utf-8") as stream:
        for raw in stream:
            line = raw.strip().rstrip(",")
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record["path"] in wanted:
                assert record["outputs"] == wanted[record["path"]], record["path"]
                seen += 1
    assert seen == len(wanted), f"{seen} of {len(wanted)} changed tasks found"


# -- python-autojob in its own virtualenv -----------------------------------------

REFERENCE_SCRIPT = """
import json, logging, sys, time
logging.disable(logging.CRITICAL)
t0 = time.perf_counter()
from autojob.harvest.harvest import harvest
t1 = time.perf_counter()
tasks = harvest(sys.argv[1], strictness="relaxed")
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "harvest": t2 - t1, "count": len(tasks)}))
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


def run_reference(python: str, root: str) -> dict[str, float]:
    """Run python-autojob's harvest on ``root`` in a clean environment."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env = {k: v for k, v in env.items() if not k.startswith("AUTOJOB_")}
    done = subprocess.run(
        [python, "-c", REFERENCE_SCRIPT, root],
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


# -- signac -------------------------------------------------------------------------


def build_signac(dest: str, root: str, dirs: list[str]) -> str | None:
    """A signac project holding the same data, one job per task (untimed)."""
    try:
        import signac
    except ImportError:
        common.log_not_installed("signac")
        return None
    path = os.path.join(dest, "signac")
    os.makedirs(path)
    project = signac.init_project(path)
    for folder in dirs:
        inputs = _load(folder, SETTINGS.INPUTS_FILE)
        meta = _load(folder, SETTINGS.TASK_METADATA_FILE)
        job = project.open_job({"label": meta["label"], **inputs["task_inputs"]})
        os.makedirs(job.path)
        with open(os.path.join(job.path, "signac_statepoint.json"), "w") as stream:
            json.dump(job.statepoint(), stream)
        document = {
            "metadata": meta,
            "state": _load(folder, SETTINGS.ENDED_FILE),
            "outputs": _load(folder, SETTINGS.OUTPUTS_FILE),
        }
        with open(os.path.join(job.path, "signac_job_document.json"), "w") as stream:
            json.dump(document, stream)
    return path


def _load(folder: str, name: str) -> Any:
    with open(os.path.join(folder, name), "rb") as stream:
        return json.loads(stream.read())


def iterate_signac(path: str) -> int:
    """Open the project and read every job's state point and document."""
    import signac

    project = signac.get_project(path)
    count = 0
    for job in project:
        statepoint, document = job.statepoint(), job.document()
        count += bool(statepoint) and bool(document)
    return count


# -- peak memory in a fresh process --------------------------------------------------


def memory_child(root: str, out: str, fmt: str) -> None:
    """Print the peak memory of one harvest (run as a child process)."""
    archive(root, out, fmt=fmt, strict=False, incremental=False)
    rss = _peak_rss()
    tracemalloc.start()
    archive(root, out, fmt=fmt, strict=False, incremental=False)
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"traced": peak, "rss": rss}))


def _peak_rss() -> int:
    """This process's peak resident set (bytes): VmHWM, which exec resets.

    (``ru_maxrss`` is not used: Linux carries it over ``execve``, so a child
    would report its parent's peak.)
    """
    with open("/proc/self/status", encoding="ascii") as stream:
        for line in stream:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_memory(root: str, out: str, fmt: str) -> dict[str, int]:
    """Peak memory of a harvest to ``fmt`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", root, out, fmt],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the run ----------------------------------------------------------------------------


@dataclass
class Result:
    """Best times (s) per contender at one size, and peak memory per format."""

    n: int
    times: dict[str, float] = field(default_factory=dict)
    memory: dict[str, dict[str, int]] = field(default_factory=dict)
    reference_import: float | None = None

    def keep(self, name: str, seconds: float) -> None:
        """Keep the best time of ``name``."""
        self.times[name] = min(seconds, self.times.get(name, seconds))


def timed(run: Callable[[], int], expected: int, name: str) -> float:
    """Time ``run``; it must report ``expected`` tasks."""
    measured = common.measure(run)
    if measured.value != expected:
        msg = f"{name}: {measured.value} tasks, not {expected}"
        raise AssertionError(msg)
    cpu = measured.cpu
    common.log(f"  {name}: {measured.seconds:.3f} s {common.cpu_note(cpu.user, cpu.system)}")
    return measured.seconds


def run_size(n: int, base: str, args: argparse.Namespace, python: str | None) -> Result:
    """Build the tree of ``n`` tasks and run every contender on it."""
    result = Result(n)
    with common.bench_root(base, f"bench-harvest-{n}-", args.keep) as dest:
        common.log(f"N={n:,}: building the tree")
        root, dirs = build_tree(n, dest)
        signac_path = None if "signac" in args.skip else build_signac(dest, root, dirs)
        time.sleep(2.1)  # files written in the last 2 s are never cached
        out = os.path.join(dest, "archive")
        rng = random.Random(n)  # noqa: S311
        for rep in range(args.repeats):
            _one_repeat(result, rep, root, dirs, out, rng, args, signac_path)
        if python is not None and n <= args.reference_max and "reference" not in args.skip:
            for _ in range(args.repeats):
                ref = run_reference(python, root)
                if ref["count"] != n:
                    msg = f"python-autojob harvested {ref['count']} tasks, not {n}"
                    raise AssertionError(msg)
                common.log(
                    f"  python-autojob: {ref['harvest']:.3f} s (import {ref['import']:.2f} s)"
                )
                result.keep("python-autojob", ref["harvest"])
                result.reference_import = ref["import"]
        if "memory" not in args.skip:
            for fmt in ("jsonl", "csv", "json"):
                result.memory[fmt] = measure_memory(root, f"{out}.mem.{fmt}", fmt)
                common.log(f"  memory {fmt}: {result.memory[fmt]}")
    return result


def _one_repeat(
    result: Result,
    rep: int,
    root: str,
    dirs: list[str],
    out: str,
    rng: random.Random,
    args: argparse.Namespace,
    signac_path: str | None,
) -> None:
    n = result.n
    contenders: list[tuple[str, Callable[[], int]]] = [
        ("lower", lambda: lower(root, f"{out}.lower")),
        ("json", lambda: _fresh(root, f"{out}.json", "json")),
    ]
    if "jsonl" not in args.skip:
        contenders.append(("jsonl", lambda: _fresh(root, f"{out}.jsonl", "jsonl")))
    contenders.append(("harvest", lambda: models(root)))
    if signac_path is not None:
        contenders.append(("signac", lambda: iterate_signac(signac_path)))
    for name, run in common.rotated(contenders, rep):
        result.keep(name, timed(run, n, name))
    assert count_lines(f"{out}.json", "json") == n
    # the json run left its cache: change 1%, then harvest again
    version = rep + 1
    changed = change_some(dirs, rng, version)
    seconds = timed(lambda: ours(root, f"{out}.json", "json"), n, "incremental")
    check_changed(f"{out}.json", root, changed, version)
    result.keep("incremental", seconds)
    verified = timed(
        lambda: archive(root, f"{out}.json", fmt="json", strict=False, verify=True).tasks,
        n,
        "verified",
    )
    check_changed(f"{out}.json", root, changed, version)
    result.keep("verified", verified)


def _fresh(root: str, out: str, fmt: str) -> int:
    """A first harvest: no cache beside the archive."""
    cache = Path(out).with_name(f".{Path(out).name}.{SETTINGS.HARVEST_CACHE_FILE}")
    cache.unlink(missing_ok=True)
    return ours(root, out, fmt)


def report(results: list[Result], args: argparse.Namespace) -> bool:
    """Print the tables and the targets; return whether all are met."""
    names = [
        "lower",
        "json",
        "jsonl",
        "harvest",
        "incremental",
        "verified",
        "python-autojob",
        "signac",
    ]
    common.print_header(f"{'N':>8} " + " ".join(f"{n:>14}" for n in names))
    for r in results:
        print(f"{r.n:>8,} " + " ".join(f"{common.fmt(r.times.get(n)):>14}" for n in names))
    print()
    met = True
    for r in results:
        t = r.times
        lines = [
            ("json / lower", t.get("json"), t.get("lower"), TARGET_LOWER, False),
            ("jsonl / lower", t.get("jsonl"), t.get("lower"), TARGET_LOWER, False),
            ("incremental / json", t.get("incremental"), t.get("json"), None, False),
            ("verified / json", t.get("verified"), t.get("json"), None, False),
            ("python-autojob / json", t.get("python-autojob"), t.get("json"), None, True),
            ("python-autojob / harvest", t.get("python-autojob"), t.get("harvest"), None, True),
            ("signac / json", t.get("signac"), t.get("json"), None, False),
        ]
        for label, a, b, target, _ in lines:
            if a is None or b is None:
                continue
            verdict = ""
            if target is not None:
                ok = a / b <= target
                met &= ok
                verdict = f"  (target <= {target}x: {common.verdict(ok)})"
            print(f"N={r.n:,}: {label} = {common.ratio(a, b)}{verdict}")
    met &= _targets_at_size(results, args)
    met &= _memory(results)
    return met


def _targets_at_size(results: list[Result], args: argparse.Namespace) -> bool:
    met = True
    by_n = {r.n: r for r in results}
    target = by_n.get(common.size_for_target(args.target_size, list(by_n)))
    if target and "incremental" in target.times:
        ratio = target.times["incremental"] / target.times["json"]
        ok = ratio <= TARGET_INCREMENTAL
        met &= ok
        print(
            f"incremental re-harvest at N={target.n:,} ({CHANGE_FRACTION:.0%} changed): "
            f"{ratio:.3f}x a full harvest (target <= {TARGET_INCREMENTAL}x: "
            f"{common.verdict(ok)}); checking every file too (--verify): "
            f"{target.times['verified'] / target.times['json']:.3f}x"
        )
    ref = next((r for r in results if "python-autojob" in r.times), None)
    if ref is not None:
        speedup = ref.times["python-autojob"] / ref.times["harvest"]
        ok = speedup >= TARGET_REFERENCE
        met &= ok
        print(
            f"python-autojob harvest() / ours at N={ref.n:,}: {speedup:.1f}x (target >= "
            f"{TARGET_REFERENCE}x: {common.verdict(ok)}); against our archive.json with its "
            f"cache: {ref.times['python-autojob'] / ref.times['json']:.1f}x; its import "
            f"alone took {ref.reference_import:.2f} s, not counted"
        )
    return met


def _memory(results: list[Result]) -> bool:
    with_memory = [r for r in results if r.memory]
    if len(with_memory) < 2:
        return True
    small, large = with_memory[0], with_memory[-1]
    met = True
    print()
    print(f"peak memory, N={small.n:,} -> N={large.n:,} (resident set; tracemalloc):")
    for fmt in ("jsonl", "csv", "json"):
        a, b = small.memory[fmt], large.memory[fmt]
        ratio = b["rss"] / a["rss"]
        ok = ratio <= TARGET_MEMORY
        met &= ok
        print(
            f"  {fmt:5}: {a['rss'] / 2**20:.1f} MB -> {b['rss'] / 2**20:.1f} MB = "
            f"{ratio:.2f}x (target <= {TARGET_MEMORY}x: {common.verdict(ok)}); Python's "
            f"allocations {a['traced'] / 2**20:.1f} MB -> {b['traced'] / 2**20:.1f} MB "
            f"(the listing of the widest directory, {large.n:,} task groups)"
        )
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = common.new_parser(
        "Time harvesting N tasks: ours (json, jsonl, incremental), plain Python, "
        "python-autojob 0.0.2, signac; peak memory of streaming harvests."
    )
    common.add_sizes(parser, [10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs, best kept (2)")
    common.add_dir(parser)
    common.add_skip(parser, SKIPPABLE, "parts")
    parser.add_argument("--reference-python", help="an interpreter with python-autojob 0.0.2")
    parser.add_argument(
        "--venv-dir",
        default=os.path.join(os.path.expanduser("~"), ".cache", "autojob-bench", "python-autojob"),
        help="where the python-autojob virtualenv is made when none is given",
    )
    parser.add_argument(
        "--reference-max", type=int, default=10_000, help="largest N python-autojob runs on"
    )
    parser.add_argument("--target-size", type=int, default=100_000, help="N of the targets")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the trees for inspection")
    args = parser.parse_args(argv)
    common.check_skip(parser, args.skip, SKIPPABLE)
    common.check_sizes(parser, args.sizes)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--memory-child"]:
        memory_child(*argv[1:4])
        return 0
    args = parse_args(argv)
    base = common.base_dir(args.dir)
    python = None
    if "reference" not in args.skip:
        python = reference_python(args.reference_python, args.venv_dir)
    results = [run_size(n, base, args, python) for n in sorted(args.sizes)]
    print(f"harvest benchmark, Python {common.python_version()}, {os.cpu_count()} cores")
    met = report(results, args)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
