"""``--json`` of every command that reports results: it parses and holds what the text shows.

Also the output that scales and the first-minute frictions: tables cut at
TABLE_ROWS rows unless --all, one line per task on 80 columns, paths relative
to the current directory, a missing --dest created, no progress bar in a pipe.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from autojob import SETTINGS
from autojob.cli.output import TABLE_ROWS
from autojob.store.state import read_state
from autojob.study import Study
from autojob.task_group import TaskGroup
from autojob.tasks.task import Task, TaskInputs, TaskMetadata

from .datasets_helpers import SMART_TOOL, dataset_path, make_dataset
from .helpers import run, study_of_commands, wait_until

#: characters a rich progress bar or spinner draws
BAR = re.compile("[━╸╺⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]")


def ok(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``autojob`` (a wide terminal unless ``env`` says otherwise); its stdout."""
    result = run(*args, cwd=cwd, env=env)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def as_json(*args: str | Path, cwd: Path) -> Any:
    """Run ``autojob ... --json`` and parse its one JSON document."""
    return json.loads(ok(*args, "--json", cwd=cwd))


def meta(task: Path) -> dict[str, Any]:
    return dict(json.loads((task / SETTINGS.TASK_METADATA_FILE).read_text()))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A study of two tasks run to their end: ``ok`` succeeded, ``bad`` failed (exit 3)."""
    root = tmp_path_factory.mktemp("finished")
    _, tasks = study_of_commands(root, {"ok": "echo fine", "bad": "echo oops >&2; exit 3"})
    assert run("submit", "--wait", cwd=root).returncode == 1
    return root, {"ok": tasks[0], "bad": tasks[1]}


def copy_of(finished: tuple[Path, dict[str, Path]], tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A copy of the finished study, for a command that changes it."""
    root, tasks = finished
    shutil.copytree(root, tmp_path / "copy")
    return tmp_path / "copy", {k: tmp_path / "copy" / v.relative_to(root) for k, v in tasks.items()}


# -- one test per command -------------------------------------------------------


def test_new_json_and_a_missing_dest(tmp_path: Path) -> None:
    made = as_json(
        "new", "--dest", "runs/today", "--label", "x", "--set", "command=true", cwd=tmp_path
    )
    [task] = made["created"]
    assert made["created_dest"] == "runs/today"
    assert task["kind"] == "task"
    assert task["path"] == "runs/today/x"
    assert meta(tmp_path / task["path"])["task_id"] == task["id"]

    text = ok(
        "new", "--dest", "runs/tomorrow", "--label", "y", "--set", "command=true", cwd=tmp_path
    )
    task_id = meta(tmp_path / "runs/tomorrow/y")["task_id"]
    assert text.splitlines() == [
        "created the directory runs/tomorrow (--dest did not exist)",
        f"created task {task_id} at runs/tomorrow/y",
    ]
    group = as_json("new", "--type", "study_group", "--dest", "a/b", "--label", "g", cwd=tmp_path)
    assert group["created"][0]["kind"] == "study_group"
    assert (tmp_path / "a/b/g" / SETTINGS.STUDY_GROUP_METADATA_FILE).is_file()


