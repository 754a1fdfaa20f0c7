"""``autojob report``: the page of the sample study, as a browser shows it.

The sample study (the README's main job: a sweep of a toy SCF calculation, some
of whose tasks fail on purpose) is run for real on this machine, beside the
example workflow study (not run: its DAG shows no progress), and the report of
both is opened in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, which scripts/test.sh installs as root) through selenium.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.errors import InputError
from autojob.harvest.cache import cache_path
from autojob.report import parse_plot
from autojob.report.data import ReportData, TaskTimes, _megabytes, _seconds, gather
from autojob.report.sweep import PlotSpec, Sweeps, plot_cache_path, sweep_points
from autojob.store.state import FINAL_STATES
from autojob.store.status_index import collect
from tests.helpers import run, run_sample_study, study_of_commands
from tests.workflow_helpers import squares_study

TROUBLE = ("failed", "timeout", "oom")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample study (small grids, run: two of four tasks fail) and the workflow example."""
    dest = tmp_path_factory.mktemp("report")
    run_sample_study(dest, ["0.3", "0.6", "1.2", "1.7"], 2)  # two of four fail on purpose
    squares_study(dest, "00:01:00")
    return dest


@pytest.fixture(scope="module")
def page(tree: Path) -> Path:
    out = tree.parent / f"{tree.name}-report.html"
    done = run("report", tree, "--output", out, "--plot", "outputs.n:cutoff", "--plot",
               "steps:mixing", cwd=tree)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 failed" in done.stderr, done.stderr
    return out


def _failed_paths(tree: Path) -> set[str]:
    shown = run("status", tree, "--json", cwd=tree)
    assert shown.returncode == 0, shown.stderr
    return {t["path"] for t in json.loads(shown.stdout)["tasks"] if t["state"] in TROUBLE}


