"""The objects a KusciaTask creates in its parties' namespaces (reference §2.5 step 3, contract C2).

Pods (``schedulerName: kuscia-scheduler``, the agent toleration, the domain node selector,
Kuscia's labels and annotations, the task env), headless Services per serviced port, egress
Services, the ``<task>-configtemplate`` ConfigMap and the TaskResourceGroup.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.api.kuscia_tasks import (
    AGENT_TAINT_KEY,
    ANNOTATION_ACCESS_DOMAIN,
    ANNOTATION_BANDWIDTH_LIMIT_PREFIX,
    ANNOTATION_CONFIG_TEMPLATE_VOLUMES,
    ANNOTATION_EGRESS_DOMAIN,
    ANNOTATION_EGRESS_HOST,
    ANNOTATION_EGRESS_PORT,
    ANNOTATION_IMAGE_ID,
    ANNOTATION_INITIATOR,
    ANNOTATION_JOB_ID,
    ANNOTATION_METRIC_PATH,
    ANNOTATION_METRIC_PORT,
    ANNOTATION_PROTOCOL,
    ANNOTATION_SERVICE_HOSTS,
    ANNOTATION_SHOULD_BE_SCRAPED,
    ANNOTATION_TASK_ALIAS,
    ANNOTATION_TASK_ID,
    ANNOTATION_TASK_RESOURCE,
    ANNOTATION_TASK_RESOURCE_GROUP,
    CONTROLLER_KUSCIATASK,
    DEFAULT_LIFECYCLE_SECONDS,
    DEFAULT_RESOURCE_RESERVED_SECONDS,
    DEFAULT_RETRY_INTERVAL_SECONDS,
    KUSCIA_SCHEDULER,
    LABEL_COMMUNICATION_CLIENT,
    LABEL_COMMUNICATION_SERVER,
    LABEL_CONTROLLER,
    LABEL_EGRESS,
    LABEL_LOADBALANCER,
    LABEL_POD_IDENTITY,
    LABEL_POD_ROLE,
    LABEL_PORT_NAME,
    LABEL_PORT_SCOPE,
    LABEL_TASK_RESOURCE_UID,
    LABEL_TASK_UID,
    task_resource_name,
)
from atoll.controllers.kusciatask.kits import PartyKit
from atoll.controllers.kusciatask.plan import EgressPlan, Plan, ServicePlan

JSON = dict[str, Any]
CONFIG_TEMPLATE_VOLUME = "config-template"
COPIED_ANNOTATIONS = (ANNOTATION_JOB_ID, ANNOTATION_TASK_ALIAS, ANNOTATION_INITIATOR)


def task_name(task: JSON) -> str:
    return str(task["metadata"]["name"])


def task_uid(task: JSON) -> str:
    return str(task["metadata"].get("uid") or "")


def base_labels(task: JSON) -> dict[str, str]:
    return {LABEL_CONTROLLER: CONTROLLER_KUSCIATASK, LABEL_TASK_UID: task_uid(task)}


def base_annotations(task: JSON) -> dict[str, str]:
    annotations = (task["metadata"].get("annotations") or {})
    out = {k: str(annotations[k]) for k in COPIED_ANNOTATIONS if annotations.get(k)}
    out[ANNOTATION_TASK_ID] = task_name(task)
    out.setdefault(ANNOTATION_INITIATOR, str((task.get("spec") or {}).get("initiator") or ""))
    return out


def pod_identity(task: JSON, kit: PartyKit, index: int) -> str:
    return f"{task_uid(task)}-{kit.role}-{index}" if kit.role else f"{task_uid(task)}-{index}"


def port_env_name(port: str) -> str:
    return f"KUSCIA_PORT_{port.upper().replace('-', '_')}_NUMBER"


def config_map_name(task: JSON) -> str:
    return f"{task_name(task)}-configtemplate"


def config_map(task: JSON, kit: PartyKit) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(task),
            "namespace": kit.domain,
            "labels": base_labels(task),
            "annotations": base_annotations(task),
        },
        "data": dict(kit.config_templates),
    }


def pod_env(task: JSON, plan: Plan, kit: PartyKit, index: int) -> list[JSON]:
    pod = kit.pod_names[index]
    env = {
        "KUSCIA_DOMAIN_ID": kit.domain,
        "TASK_ID": task_name(task),
        "TASK_CLUSTER_DEFINE": orjson.dumps(plan.cluster_define(kit, index)).decode(),
        "ALLOCATED_PORTS": orjson.dumps(plan.allocated_ports_json(kit, pod)).decode(),
        "TASK_INPUT_CONFIG": str((task.get("spec") or {}).get("taskInputConfig") or ""),
    }
    env.update({port_env_name(name): str(number) for name, number in plan.pod_ports(kit, pod).items()})
    return [{"name": k, "value": v} for k, v in env.items()]


def _container(kit: PartyKit, container: JSON, env: list[JSON], ports: dict[str, int]) -> JSON:
    out = {k: copy.deepcopy(v) for k, v in container.items() if k not in ("configVolumeMounts", "ports", "metricProbe")}
    out["image"] = kit.image
    out.setdefault("imagePullPolicy", "IfNotPresent")
    out["terminationMessagePolicy"] = "FallbackToLogsOnError"
    names = {e["name"] for e in env}
    out["env"] = [*env, *(e for e in out.get("env") or [] if e.get("name") not in names)]
    out["ports"] = [
        {"name": p["name"], "containerPort": ports[p["name"]], "protocol": "TCP"}
        for p in container.get("ports") or []
        if p.get("name") in ports
    ]
    mounts = [
        {"name": CONFIG_TEMPLATE_VOLUME, "mountPath": m["mountPath"], "subPath": m.get("subPath") or ""}
        for m in container.get("configVolumeMounts") or []
    ]
    if mounts and kit.config_templates:
        out["volumeMounts"] = [*(out.get("volumeMounts") or []), *mounts]
    return out


def pod(task: JSON, plan: Plan, kit: PartyKit, index: int) -> JSON:
    name = kit.pod_names[index]
    identity = pod_identity(task, kit, index)
    env = pod_env(task, plan, kit, index)
    ports = plan.pod_ports(kit, name)
    annotations = {
        **base_annotations(task),
        ANNOTATION_TASK_RESOURCE_GROUP: task_name(task),
        ANNOTATION_TASK_RESOURCE: task_resource_name(task_name(task), kit.domain, kit.role),
        ANNOTATION_SERVICE_HOSTS: orjson.dumps(plan.kuscia_hosts()).decode(),
    }
    if kit.image_id:
        annotations[ANNOTATION_IMAGE_ID] = kit.image_id
    annotations.update(metric_annotations(kit, ports))
    spec: JSON = {
        "restartPolicy": kit.spec.get("restartPolicy") or "Never",
        "schedulerName": KUSCIA_SCHEDULER,
        "automountServiceAccountToken": False,
        "nodeSelector": {LABEL_NODE_NAMESPACE: kit.domain},
        "tolerations": [{"key": AGENT_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [_container(kit, c, env, ports) for c in kit.spec.get("containers") or []],
    }
    if kit.spec.get("affinity"):
        spec["affinity"] = copy.deepcopy(kit.spec["affinity"])
    if kit.config_templates:
        spec["volumes"] = [{"name": CONFIG_TEMPLATE_VOLUME, "configMap": {"name": config_map_name(task)}}]
        annotations[ANNOTATION_CONFIG_TEMPLATE_VOLUMES] = CONFIG_TEMPLATE_VOLUME
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": kit.domain,
            "labels": {
                **base_labels(task),
                LABEL_COMMUNICATION_SERVER: "true",
                LABEL_COMMUNICATION_CLIENT: "true",
                LABEL_POD_IDENTITY: identity,
                LABEL_POD_ROLE: kit.role,
                LABEL_TASK_RESOURCE_UID: "",
            },
            "annotations": annotations,
        },
        "spec": spec,
    }


def metric_annotations(kit: PartyKit, ports: dict[str, int]) -> dict[str, str]:
    """Kuscia's Prometheus hints from the first container with a ``metricProbe``."""
    for container in kit.spec.get("containers") or []:
        probe = container.get("metricProbe") or {}
        if probe.get("port") in ports:
            return {
                ANNOTATION_METRIC_PATH: str(probe.get("path") or "/metrics"),
                ANNOTATION_METRIC_PORT: str(ports[str(probe["port"])]),
                ANNOTATION_SHOULD_BE_SCRAPED: "true",
            }
    return {}


