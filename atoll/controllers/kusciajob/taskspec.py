"""The KusciaTask a job creates for one of its tasks (contract C1, Kuscia §2.4 step 5).

Name = task ID, namespace ``cross-domain``, owned by the job (``controller: true`` so the garbage
collector deletes tasks with their job), labels ``controller=kuscia-job`` and ``job-uid`` (what the
job lists its tasks by), annotations ``job-id``, ``task-id``, ``task-alias``, ``initiator``,
``self-cluster-as-initiator``/``-participant`` and the interconn party lists copied from the job.

A party's ``resources`` are divided evenly over the containers times replicas of the deploy template
the party's role selects in the AppImage (Kuscia's rule) and put on every container through the
party's ``template``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from atoll.api.constants import CROSS_DOMAIN_NAMESPACE
from atoll.api.kuscia_tasks import select_deploy_template
from atoll.api.quantity import format_quantity, parse_quantity
from atoll.controllers.kusciajob.constants import (
    ANN_INITIATOR,
    ANN_INTERCONN_BFIA_PARTIES,
    ANN_INTERCONN_KUSCIA_PARTIES,
    ANN_INTERCONN_SELF_PARTIES,
    ANN_JOB_ID,
    ANN_SELF_CLUSTER_AS_INITIATOR,
    ANN_SELF_CLUSTER_AS_PARTICIPANT,
    ANN_TASK_ALIAS,
    ANN_TASK_ID,
    API_VERSION,
    CONTROLLER_KUSCIA_JOB,
    LABEL_CONTROLLER,
    LABEL_JOB_UID,
)
from atoll.controllers.kusciajob.dag import Task

JSON = dict[str, Any]
COPIED_ANNOTATIONS = (
    ANN_INITIATOR,
    ANN_SELF_CLUSTER_AS_INITIATOR,
    ANN_INTERCONN_KUSCIA_PARTIES,
    ANN_INTERCONN_BFIA_PARTIES,
    ANN_INTERCONN_SELF_PARTIES,
)


def owner_reference(job: JSON) -> JSON:
    meta = job["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "KusciaJob",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def divide_resources(resources: JSON, parts: int) -> JSON:
    """``requests``/``limits`` each divided by ``parts`` (quantities stay exact)."""
    out: JSON = {}
    for section in ("requests", "limits"):
        values = resources.get(section) or {}
        if values:
            out[section] = {
                name: format_quantity(parse_quantity(value) / Fraction(parts), str(value))
                for name, value in values.items()
            }
    return out


def party_template(party: JSON, app_image: JSON | None) -> JSON | None:
    """The party's ``template`` carrying its divided ``resources``, or ``None`` when it sets none."""
    resources = party.get("resources") or {}
    if not resources:
        return None
    deploy = select_deploy_template(app_image, str(party.get("role") or ""))
    if deploy is None:
        return None
    containers = list((deploy.get("spec") or {}).get("containers") or ())
    replicas = int(deploy.get("replicas") or 1)
    if not containers:
        return None
    share = divide_resources(resources, len(containers) * max(replicas, 1))
    return {"spec": {"containers": [{"name": str(c.get("name", "")), "resources": share} for c in containers]}}


def kuscia_task(job: JSON, task: Task, app_image: JSON | None) -> JSON:
    meta = job["metadata"]
    spec = job.get("spec") or {}
    job_annotations = meta.get("annotations") or {}
    annotations = {k: str(job_annotations[k]) for k in COPIED_ANNOTATIONS if job_annotations.get(k)}
    annotations.update(
        {
            ANN_JOB_ID: meta["name"],
            ANN_TASK_ID: task.task_id,
            ANN_TASK_ALIAS: task.alias,
            ANN_INITIATOR: str(spec.get("initiator") or ""),
            ANN_SELF_CLUSTER_AS_PARTICIPANT: "true",
        }
    )
    parties = []
    for party in task.template.get("parties") or ():
        entry: JSON = {"domainID": party["domainID"], "appImageRef": task.template.get("appImage", "")}
        if party.get("role"):
            entry["role"] = party["role"]
        if party.get("bandwidthLimits"):
            entry["bandwidthLimits"] = party["bandwidthLimits"]
        template = party_template(party, app_image)
        if template is not None:
            entry["template"] = template
        parties.append(entry)
    task_spec: JSON = {
        "initiator": str(spec.get("initiator") or ""),
        "taskInputConfig": str(task.template.get("taskInputConfig") or ""),
        "parties": parties,
    }
    if task.template.get("scheduleConfig"):
        task_spec["scheduleConfig"] = task.template["scheduleConfig"]
    return {
        "apiVersion": API_VERSION,
        "kind": "KusciaTask",
        "metadata": {
            "name": task.task_id,
            "namespace": CROSS_DOMAIN_NAMESPACE,
            "labels": {LABEL_CONTROLLER: CONTROLLER_KUSCIA_JOB, LABEL_JOB_UID: meta["uid"]},
            "annotations": annotations,
            "ownerReferences": [owner_reference(job)],
        },
        "spec": task_spec,
    }
