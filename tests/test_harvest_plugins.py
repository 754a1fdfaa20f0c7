"""Harvester plugins: a test package's entry point, and the sample study's SCF log.

The plugin package is installed the way pip leaves one on ``sys.path``: the
module beside a ``.dist-info`` directory holding ``entry_points.txt``, so
``importlib.metadata`` discovers it for real, in this process and in a
subprocess running the ``autojob`` command.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.errors import PluginError
from autojob.harvest import (
    HARVEST_GROUP,
    available_harvesters,
    get_harvester,
    harvest,
    load_archive,
    refresh_harvesters,
    register_harvester,
)
from autojob.harvest.harvesters import _registered
from tests.harvest_helpers import by_label, finished_sweep
from tests.helpers import run, run_sample_study

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

PLUGIN = '''
"""A user's harvester: the last line of result.txt, as a number."""
from autojob.errors import MetadataError
from autojob.harvest import Harvester


class ResultHarvester(Harvester):
    name = "result-txt"
    task_classes = ("task",)
    files = ("result.txt",)

    def harvest(self, task):
        if "result.txt" not in task.names:
            return None
        text = open(task.file("result.txt")).read().split()
        try:
            return {"result": float(text[-1])}
        except (IndexError, ValueError):
            raise MetadataError("no number at the end", path=task.file("result.txt"))