def service(task: JSON, svc: ServicePlan, owner: JSON | None) -> JSON:
    labels = {**base_labels(task), LABEL_PORT_NAME: svc.port.name, LABEL_PORT_SCOPE: svc.port.scope}
    if svc.port.scope != "Domain":
        labels[LABEL_LOADBALANCER] = "domainroute"
    meta: JSON = {
        "name": svc.name,
        "namespace": svc.kit.domain,
        "labels": labels,
        "annotations": {
            **base_annotations(task),
            ANNOTATION_PROTOCOL: svc.port.protocol,
            ANNOTATION_ACCESS_DOMAIN: ",".join(svc.access),
            **{
                f"{ANNOTATION_BANDWIDTH_LIMIT_PREFIX}{dest}": str(limit)
                for dest, limit in svc.kit.bandwidth_limits.items()
            },
        },
    }
    if owner is not None:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
        ]
    identity = pod_identity(task, svc.kit, svc.pod_index)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {LABEL_POD_IDENTITY: identity},
            "ports": [{"name": svc.port.name, "port": svc.number, "targetPort": svc.port.name, "protocol": "TCP"}],
        },
    }


def egress_service(task: JSON, egress: EgressPlan) -> JSON:
    target = egress.target
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": egress.name,
            "namespace": egress.consumer,
            "labels": {**base_labels(task), LABEL_EGRESS: "true", LABEL_PORT_NAME: target.port.name},
            "annotations": {
                **base_annotations(task),
                ANNOTATION_EGRESS_HOST: egress.host,
                ANNOTATION_EGRESS_PORT: str(target.number),
                ANNOTATION_EGRESS_DOMAIN: target.kit.domain,
                ANNOTATION_PROTOCOL: target.port.protocol,
            },
        },
        "spec": {"ports": [{"name": target.port.name, "port": egress.number, "protocol": "TCP"}]},
    }


