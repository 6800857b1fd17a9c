"""Table printers of the workload kinds (Deployment, ReplicaSet, ControllerRevision, Job, CronJob,
PodDisruptionBudget), after Kubernetes' ``printers.go``; ``-o wide`` columns (containers, images,
selector) are always included."""

from __future__ import annotations

from typing import Any

from atoll.api.errors import BadRequest
from atoll.api.selectors import label_selector_from_spec
from atoll.api.timestamps import try_parse_time
from atoll.apiserver.tables.columns import AGE_COL, NAME_COL, Printer, age, col, human_duration

JSON = dict[str, Any]


def _d(obj: JSON, key: str) -> JSON:
    v = obj.get(key)
    return v if isinstance(v, dict) else {}


def _name(obj: JSON) -> str:
    return str(_d(obj, "metadata").get("name", ""))


def _age(obj: JSON, now: float) -> str:
    return age(_d(obj, "metadata").get("creationTimestamp"), now)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def selector_text(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` for no selector or an empty one."""
    if not isinstance(selector, dict):
        return "<none>"
    try:
        text = str(label_selector_from_spec(selector))
    except BadRequest:
        return "<error>"
    return text or "<none>"


def _wide(pod_template: JSON, selector: Any) -> list[Any]:
    containers = [c for c in _d(pod_template, "spec").get("containers") or [] if isinstance(c, dict)]
    return [",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers), selector_text(selector)]


_CONTAINERS = col("Containers", "string", "Names of each container in the template.", priority=1)
_IMAGES = col("Images", "string", "Images referenced by each container in the template.", priority=1)
_SELECTOR = col("Selector", "string", "Selector", priority=1)
_WIDE = [_CONTAINERS, _IMAGES, _SELECTOR]


def _deployment(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    ready = f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}"
    return [_name(obj), ready, _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")),
            _age(obj, now), *_wide(_d(spec, "template"), spec.get("selector"))]


def _replicaset(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    return [_name(obj), _int(spec.get("replicas")), _int(status.get("replicas")), _int(status.get("readyReplicas")),
            _age(obj, now), *_wide(_d(spec, "template"), spec.get("selector"))]


def _has_condition(status: JSON, kind: str) -> bool:
    return any(isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
               for c in status.get("conditions") or [])


def job_status_text(obj: JSON) -> str:
    status = _d(obj, "status")
    if _has_condition(status, "Complete"):
        return "Complete"
    if _has_condition(status, "Failed"):
        return "Failed"
    if _d(obj, "metadata").get("deletionTimestamp"):
        return "Terminating"
    if _has_condition(status, "Suspended"):
        return "Suspended"
    if _has_condition(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    succeeded = _int(status.get("succeeded"))
    if isinstance(spec.get("completions"), int):
        completions = f"{succeeded}/{spec['completions']}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    start = try_parse_time(status["startTime"]) if isinstance(status.get("startTime"), str) else None
    if start is not None:
        end = try_parse_time(status["completionTime"]) if isinstance(status.get("completionTime"), str) else None
        duration = human_duration((now if end is None else end) - start)
    return [_name(obj), job_status_text(obj), completions, duration, _age(obj, now),
            *_wide(_d(spec, "template"), spec.get("selector"))]


def _cronjob(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    last = status.get("lastScheduleTime")
    job_spec = _d(_d(spec, "jobTemplate"), "spec")
    return [_name(obj), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            "True" if spec.get("suspend") else "False", len(status.get("active") or []),
            age(last, now) if last else "<none>", _age(obj, now),
            *_wide(_d(job_spec, "template"), job_spec.get("selector"))]


def _pdb(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    return [_name(obj), "N/A" if min_available is None else str(min_available),
            "N/A" if max_unavailable is None else str(max_unavailable), _int(status.get("disruptionsAllowed")),
            _age(obj, now)]


def _controller_revision(obj: JSON, now: float) -> list[Any]:
    owner = "<none>"
    for ref in _d(obj, "metadata").get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", "")).lower()
            owner = f"{kind}.{group}/{ref.get('name', '')}" if group else f"{kind}/{ref.get('name', '')}"
    return [_name(obj), owner, _int(obj.get("revision")), _age(obj, now)]


DEPLOYMENT = Printer([
    NAME_COL,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the "
        "desired template spec."),
    col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by "
        "this deployment."),
    AGE_COL, *_WIDE,
], _deployment)
REPLICA_SET = Printer([
    NAME_COL,
    col("Desired", "integer", "Replicas is the number of desired replicas."),
    col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    col("Ready", "integer", "The number of ready replicas for this replica set."),
    AGE_COL, *_WIDE,
], _replicaset)
JOB = Printer([
    NAME_COL,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", "The desired number of successfully finished pods the job should be run with."),
    col("Duration", "string", "Time required to complete the job."),
    AGE_COL, *_WIDE,
], _job, time_dependent=True)
CRON_JOB = Printer([
    NAME_COL,
    col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    col("Timezone", "string", "The time zone name for the given schedule, see "
        "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions."),
    col("Active", "integer", "A list of pointers to currently running jobs."),
    col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
    AGE_COL, *_WIDE,
], _cronjob, time_dependent=True)
POD_DISRUPTION_BUDGET = Printer([
    NAME_COL,
    col("Min Available", "string", "The minimum number of pods that must be available simultaneously. This can "
        "be either an integer or a string specifying a percentage, e.g. \"28%\"."),
    col("Max Unavailable", "string", "The maximum number of pods that may be unavailable simultaneously. This "
        "can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
    col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE_COL,
], _pdb)
CONTROLLER_REVISION = Printer([
    NAME_COL,
    col("Controller", "string", "Controller of the object."),
    col("Revision", "string", "Revision represents the revision of the data."),
    AGE_COL,
], _controller_revision)


def _priority_class(obj: JSON, now: float) -> list[Any]:
    return [_name(obj), _int(obj.get("value")), bool(obj.get("globalDefault")), _age(obj, now),
            obj.get("preemptionPolicy") or ""]


PRIORITY_CLASS = Printer([
    NAME_COL,
    col("Value", "integer", "value represents the integer value of this priority class."),
    col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as "
        "the default priority for pods that do not have any priority class."),
    AGE_COL,
    col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority."),
], _priority_class)


def _rc(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    selector = spec.get("selector")
    return [_name(obj), _int(spec.get("replicas")), _int(status.get("replicas")), _int(status.get("readyReplicas")),
            _age(obj, now), *_wide(_d(spec, "template"), {"matchLabels": selector} if selector else None)]


def _statefulset(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    wide = _wide(_d(spec, "template"), spec.get("selector"))[:2]
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}", _age(obj, now), *wide]


def _daemonset(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    selector = _d(_d(_d(spec, "template"), "spec"), "nodeSelector")
    shown = ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"
    return [_name(obj), _int(status.get("desiredNumberScheduled")), _int(status.get("currentNumberScheduled")),
            _int(status.get("numberReady")), _int(status.get("updatedNumberScheduled")),
            _int(status.get("numberAvailable")), shown, _age(obj, now),
            *_wide(_d(spec, "template"), spec.get("selector"))]


def _access_modes(spec: JSON) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(str(m), str(m)) for m in spec.get("accessModes") or [])


def _pv(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    claim = _d(spec, "claimRef")
    return [_name(obj), str(_d(spec, "capacity").get("storage", "")), _access_modes(spec),
            spec.get("persistentVolumeReclaimPolicy", ""), status.get("phase", ""),
            f"{claim.get('namespace')}/{claim.get('name')}" if claim else "", spec.get("storageClassName", ""),
            spec.get("volumeAttributesClassName") or "<unset>", status.get("reason", ""), _age(obj, now),
            spec.get("volumeMode", "")]


def _pvc(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    bound = status.get("phase") == "Bound"
    return [_name(obj), status.get("phase", ""), spec.get("volumeName", ""),
            str(_d(status, "capacity").get("storage", "")) if bound else "", _access_modes(status) if bound else "",
            spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>", _age(obj, now),
            spec.get("volumeMode", "")]


def _ingress(obj: JSON, now: float) -> list[Any]:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    hosts = [str(r.get("host")) for r in spec.get("rules") or [] if isinstance(r, dict) and r.get("host")]
    lb = [str(i.get("ip") or i.get("hostname") or "") for i in _d(status, "loadBalancer").get("ingress") or []]
    return [_name(obj), spec.get("ingressClassName") or "<none>", ",".join(hosts) or "*", ",".join(lb),
            "80, 443" if spec.get("tls") else "80", _age(obj, now)]


_READY_DESC = "Number of the pod with ready state"
REPLICATION_CONTROLLER = Printer(REPLICA_SET.columns, _rc)
STATEFUL_SET = Printer([NAME_COL, col("Ready", "string", _READY_DESC), AGE_COL, _CONTAINERS, _IMAGES], _statefulset)
DAEMON_SET = Printer([
    NAME_COL,
    col("Desired", "integer", "The total number of nodes that should be running the daemon pod."),
    col("Current", "integer", "The number of nodes that are running at least 1 daemon pod."),
    col("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more "
        "of the daemon pod running and ready."),
    col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more "
        "of the daemon pod running and available."),
    col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE_COL, *_WIDE,
], _daemonset)
PERSISTENT_VOLUME = Printer([
    NAME_COL, col("Capacity", "string", "capacity"), col("Access Modes", "string", "accessModes"),
    col("Reclaim Policy", "string", "persistentVolumeReclaimPolicy"), col("Status", "string", "phase"),
    col("Claim", "string", "claimRef"), col("StorageClass", "string", "storageClassName"),
    col("VolumeAttributesClass", "string", "volumeAttributesClassName"), col("Reason", "string", "reason"), AGE_COL,
    col("VolumeMode", "string", "volumeMode", priority=1),
], _pv)
PERSISTENT_VOLUME_CLAIM = Printer([
    NAME_COL, col("Status", "string", "phase"), col("Volume", "string", "volumeName"),
    col("Capacity", "string", "capacity"), col("Access Modes", "string", "accessModes"),
    col("StorageClass", "string", "storageClassName"),
    col("VolumeAttributesClass", "string", "volumeAttributesClassName"), AGE_COL,
    col("VolumeMode", "string", "volumeMode", priority=1),
], _pvc)
INGRESS = Printer([
    NAME_COL, col("Class", "string", "ingressClassName"), col("Hosts", "string", "Hosts that incoming requests are "
                                                              "matched against before the ingress rule"),
    col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
    col("Ports", "string", "Ports of TLS configurations that open"), AGE_COL,
], _ingress)
