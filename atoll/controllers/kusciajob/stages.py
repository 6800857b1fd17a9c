"""Stage commands: the ``kuscia.secretflow/job-stage`` label (``Stop``, ``Cancel``, ``Suspend``,
``Restart``, ``Start``, ``Create``) with ``job-stage-trigger`` and ``job-stage-version``.

KusciaAPI (or a user with ``kubectl label --overwrite``) sets the stage label and bumps the version;
the controller acts on each ``<stage>/<version>`` once, remembering the last one it handled in the
annotation ``atoll.io/job-stage-handled``. What a command does depends on the job's phase
(Kuscia §2.4); :func:`plan` is that table as a pure function:

=========  ==============================================  ==============================
command    acts from                                       effect
=========  ==============================================  ==============================
Stop       any phase but Succeeded/Cancelled/ApprovalReject stop tasks → ``Failed``
           (and not an already-finished ``Failed``)
Cancel     any phase but Succeeded/Cancelled/ApprovalReject stop tasks → ``Cancelled``
Suspend    ``Running`` (and ``Pending``)                   stop tasks → ``Suspended``
Restart    ``Failed`` (not validation-failed), ``Suspended`` re-run not-succeeded tasks → ``Running``
Start      any                                             ``stageStatus`` only
=========  ==============================================  ==============================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.controllers.kusciajob.constants import (
    ANN_STAGE_HANDLED,
    APPROVAL_REJECT,
    CANCEL_STAGE_SUCCEEDED,
    CANCELLED,
    FAILED,
    LABEL_JOB_STAGE,
    LABEL_JOB_STAGE_TRIGGER,
    LABEL_JOB_STAGE_VERSION,
    PENDING,
    REASON_VALIDATE_FAILED,
    RESTART_STAGE_SUCCEEDED,
    RUNNING,
    STAGE_CANCEL,
    STAGE_RESTART,
    STAGE_START,
    STAGE_STOP,
    STAGE_SUSPEND,
    START_STAGE_SUCCEEDED,
    STOP_STAGE_SUCCEEDED,
    SUCCEEDED,
    SUSPEND_STAGE_SUCCEEDED,
    SUSPENDED,
)

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Command:
    stage: str
    version: str
    trigger: str

    @property
    def token(self) -> str:
        return f"{self.stage}/{self.version}"


@dataclass(frozen=True, slots=True)
class Plan:
    phase: str | None = None
    """The job's new phase (``None``: unchanged)."""
    stage_status: str | None = None
    """What every own party's ``stageStatus`` becomes."""
    stop_tasks: bool = False
    restart: bool = False
    message: str = ""


def pending_command(job: JSON) -> Command | None:
    """The stage command on the job that this controller has not handled yet."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    stage = str(labels.get(LABEL_JOB_STAGE) or "")
    if not stage:
        return None
    version = str(labels.get(LABEL_JOB_STAGE_VERSION) or "")
    command = Command(stage, version, str(labels.get(LABEL_JOB_STAGE_TRIGGER) or ""))
    if (meta.get("annotations") or {}).get(ANN_STAGE_HANDLED) == command.token:
        return None
    return command


def _cmd_message(command: Command, initiator: str) -> str:
    return f"Party: {command.trigger or initiator} execute the cmd: {command.stage}."


def plan(command: Command, status: JSON, initiator: str) -> Plan:
    """What ``command`` does to a job whose status is ``status`` (an empty plan: nothing)."""
    phase = str(status.get("phase") or "")
    finished_failed = phase == FAILED and bool(status.get("completionTime"))
    message = _cmd_message(command, initiator)
    if command.stage in (STAGE_STOP, STAGE_CANCEL):
        if phase in (SUCCEEDED, CANCELLED, APPROVAL_REJECT):
            return Plan()
        if command.stage == STAGE_STOP:
            if finished_failed:
                return Plan()
            return Plan(FAILED, STOP_STAGE_SUCCEEDED, stop_tasks=True, message=message)
        return Plan(CANCELLED, CANCEL_STAGE_SUCCEEDED, stop_tasks=True, message=message)
    if command.stage == STAGE_SUSPEND:
        if phase not in (RUNNING, PENDING):
            return Plan()
        return Plan(SUSPENDED, SUSPEND_STAGE_SUCCEEDED, stop_tasks=True, message=message)
    if command.stage == STAGE_RESTART:
        if phase == SUSPENDED or (phase == FAILED and status.get("reason") != REASON_VALIDATE_FAILED):
            return Plan(RUNNING, RESTART_STAGE_SUCCEEDED, restart=True, message=message)
        return Plan()
    if command.stage == STAGE_START:
        return Plan(stage_status=START_STAGE_SUCCEEDED)
    return Plan()
