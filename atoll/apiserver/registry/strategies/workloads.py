"""Strategies of the workload kinds: Deployment, ReplicaSet, ControllerRevision (apps/v1), Job and
CronJob (batch/v1), PodDisruptionBudget (policy/v1).

Defaults are kube-apiserver's (``pkg/apis/apps/v1/defaults.go``, ``batch/v1/defaults.go``), the pod
template gets a pod's defaults, and the checks kubectl users hit first are made with Kubernetes'
field paths and wording: a selector is required and must match the template's labels, a Job's
pods restart ``Never`` or ``OnFailure``. A Job without ``manualSelector`` gets the generated
``batch.kubernetes.io/controller-uid`` selector and template labels. ``scale`` (Deployments and
ReplicaSets) changes ``spec.replicas`` and so the generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atoll.api import cron, errors
from atoll.api.registry import ResourceDef
from atoll.api.selectors import label_selector_from_spec
from atoll.apiserver.registry.strategies.base import KindStrategy
from atoll.apiserver.registry.strategies.pods import _container_defaults
from atoll.apiserver.registry.strategies.scale import SCALE
from atoll.apiserver.registry.strategies.storage import StorageClassStrategy
from atoll.apiserver.registry.subresources import Subresource
from atoll.apiserver.tables import workloads as printers
from atoll.apiserver.tables.columns import Printer

JSON = dict[str, Any]

JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def template_defaults(template: JSON, restart_policy: str = "Always") -> None:
    """A pod template's spec gets a pod's defaults (mutates ``template``)."""
    spec = template.setdefault("spec", {})
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for fld in ("containers", "initContainers"):
        for container in spec.get(fld) or []:
            if isinstance(container, dict):
                _container_defaults(container)
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)


def _invalid(rd: ResourceDef, obj: JSON, fld: str, message: str, reason: str = "FieldValueInvalid") -> errors.Invalid:
    name = str((obj.get("metadata") or {}).get("name", ""))
    return errors.invalid(rd.kind, rd.group, name, [errors.cause(reason, fld, message)])


def check_selector(rd: ResourceDef, obj: JSON, template_path: str = "spec.template") -> None:
    """``spec.selector`` is required, non-empty and selects the template's labels."""
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        raise _invalid(rd, obj, "spec.selector", "Required value", "FieldValueRequired")
    try:
        parsed = label_selector_from_spec(selector)
    except errors.BadRequest as exc:
        raise _invalid(rd, obj, "spec.selector", f"Invalid value: {exc.message}") from None
    template = spec
    for part in template_path.split(".")[1:]:
        template = template.get(part) or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not parsed.matches(labels):
        shown = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
        raise _invalid(rd, obj, f"{template_path}.metadata.labels",
                       f"Invalid value: map[string]string{{{shown}}}: `selector` does not match template `labels`")


