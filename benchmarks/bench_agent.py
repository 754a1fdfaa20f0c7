"""The agent's throughput on M dataset items, against one tool process per item in turn.

Contenders, on the same dtool dataset of M small items and the same trivial smart
tool (it imports dtoolcore, opens the dataset, reads its item and writes a line):

- loop: ``python TOOL ...`` started once per item, one after the other (what
  jobarchitect 0.7.0's agent does);
- jobs2: ``_jobarchitect_agent --jobs 2 ID...``;
- preload: ``_jobarchitect_agent --preload ID...``;
- preload2: ``_jobarchitect_agent --preload --jobs 2 ID...``;
- inproc: the tool's work done in this process for every item (a floor: no
  process per item at all), for reference.

Targets: jobs2 >= 1.8x the loop's items per second, preload >= 5x.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import common

TOOL = """\
import argparse
import pathlib

import dtoolcore

parser = argparse.ArgumentParser()
parser.add_argument("--dataset-path")
parser.add_argument("--identifier")
parser.add_argument("--output-path")
args = parser.parse_args()
dataset = dtoolcore.DataSet.from_uri(args.dataset_path)
data = pathlib.Path(dataset.item_content_abspath(args.identifier)).read_bytes()
pathlib.Path(args.output_path).write_text(f"{len(data)}\\n")
"""

AGENT = Path(sys.executable).parent / "_jobarchitect_agent"
CONTENDERS = ["loop", "jobs2", "preload", "preload2", "inproc"]
TARGETS = {"jobs2": 1.8, "preload": 5.0}


def make_dataset(root: Path, items: int) -> tuple[str, list[tuple[str, str]]]:
    """A dataset of ``items`` small items in subdirectories; its path and (id, relpath)s."""
    import dtoolcore

    with dtoolcore.DataSetCreator("bench", str(root)) as creator:
        for index in range(items):
            relpath = f"d{index % 10}/item{index:05d}.txt"
            Path(creator.prepare_staging_abspath_promise(relpath)).write_text(f"item {index}\n")
    dataset = dtoolcore.DataSet.from_uri(str(root / "bench"))
    pairs = sorted((i, dataset.item_properties(i)["relpath"]) for i in dataset.identifiers)
    return str(root / "bench"), pairs


def run_loop(tool: str, dataset: str, pairs: list[tuple[str, str]], out: Path) -> None:
    for identifier, relpath in pairs:
        target = out / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, tool, "--dataset-path", dataset, "--identifier", identifier]
        subprocess.run([*argv, "--output-path", str(target)], check=True)


def run_agent(options: list[str]) -> Callable[[str, str, list[tuple[str, str]], Path], None]:
    def run(tool: str, dataset: str, pairs: list[tuple[str, str]], out: Path) -> None:
        subprocess.run(
            [str(AGENT), f"--tool_path={tool}", f"--input_dataset_path={dataset}",
             f"--output_root={out}", *options, *(i for i, _ in pairs)],
            check=True, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    return run


def run_inproc(tool: str, dataset: str, pairs: list[tuple[str, str]], out: Path) -> None:
    import dtoolcore

    opened = dtoolcore.DataSet.from_uri(dataset)
    for identifier, relpath in pairs:
        target = out / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        data = Path(opened.item_content_abspath(identifier)).read_bytes()
        target.write_text(f"{len(data)}\n")


RUNNERS = {
    "loop": run_loop,
    "jobs2": run_agent(["--jobs", "2"]),
    "preload": run_agent(["--preload"]),
    "preload2": run_agent(["--preload", "--jobs", "2"]),
    "inproc": run_inproc,
}


def check_outputs(out: Path, pairs: list[tuple[str, str]]) -> None:
    """Every item's output must exist (untimed)."""
    missing = [relpath for _, relpath in pairs if not (out / relpath).is_file()]
    if missing:
        sys.exit(f"{out}: {len(missing)} outputs missing, e.g. {missing[0]}")


def main() -> None:
    parser = common.new_parser(__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500, help="items M (default 500)")
    parser.add_argument("--repeats", type=int, default=1, help="runs each, best kept")
    common.add_dir(parser)
    common.add_skip(parser, CONTENDERS[1:], "contenders")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    common.check_skip(parser, args.skip, CONTENDERS[1:])
    chosen = [name for name in CONTENDERS if name not in args.skip]
    best: dict[str, float] = {}
    with common.bench_root(common.base_dir(args.dir), "bench-agent-", keep=False) as root:
        base = Path(root)
        tool = base / "tool.py"
        tool.write_text(TOOL)
        dataset, pairs = make_dataset(base, args.items)
        common.log(f"dataset of {len(pairs)} items; {os.cpu_count()} cores")
        for rep in range(args.repeats):
            for name in common.rotated(chosen, rep):
                out = base / f"out-{name}-{rep}"
                work = functools.partial(RUNNERS[name], str(tool), dataset, pairs, out)
                measured = common.measure(work)
                check_outputs(out, pairs)
                best[name] = min(best.get(name, measured.seconds), measured.seconds)
                common.log(f"{name}: {measured.seconds:.2f} s")
    report(best, len(pairs), args.check)


def report(best: dict[str, float], items: int, check: bool) -> None:
    print(f"agent throughput, M = {items} items, Python {common.python_version()}")
    common.print_header(
        f"{'contender':<10} {'seconds':>9} {'items/s':>9} {'ms/item':>8} {'vs loop':>8}"
    )
    loop = best["loop"]
    for name, seconds in best.items():
        rate = items / seconds
        print(
            f"{name:<10} {seconds:>9.2f} {rate:>9.1f} {1000 * seconds / items:>8.2f} "
            f"{common.ratio(loop, seconds):>8}"
        )
    met = True
    for name, target in TARGETS.items():
        if name in best:
            ok = loop / best[name] >= target
            met = met and ok
            print(f"target {name} >= {target}x loop: {loop / best[name]:.2f}x {common.verdict(ok)}")
    if check and not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
