"""The single-node SLURM cluster that scripts/slurm-up.sh starts is up.

A job runs and slurmdbd records it, so ``sacct`` answers. The conftest skips these
tests when ``sinfo`` does not answer (and fails them when ``CI`` is set).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster_helpers import ACTIVE
from tests.cluster_helpers import cluster_command as slurm
from tests.helpers import wait_until

pytestmark = pytest.mark.slurm


def accounting(job_id: str, timeout: float = 60) -> list[str]:
    """The job's sacct fields once it has finished (waits up to ``timeout`` s).

    SLURM 22.05 quirk: for a second or two after a short job ends, sacct can show
    it COMPLETED with an empty Partition (slurmdbd got the end before the start
    record), so this waits until every field is filled in.
    """
    fields = [""]

    def finished() -> list[str] | None:
        nonlocal fields
        line = slurm(
            "sacct", "-j", job_id, "-X", "--parsable2", "--noheader",
            "--format=State,ExitCode,Elapsed,NodeList,Partition",
        )  # fmt: skip
        fields = line.split("|") if line else [""]
        return fields if fields[0] not in ACTIVE and all(fields) else None

    return wait_until(
        finished,
        timeout,
        f"job {job_id} to finish, every field accounted",
        details=lambda: f"still {fields[0] or 'unknown to sacct'}",
        interval=0.5,
    )


def test_a_job_runs_and_sacct_records_it(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    submitted = slurm(
        "sbatch", "--parsable", "--job-name=autojob-cluster-check", f"--output={out}",
        "--time=5", "--wrap", "echo hello from $SLURM_JOB_PARTITION",
        cwd=tmp_path,
    )  # fmt: skip
    job_id = submitted.split(";")[0]  # --parsable prints JOBID[;CLUSTER]
    assert job_id.isdigit(), submitted
    state, exit_code, elapsed, nodes, partition = accounting(job_id)
    assert (state, exit_code) == ("COMPLETED", "0:0")
    assert elapsed.count(":") == 2  # [DD-[HH:]]MM:SS, here 00:00:0N
    assert nodes == "localhost"
    assert partition == "debug"  # the default partition
    assert out.read_text() == "hello from debug\n"


def test_the_cluster_has_two_partitions_and_a_max_array_size() -> None:
    partitions = slurm("sinfo", "--noheader", "--format=%P").split()
    assert partitions == ["debug*", "short"]  # * marks the default
    config = slurm("scontrol", "show", "config")
    assert any(
        line.split("=")[0].strip() == "MaxArraySize" and line.split("=")[1].strip().isdigit()
        for line in config.splitlines()
    )
