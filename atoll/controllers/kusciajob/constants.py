"""Kuscia's KusciaJob vocabulary: phases, stage commands, stage statuses, labels and annotations.

Every string here is Kuscia's own (``pkg/crd/apis/kuscia/v1alpha1`` and ``pkg/common/constants.go``)
so that KusciaAPI clients, ``kubectl`` selectors and the KusciaTask controller agree with us; the
names both controllers use (task phases, task labels and annotations) come from
:mod:`atoll.api.kuscia_tasks`, the one place the KusciaTask side reads them from.
"""

from __future__ import annotations

from typing import Final

from atoll.api.kuscia_tasks import ANNOTATION_INITIATOR as ANN_INITIATOR
from atoll.api.kuscia_tasks import ANNOTATION_JOB_ID as ANN_JOB_ID
from atoll.api.kuscia_tasks import ANNOTATION_TASK_ALIAS as ANN_TASK_ALIAS
from atoll.api.kuscia_tasks import ANNOTATION_TASK_ID as ANN_TASK_ID
from atoll.api.kuscia_tasks import (
    LABEL_CONTROLLER,
    LABEL_INTERCONN_PROTOCOL_TYPE,
    LABEL_TASK_UID,
    TASK_FAILED,
    TASK_FINISHED,
    TASK_PENDING,
    TASK_RUNNING,
    TASK_SUCCEEDED,
)

__all__ = [
    "ANN_INITIATOR",
    "ANN_JOB_ID",
    "ANN_TASK_ALIAS",
    "ANN_TASK_ID",
    "LABEL_CONTROLLER",
    "LABEL_INTERCONN_PROTOCOL_TYPE",
    "LABEL_TASK_UID",
    "TASK_FAILED",
    "TASK_FINISHED",
    "TASK_PENDING",
    "TASK_RUNNING",
    "TASK_SUCCEEDED",
]

GROUP: Final = "kuscia.secretflow"
API_VERSION: Final = "kuscia.secretflow/v1alpha1"
MAX_TASKS: Final = 128

# -- job phases (note the lower-case ``initialized``) ---------------------------------------------
INITIALIZED: Final = "initialized"
AWAITING_APPROVAL: Final = "AwaitingApproval"
PENDING: Final = "Pending"
RUNNING: Final = "Running"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"
CANCELLED: Final = "Cancelled"
APPROVAL_REJECT: Final = "ApprovalReject"
SUSPENDED: Final = "Suspended"
FINISHED_PHASES: Final = frozenset({SUCCEEDED, FAILED, CANCELLED, APPROVAL_REJECT})
"""Phases in which a job runs no task (``Suspended`` is paused, not finished)."""

# -- schedule modes ------------------------------------------------------------------------------
STRICT: Final = "Strict"
BEST_EFFORT: Final = "BestEffort"

# -- stage commands (label ``kuscia.secretflow/job-stage``) ----------------------------------------
STAGE_CREATE: Final = "Create"
STAGE_START: Final = "Start"
STAGE_STOP: Final = "Stop"
STAGE_CANCEL: Final = "Cancel"
STAGE_RESTART: Final = "Restart"
STAGE_SUSPEND: Final = "Suspend"
STAGES: Final = (STAGE_CREATE, STAGE_START, STAGE_STOP, STAGE_CANCEL, STAGE_RESTART, STAGE_SUSPEND)

# -- stageStatus values --------------------------------------------------------------------------
CREATE_STAGE_SUCCEEDED: Final = "JobCreateStageSucceeded"
CREATE_STAGE_FAILED: Final = "JobCreateStageFailed"
START_STAGE_SUCCEEDED: Final = "JobStartStageSucceeded"
RESTART_STAGE_SUCCEEDED: Final = "JobRestartStageSucceeded"
RESTART_STAGE_FAILED: Final = "JobRestartStageFailed"
STOP_STAGE_SUCCEEDED: Final = "JobStopStageSucceeded"
CANCEL_STAGE_SUCCEEDED: Final = "JobCancelStageSucceeded"
SUSPEND_STAGE_SUCCEEDED: Final = "JobSuspendStageSucceeded"

# -- approveStatus values ------------------------------------------------------------------------
JOB_ACCEPTED: Final = "JobAccepted"
JOB_REJECTED: Final = "JobRejected"

# -- condition types and reasons -----------------------------------------------------------------
COND_VALIDATED: Final = "JobValidated"
COND_CREATE_SUCCEEDED: Final = "JobCreateSucceeded"
COND_START_SUCCEEDED: Final = "JobStartSucceeded"
COND_STOP_SUCCEEDED: Final = "JobStopSucceeded"
COND_TASK_STOPPED: Final = "TaskStopped"
REASON_VALIDATE_FAILED: Final = "ValidateFailed"
REASON_CREATE_TASK_FAILED: Final = "CreateTaskFailed"
REASON_TASK_FAILED: Final = "TaskFailed"
REASON_JOB_STOPPED: Final = "KusciaJobStopped"

# -- labels --------------------------------------------------------------------------------------
CONTROLLER_KUSCIA_JOB: Final = "kuscia-job"
LABEL_JOB_UID: Final = "kuscia.secretflow/job-uid"
LABEL_JOB_STAGE: Final = "kuscia.secretflow/job-stage"
LABEL_JOB_STAGE_TRIGGER: Final = "kuscia.secretflow/job-stage-trigger"
LABEL_JOB_STAGE_VERSION: Final = "kuscia.secretflow/job-stage-version"

# -- annotations ---------------------------------------------------------------------------------
ANN_SELF_CLUSTER_AS_INITIATOR: Final = "kuscia.secretflow/self-cluster-as-initiator"
ANN_SELF_CLUSTER_AS_PARTICIPANT: Final = "kuscia.secretflow/self-cluster-as-participant"
ANN_INTERCONN_KUSCIA_PARTIES: Final = "kuscia.secretflow/interconn-kuscia-parties"
ANN_INTERCONN_BFIA_PARTIES: Final = "kuscia.secretflow/interconn-bfia-parties"
ANN_INTERCONN_SELF_PARTIES: Final = "kuscia.secretflow/interconn-self-parties"
ANN_STAGE_HANDLED: Final = "atoll.io/job-stage-handled"
"""``<stage>/<version>`` of the last stage command this controller acted on (Atoll's own)."""

EVENT_COMPONENT: Final = "kusciajob-controller"
