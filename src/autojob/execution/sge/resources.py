"""Scheduler inputs as Grid Engine's qsub options, and ``#$`` lines read back.

=================  ==========================================================
scheduler input    qsub option
=================  ==========================================================
``time``           ``-l h_rt=H:MM:SS``
``mem``            ``-l h_vmem=...M`` per slot (the task's memory divided by
                   its slots); the resource is ``SETTINGS.SGE_MEMORY_RESOURCE``
``mem_per_cpu``    the same resource, per slot as given
``cpus_per_task``  ``-pe smp N`` (``SETTINGS.SGE_PARALLEL_ENVIRONMENT``), N the
                   product of ``cpus_per_task`` and ``ntasks``
``ntasks``
``partition``      ``-q queue[,queue...]``
``job_name``       ``-N`` (the array's name when its tasks share one)
``account``        ``-A``
``mail_user``      ``-M``
``mail_type``      ``-m`` (BEGIN ``b``, END ``e``, FAIL and REQUEUE ``a``,
                   ALL ``bea``, NONE ``n``)
``dependency``     ``-hold_jid JOB[,JOB...]`` for ``afterany:JOB[:JOB...]``
                   (Grid Engine releases a held job whatever the exit of the
                   jobs it waits for, so ``afterok`` and others are refused)
=================  ==========================================================

Anything else (``ntasks_per_node``, more than one node, sbatch options and
``extra_directives``) has no Grid Engine equivalent and is refused with an error naming it.
The ``#$`` lines of existing scripts are read back by
:func:`autojob.sge_directives.read_sge_options`.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from autojob import SETTINGS
from autojob.errors import InputError
from autojob.scheduler import SchedulerInputs, memory_mb

__all__ = ["Options", "job_name", "qsub_options", "slots"]

#: qsub options as argument pairs, e.g. (("-l", "h_rt=0:10:00"), ("-pe", "smp 2"))
Options = tuple[tuple[str, ...], ...]
_MAIL = {"NONE": "n", "BEGIN": "b", "END": "e", "FAIL": "a", "REQUEUE": "a", "ALL": "bea"}
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]")
_HINT = "remove it from scheduler_inputs in inputs.json, or submit with --executor slurm"


def _refuse(option: str, why: str) -> InputError:
    return InputError(
        f"scheduler_inputs.{option} {why}: Grid Engine has no equivalent",
        field=f"scheduler_inputs.{option}",
        hint=_HINT,
    )


def slots(inputs: SchedulerInputs) -> int:
    """The cores a task asks for: ``cpus_per_task`` times ``ntasks``."""
    return (inputs.cpus_per_task or 1) * (inputs.ntasks or 1)


def qsub_options(inputs: SchedulerInputs) -> Options:
    """The qsub options of a task's scheduler inputs, but its job name.

    Raises:
        InputError: an input has no Grid Engine equivalent (named in the error).
    """
    _check_supported(inputs)
    options: list[tuple[str, ...]] = []
    resources = []
    limit = inputs.time_limit()
    if limit is not None:
        resources.append(f"h_rt={_sge_time(limit)}")
    memory = _memory_per_slot(inputs)
    if memory is not None:
        resources.append(f"{SETTINGS.SGE_MEMORY_RESOURCE}={memory}M")
    if resources:
        options.append(("-l", ",".join(resources)))
    if slots(inputs) > 1:
        options.append(("-pe", SETTINGS.SGE_PARALLEL_ENVIRONMENT, str(slots(inputs))))
    if inputs.partition:
        options.append(("-q", ",".join(inputs.partition)))
    if inputs.account:
        options.append(("-A", inputs.account))
    if inputs.mail_user:
        options.append(("-M", inputs.mail_user))
    hold = _hold(inputs)
    if hold:
        options.append(("-hold_jid", hold))
    if inputs.mail_type:
        letters = "".join(dict.fromkeys("".join(_MAIL[t] for t in inputs.mail_type)))
        options.append(("-m", "n" if "n" in letters else letters))
    return tuple(options)


def _hold(inputs: SchedulerInputs) -> str | None:
    """The job ids of ``dependency=afterany:ID[:ID...]``, comma-separated."""
    value = (inputs.model_extra or {}).get("dependency")
    if value is None:
        return None
    kind, _, ids = str(value).partition(":")
    jobs = [j.split(".")[0].split("_")[0] for j in ids.split(":")]
    if kind != "afterany" or not all(j.isdigit() for j in jobs):
        raise InputError(
            f"scheduler_inputs.dependency {value!r}: Grid Engine can wait for jobs to end "
            "(-hold_jid), whatever their exit status, and nothing else",
            field="scheduler_inputs.dependency",
            hint="write it as 'afterany:JOB_ID[:JOB_ID...]'",
        )
    return ",".join(dict.fromkeys(jobs))


def _check_supported(inputs: SchedulerInputs) -> None:
    for key in inputs.model_extra or {}:
        if key != "dependency":
            raise _refuse(key, "is a SLURM directive")
    if inputs.extra_directives:
        raise _refuse("extra_directives", f"holds sbatch options {inputs.extra_directives}")
    if inputs.ntasks_per_node is not None:
        raise _refuse("ntasks_per_node", "spreads tasks over nodes")
    if inputs.nodes is not None and str(inputs.nodes).strip() not in {"1", "1-1"}:
        raise _refuse("nodes", f"asks for {inputs.nodes} nodes (a task runs on one host)")
    if inputs.mem is not None and inputs.mem_per_cpu is not None:
        raise InputError(
            "scheduler_inputs.mem and mem_per_cpu are both given",
            field="scheduler_inputs.mem",
            hint="give one of them",
        )
    unknown = sorted(set(inputs.mail_type or []) - set(_MAIL))
    if unknown:
        raise _refuse("mail_type", f"asks for {', '.join(unknown)}")


def _memory_per_slot(inputs: SchedulerInputs) -> int | None:
    """Megabytes per slot (Grid Engine's memory limits are per slot)."""
    if inputs.mem_per_cpu is not None:
        return math.ceil(memory_mb(inputs.mem_per_cpu))
    if inputs.mem is not None:
        return math.ceil(memory_mb(inputs.mem) / slots(inputs))
    return None


def _sge_time(limit: timedelta) -> str:
    seconds = max(1, math.ceil(limit.total_seconds()))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def job_name(name: str) -> str:
    """A name qsub -N accepts: letters, digits, ``_.-``, not starting with a digit."""
    cleaned = _NAME_BAD.sub("_", name)[:64] or "autojob"
    return cleaned if not cleaned[0].isdigit() else f"j{cleaned}"
