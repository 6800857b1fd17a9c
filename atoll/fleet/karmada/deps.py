"""``propagateDeps`` (Karmada's dependencies distributor): the ConfigMaps and Secrets a workload's
pod template references go to the same clusters as the workload, through "attached"
ResourceBindings (``<name>-configmap`` / ``<name>-secret``) whose ``spec.requiredBy`` lists the
bindings that need them; an attached binding no longer required by anyone is deleted. The
manager watches the kind of every attached binding, so an edit of a dependency re-queues its
binding and reaches the members at once.
"""

from __future__ import annotations

import contextlib
from typing import Any

from atoll.api.errors import AlreadyExists, NotFound
from atoll.client import Client
from atoll.fleet.karmada.names import binding_name
from atoll.fleet.kinds import RESOURCE_BINDINGS
from atoll.runtime import Cache

JSON = dict[str, Any]
DEPENDED_BY = "resourcebinding.karmada.io/depended-by"


def dependencies(template: JSON) -> set[tuple[str, str]]:
    """(kind, name) of the ConfigMaps and Secrets the pod template refers to."""
    spec = template.get("spec") or {}
    pod = spec if template.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec") or {})
    found: set[tuple[str, str]] = set()
    for volume in pod.get("volumes") or ():
        if (volume.get("configMap") or {}).get("name"):
            found.add(("ConfigMap", volume["configMap"]["name"]))
        if (volume.get("secret") or {}).get("secretName"):
            found.add(("Secret", volume["secret"]["secretName"]))
    for secret in pod.get("imagePullSecrets") or ():
        if secret.get("name"):
            found.add(("Secret", secret["name"]))
    for container in [*(pod.get("initContainers") or ()), *(pod.get("containers") or ())]:
        for source in container.get("envFrom") or ():
            if (source.get("configMapRef") or {}).get("name"):
                found.add(("ConfigMap", source["configMapRef"]["name"]))
            if (source.get("secretRef") or {}).get("name"):
                found.add(("Secret", source["secretRef"]["name"]))
        for env in container.get("env") or ():
            ref = env.get("valueFrom") or {}
            if (ref.get("configMapKeyRef") or {}).get("name"):
                found.add(("ConfigMap", ref["configMapKeyRef"]["name"]))
            if (ref.get("secretKeyRef") or {}).get("name"):
                found.add(("Secret", ref["secretKeyRef"]["name"]))
    return found


async def sync_attached(client: Client, bindings: Cache, binding: JSON, wanted: set[tuple[str, str]]) -> None:
    """Make the attached bindings of ``binding`` match ``wanted`` (empty: release them all)."""
    md = binding["metadata"]
    ns, me = md["namespace"], md["name"]
    clusters = [{"name": t["name"]} for t in (binding.get("spec") or {}).get("clusters") or ()]
    names = {binding_name(kind, name): (kind, name) for kind, name in wanted}
    for attached in bindings.list(ns):
        amd = attached["metadata"]
        required = [r for r in (attached.get("spec") or {}).get("requiredBy") or ()]
        if not any(r.get("name") == me for r in required) or amd["name"] in names:
            continue
        rest = [r for r in required if r.get("name") != me]
        with contextlib.suppress(NotFound):
            if rest:
                await client.patch(
                    RESOURCE_BINDINGS, amd["name"], {"spec": {"requiredBy": rest, "clusters": _union(rest)}}, ns
                )
            else:
                await client.delete(RESOURCE_BINDINGS, amd["name"], ns)
    for name, (kind, dep) in names.items():
        current = bindings.get(name, ns)
        entry = {"namespace": ns, "name": me, "clusters": clusters}
        if current is None:
            body = {
                "apiVersion": RESOURCE_BINDINGS.api_version,
                "kind": "ResourceBinding",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": {DEPENDED_BY: "true"},
                    "finalizers": ["karmada.io/binding-controller"],
                },
                "spec": {
                    "resource": {"apiVersion": "v1", "kind": kind, "namespace": ns, "name": dep},
                    "requiredBy": [entry],
                    "clusters": clusters,
                },
            }
            with contextlib.suppress(AlreadyExists):
                await client.create(RESOURCE_BINDINGS, body, ns)
            continue
        required = [r for r in (current.get("spec") or {}).get("requiredBy") or () if r.get("name") != me] + [entry]
        spec = {"requiredBy": required, "clusters": _union(required)}
        if {k: (current.get("spec") or {}).get(k) for k in spec} != spec:
            await client.patch(RESOURCE_BINDINGS, name, {"spec": spec}, ns)


def _union(required: list[JSON]) -> list[JSON]:
    names = sorted({c["name"] for r in required for c in r.get("clusters") or ()})
    return [{"name": n} for n in names]
