"""Benchmark: how long the ``autojob`` command takes to start, against signac's.

Each contender is a command run as a subprocess, many times (hyperfine-style:
warm-up runs first, then ``--runs`` timed runs, the contenders taking turns so
that a burst of load on the machine hits them alike), output to ``/dev/null``:

``python``
    ``python -c pass`` with the same interpreter: what any Python command pays
    before it imports anything.

``autojob --version``, ``autojob status --help``
    The console script, as users run it: Python, the entry point, and the
    imports the command needs. The two targets.

``autojob --help``
    The whole command group listed: every command's module imported. Shown
    for reference, no target.

``signac --help``
    signac's console script (the ``bench`` extra). The peer.

Each command is first run once untimed with its output checked (version,
usage text), so none can win by failing early. The report gives the best,
median and mean wall time of each, and ours/signac on the median with MET or
MISSED against the target (2x).

Run ``.venv/bin/python benchmarks/bench_startup.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import common

import autojob

TARGET = 2.0  # ours / signac, median wall time
SKIPPABLE = ("python", "help", "signac")


@dataclass
class Contender:
    """A command, what its output must hold, and its timed runs (seconds)."""

    name: str
    argv: list[str]
    expect: str
    target: bool = False
    times: list[float] = field(default_factory=list)

    def check(self) -> None:
        """Run once, untimed: exit status 0 and the expected text in its output."""
        done = subprocess.run(self.argv, capture_output=True, text=True, check=False)
        if done.returncode != 0 or self.expect not in done.stdout:
            msg = (
                f"{self.name}: exit {done.returncode}, expected {self.expect!r} in its output:\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
            raise RuntimeError(msg)

    def run(self) -> float:
        """One timed run: the wall time from start to exit."""
        start = time.perf_counter()
        subprocess.run(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)


def script(name: str) -> str | None:
    """The console script ``name`` beside this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


def contenders(skip: set[str]) -> list[Contender]:
    """The commands to time, those not installed left out (and said so)."""
    found = []
    if "python" not in skip:
        found.append(Contender("python -c pass", [sys.executable, "-c", "pass"], ""))
    ours = script("autojob")
    if ours is None:
        sys.exit("the autojob console script is not installed (scripts/bootstrap.sh)")
    found.append(
        Contender(
            "autojob --version",
            [ours, "--version"],
            f"autojob, version {autojob.__version__}",
            target=True,
        )
    )
    found.append(
        Contender(
            "autojob status --help", [ours, "status", "--help"], "Usage: autojob status", True
        )
    )
    if "help" not in skip:
        found.append(Contender("autojob --help", [ours, "--help"], "Usage: autojob"))
    if "signac" not in skip:
        signac = script("signac")
        if signac is None:
            common.log_not_installed("signac")
        else:
            found.append(Contender("signac --help", [signac, "--help"], "usage: signac"))
    return found


def measure(found: list[Contender], runs: int, warm_up: int) -> None:
    """Warm up, then take turns: run ``i`` of every contender before run ``i + 1``."""
    for contender in found:
        contender.check()
        for _ in range(warm_up):
            contender.run()
    common.settle()
    for i in range(runs):
        for contender in common.rotated(found, i):
            contender.times.append(contender.run())
        if (i + 1) % max(1, runs // 5) == 0:
            common.log(f"  {i + 1}/{runs} runs each")


def report(found: list[Contender], target: float) -> bool:
    """Print the table and the targets; return whether every target is met."""
    signac = next((c for c in found if c.name == "signac --help"), None)
    common.print_header(
        f"{'command':<24} {'best ms':>8} {'median ms':>10} {'mean ms':>8} {'/ signac':>9}"
    )
    for c in found:
        against = common.ratio(c.median, signac.median if signac else None)
        print(
            f"{c.name:<24} {c.best * 1e3:>8.1f} {c.median * 1e3:>10.1f} {c.mean * 1e3:>8.1f}"
            f" {against:>9}"
        )
    print()
    if signac is None:
        print("signac is not installed: no target checked")
        return True
    met = True
    for c in found:
        if not c.target:
            continue
        ratio = c.median / signac.median
        ok = ratio <= target
        met &= ok
        print(
            f"{c.name} / signac --help = {ratio:.2f}x on the median, {c.best / signac.best:.2f}x"
            f" on the best (target <= {target}x: {common.verdict(ok)})"
        )
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = common.new_parser(
        "Time starting the autojob command (--version, status --help) against "
        "python -c pass and signac --help."
    )
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each command (30)")
    parser.add_argument("--warm-up", type=int, default=3, help="untimed runs of each first (3)")
    common.add_skip(parser, SKIPPABLE, "contenders")
    parser.add_argument("--target", type=float, default=TARGET, help="target for ours/signac (2.0)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    common.check_skip(parser, args.skip, SKIPPABLE)
    if args.runs < 1:
        parser.error("--runs: at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    args = parse_args(argv)
    common.byte_compile_autojob()
    found = contenders(args.skip)
    common.log(f"{args.runs} runs each after {args.warm_up} warm-up runs")
    measure(found, args.runs, args.warm_up)
    print()
    print(f"start-up benchmark, Python {common.python_version()}, {os.cpu_count()} cores")
    met = report(found, args.target)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
