"""Starting and stopping pilots: background processes here, or a scheduler's array jobs.

Pilots of one pool are one array job on a scheduler with arrays (one sbatch
or qsub call however many pilots), each element running the worker; with
``local`` they are detached processes of this machine. Every pilot counts
against the pool's budget (:meth:`Pool.take_budget`) before it is submitted.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock

from autojob import SETTINGS
from autojob.errors import AutojobError, SchedulerError
from autojob.execution.pilots.liveness import Liveness, live_pilots
from autojob.execution.pilots.pool import Pool, local_pilot_alive, pilot_file_name
from autojob.scheduler import SchedulerInputs
from autojob.store.atomic import write_atomic
from autojob.store.state import FINAL_STATES, State, read_record, read_state, this_host

__all__ = [
    "pilot_command",
    "pilot_script",
    "replace_pilot",
    "revive",
    "stop_pilots",
    "submit_pilots",
    "work_left",
]

logger = logging.getLogger(__name__)
SCRIPT = "pilots.sh"
WORKER = "autojob.execution.pilots.worker"
#: the job name of every pilot
JOB_NAME = "autojob-pilot"
#: the folder of a pool naming the pilots replaced already
REPLACED = "replaced"
#: the file of a pool whose tasks had all ended (or gone to others) once none of its
#: pilots lived: it is never revived again
FINISHED = "finished"
_ELEMENT = {
    "slurm": ('"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"', '"${SLURM_ARRAY_TASK_ID}"'),
    "sge": ('"${JOB_ID}.${SGE_TASK_ID}"', '"$((SGE_TASK_ID - 1))"'),
}


def pilot_script(pool: Pool) -> str:
    """The job script of a scheduler's pilots: the worker, named after its element."""
    settings = pool.settings
    pilot_id, index = _ELEMENT[settings.executor]
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            "# Written by autojob: a pilot. Its worker claims tasks of the pool in this",
            "# directory and runs them, each recorded as if it had run alone.",
            f"export AUTOJOB_PILOT_ID={pilot_id} AUTOJOB_PILOT_INDEX={index}",
            f"exec {shlex.quote(settings.python)} -m {WORKER} {shlex.quote(str(pool.dir))}",
            "",
        ]
    )


def pilot_command(pool: Pool, count: int) -> list[str]:
    """The command that submits ``count`` pilots of ``pool`` (local: one pilot's command)."""
    settings = pool.settings
    if settings.executor == "local":
        return [settings.python, "-m", WORKER, str(pool.dir)]
    inputs = SchedulerInputs.model_validate(settings.scheduler)
    script = str(pool.dir / SCRIPT)
    if settings.executor == "slurm":
        directives = [
            f"--{o}" if v is None else f"--{o}={v}"
            for o, v in inputs.directives()
            if o not in ("job-name", "output", "error", "array")
        ]
        return [
            "sbatch", "--parsable", f"--array=0-{count - 1}", f"--job-name={JOB_NAME}",
            f"--output={pool.dir / 'slurm-%A_%a.out'}", "--no-requeue", *directives, script,
        ]  # fmt: skip
    from autojob.execution.sge.resources import qsub_options  # noqa: PLC0415

    options = [word for option in qsub_options(inputs) for word in option]
    return [
        "qsub", "-terse", "-N", JOB_NAME, "-t", f"1-{count}", "-S", "/bin/bash",
        "-wd", str(pool.dir), "-j", "y", "-o", str(pool.dir / "sge-$JOB_ID.$TASK_ID.out"),
        *options, script,
    ]  # fmt: skip


def submit_pilots(pool: Pool, count: int) -> list[str]:
    """Submit up to ``count`` pilots of ``pool``, within its budget; return their job ids.

    Raises:
        SchedulerError: the scheduler refused them (the budget is given back).
    """
    granted = pool.take_budget(count)
    if not granted:
        return []
    try:
        ids = _send(pool, granted)
    except (SchedulerError, OSError):
        pool.give_back(granted)
        raise
    pool.record_submit(ids, granted)
    return ids


def _send(pool: Pool, count: int) -> list[str]:
    executor = pool.settings.executor
    if executor == "local":
        return [_start_local(pool, index) for index in range(count)]
    write_atomic(pool.dir / SCRIPT, pilot_script(pool))
    command = pilot_command(pool, count)
    if executor == "slurm":
        from autojob.execution.slurm.commands import slurm_command  # noqa: PLC0415

        out = slurm_command(command, what="sbatch refused the pilots", cwd=pool.dir)
        return [out.strip().split(";")[0]]
    from autojob.execution.sge.commands import sge_command  # noqa: PLC0415

    out = sge_command(command, what="qsub refused the pilots", cwd=pool.dir)
    return [out.strip().split(".")[0]]


