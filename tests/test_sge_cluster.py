"""The single-host Grid Engine cluster that scripts/sge-up.sh starts is up.

A job runs as root (min_uid 0), through its own #! line, and qacct records it. The
conftest skips these tests when ``qconf`` does not answer (and fails them when ``CI``
is set).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cluster_helpers import cluster_command as sge
from tests.helpers import wait_until

pytestmark = pytest.mark.sge


def accounting(job_id: str, timeout: float = 60) -> dict[str, str]:
    """The job's qacct fields once it has finished (waits up to ``timeout`` s)."""

    def finished() -> dict[str, str] | None:
        result = subprocess.run(
            ["qacct", "-j", job_id], capture_output=True, text=True, timeout=60, check=False
        )
        pairs = [line.split(None, 1) for line in result.stdout.splitlines()]
        fields = {p[0]: p[1].strip() for p in pairs if len(p) == 2}
        return fields if "exit_status" in fields else None

    return wait_until(finished, timeout, f"qacct to record job {job_id}", interval=0.5)


def test_a_job_runs_and_qacct_records_it(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text('#!/bin/bash\necho "hello from $QUEUE on $BASH_VERSION"\n')
    out = tmp_path / "out.txt"
    job_id = sge(
        "qsub", "-terse", "-N", "autojob-cluster-check", "-o", str(out), "-j", "y",
        "-l", "h_rt=60", str(script),
        cwd=tmp_path,
    )  # fmt: skip
    assert job_id.isdigit(), job_id
    fields = accounting(job_id)
    assert fields["exit_status"].split()[0] == "0"
    assert fields["failed"].split()[0] == "0"
    assert fields["hostname"] == "localhost"
    assert fields["qname"] == "all.q"
    assert out.read_text().startswith("hello from all.q on ")  # bash, from the #! line


def test_the_queue_has_every_core_and_no_load_alarm() -> None:
    queue = sge("qconf", "-sq", "all.q")
    values = dict(line.split(None, 1) for line in queue.splitlines() if " " in line)
    assert values["slots"].strip() == str(os.cpu_count())
    assert values["load_thresholds"].strip() == "NONE"
    assert "smp" in values["pe_list"]
