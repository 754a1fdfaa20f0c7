"""Benchmark: ``autojob report`` on N tasks, against a harvest of them and plain Python.

The tree is bench_status.py's (built untimed with the library: one study of N
task groups of one task each; 80% succeeded, 8% failed, 4% lost, the rest
idle), and every task that succeeded also holds an ``outputs.json`` with an
energy and the cutoff it was computed at, so a sweep plot has points. Timed,
best of ``--repeats`` (after ``gc.collect()`` and ``os.sync()``):

``lower``
    bench_status.py's lower bound: plain Python walking the tree and reading
    the record that decides each task's state. Nothing drawn, nothing written.

``harvest``
    ``autojob.harvest.archive(root, "archive.json")`` with no cache yet, as
    ``autojob harvest`` runs the first time. The reference: the report of a
    tree must take no longer than a harvest of it.

``status cold``
    ``autojob.store.status_index.collect(root, rescan=True)``: the walk that
    makes the status index, as ``autojob status --rescan`` does; nothing drawn.
    What every report without an index starts with (not a report: not
    compared with the target).

``report cold`` / ``report warm``
    ``autojob.report.write_report(root, "report.html")``: cold walks the tree
    (``rescan=True``: no index); warm after 1% of the tasks ended anew (noted
    in the journal, as their task scripts note it), so the index is re-read.

``plot cold`` / ``plot harvested`` / ``plot warm``
    The same with ``--plot outputs.energy:cutoff``: cold with neither the index
    nor the cache of plotted fields beside the report nor a harvest's cache
    (every task's metadata, inputs and outputs read); harvested, the same
    after an (untimed) incremental harvest that left its cache beside its
    archive, which the report is given; warm after 1% changed again, with the
    index, the plotted fields' cache and the harvest's cache.

After each run (untimed) the page is checked: it must name every failed task
(up to the first few hundred, which the check samples) and hold its plots.

Run ``.venv/bin/python benchmarks/bench_report.py --help`` for the options.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import bench_status
import common

from autojob.harvest import archive
from autojob.report import PlotSpec, write_report
from autojob.report.sweep import plot_cache_path
from autojob.store.status_index import collect

CONTENDERS = (
    "lower",
    "harvest",
    "status cold",
    "report cold",
    "report warm",
    "plot cold",
    "plot harvested",
    "plot warm",
)
PLOT = PlotSpec("outputs.energy", "cutoff")
TARGET = 1.0  # report (any) / harvest, at every size
#: the margin aimed at, so the target holds on a loaded machine too
MARGIN = 0.7
#: the reports that have a cache: the status index, a harvest's, the plotted fields
WARM = ("report warm", "plot harvested", "plot warm")
#: the reports, each compared with the target
REPORTS = tuple(name for name in CONTENDERS if name.startswith(("report", "plot")))


def add_outputs(tree: bench_status.Tree, seed: int) -> None:
    """An ``outputs.json`` in every task that succeeded: an energy at a cutoff."""
    rng = random.Random(seed)  # noqa: S311
    for rel, state in tree.truth.items():
        if state == "success":
            cutoff = rng.choice((300, 400, 500, 600))
            energy = -3.7 - 100.0 / cutoff + rng.gauss(0, 0.01)
            with open(f"{tree.root}/{rel}/outputs.json", "w", encoding="utf-8") as stream:
                json.dump({"energy": energy, "cutoff": cutoff}, stream)


def check_page(page: Path, tree: bench_status.Tree, plot: bool) -> None:
    text = page.read_text()
    failed = sorted(rel for rel, state in tree.truth.items() if state == "failed")
    missing = [rel for rel in failed[:300] if rel not in text]
    if missing or 'id="plot-timeline"' not in text or (plot and "outputs.energy" not in text):
        msg = f"{page} misses {len(missing)} failed task(s) or a plot"
        raise AssertionError(msg)


def run_size(n: int, base: str, repeats: int, seed: int) -> dict[str, float]:
    os.makedirs(f"{base}/tree-{n}")
    tree = bench_status.build_tree(n, f"{base}/tree-{n}", seed)
    add_outputs(tree, seed)
    out = Path(base, f"out-{n}")
    out.mkdir()
    best: dict[str, float] = {}
    for rep in range(repeats):
        common.log(f"N = {n:,}: repeat {rep + 1} of {repeats}")
        for name, seconds in one_repeat(tree, out, rep).items():
            best[name] = min(seconds, best.get(name, seconds))
    best["size KiB"] = os.path.getsize(out / "plot.html") / 1024
    return best


def one_repeat(tree: bench_status.Tree, out: Path, rep: int) -> dict[str, float]:
    root, page, plotted = Path(tree.root), out / "report.html", out / "plot.html"
    archived = out / f"archive-{rep}.json"
    times = {
        "lower": common.measure(lambda: bench_status.lower_bound(tree.root)).seconds,
        "harvest": common.measure(lambda: archive(root, archived, incremental=False)).seconds,
        "status cold": common.measure(lambda: collect(root, rescan=True)).seconds,
        "report cold": common.measure(lambda: write_report(root, page, rescan=True)).seconds,
    }
    check_page(page, tree, plot=False)
    bench_status.change_some(tree)
    times["report warm"] = common.measure(lambda: write_report(root, page)).seconds
    check_page(page, tree, plot=False)
    plot_cache_path(plotted).unlink(missing_ok=True)
    cold = common.measure(lambda: write_report(root, plotted, [PLOT], rescan=True))
    times["plot cold"] = cold.seconds
    check_page(plotted, tree, plot=True)
    cold_points = sweep_section(plotted)
    harvested = out / f"harvested-{rep}.json"
    archive(root, harvested)  # untimed: a harvest that keeps its cache, as autojob harvest does
    plot_cache_path(plotted).unlink()
    times["plot harvested"] = common.measure(
        lambda: write_report(root, plotted, [PLOT], rescan=True, archive=harvested)
    ).seconds
    check_page(plotted, tree, plot=True)
    if sweep_section(plotted) != cold_points:
        msg = "the sweep plot from the harvest's cache differs from the one read from the files"
        raise AssertionError(msg)
    bench_status.change_some(tree)
    times["plot warm"] = common.measure(
        lambda: write_report(root, plotted, [PLOT], archive=harvested)
    ).seconds
    check_page(plotted, tree, plot=True)
    return times


def sweep_section(page: Path) -> str:
    """The sweep plot of a page and its caption."""
    text = page.read_text()
    return text[text.index('id="sweeps"') :].split("</section>", 1)[0]


def main() -> None:
    parser = common.new_parser(__doc__ or "")
    common.add_sizes(parser, [10_000])
    common.add_dir(parser)
    parser.add_argument("--repeats", type=int, default=2, help="runs per size; best kept")
    parser.add_argument("--seed", type=int, default=7, help="the seed of the tree's states")
    parser.add_argument("--keep", action="store_true", help="keep the trees (path printed)")
    args = parser.parse_args()
    common.check_sizes(parser, args.sizes)
    results = {}
    with common.bench_root(common.base_dir(args.dir), "bench-report-", args.keep) as base:
        for n in args.sizes:
            results[n] = run_size(n, base, args.repeats, args.seed)
    common.print_header("autojob report on N tasks (best seconds; ratios against harvest)")
    print(f"{'N':>8} " + " ".join(f"{name:>12}" for name in CONTENDERS) + f" {'page KiB':>9}")
    for n, best in results.items():
        print(
            f"{n:>8,} "
            + " ".join(f"{best[c]:>12.2f}" for c in CONTENDERS)
            + f" {best['size KiB']:>9.0f}"
        )
        ratios = ", ".join(
            f"{c} {common.ratio(best[c], best['harvest'])}" for c in CONTENDERS if c != "harvest"
        )
        print(f"{'':>8} /harvest: {ratios}")
        worst = max(best[c] for c in REPORTS)
        met = common.verdict(worst <= TARGET * best["harvest"])
        print(f"{'':>8} every report <= {TARGET}x harvest: {met}")
        met = common.verdict(worst <= MARGIN * best["harvest"])
        print(f"{'':>8} every report <= {MARGIN}x harvest (the margin aimed at): {met}")
        warm = max(best[c] for c in WARM)
        met = common.verdict(warm <= TARGET * best["harvest"])
        print(f"{'':>8} with their caches ({', '.join(WARM)}) <= {TARGET}x harvest: {met}")


if __name__ == "__main__":
    main()