def test_new_refused_creates_no_dest(tmp_path: Path) -> None:
    result = run(
        "new", "--dest", "c/d", "--copy", "missing.txt", "--set", "command=true", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "missing.txt" in result.stderr
    assert not (tmp_path / "c").exists()
    result = run(
        "new", "--type", "task_group", "--dest", "e/f", "--set", "command=true", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "is not a study" in result.stderr
    assert not (tmp_path / "e").exists()


def test_to_directory_creates_a_missing_dest(tmp_path: Path) -> None:
    study = Study(
        name="s", task_groups=[TaskGroup.from_task(Task(task_inputs=TaskInputs(command="true")))]
    )
    path = study.to_directory(tmp_path / "deep" / "er", study_template="{name}")
    assert path == tmp_path / "deep" / "er" / "s"
    assert (path / SETTINGS.STUDY_METADATA_FILE).is_file()


def test_list_json_holds_the_table(finished: tuple[Path, dict[str, Path]]) -> None:
    root, tasks = finished
    rows = [json.loads(line) for line in ok("list", "--json", cwd=root).splitlines()]
    table = ok("list", cwd=root)
    assert {r["path"] for r in rows} == {str(t.relative_to(root)) for t in tasks.values()}
    for row in rows:
        [line] = [line for line in table.splitlines() if row["task_id"] in line]
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        assert cells[:3] == [row["task_id"], row["label"], row["state"]]
        assert cells[4] == str(row["exit_code"])
        assert cells[6] == row["path"]
    assert {r["label"]: (r["state"], r["exit_code"]) for r in rows} == {
        "ok": ("success", 0),
        "bad": ("failed", 3),
    }


def test_status_json_holds_the_table(finished: tuple[Path, dict[str, Path]]) -> None:
    root, tasks = finished
    status = as_json("status", cwd=root)
    assert status["counts"] == {"success": 1, "failed": 1}
    assert {t["path"]: t["state"] for t in status["tasks"]} == {
        str(p.relative_to(root)): read_state(p).state.value for p in tasks.values()
    }
    assert [g["attempts"] for g in status["task_groups"]] == [1, 1]
    table = ok("status", "--by", "state", cwd=root)
    for state, count in status["counts"].items():
        assert re.search(rf"{state}\s*│\s*{count}\s*│\s*{count}", table)
    assert "exit 3" not in table and "oops" in table  # the failure's stderr is shown


def test_status_refuses_watch_with_json(finished: tuple[Path, dict[str, Path]]) -> None:
    """A live view cannot be one JSON document: the pair is refused before anything is printed."""
    root, _ = finished
    result = run("status", "--watch", "--json", cwd=root)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--json" in result.stderr and "--watch" in result.stderr and "not both" in result.stderr


@pytest.mark.slow
def test_submit_json_holds_the_dry_run_and_the_run(tmp_path: Path) -> None:
    _, tasks = study_of_commands(tmp_path, {"a": "echo a", "b": "echo b"})
    plan = as_json("submit", "--dry-run", cwd=tmp_path)
    table = ok("submit", "--dry-run", cwd=tmp_path)
    assert plan["dry_run"] is True and plan["executor"] == "local" and plan["selected"] == 2
    assert plan["summary"] in " ".join(table.split())
    for task in plan["tasks"]:
        assert re.search(
            rf"{Path(task['path']).relative_to(tmp_path)}\s*│\s*idle.*{task['command']}", table
        )

    done = run("submit", "--wait", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["submitted"], report["succeeded"], report["failed"]) == (2, 2, 0)
    assert {r["path"]: r["state"] for r in report["results"]} == {
        str(t.resolve()): "success" for t in tasks
    }
    assert "2 of 2 task(s) succeeded" in done.stderr
    assert not BAR.search(done.stderr)  # no progress bar into a pipe
    again = as_json("submit", cwd=tmp_path)
    assert again["selected"] == again["submitted"] == 0
    assert again["message"].startswith("nothing to submit")


def test_cancel_json(tmp_path: Path) -> None:
    _, [task] = study_of_commands(tmp_path, {"slow": "sleep 60"})
    ok("submit", cwd=tmp_path)
    wait_until(lambda: read_state(task).state.value == "running", 60, "the task to start")
    done = as_json("cancel", tmp_path, "--grace", "1", cwd=tmp_path)
    assert done == {
        "cancelled": [{"path": str(task.resolve()), "was": "running"}],
        "pilots_stopped": [],
    }
    assert read_state(task).state.value == "cancelled"
    assert as_json("cancel", tmp_path, cwd=tmp_path) == {"cancelled": [], "pilots_stopped": []}


def test_pilots_in_the_json_of_submit_status_and_cancel(tmp_path: Path) -> None:
    study, tasks = study_of_commands(tmp_path, {f"t{i}": "sleep 60" for i in range(3)})
    plan = as_json("submit", study, "--pilots", "2", "--dry-run", "--json", cwd=tmp_path)
    assert (plan["executor"], plan["pilot_executor"], plan["dry_run"]) == ("pilot", "local", True)
    (pool,) = plan["pools"]
    assert (pool["tasks"], pool["pilots"], pool["budget"]["max_pilots"]) == (3, 2, 2)
    assert plan["selected"] == 3 and "submitted" not in plan
    done = as_json("submit", study, "--pilots", "2", "--max-pilots", "3", "--json", cwd=tmp_path)
    assert done["dry_run"] is False and done["submitted"] == 3 and len(done["job_ids"]) == 2
    (pool,) = done["pools"]
    assert pool["budget"] == {"max_pilots": 3, "pilot_hours": None}
    wait_until(lambda: sum(read_state(t).state.value == "running" for t in tasks) == 2, 60, "runs")

    def pilots() -> Any:
        (shown,) = as_json("status", study, "--json", cwd=tmp_path)["pilots"]
        return shown if sum(p["running"] for p in shown["pilots"]) == 2 else None

    shown = wait_until(pilots, 30, "the pilots' records to count their runs (each heartbeat)")
    assert shown["pool"] == pool["pool"] and shown["revived"] == [] and not shown["finished"]
    assert sorted(p["pilot"] for p in shown["pilots"]) == sorted(done["job_ids"])
    assert {p["state"] for p in shown["pilots"]} == {"running"}
    assert all(0 <= p["heartbeat_age"] < 30 for p in shown["pilots"])
    stopped = as_json("cancel", study, "--grace", "1", cwd=tmp_path)
    assert sorted(stopped["pilots_stopped"]) == sorted(done["job_ids"])
    assert [c["was"] for c in stopped["cancelled"]] == ["running", "running"]
    (shown,) = as_json("status", study, "--json", cwd=tmp_path)["pilots"]
    assert shown["cancelled"] and {p["state"] for p in shown["pilots"]} == {"ended"}


def test_resubmit_json(finished: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root, tasks = copy_of(finished, tmp_path)
    dry = as_json("resubmit", root, "--dry-run", cwd=root)
    text = ok("resubmit", root, "--dry-run", cwd=root)
    [attempt] = dry["restarts"]
    assert attempt["state"] == "failed" and attempt["new"] is None
    assert Path(attempt["path"]).name == tasks["bad"].name
    assert f"would restart {Path(attempt['path']).relative_to(root.resolve())} (failed)" in text
    assert dry["submission"] is None

    made = as_json("resubmit", root, "--no-submit", cwd=root)
    [attempt] = made["restarts"]
    new = Path(attempt["new"])
    assert new.parent == tasks["bad"].resolve().parent
    assert read_state(new).state.value == "idle"
    assert made["submission"] is None


def test_restart_json(finished: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root, tasks = copy_of(finished, tmp_path)
    made = as_json("restart", tasks["bad"], "--set", "command=true", cwd=root)
    new = Path(made["path"])
    assert meta(root / new)["task_id"] == made["task_id"]
    assert Path(made["previous"]) == tasks["bad"]
    assert made["submission"] is None
    text = ok("restart", tasks["bad"], cwd=root)
    assert re.fullmatch(r"created task \w+ at s/bad/\w+ \(a new attempt of \w+\)\n", text)


#: a sweep of two tasks, then one task once both are done
SPEC = """\
name = "chain"
command = "echo {x} > x.txt"
parameters = { x = [1, 2] }
steps = [{ name = "total", after = ["sweep"], progression = "dependent", set = { command = ":" }}]
"""


def test_sweep_json(tmp_path: Path) -> None:
    (tmp_path / "chain.toml").write_text(SPEC)
    dry = as_json("sweep", "chain.toml", "--dry-run", cwd=tmp_path)
    table = ok("sweep", "chain.toml", "--dry-run", cwd=tmp_path)
    assert dry["study"] == "chain"
    assert [c["x"] for c in dry["combinations"]] == [1, 2]
    for combination in dry["combinations"]:
        assert re.search(
            rf"{combination['#']}\s*│\s*{combination['label']}\s*│\s*{combination['x']}", table
        )
    made = as_json("sweep", "chain.toml", cwd=tmp_path)
    assert made["grown"] is False and made["existing"] == 0
    study = Path(made["path"])
    assert (
        json.loads((tmp_path / study / SETTINGS.STUDY_METADATA_FILE).read_text())["study_id"]
        == (made["study_id"])
    )
    for group in made["task_groups"]:
        [task] = group["tasks"]
        assert meta(next((tmp_path / study).glob(f"*/{task}")))["label"] == group["label"]
    again = as_json("sweep", "chain.toml", cwd=tmp_path)
    assert again["grown"] is True and again["existing"] == 2 and again["task_groups"] == []


@pytest.mark.slow
def test_workflow_show_and_advance_json(tmp_path: Path) -> None:
    (tmp_path / "chain.toml").write_text(SPEC)
    ok("sweep", "chain.toml", cwd=tmp_path)
    assert run("submit", "chain", "--wait", cwd=tmp_path).returncode == 0
    flow = as_json("workflow", "show", "chain", cwd=tmp_path)
    tree = ok("workflow", "show", "chain", cwd=tmp_path)
    steps = {s["name"]: s for s in flow["steps"]}
    assert set(steps) == {"sweep", "total"}
    assert steps["total"]["after"] == [steps["sweep"]["id"]]
    assert steps["sweep"]["next"] == [steps["total"]["id"]]
    for name, step in steps.items():
        shown = step["expected"] or step["task_groups"]
        assert f"{name} {step['progression']} {step['done']}/{shown} done" in tree
    assert steps["sweep"]["done"] == 2

    first = next((tmp_path / "chain").glob("*/*/" + SETTINGS.TASK_METADATA_FILE)).parent
    moved = as_json("advance", first, cwd=tmp_path)  # the task script advanced it already
    assert moved["recorded"] is False
    assert moved["created"] == []
    text = ok("advance", first, cwd=tmp_path)
    for path in moved["existing"]:
        assert f"already created: {Path(path).relative_to(tmp_path)}" in text


def test_harvest_json(finished: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root, _ = finished
    done = run("harvest", root, "-o", tmp_path / "a.json", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert not BAR.search(done.stderr)
    assert summary["archive"] == str(tmp_path / "a.json")
    assert (summary["tasks"], summary["states"]) == (2, {"failed": 1, "success": 1})
    archived = (tmp_path / "a.json").read_text()
    assert archived.count('"task_id"') >= 2
    text = ok("harvest", root, "-o", tmp_path / "a.json", cwd=tmp_path)
    assert text.startswith("2 task(s) archived to a.json (1 failed, 1 success)")
    again = as_json("harvest", root, "-o", tmp_path / "a.json", "--state", "success", cwd=tmp_path)
    assert (again["tasks"], again["left_out"], again["unchanged"]) == (1, 1, 2)


def test_sketch_study_json(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds")
    tool = tmp_path / "tool.py"
    tool.write_text(SMART_TOOL)
    made = as_json(
        "sketch", tool, dataset_path(dataset), "out", "-n", "2", "--study", "st", cwd=tmp_path
    )
    assert Path(made.pop("study")) == (tmp_path / "st").resolve()
    assert made == {"script": None, "tasks": 2, "items": 5}
    assert len(list((tmp_path / "st").rglob(SETTINGS.TASK_METADATA_FILE))) == 2
    script = as_json("sketch", tool, dataset_path(dataset), "out", "-n", "2", cwd=tmp_path)
    assert script["study"] is None and script["tasks"] == 2
    assert script["script"] == ok(
        "sketch", tool, dataset_path(dataset), "out", "-n", "2", cwd=tmp_path
    )


# -- output that scales, on a terminal of any width -------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study of TABLE_ROWS + 5 idle tasks, with long labels."""
    root = tmp_path_factory.mktemp("many")
    groups = [
        TaskGroup.from_task(
            Task(
                task_metadata=TaskMetadata(label=f"relax-copper-surface-{i:03d}"),
                task_inputs=TaskInputs(command=f"python calc.py --structure s{i}.traj --ecut 500"),
            )
        )
        for i in range(TABLE_ROWS + 5)
    ]
    Study(name="many", task_groups=groups).to_directory(
        root, study_template="{name}", task_group_template="{label}"
    )
    return root


def test_list_shows_the_first_rows_unless_all(many: Path) -> None:
    total = TABLE_ROWS + 5
    text = ok("list", cwd=many)
    assert text.count("│ idle ") == TABLE_ROWS
    assert "... and 5 more task(s): --all shows every one" in text
    assert f"by state: idle {total}" in text
    assert ok("list", "--all", cwd=many).count("│ idle ") == total
    assert len(ok("list", "--json", cwd=many).splitlines()) == total


def test_list_fits_one_line_per_task_in_80_columns(many: Path) -> None:
    text = ok("list", "--all", cwd=many / "many", env={"COLUMNS": "80"})
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    ids = [
        meta(p.parent)["task_id"]
        for p in (many / "many").glob("*/*/" + SETTINGS.TASK_METADATA_FILE)
    ]
    for task_id in ids:
        [line] = [line for line in lines if task_id in line]  # one line, the id whole
        assert " idle " in line
        assert re.search(rf"   relax-copper-surface-\d{{3}}/{task_id}$", line)  # path, from here


def test_list_cuts_a_long_path_at_its_start_in_80_columns(many: Path, tmp_path: Path) -> None:
    """A path longer than the room left keeps its end (task group, id) after an ellipsis."""
    deep = tmp_path / "a-directory-with-a-long-name" / "and-another-one-below-it"
    shutil.copytree(many / "many", deep / "many")
    text = ok("list", "--all", cwd=tmp_path, env={"COLUMNS": "80"})
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    ids = [meta(p.parent)["task_id"] for p in deep.glob("many/*/*/" + SETTINGS.TASK_METADATA_FILE)]
    assert len(ids) == TABLE_ROWS + 5
    for task_id in ids:
        [line] = [line for line in lines if task_id in line]
        path = line.rsplit("   ", 1)[1]
        assert path.startswith("…") and path.endswith(f"/{task_id}"), line
        group = path[1:].split("/")[-2]
        assert re.fullmatch(r"(.*-)?\d{3}", group), line  # what tells the tasks apart is kept
        assert len(line) == 80, line  # cut only as much as needed


def test_submit_dry_run_shows_the_first_rows_unless_all(many: Path) -> None:
    text = ok("submit", "--dry-run", cwd=many)
    assert text.count("│ idle ") == TABLE_ROWS
    assert "... and 5 more task(s)" in text
    assert ok("submit", "--dry-run", "--all", cwd=many).count("│ idle ") == TABLE_ROWS + 5


def test_status_by_task_group_shows_the_first_rows_unless_all(many: Path) -> None:
    text = ok("status", "--by", "task_group", cwd=many)
    assert text.count("│ idle ") == TABLE_ROWS
    assert "... and 5 more task group(s)" in text
    assert ok("status", "--by", "task_group", "--all", cwd=many).count("│ idle ") == TABLE_ROWS + 5


def test_status_json_streams_a_valid_document_for_an_empty_list(tmp_path: Path) -> None:
    _, [task] = study_of_commands(tmp_path, {"only": "true"})
    status = as_json("status", task, cwd=tmp_path)
    assert status["task_groups"] == [] and len(status["tasks"]) == 1
    assert (
        subprocess.run(
            ["python3", "-m", "json.tool"],
            input=ok("status", "--json", cwd=tmp_path),
            text=True,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