def _start_local(pool: Pool, index: int) -> str:
    """Start one pilot as a detached process; its id (``host-pid``)."""
    log = pool.dir / f"local-{time.strftime('%Y%m%d-%H%M%S')}-{index}.log"
    with open(log, "ab") as stream:
        child = subprocess.Popen(
            pilot_command(pool, 1),
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=stream,
            env={**os.environ, "AUTOJOB_PILOT_INDEX": str(index)},
            start_new_session=True,
        )
    return f"{this_host()}-{child.pid}"


def work_left(pool: Pool) -> bool:
    """Whether a task of the pool is left for its pilots: not ended, and not another's.

    A task queued or running for another executor, or for another pool, is
    not this pool's work (a later submit took it).
    """
    where = str(pool.dir)
    for path, _, _ in pool.tasks():
        state = read_state(path)
        if state.state in FINAL_STATES:
            continue
        if state.state not in (State.QUEUED, State.RUNNING):
            return True
        claim = read_record(path / SETTINGS.QUEUED_FILE) or {}
        if claim.get("pool") == where:
            return True
    return False


def replaced(pool: Pool) -> set[str]:
    """The file names (:func:`pilot_file_name`) of the pilots replaced already."""
    try:
        return set(os.listdir(pool.dir / REPLACED))
    except FileNotFoundError:
        return set()


def replace_pilot(pool: Pool, pilot_id: str) -> None:
    """Submit a pilot in place of ``pilot_id`` (out of time, or dead) if work and budget are left.

    At most once per pilot, whoever asks first: the pilot itself, or any pilot
    that finds it dead (``replaced/`` in the pool keeps the names).
    """
    if pool.cancelled or pilot_file_name(pilot_id) in replaced(pool) or not work_left(pool):
        return
    if not _mark_replaced(pool, pilot_id):
        return  # replaced already
    try:
        ids = submit_pilots(pool, 1)
    except (AutojobError, OSError) as exc:
        logger.error("could not submit the next pilot: %s", exc)
        return
    if ids:
        logger.info("submitted the next pilot: %s", ", ".join(ids))
    else:
        logger.warning("work is left, but the pool's pilot budget is spent: %s", pool.dir)


def _mark_replaced(pool: Pool, pilot_id: str) -> bool:
    """Mark ``pilot_id`` replaced; False when it was already."""
    marks = pool.dir / REPLACED
    marks.mkdir(exist_ok=True)
    try:
        os.close(os.open(marks / pilot_file_name(pilot_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def revive(pool: Pool, *, liveness: Liveness | None = None, ending: str | None = None) -> list[str]:
    """Submit the pool's first number of pilots again if work is left and none lives.

    For a study to finish with no one watching: ``autojob status`` asks, and
    so does each pilot as it ends (``ending``: its id, counted as ended).
    Within the budget; under ``revive.lock``, so two asking at once submit
    once (the second sees the first's pilots pending). Returns the job ids submitted.
    """
    if pool.cancelled or (pool.dir / FINISHED).exists():
        return []
    with FileLock(pool.dir / "revive.lock"):
        live = live_pilots(pool, liveness or Liveness()) - {ending}
        if live:
            return []
        if not work_left(pool):
            write_atomic(pool.dir / FINISHED, json.dumps({"time": time.time()}) + "\n")
            return []
        for record in pool.pilots():  # the new ones stand for every dead one
            _mark_replaced(pool, str(record.get("pilot")))
        ids = submit_pilots(pool, pool.settings.pilots)
    if ids:
        logger.info("work was left and no pilot lived: submitted %s", ", ".join(ids))
    else:
        logger.warning("work is left, but the pool's pilot budget is spent: %s", pool.dir)
    return ids


def stop_pilots(pool: Pool, *, grace: float = 10.0) -> list[str]:
    """Cancel the pool's pilots (the pool is marked cancelled first); what was stopped."""
    pool.cancel()
    executor = pool.settings.executor
    if executor == "local":
        return _stop_local(pool, grace)
    ids = sorted({j for submit in pool.submits() for j in submit.get("job_ids", [])})
    if executor == "slurm":
        from autojob.execution.slurm.accounting import scancel  # noqa: PLC0415

        scancel(ids)
    else:
        from autojob.execution.sge.accounting import qdel  # noqa: PLC0415

        qdel(ids)
    return pool.submitted_pilots()


def _stop_local(pool: Pool, grace: float) -> list[str]:
    now = time.time()
    live = [r for r in pool.pilots() if r.get("host") == this_host() and local_pilot_alive(r, now)]
    for record in live:
        os.kill(int(record["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + grace + 15.0  # the worker's own grace for its tasks
    while any(local_pilot_alive(r, time.time()) for r in live) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [str(r["pilot"]) for r in live]


def python_path() -> str:
    """The interpreter pilots run their worker with: this one."""
    return str(Path(sys.executable))
