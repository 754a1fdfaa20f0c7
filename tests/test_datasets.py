"""sketchjob and the agent on real dtool datasets, with a real smart tool."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dtoolcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autojob import SETTINGS
from autojob.datasets.batches import open_dataset, select_identifiers, split_batches
from autojob.errors import InputError, MissingFileError
from autojob.harvest import load_archive
from tests.datasets_helpers import (
    AGENT,
    ITEMS,
    SKETCHJOB,
    SMART_TOOL,
    call,
    dataset_path,
    identifier_of,
    make_dataset,
    sha1,
)
from tests.helpers import run


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    path = tmp_path / "tools" / "hash tool.py"
    path.parent.mkdir()
    path.write_text(SMART_TOOL)
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> dtoolcore.DataSet:
    return make_dataset(tmp_path / "data 'sets'")


# -- batches -----------------------------------------------------------------------


@given(st.lists(st.text(min_size=1), unique=True, max_size=60), st.integers(1, 20))
def test_batches_are_near_equal_and_keep_every_item(items: list[str], n: int) -> None:
    batches = split_batches(items, n)
    assert [i for batch in batches for i in batch] == items
    assert len(batches) == min(n, len(items))
    if batches:
        sizes = [len(batch) for batch in batches]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_zero_batches_are_refused() -> None:
    with pytest.raises(InputError, match="--nchunks"):
        split_batches(["a"], 0)


def test_overlay_and_annotation_filters(dataset: dtoolcore.DataSet) -> None:
    odd = select_identifiers(dataset, "odd")
    relpaths = sorted(dataset.item_properties(i)["relpath"] for i in odd)
    assert relpaths == ["a/one.txt", "b/c/three.txt", "five.txt"]
    chosen = [identifier_of(dataset, "a/two.txt"), identifier_of(dataset, "five.txt")]
    dataset.put_annotation("chosen", chosen)
    assert select_identifiers(dataset, "chosen") == sorted(chosen)
    dataset.put_annotation("flags", {chosen[0]: True, chosen[1]: False})
    assert select_identifiers(dataset, "flags") == [chosen[0]]
    assert select_identifiers(dataset) == sorted(dataset.identifiers)


def test_bad_filters_are_refused(dataset: dtoolcore.DataSet) -> None:
    with pytest.raises(InputError, match=r"no overlay or annotation named 'nope' \(it has: odd\)"):
        select_identifiers(dataset, "nope")
    dataset.put_overlay("sizes", dict.fromkeys(dataset.identifiers, 3))
    with pytest.raises(InputError, match="not a boolean"):
        select_identifiers(dataset, "sizes")
    dataset.put_annotation("bad", {"x": "yes"})
    with pytest.raises(InputError, match="neither a list"):
        select_identifiers(dataset, "bad")


def test_open_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="dataset not found"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(InputError, match="not a frozen dtool dataset"):
        open_dataset(tmp_path)


# -- the generated bash script, run for real ------------------------------------------


def test_sketch_script_runs_every_item_with_provenance(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet
) -> None:
    out = tmp_path / "out 'root'"
    sketch = call(SKETCHJOB, tool, dataset_path(dataset), out, "-n", "2", cwd=tmp_path)
    assert sketch.returncode == 0, sketch.stderr
    script = sketch.stdout
    assert script.startswith("#!/usr/bin/env bash\n")
    assert script.count("--tool_path=") == 2 and script.count("--output_root=") == 2
    job = tmp_path / "job.sh"
    job.write_text(script)
    result = subprocess.run(
        ["bash", str(job)], capture_output=True, text=True, cwd="/", check=False
    )
    assert result.returncode == 0, result.stderr
    for relpath, content in ITEMS.items():
        assert (out / relpath).read_text() == sha1(content)
    tool_hash = hashlib.sha256(tool.read_bytes()).hexdigest()
    for identifier in dataset.identifiers:
        record = json.loads((out / SETTINGS.PROVENANCE_DIR / f"{identifier}.json").read_text())
        props = dataset.item_properties(identifier)
        assert record["identifier"] == identifier
        assert record["dataset_uuid"] == dataset.uuid and record["dataset_uri"] == dataset.uri
        assert record["item_hash"] == props["hash"] and record["relpath"] == props["relpath"]
        assert record["tool_path"] == str(tool) and record["tool_sha256"] == tool_hash
        assert record["exit_code"] == 0 and record["started"] <= record["ended"]
        assert record["output_path"] == str(out / props["relpath"])


def test_overlay_filter_in_the_sketch(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet
) -> None:
    out = tmp_path / "out"
    sketch = call(
        SKETCHJOB, tool, dataset_path(dataset), out, "--overlay-filter", "odd", cwd=tmp_path
    )
    assert sketch.returncode == 0, sketch.stderr
    result = subprocess.run(
        ["bash", "-c", sketch.stdout], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.txt"))
    assert written == ["a/one.txt", "b/c/three.txt", "five.txt"]


def test_a_failing_item_is_reported_and_the_script_fails(tmp_path: Path, tool: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", {**ITEMS, "b/bad.txt": "fail here"})
    bad = identifier_of(dataset, "b/bad.txt")
    out = tmp_path / "out"
    sketch = call(SKETCHJOB, tool, dataset_path(dataset), out, "-n", "3", cwd=tmp_path)
    result = subprocess.run(
        ["bash", "-c", sketch.stdout], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert f"failed item {bad} (b/bad.txt)" in result.stderr
    assert f"cannot hash item {bad}: it says fail" in result.stderr
    for relpath, content in ITEMS.items():  # every other item still ran
        assert (out / relpath).read_text() == sha1(content)
    record = json.loads((out / SETTINGS.PROVENANCE_DIR / f"{bad}.json").read_text())
    assert record["exit_code"] == 3 and "it says fail" in record["stderr_tail"]


def test_a_rerun_skips_complete_items(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet
) -> None:
    out = tmp_path / "out"
    args = [
        f"--tool_path={tool}",
        f"--input_dataset_path={dataset_path(dataset)}",
        f"--output_root={out}",
    ]
    first = call(AGENT, *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "5 run, 0 skipped" in first.stderr
    victim = out / "a" / "two.txt"
    victim.unlink()  # an output gone: that item is no longer complete
    second = call(AGENT, *args, cwd=tmp_path)
    assert "1 run, 4 skipped" in second.stderr
    assert victim.read_text() == sha1("2")
    tool.write_text(SMART_TOOL + "\n# changed\n")  # a new tool: everything again
    third = call(AGENT, *args, cwd=tmp_path)
    assert "5 run, 0 skipped" in third.stderr


@pytest.mark.parametrize("mode", [["--jobs", "3"], ["--preload"], ["--preload", "--jobs", "2"]])
def test_parallel_and_preload_give_the_same_outputs(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet, mode: list[str]
) -> None:
    dataset_with_failure = make_dataset(tmp_path / "ds", {**ITEMS, "bad.txt": "fail"})
    out = tmp_path / "out"
    result = call(
        AGENT,
        f"--tool_path={tool}",
        f"--input_dataset_path={dataset_path(dataset_with_failure)}",
        f"--output_root={out}",
        *mode,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "6 run, 0 skipped (complete), 1 failed" in result.stderr
    assert "it says fail" in result.stderr
    for relpath, content in ITEMS.items():
        assert (out / relpath).read_text() == sha1(content)


ARGV_TOOL = """\
import json, os, sys
out = sys.argv[sys.argv.index("--output-path") + 1]
with open(out, "w") as stream:
    json.dump({"argv": sys.argv, "name": __name__, "path0": sys.path[0], "file": __file__}, stream)