def _browser_problem() -> str | None:
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (scripts/test.sh installs them as root)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    problem = _browser_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,2600", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(
        service=Service(executable_path=str(shutil.which("chromedriver"))), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _column(driver: Any, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#failure-table tbody tr")
    return [r.find_elements(By.TAG_NAME, "td")[index].text for r in rows if r.is_displayed()]


def test_the_page_in_chromium(tree: Path, page: Path, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url = page.as_uri()
    browser.get("about:blank")
    browser.get_log("performance")  # what the browser itself loaded when it started
    browser.get_log("browser")
    browser.get(url)
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    # the page itself, and nothing else (embedded images are data: URLs)
    assert [u for u in _requests(browser) if u != url and not u.startswith("data:")] == []
    for selector in ("#plot-runtime svg", "#plot-timeline svg", "#sweeps svg", ".dag svg"):
        assert browser.find_elements(By.CSS_SELECTOR, selector), selector
    dag = browser.find_element(By.CSS_SELECTOR, ".dag svg").text
    assert "double" in dag and "aggregate" in dag, dag
    failed = _failed_paths(tree)
    assert len(failed) == 2
    assert set(_column(browser, 0)) == failed
    header = browser.find_element(By.XPATH, "//table[@id='failure-table']//th[text()='task']")
    header.click()
    assert _column(browser, 0) == sorted(failed)
    header.click()
    assert _column(browser, 0) == sorted(failed, reverse=True)
    box = browser.find_element(By.ID, "failure-filter")
    box.send_keys("mix1.7")
    assert _column(browser, 0) == [p for p in sorted(failed, reverse=True) if "mix1.7" in p]
    box.clear()
    box.send_keys(" ")  # any input event: the filter runs again on an empty text
    box.clear()
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot of the report: {shot}")


def test_the_page_holds_what_status_says(tree: Path, page: Path) -> None:
    text = page.read_text()
    assert "Content-Security-Policy" in text
    assert "<script src" not in text and '<link rel="stylesheet"' not in text
    for failed in _failed_paths(tree):
        assert failed in text
    assert "SCF d" in text  # the causes, from the tail of each failed task's stderr
    assert "outputs.n against cutoff" in text


def test_a_study_group_and_a_study_alone(tree: Path, tmp_path: Path) -> None:
    """The page of the study group, and of the workflow's study, each without the rest."""
    from autojob.report import write_report

    group = write_report(tree / "sample-1", tmp_path / "group.html")
    assert (group.tasks, group.failures, group.workflows) == (4, 2, 0)
    text = group.path.read_text()
    assert all(failed in text for failed in _failed_paths(tree / "sample-1"))
    assert "squares" not in text
    study = write_report(tree / "squares", tmp_path / "study.html")
    assert (study.tasks, study.failures, study.workflows) == (4, 0, 1)
    assert "sample-1" not in study.path.read_text()


def test_the_pilots_of_a_tree_are_on_its_page(tmp_path: Path) -> None:
    """Each pilot with its tasks done; a tree without pilots has no such section."""
    from autojob.execution.pilots.pool import pools_under
    from autojob.report import write_report
    from tests.pilot_helpers import submit_pilots, wait_pilots_ended

    study, _ = study_of_commands(tmp_path, {f"t{i}": "true" for i in range(5)})
    before = write_report(study, tmp_path / "before.html").path.read_text()
    assert 'id="pilots"' not in before
    submit_pilots(study, "--pilots", "2", "--pilot-time", "00:05:00")
    (pool,) = pools_under(study)
    records = wait_pilots_ended(pool, 2)
    page = write_report(study, tmp_path / "page.html").path.read_text()
    section = page[page.index('<section id="pilots">') : page.index('<section id="failures">')]
    assert f"{pool.dir.name}: pilots (local) ended 2" in section
    assert "5 task(s) done" in section and "0:05:00 each" in section
    for record in records:
        row = re.search(rf"<tr><td>{record['pilot']}</td><td>ended</td>.*?</tr>", section)
        assert row is not None and f'<td class="n">{record["done"]}</td>' in row.group(0)
        assert f"<td>{record['why']}</td>" in row.group(0)
    assert sum(r["done"] for r in records) == 5


def test_a_bad_plot_is_refused_and_nothing_written(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = run("report", tree, "-o", out, "--plot", "energy", cwd=tmp_path)
    assert done.returncode == 1
    assert "--plot" in done.stderr and "OUTPUT:PARAM" in done.stderr
    done = run("report", tree, "-o", out, "--plot", "outputs.nn:cutoff", cwd=tmp_path)
    assert done.returncode == 1
    assert "outputs.n" in done.stderr  # the field meant
    assert not out.exists()
    done = run("report", tree, "-o", tmp_path, cwd=tmp_path)  # click's usage error
    assert done.returncode == 2 and "is a directory" in done.stderr


def _settle(tree: Path) -> None:
    """Date every file and directory under ``tree`` an hour back, as if written long ago.

    Files written in the seconds before a report are never trusted by its cache
    (the same clock tick could hide a later change).
    """
    past = time.time() - 3600
    for folder, _, files in os.walk(tree):
        for name in files:
            os.utime(Path(folder, name), (past, past))
        os.utime(folder, (past, past))


def _write_outputs(task: Path, energy: float, cutoff: int) -> None:
    new = task / "outputs.new"
    new.write_text(json.dumps({"energy": energy, "cutoff": cutoff}))
    new.replace(task / "outputs.json")  # as a program writes its results: atomically


def test_a_second_plot_reads_only_the_tasks_that_changed(tmp_path: Path) -> None:
    """The plotted fields are cached beside the page, idle tasks as the ended ones."""
    study, tasks = study_of_commands(tmp_path / "tree", {"a": "true", "b": "true", "c": "true"})
    for number, task in enumerate(tasks):
        _write_outputs(task, -1.0 - number, 300 + 100 * number)
    _settle(study)
    out = tmp_path / "sweep.html"

    def report() -> tuple[str, str]:
        done = run("report", study, "-o", out, "--plot", "outputs.energy:cutoff", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return " ".join(done.stderr.split()), out.read_text()

    said, _ = report()  # the tasks have not run: idle, yet their outputs are plotted
    assert "plotted fields: 3 task(s) read, 0 cached" in said, said
    cache = json.loads(out.with_name(".sweep.html.plot-cache.json").read_text())
    assert sorted(kept[0] for kept in cache["tasks"].values()) == ["idle"] * 3
    said, first = report()
    assert "plotted fields: 0 task(s) read, 3 cached" in said, said

    _write_outputs(tasks[1], -42.0, 700)  # one task's results change
    _settle(tasks[1])
    said, second = report()
    assert "plotted fields: 1 task(s) read, 2 cached" in said, said
    assert _points(second) != _points(first)  # the point moved: read from the new outputs
    said, third = report()
    assert "plotted fields: 0 task(s) read, 3 cached" in said, said
    assert _points(third) == _points(second)
    cache = json.loads(out.with_name(".sweep.html.plot-cache.json").read_text())
    assert sorted(tuple(kept[2:]) for kept in cache["tasks"].values()) == [
        (300.0, -1.0),
        (500.0, -3.0),
        (700.0, -42.0),
    ]
    cache["tasks"][next(iter(cache["tasks"]))][2] = "300"  # a line edited by hand
    out.with_name(".sweep.html.plot-cache.json").write_text(json.dumps(cache))
    said, fourth = report()
    assert "plotted fields: 3 task(s) read, 0 cached" in said, said  # not trusted
    assert _points(fourth) == _points(second)


def test_a_task_json_the_model_refuses_is_plotted_and_cached(tmp_path: Path) -> None:
    """Read as any other task; a harvest's problem with it is no reason to read it again."""
    study, tasks = study_of_commands(tmp_path / "tree", {"a": "true", "b": "true"})
    for number, task in enumerate(tasks):
        _write_outputs(task, -1.0 - number, 300 + 100 * number)
    meta = json.loads((tasks[0] / SETTINGS.TASK_METADATA_FILE).read_text())
    meta["tags"] = "not a list"  # valid JSON, refused by the metadata model
    (tasks[0] / SETTINGS.TASK_METADATA_FILE).write_text(json.dumps(meta))
    _settle(study)
    out = tmp_path / "sweep.html"
    for reads in (2, 0):
        done = run("report", study, "-o", out, "--plot", "outputs.energy:cutoff", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        said = " ".join(done.stderr.split())
        assert f"plotted fields: {reads} task(s) read, {2 - reads} cached" in said, said
        assert "2 task(s)" in _points(out.read_text())
    harvested = run("harvest", study, "--json", cwd=tmp_path)  # the harvest still says so
    assert harvested.returncode == 0, harvested.stderr
    assert "tags" in harvested.stdout


def test_report_takes_the_fields_from_the_last_harvest(tmp_path: Path) -> None:
    """``autojob harvest``, then ``autojob report --plot`` beside it: from the harvest's cache."""
    study, tasks = study_of_commands(tmp_path / "tree", {"a": "true", "b": "true", "c": "true"})
    for number, task in enumerate(tasks):
        _write_outputs(task, -1.0 - number, 300 + 100 * number)
        ended = {"time": time.time(), "exit_code": 0, "started_at": time.time() - 1}
        (task / SETTINGS.ENDED_FILE).write_text(json.dumps(ended))  # as its script ends
    _settle(study)
    plot = ("--plot", "outputs.energy:cutoff")
    done = run("harvest", study, cwd=tmp_path)  # archive.json, its cache beside it
    assert done.returncode == 0, done.stderr
    done = run("report", study, "-o", tmp_path / "a.html", *plot, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "0 task(s) read, 0 cached, 3 from the harvest cache" in said, said
    assert "note:" not in said

    done = run("report", study, "-o", tmp_path / "b.html", *plot, "--archive", "other.json",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "3 task(s) read, 0 cached, 0 from the harvest cache" in said, said
    assert "note: no task's fields came from the harvest cache of other.json" in said, said
    assert _points((tmp_path / "a.html").read_text()) == _points((tmp_path / "b.html").read_text())

    done = run("report", study, "-o", tmp_path / "c.html", "--archive", "archive.json",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "--archive is only used with --plot" in done.stderr


def _points(page: str) -> str:
    """The sweep section of a page (its plot and caption)."""
    return page[page.index('id="sweeps"') :].split("</section>", 1)[0]


def test_parse_plot() -> None:
    assert str(parse_plot("outputs.energy:cutoff")) == "outputs.energy:cutoff"
    for bad in ("energy", ":cutoff", "a:", "a:b:c"):
        with pytest.raises(InputError, match="OUTPUT:PARAM"):
            parse_plot(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:01:01", 61.0), ("1-02:00:00", 93600.0), ("05:30", 330.0), (12.5, 12.5), ("x", None)],
)
def test_elapsed_of_the_schedulers(text: object, seconds: float | None) -> None:
    assert _seconds(text) == seconds


@pytest.mark.parametrize(
    ("text", "megabytes"), [("1024K", 1.0), ("2G", 2048.0), ("512M", 512.0), ("", None)]
)
def test_peak_memory_of_the_schedulers(text: str, megabytes: float | None) -> None:
    assert _megabytes(text) == megabytes


def test_time_left_from_the_runs_that_ended(tree: Path) -> None:
    data = gather(tree)
    assert data.estimate().running == 0
    times = [
        TaskTimes("a", "success", 0.0, 10.0, 10.0),
        TaskTimes("b", "failed", 0.0, 30.0, 30.0),
        TaskTimes("c", "running", 100.0, None, 5.0),
        TaskTimes("d", "running", 100.0, None, 25.0),
    ]
    made = ReportData(
        data.root, data.status, [], data.counts.copy(), data.counts.copy(), 0, times, [], []
    )
    made.counts.clear()
    made.counts.update({"queued": 3, "running": 2})
    estimate = made.estimate()
    # three waiting at the mean of 20 s, and 15 s left of one run, two at once
    assert (estimate.running, estimate.waiting, estimate.mean_run) == (2, 3, 20.0)
    assert estimate.seconds == (3 * 20 + 15) / 2


def test_the_live_view_shows_steps_failures_and_time_left(tree: Path) -> None:
    """What ``status --watch`` draws at each refresh, for the tree of the page."""
    from rich.console import Console

    from autojob.cli.watch import render

    data = gather(tree)
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(render(data, 10))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]

    def line_of(*parts: str) -> str:
        found = [line for line in lines if all(part in line for part in parts)]
        assert found, (parts, lines)
        return found[0]

    for study in data.studies:  # a bar per study: the sample study and the workflow's
        line_of(study.name, f"{study.done}/{study.total}")
    (flow,) = data.workflows
    assert {"double", "aggregate"} <= {step.name for step in flow.steps}
    for step in flow.steps:  # and per step of the workflow, none done yet
        line_of(f"{flow.study} > {step.name}", f"0/{step.expected or step.groups or '?'}")
    failed = [f for f in data.failures if f.newest]
    assert len(failed) == 2
    for failure in failed:  # the newest failures, with their cause (the SCF's own message)
        assert "SCF d" in line_of(failure.path.split("/")[-1], failure.state)
    waiting = data.counts["idle"]
    assert waiting > 0  # the workflow's first step: from the run times of the sample's tasks
    assert re.search(rf"0 running, {waiting} waiting; about .+ left \(mean run ", "\n".join(lines))


def test_memory_and_cpu_hours_from_the_schedulers_accounting(tmp_path: Path) -> None:
    """Accounting as the SLURM and Grid Engine executors write it, beside each end record."""
    from autojob.report.page import render_page

    study, (slurm, sge, local) = study_of_commands(
        tmp_path, {"slurm": "true", "sge": "true", "local": "true"}, cpus_per_task=4
    )
    for task, job, stats in (
        (slurm, "812_3", {"job_id": "812_3", "elapsed": "00:30:00", "max_rss": "2G"}),
        (sge, "77.1", {"job_id": "77.1", "wallclock": 900.0, "maxvmem": "512M"}),
    ):
        (task / "job_stats.json").write_text(json.dumps(stats))
        ended = {"time": 2000.0, "started_at": 1000.0, "exit_code": 0, "job_id": job}
        (task / "autojob.ended").write_text(json.dumps({**ended, "accounted": True}))
    (local / "autojob.ended").write_text(json.dumps({"time": 1500.0, "exit_code": 1}))
    data = gather(study)
    by_path = {t.path.split("/")[0]: t for t in data.times}
    assert by_path["slurm"].peak_memory_mb == 2048.0 and by_path["sge"].peak_memory_mb == 512.0
    assert by_path["local"].peak_memory_mb is None and by_path["local"].cpu_hours is None
    assert data.cpu_hours == pytest.approx(4 * (1800 + 900) / 3600)  # 4 CPUs each
    page, plots = render_page(data, [])
    assert 'id="plot-memory"' in page
    assert 'CPU-hours (scheduler accounting)</th><td class="n">3.00</td>' in page
    assert plots == 3  # run time, memory, timeline


def test_plot_fields_are_found_in_outputs_metadata_and_inputs() -> None:
    from autojob.report.sweep import lookup

    record = {
        "metadata": {"label": "a"},
        "outputs": {"energy": -3.5, "nested": {"x": 1}},
        "inputs": {"task_inputs": {"cutoff": 400, "grid": {"n": 8}}},
    }
    assert lookup(record, "outputs.energy") == (True, -3.5)
    assert lookup(record, "energy") == (True, -3.5)
    assert lookup(record, "nested.x") == (True, 1)
    assert lookup(record, "cutoff") == (True, 400)
    assert lookup(record, "task_inputs.grid.n") == (True, 8)
    assert lookup(record, "inputs.task_inputs.cutoff") == (True, 400)
    assert lookup(record, "cutof") == (False, None)


def _harvest_points(archive: Path, specs: list[PlotSpec]) -> list[list[tuple[float, float]]]:
    """The points of each plot as a harvest's archive gives them: its records' fields."""
    from autojob.report.sweep import lookup

    records = [r for r in json.loads(archive.read_text()) if r["attempts"]["current"]]
    points = []
    for spec in specs:
        found = [(lookup(r, spec.parameter), lookup(r, spec.output)) for r in records]
        points.append(sorted((float(x[1]), float(y[1])) for x, y in found if x[0] and y[0]))
    return points


def _report_points(
    root: Path, specs: list[PlotSpec], page: Path, archive: Path | None = None
) -> tuple[list[list[tuple[float, float]]], Sweeps]:
    sweeps = sweep_points(collect(root), specs, page, archive)
    sweeps.keep()
    return [sorted((x, y) for x, y, _, _ in s.points) for s in sweeps.plots], sweeps


def test_plotted_points_are_those_of_a_harvest(tree: Path, tmp_path: Path) -> None:
    """From the files, from a harvest's cache, from the plot's cache: a harvest's points.

    A field of the outputs against one of the inputs, and one found in the
    outputs, then the inputs, by a bare name.
    """
    study = tmp_path / "tree"
    shutil.copytree(tree, study, ignore=shutil.ignore_patterns(".autojob*"))
    _settle(study)  # written long ago: a harvest's cache keeps every task
    specs = [parse_plot("outputs.n:cutoff"), parse_plot("steps:mixing")]
    archive = tmp_path / "archive.json"
    done = run("harvest", study, "-o", archive, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = _harvest_points(archive, specs)
    assert all(len(points) >= 2 for points in expected), expected  # a sweep to compare

    from_files, sweeps = _report_points(study, specs, tmp_path / "a.html")
    assert from_files == expected
    assert (sweeps.read, sweeps.harvested, sweeps.cached) == (len(collect(study)), 0, 0)
    from_harvest, sweeps = _report_points(study, specs, tmp_path / "b.html", archive)
    assert from_harvest == expected
    harvest_cache = json.loads(cache_path(archive).read_text().split("\n", 1)[0])
    plot_cache = json.loads(plot_cache_path(tmp_path / "b.html").read_text())
    assert plot_cache["header"]["verified"] == harvest_cache["verified"]  # its tasks' check
    final = {s.value for s in FINAL_STATES}  # the tasks a harvest's cache keeps
    ended = sum(state in final for state in collect(study).columns["state"])
    assert (sweeps.read, sweeps.harvested, sweeps.cached) == (len(collect(study)) - ended, ended, 0)
    from_cache, sweeps = _report_points(study, specs, tmp_path / "b.html", archive)
    assert from_cache == expected
    assert (sweeps.read, sweeps.harvested) == (0, 0), (sweeps.read, sweeps.harvested)

    task = Path(study, json.loads(archive.read_text())[0]["path"])  # results change after it
    outputs = json.loads((task / "outputs.json").read_text())
    outputs["n"] = 1000
    (task / "outputs.json").write_text(json.dumps(outputs))
    _settle(task)
    os.utime(task, None)  # its directory changed now: neither cache holds it
    new, sweeps = _report_points(study, specs, tmp_path / "b.html", archive)
    assert sweeps.read == 1 and new != expected
    done = run("harvest", study, "-o", archive, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert new == _harvest_points(archive, specs)


@pytest.mark.skipif(importlib.util.find_spec("ase") is None, reason="ASE not installed")
def test_plotted_points_of_the_calculation_harvester(tmp_path: Path) -> None:
    """A field only a harvester other than ``outputs`` gives: a calculation's energy."""
    from ase.build import molecule
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from autojob.study import Study
    from autojob.task_group import TaskGroup
    from autojob.tasks.calculation import Calculation

    n2: Any = molecule  # ASE is untyped
    tasks = []
    for number, fmax in enumerate((0.01, 0.02, 0.05)):
        task = Calculation.from_atoms(
            n2("N2"),
            label=f"n2-{number}",
            calculator="emt",
            optimizer="BFGS",
            opt_params={"fmax": fmax},
        )
        tasks.append(TaskGroup(label=f"n2-{number}", tasks=[task]))
    study = Study(name="relax", task_groups=tasks).to_directory(
        tmp_path / "tree", study_template="{name}", task_group_template="{label}"
    )
    for number, folder in enumerate(sorted(p.parent for p in study.glob("*/*/task.json"))):
        atoms = n2("N2")
        results: Any = SinglePointCalculator
        atoms.calc = results(atoms, energy=-1.5 - number, forces=[[0, 0, 0]] * 2)
        write(folder / SETTINGS.OUTPUT_ATOMS_FILE, atoms)  # as a relaxation leaves it
        ended = {"time": time.time(), "exit_code": 0, "started_at": time.time() - 1}
        (folder / SETTINGS.ENDED_FILE).write_text(json.dumps(ended))  # as its script ends
    _settle(study)
    specs = [parse_plot("outputs.energy:inputs.calculation_inputs.opt_params.fmax")]
    archive = tmp_path / "archive.json"
    done = run("harvest", study, "-o", archive, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = _harvest_points(archive, specs)
    assert expected == [[(0.01, -1.5), (0.02, -2.5), (0.05, -3.5)]]
    assert _report_points(study, specs, tmp_path / "a.html")[0] == expected
    from_harvest, sweeps = _report_points(study, specs, tmp_path / "b.html", archive)
    assert from_harvest == expected and sweeps.harvested == 3


def test_a_large_harvest_cache_is_read_for_many_tasks_only(tmp_path: Path) -> None:
    from autojob.report.sweep import CACHE_BYTES_PER_READ, SMALL_CACHE, _worth_reading

    cache = tmp_path / ".archive.json.harvest-cache.jsonl"
    assert not _worth_reading(cache, 1000)  # none
    cache.write_text("x" * 100)
    assert _worth_reading(cache, 1)  # small: read for one task
    size = 4 * SMALL_CACHE
    with cache.open("r+b") as stream:
        stream.truncate(size)
    enough = -(-size // CACHE_BYTES_PER_READ)  # tasks whose files take as long as it
    assert not _worth_reading(cache, enough - 1)  # fewer: their files
    assert _worth_reading(cache, enough)


def test_a_first_plot_reads_each_task_in_the_status_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fields are read where the walk lists each task; no task directory is listed again."""
    from autojob.report.sweep import FieldReader
    from autojob.store.journal import note_changed

    study, tasks = study_of_commands(tmp_path / "tree", {"a": "true", "b": "true", "c": "true"})
    for number, task in enumerate(tasks):
        _write_outputs(task, -1.0 - number, 300 + 100 * number)
    _settle(study)
    specs = [parse_plot("outputs.energy:cutoff")]
    expected = _report_points(study, specs, tmp_path / "apart.html")[0]  # read after the walk

    fields = FieldReader(study, specs, tmp_path / "walk.html")
    visitor = fields.visitor
    assert visitor is not None
    visits: list[tuple[str, set[str], str]] = []

    def visit(top: str, rel: str, names: set[str], group: str | None, state: Any) -> None:
        visits.append((rel, names, state.state.value))
        visitor(top, rel, names, group, state)

    status = collect(study, rescan=True, visit=visit)
    assert sorted(rel for rel, _, _ in visits) == sorted(status.columns["path"])
    for rel, names, state in visits:  # each with its directory's listing and its state
        assert names == set(os.listdir(study / rel))
        assert state == status.columns["state"][status.rows[rel]]
    listed: list[str] = []
    listdir = os.listdir

    def listing(path: str) -> list[str]:
        listed.append(path)
        return listdir(path)

    monkeypatch.setattr(os, "listdir", listing)
    changed = status.columns["path"][0]
    status.columns["state"][status.rows[changed]] = "failed"  # as a scheduler may say after
    sweeps = fields.points(status)
    monkeypatch.undo()
    assert listed == [os.path.join(os.path.realpath(study), changed)]  # read again, alone
    assert [sorted((x, y) for x, y, _, _ in s.points) for s in sweeps.plots] == expected
    assert (sweeps.read, sweeps.cached) == (3, 0)
    sweeps.keep()

    _write_outputs(tasks[1], -42.0, 700)  # one task changes; its script notes it
    _settle(tasks[1])
    note_changed([str(tasks[1])])
    visits.clear()
    status = collect(study, visit=visit)  # the index: only the task noted is read again
    assert [rel for rel, _, _ in visits] == [os.path.relpath(tasks[1], study)]


def test_a_first_plot_with_a_harvest_beside_reads_after_the_walk(tmp_path: Path) -> None:
    """A harvest's cache gives the fields cheaper than the files: the walk leaves them."""
    from autojob.report.sweep import FieldReader

    study, tasks = study_of_commands(tmp_path / "tree", {"a": "true"})
    _write_outputs(tasks[0], -1.0, 300)
    _settle(study)
    specs = [parse_plot("outputs.energy:cutoff")]
    archive = tmp_path / "archive.json"
    assert FieldReader(study, specs, tmp_path / "a.html", archive).visitor is not None  # none yet
    done = run("harvest", study, "-o", archive, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert FieldReader(study, specs, tmp_path / "a.html", archive).visitor is None
    whole = [parse_plot("outputs.energy:state.exit_code")]  # anywhere in a record
    assert FieldReader(study, whole, tmp_path / "a.html").visitor is None
