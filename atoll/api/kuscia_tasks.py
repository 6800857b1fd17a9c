"""Names shared by the KusciaTask / TaskResourceGroup controllers, the co-scheduler and tests.

Kuscia's labels, annotations, phases and defaults for tasks (reference §1.6-1.8, §1.12, §2.5-2.8),
in one place so that the controller that writes a key and the scheduler that reads it cannot
drift apart.
"""

from __future__ import annotations

import hashlib
from typing import Any

from atoll.api.kinds import kind

KUSCIATASKS = kind("kuscia.secretflow", "kusciatasks")
TASKRESOURCEGROUPS = kind("kuscia.secretflow", "taskresourcegroups")
TASKRESOURCES = kind("kuscia.secretflow", "taskresources")
APPIMAGES = kind("kuscia.secretflow", "appimages")
DOMAINAPPIMAGES = kind("kuscia.secretflow", "domainappimages")

KUSCIA_SCHEDULER = "kuscia-scheduler"
AGENT_TAINT_KEY = "kuscia.secretflow/agent"

# -- labels ----------------------------------------------------------------------------------------
LABEL_CONTROLLER = "kuscia.secretflow/controller"
CONTROLLER_KUSCIATASK = "kusciatask"
LABEL_TASK_UID = "kuscia.secretflow/task-uid"
LABEL_TASK_RESOURCE_GROUP_UID = "kuscia.secretflow/task-resource-group-uid"
LABEL_TASK_RESOURCE_UID = "kuscia.secretflow/task-resource-uid"
LABEL_POD_IDENTITY = "kuscia.secretflow/pod-identity"
LABEL_POD_ROLE = "kuscia.secretflow/pod-role"
LABEL_PORT_NAME = "kuscia.secretflow/port-name"
LABEL_PORT_SCOPE = "kuscia.secretflow/port-scope"
LABEL_LOADBALANCER = "kuscia.secretflow/loadbalancer"
LABEL_COMMUNICATION_SERVER = "kuscia.secretflow/communication-role-server"
LABEL_COMMUNICATION_CLIENT = "kuscia.secretflow/communication-role-client"
LABEL_INTERCONN_PROTOCOL_TYPE = "kuscia.secretflow/interconn-protocol-type"
LABEL_TASK_UNSCHEDULABLE = "kuscia.secretflow/task-unschedulable"
LABEL_EGRESS = "atoll.io/egress"
"""``"true"`` on an egress Service (contract C2): the consuming domain's gateway listens on its port."""

# -- annotations -----------------------------------------------------------------------------------
ANNOTATION_INITIATOR = "kuscia.secretflow/initiator"
ANNOTATION_JOB_ID = "kuscia.secretflow/job-id"
ANNOTATION_TASK_ID = "kuscia.secretflow/task-id"
ANNOTATION_TASK_ALIAS = "kuscia.secretflow/task-alias"
ANNOTATION_TASK_RESOURCE_GROUP = "kuscia.secretflow/task-resource-group"
ANNOTATION_TASK_RESOURCE = "kuscia.secretflow/task-resource"
ANNOTATION_RESERVING_TIMESTAMP = "kuscia.secretflow/taskresource-reserving-timestamp"
ANNOTATION_PROTOCOL = "kuscia.secretflow/protocol"
ANNOTATION_ACCESS_DOMAIN = "kuscia.secretflow/access-domain"
ANNOTATION_IMAGE_ID = "kuscia.secretflow/image-id"
ANNOTATION_CONFIG_TEMPLATE_VOLUMES = "kuscia.secretflow/config-template-volumes"
ANNOTATION_CONFIG_TEMPLATE_VALUES = "kuscia.secretflow/config-template-value-cm-name"
ANNOTATION_ALLOCATED_PORTS = "kuscia.secretflow/allocated-ports"
ANNOTATION_BANDWIDTH_LIMIT_PREFIX = "kuscia.secretflow/bandwidth-limit-"
ANNOTATION_METRIC_PATH = "kuscia.secretflow/metric_path"
ANNOTATION_METRIC_PORT = "kuscia.secretflow/metric_port"
ANNOTATION_SHOULD_BE_SCRAPED = "kuscia.secretflow/should_be_scraped"
ANNOTATION_SERVICE_HOSTS = "atoll.io/kuscia-service-hosts"
"""On a task pod: Kuscia's ``<svc>.<domain>.svc[:port]`` endpoint names of the cluster define (JSON)."""
ANNOTATION_EGRESS_HOST = "atoll.io/egress-host"
ANNOTATION_EGRESS_PORT = "atoll.io/egress-port"
ANNOTATION_EGRESS_DOMAIN = "atoll.io/egress-domain"

# -- phases ----------------------------------------------------------------------------------------
TASK_PENDING, TASK_RUNNING, TASK_SUCCEEDED, TASK_FAILED = "Pending", "Running", "Succeeded", "Failed"
TASK_FINISHED = frozenset({TASK_SUCCEEDED, TASK_FAILED})

TRG_PENDING = "Pending"
TRG_CREATING = "Creating"
TRG_RESERVING = "Reserving"
TRG_RESERVED = "Reserved"
TRG_RESERVE_FAILED = "ReserveFailed"
TRG_FAILED = "Failed"

TR_PENDING = "Pending"
TR_RESERVING = "Reserving"
TR_RESERVED = "Reserved"
TR_SCHEDULABLE = "Schedulable"
TR_FAILED = "Failed"

# -- defaults (seconds) ------------------------------------------------------------------------------
DEFAULT_RESOURCE_RESERVED_SECONDS = 30
DEFAULT_LIFECYCLE_SECONDS = 300
DEFAULT_RETRY_INTERVAL_SECONDS = 30

NEED_RETRY_REASON = "Last reserved resources and need retry since partners doesn't reserve resources"
RESERVED_REASON = "The min set of pods has already reserved resource"

PORT_RANGE = (20000, 32767)
"""Kuscia's per-domain dynamic port segment (both ends included)."""


def task_resource_name(group: str, domain: str, role: str) -> str:
    """``<trg>-<12 hex>`` for a party, stable per (domain, role): the KusciaTask controller stamps
    it on the pods it creates, and the TaskResourceGroup controller creates the TaskResource under
    it, so pods need no second write to be linked."""
    return f"{group}-{hashlib.sha256(f'{domain}/{role}'.encode()).hexdigest()[:12]}"


def select_deploy_template(app_image: dict[str, Any] | None, role: str) -> dict[str, Any] | None:
    """Kuscia's choice: the first template whose comma-separated ``role`` lists ``role``; else one
    with an empty role; else (empty ``role``) the first template."""
    templates = list(((app_image or {}).get("spec") or {}).get("deployTemplates") or ())
    for template in templates:
        roles = [r.strip() for r in str(template.get("role") or "").split(",") if r.strip()]
        if role and role in roles:
            return dict(template)
    for template in templates:
        if not str(template.get("role") or "").strip():
            return dict(template)
    if not role and templates:
        return dict(templates[0])
    return None