def _check_replicas(rd: ResourceDef, obj: JSON) -> None:
    replicas = (obj.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise _invalid(rd, obj, "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0")


@dataclass(frozen=True)
class ReplicatedStrategy(KindStrategy):
    """ReplicaSets (and the base of Deployments): replicas default 1, scale subresource."""

    printer: Printer | None = printers.REPLICA_SET
    subresources: dict[str, Subresource] = field(default_factory=lambda: {"scale": SCALE})  # type: ignore[assignment]

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        self.defaults_on_update(rd, obj)
        obj["status"] = {}

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        template_defaults(spec.setdefault("template", {}))
        _check_replicas(rd, obj)
        check_selector(rd, obj)

    def subresource_update(self, subresource: str, old: JSON, wanted: JSON) -> JSON:
        if subresource != "scale":
            return KindStrategy.subresource_update(self, subresource, old, wanted)
        md = dict(old["metadata"])
        if (wanted.get("spec") or {}).get("replicas") != (old.get("spec") or {}).get("replicas"):
            md["generation"] = int(md.get("generation") or 1) + 1
        return dict(old, spec=wanted["spec"], metadata=md)


@dataclass(frozen=True)
class DeploymentStrategy(ReplicatedStrategy):
    printer: Printer | None = printers.DEPLOYMENT

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        elif strategy["type"] == "Recreate":
            if strategy.get("rollingUpdate"):
                raise _invalid(rd, obj, "spec.strategy.rollingUpdate",
                               "Forbidden: may not be specified when strategy `type` is 'Recreate'",
                               "FieldValueForbidden")
        else:
            raise _invalid(rd, obj, "spec.strategy.type", f'Unsupported value: "{strategy["type"]}": supported '
                           'values: "Recreate", "RollingUpdate"', "FieldValueNotSupported")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        ReplicatedStrategy.defaults_on_update(self, rd, obj)


@dataclass(frozen=True)
class StatefulSetStrategy(ReplicatedStrategy):
    printer: Printer | None = printers.STATEFUL_SET

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("podManagementPolicy", "OrderedReady")
        update = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if update.get("type") == "RollingUpdate":
            update.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        ReplicatedStrategy.defaults_on_update(self, rd, obj)


@dataclass(frozen=True)
class DaemonSetStrategy(KindStrategy):
    printer: Printer | None = printers.DAEMON_SET

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        self.defaults_on_update(rd, obj)
        obj["status"] = {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                         "numberReady": 0}

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        update = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if update.get("type") == "RollingUpdate":
            update.setdefault("rollingUpdate", {}).setdefault("maxUnavailable", 1)
            update["rollingUpdate"].setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        template_defaults(spec.setdefault("template", {}))
        check_selector(rd, obj)


@dataclass(frozen=True)
class ReplicationControllerStrategy(ReplicatedStrategy):
    """The selector is a plain map; it defaults to the template's labels."""

    printer: Printer | None = printers.REPLICATION_CONTROLLER

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        template = spec.setdefault("template", {})
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        template_defaults(template)
        _check_replicas(rd, obj)
        selector = spec.get("selector") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            raise _invalid(rd, obj, "spec.template.metadata.labels",
                           "Invalid value: `selector` does not match template `labels`")


@dataclass(frozen=True)
class PendingStrategy(KindStrategy):
    """PersistentVolumes and claims start ``Pending``."""

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        if rd.kind == "PersistentVolume":
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        obj["status"] = {"phase": "Pending"}


@dataclass(frozen=True)
class JobStrategy(KindStrategy):
    printer: Printer | None = printers.JOB

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        md = obj["metadata"]
        template = spec.setdefault("template", {})
        if not spec.get("manualSelector"):
            uid, name = str(md.get("uid", "")), str(md.get("name", ""))
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            for key in JOB_UID_LABELS:
                labels[key] = uid
            for key in JOB_NAME_LABELS:
                labels[key] = name
            if spec.get("selector") is None:
                spec["selector"] = {"matchLabels": {JOB_UID_LABELS[0]: uid}}
        self.defaults_on_update(rd, obj)
        obj["status"] = {}

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        template = spec.setdefault("template", {})
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in ("Never", "OnFailure"):
            raise _invalid(rd, obj, "spec.template.spec.restartPolicy",
                           'Required value: valid values: "OnFailure", "Never"' if policy is None else
                           f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
                           "FieldValueRequired" if policy is None else "FieldValueNotSupported")
        template_defaults(template, policy)
        if spec.get("completionMode") == "Indexed" and not isinstance(spec.get("completions"), int):
            raise _invalid(rd, obj, "spec.completions",
                           "Required value: when completion mode is Indexed", "FieldValueRequired")
        check_selector(rd, obj)


@dataclass(frozen=True)
class CronJobStrategy(KindStrategy):
    printer: Printer | None = printers.CRON_JOB

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        self.defaults_on_update(rd, obj)
        obj["status"] = {}

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        if spec["concurrencyPolicy"] not in ("Allow", "Forbid", "Replace"):
            raise _invalid(rd, obj, "spec.concurrencyPolicy", f'Unsupported value: "{spec["concurrencyPolicy"]}": '
                           'supported values: "Allow", "Forbid", "Replace"', "FieldValueNotSupported")
        if not isinstance(spec.get("schedule"), str) or not spec["schedule"].strip():
            raise _invalid(rd, obj, "spec.schedule", "Required value", "FieldValueRequired")
        try:
            cron.parse(spec["schedule"], spec.get("timeZone"))
        except cron.ScheduleError as exc:
            bad = "spec.timeZone" if "time zone" in str(exc) else "spec.schedule"
            value = spec.get("timeZone") if bad == "spec.timeZone" else spec["schedule"]
            raise _invalid(rd, obj, bad, f'Invalid value: "{value}": {exc}') from None
        job_spec = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
        template = job_spec.setdefault("template", {})
        template_defaults(template, str((template.get("spec") or {}).get("restartPolicy") or "Never"))


@dataclass(frozen=True)
class PodDisruptionBudgetStrategy(KindStrategy):
    printer: Printer | None = printers.POD_DISRUPTION_BUDGET

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            raise _invalid(rd, obj, "spec", "Invalid value: minAvailable and maxUnavailable cannot be both set")
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}


def workload_strategies() -> dict[tuple[str, str], KindStrategy]:
    return {
        ("apps", "Deployment"): DeploymentStrategy(),
        ("apps", "ReplicaSet"): ReplicatedStrategy(),
        ("apps", "ControllerRevision"): KindStrategy(printers.CONTROLLER_REVISION),
        ("batch", "Job"): JobStrategy(),
        ("batch", "CronJob"): CronJobStrategy(),
        ("policy", "PodDisruptionBudget"): PodDisruptionBudgetStrategy(),
        ("scheduling.k8s.io", "PriorityClass"): KindStrategy(printers.PRIORITY_CLASS),
        ("apps", "StatefulSet"): StatefulSetStrategy(),
        ("apps", "DaemonSet"): DaemonSetStrategy(),
        ("", "ReplicationController"): ReplicationControllerStrategy(),
        ("", "PersistentVolume"): PendingStrategy(printers.PERSISTENT_VOLUME),
        ("", "PersistentVolumeClaim"): PendingStrategy(printers.PERSISTENT_VOLUME_CLAIM),
        ("networking.k8s.io", "Ingress"): KindStrategy(printers.INGRESS),
        ("storage.k8s.io", "StorageClass"): StorageClassStrategy(),
    }
