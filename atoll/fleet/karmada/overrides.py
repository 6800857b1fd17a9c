"""OverridePolicy / ClusterOverridePolicy (Karmada ``pkg/util/overridemanager``): which policies
apply to a template in a cluster, and the overriders in Karmada's order — image, command, args,
labels, annotations, fields inside JSON/YAML string values (``fieldOverrider``), then plaintext
JSON-pointer operations. ClusterOverridePolicies apply before
OverridePolicies; within each, policies apply by name (Karmada sorts them the same way).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import orjson
import yaml

from atoll.fleet.karmada.placement import affinity_matches
from atoll.fleet.karmada.policies import selector_matches

JSON = dict[str, Any]
log = logging.getLogger(__name__)
_POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job")


def rules_for(policy: JSON, template: JSON, cluster: JSON) -> list[JSON]:
    spec = policy.get("spec") or {}
    selectors = spec.get("resourceSelectors")
    if selectors and not any(selector_matches(s, template) for s in selectors):
        return []
    rules = list(spec.get("overrideRules") or ())
    if spec.get("overriders"):  # the deprecated top-level form
        rules.append({"targetCluster": spec.get("targetCluster"), "overriders": spec["overriders"]})
    return [r.get("overriders") or {} for r in rules if affinity_matches(r.get("targetCluster"), cluster)]


def apply_overrides(
    template: JSON, cluster: JSON, cluster_policies: list[JSON], policies: list[JSON]
) -> tuple[JSON, list[str]]:
    """The manifest for ``cluster`` and the names of the policies applied."""
    manifest = copy.deepcopy(template)
    applied: list[str] = []
    for policy in [*sorted(cluster_policies, key=_name), *sorted(policies, key=_name)]:
        for overriders in rules_for(policy, template, cluster):
            _apply(manifest, overriders)
            if _name(policy) not in applied:
                applied.append(_name(policy))
    return manifest, applied


def _name(policy: JSON) -> str:
    return str(policy["metadata"]["name"])


def _apply(obj: JSON, overriders: JSON) -> None:
    for image in overriders.get("imageOverrider") or ():
        _image(obj, image)
    for key, field in (("commandOverrider", "command"), ("argsOverrider", "args")):
        for entry in overriders.get(key) or ():
            _list_field(obj, entry, field)
    for key, field in (("labelsOverrider", "labels"), ("annotationsOverrider", "annotations")):
        for entry in overriders.get(key) or ():
            _map_field(obj.setdefault("metadata", {}), field, entry)
    for entry in overriders.get("fieldOverrider") or ():
        _field(obj, entry)
    for entry in overriders.get("plaintext") or ():
        _plaintext(obj, entry)


def _containers(obj: JSON) -> list[JSON]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        pod = spec
    elif obj.get("kind") in _POD_TEMPLATE_KINDS:
        pod = ((spec.get("template") or {}).get("spec")) or {}
    else:
        return []
    return list(pod.get("containers") or ())


_IMAGE = re.compile(
    r"^(?:(?P<registry>[^/]+\.[^/]+|[^/]+:\d+|localhost)/)?(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?P<digest>@.+)?$"
)


def _image(obj: JSON, overrider: JSON) -> None:
    path = (overrider.get("predicate") or {}).get("path")
    targets: list[tuple[JSON, str]] = []
    if path:
        parent, key = _resolve_parent(obj, path)
        if parent is not None:
            targets.append((parent, key))
    else:
        targets = [(c, "image") for c in _containers(obj)]
    for holder, key in targets:
        holder[key] = _override_image(str(holder.get(key) or ""), overrider)


def _override_image(image: str, overrider: JSON) -> str:
    m = _IMAGE.match(image)
    parts = {k: (m.group(k) or "") if m else "" for k in ("registry", "repository", "tag", "digest")}
    component = str(overrider.get("component") or "").lower()
    op, value = overrider.get("operator"), str(overrider.get("value") or "")
    current = parts.get(component, "")
    if op == "replace":
        parts[component] = value
    elif op == "remove":
        parts[component] = ""
    elif op == "add":
        parts[component] = current + value
    image = parts["repository"]
    if parts["registry"]:
        image = f"{parts['registry']}/{image}"
    if parts["tag"]:
        image = f"{image}:{parts['tag']}"
    return image + parts["digest"]


def _list_field(obj: JSON, entry: JSON, field: str) -> None:
    for container in _containers(obj):
        if container.get("name") != entry.get("containerName"):
            continue
        values = [str(v) for v in entry.get("value") or ()]
        current = list(container.get(field) or ())
        if entry.get("operator") == "add":
            container[field] = current + values
        elif entry.get("operator") == "remove":
            container[field] = [v for v in current if v not in values]


def _map_field(metadata: JSON, field: str, entry: JSON) -> None:
    current = dict(metadata.get(field) or {})
    values = {str(k): str(v) for k, v in (entry.get("value") or {}).items()}
    op = entry.get("operator")
    if op in ("add", "replace"):
        current.update(values if op == "add" else {k: v for k, v in values.items() if k in current})
    elif op == "remove":
        for key in values:
            current.pop(key, None)
    metadata[field] = current


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _resolve_parent(obj: JSON, path: str) -> tuple[Any, str]:
    parts = _pointer(path)
    node: Any = obj
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        if node is None:
            return None, parts[-1]
    return node, parts[-1]


def _plaintext(obj: JSON, entry: JSON) -> None:
    parent, key = _resolve_parent(obj, str(entry.get("path") or ""))
    if parent is None:
        return
    op = entry.get("operator")
    if isinstance(parent, list):
        index = len(parent) if key == "-" else int(key)
        if op == "add":
            parent.insert(index, entry.get("value"))
        elif op == "remove" and index < len(parent):
            parent.pop(index)
        elif op == "replace" and index < len(parent):
            parent[index] = entry.get("value")
        return
    if op in ("add", "replace"):
        parent[key] = entry.get("value")
    elif op == "remove":
        parent.pop(key, None)


def _field(obj: JSON, entry: JSON) -> None:
    """``fieldOverrider``: JSON-pointer operations (``json``/``yaml`` lists of ``subPath``,
    ``operator``, ``value``) inside a string field holding a JSON or YAML document (a ConfigMap's
    data value, say), written back in the same format. A field that is missing, not a string or
    not parseable is left alone (logged)."""
    parent, key = _resolve_parent(obj, str(entry.get("fieldPath") or ""))
    raw = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(raw, str):
        log.warning("fieldOverrider: %s is not a string field; skipped", entry.get("fieldPath"))
        return
    for fmt in ("json", "yaml"):
        ops = entry.get(fmt) or ()
        if not ops:
            continue
        try:
            doc = orjson.loads(raw) if fmt == "json" else yaml.safe_load(raw)
        except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
            log.warning("fieldOverrider: %s is not %s: %s; skipped", entry.get("fieldPath"), fmt.upper(), exc)
            return
        holder = {"doc": doc}
        for op in ops:
            _plaintext(holder, {**op, "path": "/doc" + str(op.get("subPath") or "")})
        doc = holder.get("doc")
        raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode() if fmt == "json" else yaml.safe_dump(doc)
    parent[key] = raw