if "exit" in out:
    sys.exit("leaving with a message")
"""


def test_preload_runs_the_tool_as_a_script_with_its_own_argv(
    tmp_path: Path, dataset: dtoolcore.DataSet
) -> None:
    tool = tmp_path / "argv_tool.py"
    tool.write_text(ARGV_TOOL)
    seen = {}
    for mode in ("plain", "preload"):
        out = tmp_path / mode
        extra = ["--preload"] if mode == "preload" else []
        result = call(
            AGENT,
            f"--tool_path={tool}",
            f"--input_dataset_path={dataset_path(dataset)}",
            f"--output_root={out}",
            *extra,
            identifier_of(dataset, "five.txt"),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        seen[mode] = json.loads((out / "five.txt").read_text())
    plain, preload = seen["plain"], seen["preload"]
    assert preload["name"] == plain["name"] == "__main__"
    assert preload["path0"] == plain["path0"] == str(tmp_path)
    assert preload["file"] == plain["file"]
    assert preload["argv"][1:] == [
        a.replace(str(tmp_path / "plain"), str(tmp_path / "preload")) for a in plain["argv"][1:]
    ]
    assert preload["argv"][0] == plain["argv"][0] == str(tool)


def test_preload_reports_sys_exit_messages(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", {"exit.txt": "x"})
    tool = tmp_path / "argv_tool.py"
    tool.write_text(ARGV_TOOL)
    result = call(
        AGENT,
        f"--tool_path={tool}",
        f"--input_dataset_path={dataset_path(dataset)}",
        f"--output_root={tmp_path / 'out'}",
        "--preload",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "exited with status 1" in result.stderr and "leaving with a message" in result.stderr


# -- errors before anything runs --------------------------------------------------------


def test_errors_before_anything_runs(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet
) -> None:
    out = tmp_path / "out"
    ds = dataset_path(dataset)
    cases: list[tuple[Path, list[str | Path], str]] = [
        (
            AGENT,
            [f"--tool_path={tool}", f"--input_dataset_path={ds}", f"--output_root={out}", "nope"],
            "1 identifier(s) not in the dataset: nope",
        ),
        (
            AGENT,
            [
                f"--tool_path={tool}",
                f"--input_dataset_path={tmp_path / 'x'}",
                f"--output_root={out}",
            ],
            "dataset not found",
        ),
        (
            AGENT,
            [
                f"--tool_path={tmp_path / 'no.py'}",
                f"--input_dataset_path={ds}",
                f"--output_root={out}",
            ],
            "tool not found",
        ),
        (SKETCHJOB, [tool, ds, out, "-b", "docker"], "the docker backend needs an image"),
        (SKETCHJOB, [tool, ds, out, "-b", "singularity"], "the singularity backend needs an image"),
        (SKETCHJOB, [tmp_path / "no.py", ds, out], "tool not found"),
        (SKETCHJOB, [tool, tmp_path / "x", out], "dataset not found"),
        (SKETCHJOB, [tool, ds, out, "--overlay-filter", "nope"], "no overlay or annotation"),
        (SKETCHJOB, [tool, ds, out, "--sbatch", "time=25:61:00"], "field '--sbatch time'"),
        (SKETCHJOB, [tool, ds, out, "--sbatch", "array=0-3"], "field '--sbatch array'"),
    ]
    for command, args, message in cases:
        result = call(command, *args, cwd=tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
        assert not out.exists()


def test_an_item_relpath_leaving_the_output_root_is_refused(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet
) -> None:
    manifest = dataset_path(dataset) / ".dtool" / "manifest.json"
    data = json.loads(manifest.read_text())
    victim = identifier_of(dataset, "a/one.txt")
    out = tmp_path / "out"
    for relpath in ("../../escaped.txt", "/tmp/abs.txt", f"{SETTINGS.PROVENANCE_DIR}/x.json"):
        data["items"][victim]["relpath"] = relpath
        manifest.write_text(json.dumps(data))
        attempts: list[tuple[Path, list[str | Path]]] = [
            (
                AGENT,
                [
                    f"--tool_path={tool}",
                    f"--input_dataset_path={dataset_path(dataset)}",
                    f"--output_root={out}",
                ],
            ),
            (SKETCHJOB, [tool, dataset_path(dataset), out]),
        ]
        for command, args in attempts:
            result = call(command, *args, cwd=tmp_path)
            assert result.returncode == 1
            assert f"item {victim} has the relpath {relpath!r}" in result.stderr
            assert not out.exists()
    assert not (tmp_path / "escaped.txt").exists()


# -- CWL ---------------------------------------------------------------------------------

SHA1SUM_CWL = """\
cwlVersion: v1.0
class: CommandLineTool
baseCommand: sha1sum
inputs:
  input_file:
    type: File
    inputBinding: { position: 1 }
  output_file:
    type: string