def min_reserved_members(task: JSON, parties: int) -> int:
    wanted = int(((task.get("spec") or {}).get("scheduleConfig") or {}).get("minReservedMembers") or 0)
    return wanted if 0 < wanted <= parties else parties


def task_resource_group(task: JSON, kits: list[PartyKit]) -> JSON:
    config = (task.get("spec") or {}).get("scheduleConfig") or {}
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "TaskResourceGroup",
        "metadata": {"name": task_name(task), "labels": base_labels(task), "annotations": base_annotations(task)},
        "spec": {
            "minReservedMembers": min_reserved_members(task, len(kits)),
            "resourceReservedSeconds": int(config.get("resourceReservedSeconds") or DEFAULT_RESOURCE_RESERVED_SECONDS),
            "lifecycleSeconds": int(config.get("lifecycleSeconds") or DEFAULT_LIFECYCLE_SECONDS),
            "retryIntervalSeconds": int(config.get("retryIntervalSeconds") or DEFAULT_RETRY_INTERVAL_SECONDS),
            "initiator": str((task.get("spec") or {}).get("initiator") or ""),
            "parties": [
                {
                    "domainID": kit.domain,
                    "role": kit.role,
                    "minReservedPods": kit.min_reserved_pods,
                    "pods": [{"name": name} for name in kit.pod_names],
                    "taskResourceName": task_resource_name(task_name(task), kit.domain, kit.role),
                }
                for kit in kits
            ],
        },
    }
