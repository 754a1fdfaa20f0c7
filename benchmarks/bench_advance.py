"""Benchmark: advancing a workflow from N finished tasks, against plain Python and signac.

A study of N sweep tasks (one per task group) is written first, untimed, with a
workflow of two steps: the sweep, then ``double``, an independent step whose
task takes ``value`` from the sweep task's ``outputs.json``. Every sweep task
gets an ``outputs.json`` and an ``autojob.ended`` (exit 0), as if it had run.
Then, timed, each contender moves on from every one of the N tasks:

``ours``
    ``autojob.next.advance.advance(task_dir)`` per task: the workflow lock,
    the record searched and the task appended to ``record.txt``, the workflow
    files read and checked, the value read from ``outputs.json``, a new task
    group with its task (``task_group.json``, ``task.json``, ``inputs.json``,
    ``run.sh``) staged and renamed into place, and its id listed under the
    study's lock: in ``study.json`` at once while it is small (16 KiB), else
    appended to ``task_groups.pending`` and merged into ``study.json`` once
    the pending ids reach an eighth of its size.

``lower`` (the lower bound)
    Plain Python doing the same file work per task: read ``task.json`` and
    ``outputs.json``, read ``record.txt`` and look for the id, append it
    (``O_APPEND``, ``flock``), make the task group and task directories and
    write the same four files (``run.sh`` from one untimed rendering, filled
    in with ``%``), and list the group as ours does (``study.json`` rewritten
    through a temporary file and a rename while small, else the id appended
    to the pending file and merged at the same share). No models, no lock
    files, no staging, no validation of the workflow.

``signac``
    A signac project of N jobs whose documents hold the value; per job, the
    value is read from its document and a job for the next step is opened and
    initialised with a state point naming the step, the parent and the value,
    its document recording the parent. signac has no workflow files, record,
    task groups or task scripts, so it does less work than the others.

After the timed run the trees are checked (N new task groups with the right
values, each listed in ``study.json`` or pending, N lines in ``record.txt``; N
new signac jobs). Each contender's tree is written just before its run and
deleted after its check, so one tree of N (or signac's project) is on disk at a
time. The machine may be shared: run it more than once and compare ratios
and µs per task, not seconds.

``--record-ids R1,R2,...`` times instead the one part of an advance that grows
with the study: the record. For each R, a study of ``--advances`` finished
tasks (200) gets a ``record.txt`` already holding R other ids (as in a study of
R tasks that advanced), and the same advances are timed three ways:

``indexed``
    ours as it is: a record of 1 MiB or more is asked through its index
    (built once, untimed, as it is when the record first passes 1 MiB; its
    build is timed apart and printed).
``searched``
    ours with the index turned off: every question searches the whole record
    (what advance did before the index).
``lower``
    the plain-Python advance above, which reads the whole record per task.

Flat means the µs per advance of ``indexed`` do not grow with R.

``--tail --sizes N1,N2,... --advances K`` writes, per N, a study of N sweep
tasks (untimed; a million take about 15 minutes and 6 million inodes), its
record holding N - K ids (as if the tasks before had advanced), and times the
advances of its last K tasks, finished: the cost of an advance in a study of
N, with the index of its record as it stands by then.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from common import (
    add_dir,
    add_sizes,
    add_skip,
    base_dir,
    bench_root,
    check_sizes,
    fmt,
    log,
    log_not_installed,
    measure,
    new_parser,
    print_header,
    python_version,
    ratio,
)

from autojob import SETTINGS
from autojob.create.sweep import write_sweep
from autojob.next.advance import advance
from autojob.store import record_index
from autojob.store.completed_tasks import in_record, read_record
from autojob.store.study_list import DIRECT_BYTES, SHARE, pending_task_groups
from autojob.sweep import SweepSpec, SweepStep

TARGET_RATIO = 3.0
SENTINEL = "jSENTINEL0"  # the task id in the one rendering of run.sh, replaced per task


def make_study(n: int, dest: Path, finished: int | None = None) -> Path:
    """Write the study of N sweep tasks, the last ``finished`` (all) finished (untimed)."""
    spec = SweepSpec(
        name="bench",
        command="python3 compute.py",
        parameters={"x": list(range(n))},
        steps=[
            SweepStep.model_validate(
                {
                    "name": "double",
                    "after": ["sweep"],
                    "set": {"command": "python3 double.py"},
                    "references": [{"set_path": "value", "get_path": "outputs.value"}],
                }
            )
        ],
    )
    study = write_sweep(spec, dest)[1]
    for i, task in enumerate(sweep_tasks(study, finished)):
        (task / SETTINGS.OUTPUTS_FILE).write_text(json.dumps({"value": i}))
        (task / SETTINGS.ENDED_FILE).write_text('{"time": 0, "exit_code": 0}\n')
    return study


def sweep_tasks(study: Path, last: int | None = None) -> list[Path]:
    """The sweep's tasks in the order of their groups' names (only the ``last`` ones).

    The groups are found by one listing of the study and only the groups
    wanted are listed: a million of them, each listed, took minutes.
    """
    names = sorted(n for n in os.listdir(study) if n.startswith("x-"))
    if last is not None:
        names = names[len(names) - last :]
    return [
        study / name / task
        for name in names
        for task in sorted(os.listdir(study / name))
        if (study / name / task).is_dir()
    ]


def run_ours(study: Path) -> None:
    for task in sweep_tasks(study):
        advance(task)


def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, data)
    os.close(fd)


def _list_group(study_file: str, pending: str, group_id: str) -> None:
    """List the new group as ours does: at once while small, else pending and merged."""
    size = os.stat(study_file).st_size
    if size > DIRECT_BYTES:
        fd = os.open(pending, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (group_id + "\n").encode())
        os.close(fd)
        if os.stat(pending).st_size < SHARE * size:
            return
        with open(pending, "rb") as stream:
            new = stream.read().decode().split()
    else:
        new = [group_id]
    with open(study_file, "rb") as stream:
        data = json.loads(stream.read())
    data["task_groups"].extend(new)
    tmp = study_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(data, indent=4))
    os.replace(tmp, study_file)
    if size > DIRECT_BYTES:
        os.unlink(pending)


def _record(record: str, task_id: str) -> None:
    """Append the id to the record unless a line holds it already."""
    with open(record, "rb") as stream:
        if (b"\n" + stream.read()).find(b"\n" + task_id.encode() + b"\n") >= 0:
            return
    fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, (task_id + "\n").encode())
    os.close(fd)


def run_lower(study: Path, script: str) -> None:
    root = str(study)
    record = os.path.join(root, SETTINGS.RECORD_FILE)
    study_file = os.path.join(root, SETTINGS.STUDY_METADATA_FILE)
    pending = os.path.join(root, SETTINGS.PENDING_TASK_GROUPS_FILE)
    with open(record, "ab"):
        pass  # the record exists from the start, as in ours after the first advance
    for i, task in enumerate(sweep_tasks(study)):
        with open(task / SETTINGS.TASK_METADATA_FILE, "rb") as stream:
            meta = json.loads(stream.read())
        with open(task / SETTINGS.OUTPUTS_FILE, "rb") as stream:
            value = json.loads(stream.read())["value"]
        _record(record, meta["task_id"])
        group_id, task_id = f"c{i:09d}", f"j{i:09d}"
        group = os.path.join(root, "double." + task.parent.name)
        os.mkdir(group)
        _write(
            os.path.join(group, SETTINGS.TASK_GROUP_METADATA_FILE),
            json.dumps(
                {"label": "double", "task_group_id": group_id, "tasks": [task_id]}, indent=4
            ).encode(),
        )
        folder = os.path.join(group, task_id)
        os.mkdir(folder)
        inputs = {
            "task_inputs": {"command": "python3 double.py", "value": value},
            "scheduler_inputs": {},
        }
        _write(os.path.join(folder, SETTINGS.INPUTS_FILE), json.dumps(inputs, indent=4).encode())
        _write(os.path.join(folder, "run.sh"), script.replace(SENTINEL, task_id).encode(), 0o755)
        new_meta = {**meta, "task_id": task_id, "task_group_id": group_id, "label": "double"}
        _write(
            os.path.join(folder, SETTINGS.TASK_METADATA_FILE),
            json.dumps(new_meta, indent=4).encode(),
        )
        _list_group(study_file, pending, group_id)


def signac_project(n: int, dest: Path) -> object:
    import signac

    project = signac.init_project(str(dest))
    for i in range(n):
        job = project.open_job({"step": "sweep", "x": i}).init()
        job.document["value"] = i
    return project


def run_signac(project: object) -> None:
    jobs = list(project.find_jobs({"step": "sweep"}))  # type: ignore[attr-defined]
    for job in jobs:
        value = job.document["value"]
        child = project.open_job(  # type: ignore[attr-defined]
            {"step": "double", "parent": job.id, "value": value}
        ).init()
        child.document["parent"] = job.id


def script_format() -> str:
    """run.sh of a new task holding SENTINEL as its id (one untimed rendering)."""
    from autojob.store.render import render_task_script
    from autojob.tasks.task import Task, TaskInputs, TaskMetadata

    task = Task(
        task_metadata=TaskMetadata(task_id=SENTINEL),
        task_inputs=TaskInputs(command="python3 double.py"),
    )
    return render_task_script(task)


def check_ours(study: Path, n: int) -> None:
    groups = [p for p in study.iterdir() if p.name.startswith("double.")]
    assert len(groups) == n, len(groups)
    data = json.loads((study / SETTINGS.STUDY_METADATA_FILE).read_text())
    assert len(set(data["task_groups"]) | set(pending_task_groups(study))) == 2 * n
    assert len(read_record(study)) == n
    some = next(groups[0].glob("j*"))
    assert "value" in json.loads((some / SETTINGS.INPUTS_FILE).read_text())["task_inputs"]


Row = tuple[int, float, float, float | None]
COLUMNS = (("N", 7), ("ours s", 8), ("lower s", 8), ("signac s", 9))
PER_TASK = (("ours µs/task", 13), ("lower µs/task", 14))
RATIOS = (("ours/lower", 11), ("ours/signac", 12))


def timed(name: str, n: int, root: str, run: Callable[[Path], None]) -> float:
    """Write a study of N finished tasks, time ``run`` on it, check it, delete it."""
    folder = Path(root, f"{name}-{n}")
    folder.mkdir()
    study = make_study(n, folder)
    seconds = measure(lambda: run(study)).seconds
    check_ours(study, n)
    shutil.rmtree(folder)  # the next contender needs the inodes
    return seconds


def one_size(n: int, root: str, script: str, skip: set[str]) -> Row:
    """Time the contenders on N tasks, one tree at a time; check what they wrote."""
    ours = timed("ours", n, root, run_ours)
    lower = timed("lower", n, root, lambda study: run_lower(study, script))
    if "signac" in skip:
        return n, ours, lower, None
    try:
        project = signac_project(n, Path(root, f"signac-{n}"))
    except ImportError:
        log_not_installed("signac")
        return n, ours, lower, None
    peer = measure(lambda: run_signac(project)).seconds
    assert len(project) == 2 * n  # type: ignore[arg-type]
    return n, ours, lower, peer


def per_task(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:,.0f}"


def print_table(rows: list[Row]) -> None:
    """The timings and ratios, one row per N."""
    layout = (*COLUMNS, *PER_TASK, *RATIOS)
    print_header(" ".join(f"{name:>{width}}" for name, width in layout))
    for n, ours, lower, peer in rows:
        cells = [f"{n:,}", fmt(ours), fmt(lower), fmt(peer), per_task(ours, n)]
        cells += [per_task(lower, n), ratio(ours, lower), ratio(ours, peer)]
        widths = [width for _, width in layout]
        print(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))


def fill_record(study: Path, ids: int) -> None:
    """Give the study's record ``ids`` other task ids (36 characters, as uuid4's)."""
    with open(study / SETTINGS.RECORD_FILE, "wb") as record:
        step = 100_000
        for start in range(0, ids, step):
            stop = min(ids, start + step)
            record.write(b"".join(b"%036x\n" % (i * 2654435761) for i in range(start, stop)))


def with_record(n: int, ids: int, root: str, how: str, script: str) -> tuple[float, float]:
    """Advance from n tasks with ``ids`` ids in the record already; (seconds, index build)."""
    folder = Path(root, f"{how}-{ids}")
    folder.mkdir()
    study = make_study(n, folder)
    fill_record(study, ids)
    build = 0.0
    if how == "indexed":  # the index as it stands in a study that grew to this size
        build = measure(lambda: in_record(study, "none")).seconds
    saved = record_index.INDEX_FROM
    if how == "searched":
        record_index.INDEX_FROM = 1 << 62
    try:
        if how == "lower":
            seconds = measure(lambda: run_lower(study, script)).seconds
        else:
            seconds = measure(lambda: run_ours(study)).seconds
    finally:
        record_index.INDEX_FROM = saved
    assert len(read_record(study)) == ids + n
    shutil.rmtree(folder)
    return seconds, build


def record_sizes(n: int, sizes: list[int], root: str) -> None:
    """Time n advances against records of each size; print µs per advance and ratios."""
    script = script_format()
    rows = []
    for ids in sizes:
        row = {how: with_record(n, ids, root, how, script) for how in RECORD_WAYS}
        rows.append((ids, row))
        log(f"record of {ids:,} ids: " + ", ".join(f"{h} {t:.2f} s" for h, (t, _) in row.items()))
    print_header(
        f"{'record ids':>11} {'MB':>6}"
        + "".join(f" {h + ' µs/adv':>17}" for h in RECORD_WAYS)
        + f" {'index build s':>14} {'indexed/first':>14} {'searched/indexed':>17}"
    )
    first = rows[0][1]["indexed"][0]
    for ids, row in rows:
        cells = [f"{ids:>11,}", f"{ids * 37 / 1e6:>6.1f}"]
        cells += [f"{row[h][0] / n * 1e6:>17,.0f}" for h in RECORD_WAYS]
        cells += [f"{row['indexed'][1]:>14.2f}", f"{row['indexed'][0] / first:>14.2f}x"]
        cells.append(f"{ratio(row['searched'][0], row['indexed'][0]):>17}")
        print(" ".join(cells))
    print(f"{n} advances per record size; the index is built once before (its time apart)")


RECORD_WAYS = ("indexed", "searched", "lower")


def tail_advances(sizes: list[int], k: int, root: str) -> None:
    """Per N: advance the last k tasks of a study of N, the N - k before them recorded."""
    rows = []
    for n in sizes:
        folder = Path(root, f"tail-{n}")
        folder.mkdir()
        log(f"N={n:,}: writing the study (untimed)")
        study = make_study(n, folder, finished=k)
        tasks = sweep_tasks(study, k)
        fill_record(study, n - k)  # as if the tasks before had advanced
        in_record(study, "none")  # the record's index as it stands by then (if it is large)
        seconds = measure(lambda: [advance(task) for task in tasks]).seconds  # noqa: B023
        made = [p for p in study.iterdir() if p.name.startswith("double.")]
        assert len(made) == k and len(read_record(study)) == n, (len(made), n)
        rows.append((n, seconds))
        log(f"N={n:,}: {k:,} advances in {seconds:.2f} s; removing the study")
        shutil.rmtree(folder)
    print_header(f"{'N':>10} {'advances':>9} {'s':>8} {'µs/advance':>11} {'/ at first N':>13}")
    first = rows[0][1]
    for n, seconds in rows:
        print(
            f"{n:>10,} {k:>9,} {seconds:8.2f} {seconds / k * 1e6:>11,.0f} {seconds / first:>12.2f}x"
        )
    print("the last advances of a study of N; flat: about 1x")


def main() -> None:
    """Run the benchmark for each N and print the table."""
    parser = new_parser(__doc__.splitlines()[0])
    add_sizes(parser, [1000, 10000])
    add_dir(parser)
    add_skip(parser, ["signac"], "contenders")
    parser.add_argument(
        "--record-ids",
        type=lambda text: [int(x) for x in text.split(",")],
        help="time advances against records of these many ids instead (e.g. 1000,1000000)",
    )
    parser.add_argument(
        "--advances", type=int, default=200, help="with --record-ids or --tail: how many"
    )
    parser.add_argument(
        "--tail",
        action="store_true",
        help="advance only the last --advances tasks of a study of each size (--sizes)",
    )
    args = parser.parse_args()
    check_sizes(parser, args.sizes)
    base = base_dir(args.dir)
    if args.record_ids:
        log(f"python {python_version()}; advances against a record of R ids")
        with bench_root(base, "autojob-bench-record-", keep=False) as root:
            record_sizes(args.advances, args.record_ids, root)
        return
    if args.tail:
        log(f"python {python_version()}; the last {args.advances} advances of a study of N")
        with bench_root(base, "autojob-bench-tail-", keep=False) as root:
            tail_advances(args.sizes, args.advances, root)
        return
    log(f"python {python_version()}; advancing a workflow from N finished tasks")
    log(f"load average {os.getloadavg()[0]:.2f} at the start")
    script = script_format()
    rows = []
    with bench_root(base, "autojob-bench-advance-", keep=False) as root:
        for n in args.sizes:
            rows.append(one_size(n, root, script, args.skip))
            log(f"N={n:,}: ours {rows[-1][1]:.2f} s, lower {rows[-1][2]:.2f} s")
            for name in os.listdir(root):  # the next size needs the inodes
                shutil.rmtree(os.path.join(root, name))
    print_table(rows)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    n, ours, lower, _ = rows[-1]
    met = ours <= TARGET_RATIO * lower
    print(f"target ours <= {TARGET_RATIO}x lower at N={n:,}: {'MET' if met else 'MISSED'}")
    first_n, first, *_ = rows[0]
    if n != first_n:
        growth = (ours / n) / (first / first_n)
        print(f"ours per task at N={n:,} / at N={first_n:,}: {growth:.2f}x (flat: about 1)")


if __name__ == "__main__":
    main()