outputs:
  sha1: stdout
stdout: $(inputs.output_file)
"""


def test_cwl_backend_runs_cwltool(tmp_path: Path, dataset: dtoolcore.DataSet) -> None:
    pytest.importorskip("cwltool")
    if shutil.which("sha1sum") is None:
        pytest.skip("sha1sum is not installed")
    tool = tmp_path / "sha1sum.cwl"
    tool.write_text(SHA1SUM_CWL)
    out = tmp_path / "out"
    sketch = call(
        SKETCHJOB, tool, dataset_path(dataset), out, "--cwl-backend", "-n", "2", cwd=tmp_path
    )
    assert sketch.returncode == 0, sketch.stderr
    assert sketch.stdout.count("--cwl-backend") == 2
    result = subprocess.run(
        ["bash", "-c", sketch.stdout], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # cwltool's output object is not printed
    for relpath, content in ITEMS.items():
        assert (out / relpath).read_text().split()[0] == sha1(content).strip()
    record = json.loads(
        (out / SETTINGS.PROVENANCE_DIR / f"{identifier_of(dataset, 'five.txt')}.json").read_text()
    )
    assert record["backend"] == "cwl" and record["exit_code"] == 0


def test_cwl_failure_is_reported(tmp_path: Path, dataset: dtoolcore.DataSet) -> None:
    pytest.importorskip("cwltool")
    tool = tmp_path / "broken.cwl"
    tool.write_text(SHA1SUM_CWL.replace("baseCommand: sha1sum", "baseCommand: [sh, -c, 'exit 4']"))
    result = call(
        AGENT,
        "--cwl-backend",
        f"--tool_path={tool}",
        f"--input_dataset_path={dataset_path(dataset)}",
        f"--output_root={tmp_path / 'out'}",
        identifier_of(dataset, "five.txt"),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert f"failed item {identifier_of(dataset, 'five.txt')} (five.txt)" in result.stderr


# -- rendered scripts and shellcheck -----------------------------------------------------


@pytest.mark.skipif(
    shutil.which("shellcheck") is None and not os.environ.get("CI"),
    reason="shellcheck not installed (scripts/test.sh installs it)",
)
@pytest.mark.parametrize("backend", ["bash", "docker", "singularity"])
@pytest.mark.parametrize("wrapper", ["bash", "slurm-single", "slurm-multiple"])
def test_every_script_passes_shellcheck(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet, backend: str, wrapper: str
) -> None:
    args: list[str | Path] = [
        tool,
        dataset_path(dataset),
        tmp_path / "out $(x) `y`",
        "-n",
        "3",
        "-s",
        wrapper,
        "-b",
        backend,
    ]
    if backend != "bash":
        args += ["-i", "registry.example/hash:1.0"]
    args += ["--sbatch", "job-name=it's $(x)", "--sbatch", "time=00:10:00"]
    sketch = call(SKETCHJOB, *args, cwd=tmp_path)
    assert sketch.returncode == 0, sketch.stderr
    script = tmp_path / "job.sh"
    script.write_text(sketch.stdout)
    checked = subprocess.run(
        ["shellcheck", "--shell=bash", str(script)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout
    if backend != "bash":
        assert sketch.stdout.count("registry.example/hash:1.0") == 3
        assert sketch.stdout.count("    _jobarchitect_agent \\\n") == 3
    if wrapper == "slurm-multiple":
        assert "#SBATCH --array=0-2\n" in sketch.stdout
    if wrapper != "bash":
        assert "#SBATCH --time=00:10:00\n" in sketch.stdout


def test_autojob_sketch_is_sketchjob(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet
) -> None:
    args: list[str | Path] = [tool, dataset_path(dataset), tmp_path / "out", "-n", "2"]
    assert run("sketch", *args, cwd=tmp_path).stdout == call(SKETCHJOB, *args, cwd=tmp_path).stdout


# -- freezing the outputs ------------------------------------------------------------------


def test_freeze_output_makes_a_dataset_naming_input_and_tool(
    tmp_path: Path, tool: Path, dataset: dtoolcore.DataSet
) -> None:
    out = tmp_path / "out"
    freeze = (
        AGENT,
        f"--tool_path={tool}",
        f"--input_dataset_path={dataset_path(dataset)}",
        f"--output_root={out}",
        "--freeze-output",
        "hashes",
    )
    result = call(*freeze, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frozen = dtoolcore.DataSet.from_uri(str(tmp_path / "hashes"))
    relpaths = {frozen.item_properties(i)["relpath"] for i in frozen.identifiers}
    assert set(ITEMS) <= relpaths
    assert {f"{SETTINGS.PROVENANCE_DIR}/{i}.json" for i in dataset.identifiers} <= relpaths
    readme = frozen.get_readme_content()
    assert dataset.uuid in readme and dataset.name in readme and str(tool) in readme
    again = call(*freeze, cwd=tmp_path)  # the same again: the dataset exists
    assert again.returncode == 1 and "exists already" in again.stderr


# -- a sketch as a study, run by the local executor ----------------------------------------


def test_sketch_as_a_study_runs_with_the_local_executor(tmp_path: Path, tool: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", {**ITEMS, "z/bad.txt": "fail"})
    out = tmp_path / "out"
    study = tmp_path / "hash study"
    made = run(
        "sketch", tool, dataset_path(dataset), out, "-n", "2", "--study", study,
        "--sbatch", "time=00:10:00", cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout == ""
    tasks = sorted(p.parent for p in study.rglob(SETTINGS.TASK_METADATA_FILE))
    assert len(tasks) == 2
    inputs = json.loads((tasks[0] / SETTINGS.INPUTS_FILE).read_text())
    assert inputs["scheduler_inputs"] == {"time": "00:10:00"}
    assert "--record=outputs.json" in inputs["task_inputs"]["command"]
    submitted = run("submit", study, "--wait", cwd=tmp_path)
    assert submitted.returncode == 1  # the batch holding z/bad.txt failed
    status = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    assert status["counts"] == {"success": 1, "failed": 1}
    seen = set()
    for task in tasks:
        outputs = json.loads((task / SETTINGS.OUTPUTS_FILE).read_text())
        assert outputs["dataset_uuid"] == dataset.uuid and outputs["tool_path"] == str(tool)
        assert outputs["n_items"] == len(outputs["items"]) == 3
        seen |= {item["identifier"] for item in outputs["items"]}
        bad = [item["relpath"] for item in outputs["items"] if item["exit_code"] != 0]
        assert outputs["n_failed"] == len(bad) and bad in ([], ["z/bad.txt"])
    assert seen == set(dataset.identifiers)
    for relpath, content in ITEMS.items():
        assert (out / relpath).read_text() == sha1(content)
    # fix the tool and run the failed task again: only it runs, and succeeds
    tool.write_text(SMART_TOOL.replace('data.startswith(b"fail")', "False"))
    again = run("submit", study, "--only", "failed", "--wait", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    status = json.loads(run("status", study, "--json", cwd=tmp_path).stdout)
    assert status["counts"] == {"success": 2}
    assert (out / "z" / "bad.txt").read_text() == sha1("fail")
    # harvest collects the provenance of every item, with the earlier failed run
    archive = tmp_path / "archive.json"
    harvested = run("harvest", study, "--output", archive, cwd=tmp_path)
    assert harvested.returncode == 0, harvested.stderr
    records = load_archive(archive)
    assert sorted(r.state_name for r in records) == ["success", "success"]
    items = [item for r in records for item in (r.outputs or {})["items"]]
    assert {item["identifier"] for item in items} == set(dataset.identifiers)
    for item in items:
        assert item["dataset_uuid"] == dataset.uuid and item["exit_code"] == 0
        assert item["item_hash"] and item["tool_sha256"] and item["dataset_uri"]
        assert item["started"] <= item["ended"]
    assert sum(len(r.history) for r in records) == 1  # the failed run, kept


def test_preloading_answers_only_for_its_own_dataset(tmp_path: Path) -> None:
    first = make_dataset(tmp_path / "one", {"x.txt": "1"})
    second = make_dataset(tmp_path / "two", {"y.txt": "2"})
    code = (
        "import sys, dtoolcore\n"
        "from autojob.datasets.runners import preload_dataset\n"
        "first = dtoolcore.DataSet.from_uri(sys.argv[1])\n"
        "preload_dataset(sys.argv[1], first)\n"
        "preload_dataset(sys.argv[1], first)  # twice: still one layer\n"
        "assert dtoolcore.DataSet.from_uri(sys.argv[1]) is first\n"
        "other = dtoolcore.DataSet.from_uri(sys.argv[2])\n"
        "assert other is not first and other.uuid != first.uuid\n"
        "print(other.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(dataset_path(first)), str(dataset_path(second))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{second.name}\n"
