"""sketchjob's SLURM wrappers, submitted to the real single-node cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from autojob import SETTINGS
from autojob.datasets.batches import split_batches
from tests.cluster_helpers import ACTIVE
from tests.cluster_helpers import cluster_command as slurm
from tests.datasets_helpers import (
    ITEMS,
    SKETCHJOB,
    SMART_TOOL,
    call,
    dataset_path,
    identifier_of,
    make_dataset,
    sha1,
)
from tests.helpers import wait_until

pytestmark = pytest.mark.slurm

# jobs of this session only: a controller that lost its state hands job ids out
# again, and accounting keeps the older jobs that had them
SINCE = "--starttime=" + time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 300))


def finished_elements(job_id: str, count: int, timeout: float = 180) -> dict[str, tuple[str, str]]:
    """``{job id: (state, exit code)}`` of a job's ``count`` elements once all ended."""
    rows: dict[str, tuple[str, str]] = {}

    def finished() -> dict[str, tuple[str, str]] | None:
        nonlocal rows
        lines = slurm(
            "sacct", "-j", job_id, "-X", "--parsable2", "--noheader", SINCE,
            "--format=JobID,State,ExitCode",
        ).splitlines()  # fmt: skip
        rows = {fields[0]: (fields[1], fields[2]) for fields in (line.split("|") for line in lines)}
        done = {key: value for key, value in rows.items() if value[0] not in ACTIVE}
        # an array is listed as one pending line (JOBID_[0-1]) until its elements start
        return done if len(done) == count and len(rows) == count else None

    return wait_until(
        finished, timeout, f"job {job_id} to finish", details=lambda: rows, interval=0.5
    )


def submit(script_text: str, where: Path) -> str:
    script = where / "job.sh"
    script.write_text(script_text)
    out = where / "slurm-%A_%a.out"
    submitted = slurm("sbatch", "--parsable", f"--output={out}", "--time=5", str(script), cwd=where)
    return submitted.split(";")[0]


def test_slurm_single_runs_every_batch_in_one_job(tmp_path: Path) -> None:
    tool = tmp_path / "hash tool.py"
    tool.write_text(SMART_TOOL)
    dataset = make_dataset(tmp_path / "data 'sets'")
    out = tmp_path / "out root"
    sketch = call(
        SKETCHJOB, tool, dataset_path(dataset), out, "-n", "3", "-s", "slurm-single",
        "--sbatch", "partition=short", "--sbatch", "job-name=hash items", cwd=tmp_path,
    )  # fmt: skip
    assert sketch.returncode == 0, sketch.stderr
    assert sketch.stdout.count("--tool_path=") == 3 and "#SBATCH --array" not in sketch.stdout
    job_id = submit(sketch.stdout, tmp_path)
    assert finished_elements(job_id, 1) == {job_id: ("COMPLETED", "0:0")}
    # accounting fills a job's record in as its messages arrive: ask until whole
    fields = ""

    def whole() -> bool:
        nonlocal fields
        fields = slurm("sacct", "-j", job_id, "-X", "--parsable2", "--noheader", SINCE,
                       "--format=Partition,JobName")  # fmt: skip
        return fields == "short|hash items"

    wait_until(whole, 60, "the job's partition and name", details=lambda: fields, interval=1)
    for relpath, content in ITEMS.items():
        assert (out / relpath).read_text() == sha1(content)


def test_slurm_multiple_runs_a_job_per_batch_and_fails_the_bad_one(tmp_path: Path) -> None:
    tool = tmp_path / "hash tool.py"
    tool.write_text(SMART_TOOL)
    dataset = make_dataset(tmp_path / "ds", {**ITEMS, "z/bad.txt": "fail"})
    bad = identifier_of(dataset, "z/bad.txt")
    batches = split_batches(sorted(dataset.identifiers), 2)
    bad_batch = next(index for index, batch in enumerate(batches) if bad in batch)
    out = tmp_path / "out"
    sketch = call(
        SKETCHJOB, tool, dataset_path(dataset), out, "-n", "2", "-s", "slurm-multiple", cwd=tmp_path
    )
    assert sketch.returncode == 0, sketch.stderr
    assert "#SBATCH --array=0-1\n" in sketch.stdout
    job_id = submit(sketch.stdout, tmp_path)
    elements = finished_elements(job_id, 2)
    assert elements[f"{job_id}_{bad_batch}"] == ("FAILED", "1:0")
    assert elements[f"{job_id}_{1 - bad_batch}"] == ("COMPLETED", "0:0")
    for relpath, content in ITEMS.items():  # the bad item did not stop the others
        assert (out / relpath).read_text() == sha1(content)
    log = (tmp_path / f"slurm-{job_id}_{bad_batch}.out").read_text()
    assert f"failed item {bad} (z/bad.txt)" in log
    record = json.loads((out / SETTINGS.PROVENANCE_DIR / f"{bad}.json").read_text())
    assert record["exit_code"] == 3
