"""Built-in workload kinds (apps/v1, batch/v1, policy/v1): their ``ResourceDef``s.

Served like every built-in (discovery, OpenAPI, tables, RBAC); the controllers that act on them
live in ``atoll.controllers.replicaset``, ``.deployment`` and ``.job``.
"""

from __future__ import annotations

from atoll.api.registry import ResourceDef

_APPS, _BATCH, _POLICY = "apps", "batch", "policy"

WORKLOAD_BUILTINS: tuple[ResourceDef, ...] = (
    ResourceDef(_APPS, "v1", "Deployment", "deployments", "deployment", True, ("deploy",), ("all",),
                subresources=("status", "scale")),
    ResourceDef(_APPS, "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",), ("all",),
                subresources=("status", "scale")),
    ResourceDef(_APPS, "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", True),
    ResourceDef(_BATCH, "v1", "Job", "jobs", "job", True, (), ("all",), subresources=("status",)),
    ResourceDef(_BATCH, "v1", "CronJob", "cronjobs", "cronjob", True, ("cj",), ("all",), subresources=("status",)),
    ResourceDef(_POLICY, "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", True,
                ("pdb",), subresources=("status",)),
)

MORE_WORKLOADS: tuple[ResourceDef, ...] = (
    ResourceDef(_APPS, "v1", "StatefulSet", "statefulsets", "statefulset", True, ("sts",), ("all",),
                subresources=("status", "scale")),
    ResourceDef(_APPS, "v1", "DaemonSet", "daemonsets", "daemonset", True, ("ds",), ("all",), subresources=("status",)),
    ResourceDef("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", True, ("rc",),
                ("all",), subresources=("status", "scale")),
    ResourceDef("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", False, ("pv",),
                subresources=("status",)),
    ResourceDef("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", True, ("pvc",),
                subresources=("status",)),
    ResourceDef("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", True, ("ing",),
                subresources=("status",)),
)
"""Served so ``kubectl apply --prune`` finds every kind of its default allowlist. ReplicationControllers
are run by the ``replicaset`` controller, DaemonSets by ``daemonset``, StatefulSets by ``statefulset``,
volumes and claims by ``persistentvolume`` (local-path provisioner); Ingresses are stored only (no
controller)."""

PRIORITY_CLASSES = ResourceDef("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", False,
                               ("pc",))
WORKLOAD_BUILTINS = (*WORKLOAD_BUILTINS, *MORE_WORKLOADS, PRIORITY_CLASSES)

METRICS_GROUP = "metrics.k8s.io"
METRICS_NODES = ResourceDef(METRICS_GROUP, "v1beta1", "NodeMetrics", "nodes", "", False, verbs=("get", "list"))
METRICS_PODS = ResourceDef(METRICS_GROUP, "v1beta1", "PodMetrics", "pods", "", True, verbs=("get", "list"))
"""``kubectl top``: answered from the node agents' statistics, never stored (``atoll.apiserver.http.metrics_api``)."""
WORKLOAD_BUILTINS = (*WORKLOAD_BUILTINS, METRICS_NODES, METRICS_PODS)
