"""Grid Engine's side of scheduler inputs and accounting, without a cluster.

Scheduler inputs become qsub options (or are refused by name), ``#$`` lines are
read back, qacct's records become states and causes. The same paths run on the
real cluster in tests/test_sge.py.
"""

from __future__ import annotations

import pytest

from autojob import SETTINGS
from autojob.errors import InputError
from autojob.execution.sge.accounting import _from_fields, _qdel_words
from autojob.execution.sge.resources import job_name, qsub_options
from autojob.scheduler import SchedulerInputs
from autojob.sge_directives import read_sge_options
from autojob.store.state import State


def options(**inputs: object) -> list[str]:
    return [w for option in qsub_options(SchedulerInputs.model_validate(inputs)) for w in option]


def test_each_declared_input_has_its_qsub_option() -> None:
    assert options(time="1-02:03:04") == ["-l", "h_rt=26:03:04"]
    assert options(time="30") == ["-l", "h_rt=0:30:00"]  # minutes, as sbatch reads it
    assert options(mem="3G", cpus_per_task=2, ntasks=2) == [
        *("-l", "h_vmem=768M", "-pe", "smp", "4"),
    ]  # memory per slot: Grid Engine's limits are per slot
    assert options(mem_per_cpu=500, cpus_per_task=2) == ["-l", "h_vmem=500M", "-pe", "smp", "2"]
    assert options(partition="a.q,b.q", account="p1", job_name="ignored here") == [
        *("-q", "a.q,b.q", "-A", "p1"),
    ]
    assert options(mail_user="me@x.org", mail_type="BEGIN,END,FAIL") == [
        *("-M", "me@x.org", "-m", "bea"),
    ]
    assert options(mail_type="NONE") == ["-m", "n"]
    assert options(nodes=1) == []
    assert options(dependency="afterany:12:13_4") == ["-hold_jid", "12,13"]


def test_the_memory_resource_and_parallel_environment_are_settings() -> None:
    SETTINGS.SGE_MEMORY_RESOURCE = "mem_free"
    SETTINGS.SGE_PARALLEL_ENVIRONMENT = "threads"
    assert options(mem="1G", cpus_per_task=2) == ["-l", "mem_free=512M", "-pe", "threads", "2"]


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"gres": "gpu:1"}, "scheduler_inputs.gres"),
        ({"exclusive": True}, "scheduler_inputs.exclusive"),
        ({"ntasks_per_node": 2}, "scheduler_inputs.ntasks_per_node"),
        ({"nodes": 2}, "scheduler_inputs.nodes"),
        ({"mail_type": "TIME_LIMIT"}, "scheduler_inputs.mail_type"),
        ({"dependency": "afterok:12"}, "scheduler_inputs.dependency"),
        ({"extra_directives": ["--container-image=ubuntu"]}, "scheduler_inputs.extra_directives"),
        ({"mem": "1G", "mem_per_cpu": "1G"}, "scheduler_inputs.mem"),
    ],
)
def test_inputs_without_an_equivalent_are_refused_by_name(
    inputs: dict[str, object], named: str
) -> None:
    with pytest.raises(InputError) as info:
        options(**inputs)
    assert info.value.field == named
    assert named in str(info.value)


def test_job_names_are_ones_qsub_accepts() -> None:
    assert job_name("a b:c/d@e") == "a_b_c_d_e"
    assert job_name("1st") == "j1st"
    assert job_name("") == "autojob"


def test_directive_lines_are_read_back_as_scheduler_inputs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = (
        "#!/bin/bash\n"
        "#$ -N calc -q long.q -A proj\n"
        "#$ -l h_rt=01:30:00,h_vmem=2G\n"
        "#$ -pe smp 4 -cwd -j y -o out.log\n"
        "#$ -M me@x.org -m bea\n"
        "#$ -l gpu=1\n"
        "\n"
        "echo hi\n"
        "#$ -q ignored.q\n"
    )
    read = read_sge_options(script, source="run.sh")
    assert read == {
        "job_name": "calc",
        "partition": "long.q",
        "account": "proj",
        "time": "01:30:00",
        "mem_per_cpu": "2G",
        "cpus_per_task": 4,
        "mail_user": "me@x.org",
        "mail_type": "BEGIN,END,FAIL",
    }
    inputs = SchedulerInputs.model_validate(read)
    assert options(**inputs.model_dump(exclude_none=True)) == [
        *("-l", "h_rt=1:30:00,h_vmem=2048M", "-pe", "smp", "4", "-q", "long.q", "-A", "proj"),
        *("-M", "me@x.org", "-m", "bea"),
    ]
    assert "run.sh, line 6: #$ -l gpu=1 has no scheduler input" in caplog.text


def qacct_record(**fields: str) -> dict[str, str]:
    base = {
        "jobnumber": "7",
        "taskid": "2",
        "hostname": "localhost",
        "failed": "0",
        "exit_status": "0",
        "ru_wallclock": "3s",
        "maxvmem": "4.8MB",
        "category": "-l h_rt=60,h_vmem=100M -pe smp 2",
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, (State.SUCCESS, None)),
        ({"exit_status": "3"}, (State.FAILED, None)),
        ({"failed": "37  : qmaster enforced h_rt", "exit_status": "137", "ru_wallclock": "61s"},
         (State.TIMEOUT, "timeout")),
        ({"failed": "37  : qmaster enforced h_vmem", "exit_status": "137"}, (State.OOM, "oom")),
        ({"exit_status": "1", "maxvmem": "99.5MB"}, (State.OOM, "oom")),
        ({"failed": "100 : assumedly after job", "exit_status": "137"},
         (State.CANCELLED, "cancelled")),
        ({"failed": "1   : assumedly before job", "exit_status": "0"},
         (State.FAILED, "node_fail")),
    ],
)  # fmt: skip
def test_qacct_records_become_states_and_causes(
    fields: dict[str, str], expected: tuple[State, str | None]
) -> None:
    job = _from_fields(qacct_record(**fields))
    assert job.job_id == "7.2"
    assert job.state == expected


def test_a_job_that_is_not_an_array_keeps_its_plain_id() -> None:
    job = _from_fields(qacct_record(taskid="undefined"))
    assert (job.job_id, job.host, job.wallclock) == ("7", "localhost", 3.0)
    assert job.limits == {"h_rt": "60", "h_vmem": "100M"}


def test_one_qdel_names_each_array_with_its_tasks() -> None:
    assert _qdel_words(["5.1", "5.2", "5.3", "9.4", "9.6", "11"]) == [
        *("11", "5", "-t", "1-3", "9", "-t", "4", "9", "-t", "6"),
    ]