NOT_A_HARVESTER = object()
'''


def install_plugin(site: Path, module: str, source: str | None, entries: dict[str, str]) -> None:
    """Write ``module`` and a dist-info declaring ``entries`` in the harvest group."""
    if source is not None:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module.replace('_', '-')}_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}-plugin\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[{HARVEST_GROUP}]\n{lines}\n")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(
        site,
        "result_harvest",
        PLUGIN,
        {
            "result-txt": "result_harvest:ResultHarvester",
            "broken": "result_harvest:NOT_A_HARVESTER",
            "missing": "no_such_module:Thing",
        },
    )
    monkeypatch.syspath_prepend(str(site))
    refresh_harvesters()
    yield site
    sys.modules.pop("result_harvest", None)
    refresh_harvesters()


def test_entry_point_harvester_is_found_and_runs(plugin_site: Path, tmp_path: Path) -> None:
    assert {"outputs", "result-txt"} <= set(available_harvesters())
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    (dirs[0] / "result.txt").write_text("energy\n-7.25\n")
    (dirs[1] / "result.txt").write_text("crashed before the end")

    tasks = by_label(list(harvest(sg_dir, strict=False, harvesters=["outputs", "result-txt"])))

    assert tasks["t0"].outputs is not None
    assert tasks["t0"].outputs["result"] == -7.25
    assert tasks["t0"].outputs["energy"] == -1.5  # outputs.json too
    assert tasks["t0"].harvesters == ["outputs", "result-txt"]
    (problem,) = tasks["t1"].problems
    assert problem.path == str(dirs[1] / "result.txt")
    assert "no number at the end" in problem.message
    assert tasks["t2"].outputs is None


def test_installed_harvesters_run_on_their_task_classes(plugin_site: Path, tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    (dirs[0] / "result.txt").write_text("1")
    meta_file = dirs[1] / SETTINGS.TASK_METADATA_FILE
    meta = json.loads(meta_file.read_text())
    meta["task_class"] = "other"
    meta_file.write_text(json.dumps(meta))
    (dirs[1] / "result.txt").write_text("2")

    # not named: "result-txt" declares task_classes = ("task",); broken ones load lazily
    with pytest.raises(PluginError, match="'broken'"):
        list(harvest(sg_dir, strict=False))
    chosen = ["outputs", "result-txt"]
    assert set(available_harvesters()) >= {"broken", "missing"}
    tasks = by_label(list(harvest(sg_dir, strict=False, harvesters=chosen)))
    assert tasks["t1"].outputs == {"result": 2.0}  # named: runs on every class


def test_broken_entry_points_are_named(plugin_site: Path) -> None:
    with pytest.raises(PluginError, match=r"'broken' \(result_harvest:NOT_A_HARVESTER\)"):
        get_harvester("broken")
    with pytest.raises(PluginError, match=r"'missing'.*failed to load") as missing:
        get_harvester("missing")
    assert "--harvester" in (missing.value.hint or "")
    with pytest.raises(PluginError, match="is not a Harvester"):
        register_harvester(object())  # type: ignore[arg-type]


def test_cli_finds_the_plugin_in_a_fresh_process(plugin_site: Path, tmp_path: Path) -> None:
    sg_dir, dirs = finished_sweep(tmp_path / "tree")
    (dirs[0] / "result.txt").write_text("42")
    env = {"PYTHONPATH": str(plugin_site)}

    done = run(
        "harvest", sg_dir, "--harvester", "outputs", "--harvester", "result-txt", cwd=tmp_path,
        env=env,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    tasks = by_label(load_archive(tmp_path / SETTINGS.ARCHIVE_FILE))
    assert tasks["t0"].outputs is not None and tasks["t0"].outputs["result"] == 42.0
    missing = run("harvest", sg_dir, "--harvester", "result-txt", cwd=tmp_path)
    assert missing.returncode == 1
    assert "harvester 'result-txt' is not installed" in missing.stderr


# -- the sample study, run for real, and its SCF log harvester ---------------------------


@pytest.fixture(scope="module")
def sample_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample study (small grids), run on this machine with ``autojob submit``."""
    # two of three fail on purpose
    return run_sample_study(tmp_path_factory.mktemp("sample"), ["0.3", "1.2", "1.7"], 2)


@pytest.fixture
def scf_log() -> Iterator[None]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        example = importlib.import_module("scf_harvest")
        register_harvester(example.ScfLogHarvester())
        yield
    finally:
        _registered.pop("scf-log", None)
        sys.path.remove(str(EXAMPLES))


def test_scf_log_harvester_reads_the_sample_study(sample_study: Path, scf_log: None) -> None:
    tasks = list(harvest(sample_study, strict=True, harvesters=["outputs", "scf-log"]))

    by_mixing = {t.inputs["task_inputs"]["command"].split()[2]: t for t in tasks}
    assert sorted(by_mixing) == ["0.3", "1.2", "1.7"]
    good, stalled, diverged = by_mixing["0.3"], by_mixing["1.2"], by_mixing["1.7"]
    assert good.state_name == "success"
    assert good.outputs is not None
    scf = good.outputs["scf"]
    assert scf["converged"] is True
    assert scf["steps"] == good.outputs["steps"]  # the log agrees with outputs.json
    assert scf["n"] == pytest.approx(good.outputs["n"], abs=1e-9)
    assert stalled.state_name == diverged.state_name == "failed"
    assert stalled.outputs == {
        "scf": {"converged": False, "failure": "not converged", "steps": 60, "mixing": 1.2}
    }
    assert diverged.outputs is not None
    assert diverged.outputs["scf"]["failure"] == "diverged"
    assert diverged.outputs["scf"]["mixing"] == 1.7


def test_scf_log_harvester_through_an_entry_point(sample_study: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, "scf_harvest", None, {"scf-log": "scf_harvest:ScfLogHarvester"})
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLES)])}
    out = tmp_path / "scf.csv"

    done = run(
        "harvest", sample_study, "-o", out, "--harvester", "outputs", "--harvester", "scf-log",
        "--where", "outputs.scf.converged=false", cwd=tmp_path, env=env,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "2 task(s) archived" in done.stdout
    header, *rows = out.read_text().splitlines()
    assert "outputs.scf.failure" in header.split(",")
    assert len(rows) == 2


def test_scf_log_parser() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        parse_scf_log = importlib.import_module("scf_harvest").parse_scf_log
    finally:
        sys.path.remove(str(EXAMPLES))
    assert parse_scf_log("converged in 7 steps: n = 1.5000000000\n", "") == {
        "converged": True,
        "steps": 7,
        "n": 1.5,
    }
    assert parse_scf_log("", "noise\nSCF diverged at step 3 (mixing 2.0 is too large)\n") == {
        "converged": False,
        "failure": "diverged",
        "steps": 3,
        "mixing": 2.0,
    }
    assert parse_scf_log("hello", "world") is None
    with pytest.raises(ValueError, match="could not convert"):
        parse_scf_log("converged in 7 steps: n = 1.5.3", "")
