"""CustomResourceDefinitions: the shipped Kuscia CRDs, CRD validation, CRD -> ``ResourceDef``.

``kuscia_crds()`` reads the manifests under ``atoll/api/crds/`` (package data, one
``apiextensions.k8s.io/v1`` CustomResourceDefinition per Kuscia kind); ``pooling_crds()`` those
under ``atoll/api/crds_pooling/`` (Kubeocean's ClusterBinding and ResourceLeasingPolicy);
``fleet_crds()`` Kairship's Instance (``crds_fleet/``) and ``karmada_crds()`` the Karmada kinds every
fleet instance serves (``crds_karmada/``). ``validate_crd`` checks a
CRD the way kube-apiserver's CRD strategy does (the subset Atoll relies on) and returns
Kubernetes ``StatusCause`` dicts; ``crd_to_resource_defs`` turns a valid CRD into one ``ResourceDef`` per
served version (preferred version first; naming the storage version, and the conversion webhook
if any, when the CRD has several, so reads and writes convert, ``atoll.apiserver.registry.conversion``)
for the registry.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from atoll.api.registry import PrinterColumn, ResourceDef

JSON = dict[str, Any]

CRD_API_VERSION = "apiextensions.k8s.io/v1"
KUSCIA_GROUP = "kuscia.secretflow"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_VERSION = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KUBE_VERSION = re.compile(r"^v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?$")
_STABILITY = {"alpha": 0, "beta": 1, None: 2}
_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")
_COLUMN_FORMATS = ("int32", "int64", "float", "double", "byte", "date", "date-time", "password")
_SCHEMA_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


@lru_cache(maxsize=8)
def _load_texts(directory: str = "crds") -> tuple[str, ...]:
    root = resources.files("atoll.api").joinpath(directory)
    names = sorted(p.name for p in root.iterdir() if p.name.endswith(".yaml"))
    return tuple(root.joinpath(n).read_text(encoding="utf-8") for n in names)


def _load(directory: str) -> list[JSON]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [yaml.load(text, Loader=loader) for text in _load_texts(directory)]


def kuscia_crds() -> list[JSON]:
    """The Kuscia CRD manifests shipped with Atoll (fresh dicts on every call, sorted by file name)."""
    return _load("crds")


def pooling_crds() -> list[JSON]:
    """Kubeocean's ``cloud.tencent.com/v1beta1`` CRDs (ClusterBinding, ResourceLeasingPolicy)."""
    return _load("crds_pooling")


def fleet_crds() -> list[JSON]:
    """Kairship's ``kairship.io/v1alpha1`` Instance CRD (served by the management master)."""
    return _load("crds_fleet")


def karmada_crds() -> list[JSON]:
    """Karmada's CRDs (Cluster, PropagationPolicy, OverridePolicy, ResourceBinding, Work, and the
    cluster-scoped variants), served inside every fleet Instance."""
    return _load("crds_karmada")


# --------------------------------------------------------------------------------------- validation


def _cause(reason: str, field: str, message: str) -> JSON:
    return {"reason": reason, "message": message, "field": field}


def _required(field: str, detail: str = "") -> JSON:
    return _cause("FieldValueRequired", field, f"Required value: {detail}" if detail else "Required value")


def _invalid(field: str, value: Any, detail: str) -> JSON:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return _cause("FieldValueInvalid", field, f"Invalid value: {shown}: {detail}")


def _unsupported(field: str, value: Any, supported: tuple[str, ...]) -> JSON:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    values = ", ".join(f'"{s}"' for s in supported)
    return _cause("FieldValueNotSupported", field, f"Unsupported value: {shown}: supported values: {values}")


def _validate_names(names: Any, causes: list[JSON]) -> None:
    if not isinstance(names, dict):
        causes.append(_required("spec.names"))
        return
    for key in ("plural", "kind"):
        if not names.get(key):
            causes.append(_required(f"spec.names.{key}"))
    for key in ("plural", "singular"):
        value = names.get(key)
        if value and (not isinstance(value, str) or not _DNS_LABEL.match(value)):
            causes.append(_invalid(f"spec.names.{key}", value, _LABEL_MSG))
    for key in ("kind", "listKind"):
        value = names.get(key)
        if value and (not isinstance(value, str) or not _KIND.match(value)):
            causes.append(
                _invalid(
                    f"spec.names.{key}",
                    value,
                    "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
                )
            )
    if names.get("kind") and names.get("listKind") and names["kind"] == names["listKind"]:
        causes.append(_invalid("spec.names.listKind", names["listKind"], "kind and listKind must be different"))
    for list_key in ("shortNames", "categories"):
        seen: set[str] = set()
        for i, item in enumerate(names.get(list_key) or ()):
            field = f"spec.names.{list_key}[{i}]"
            if not isinstance(item, str) or not _DNS_LABEL.match(item):
                causes.append(_invalid(field, item, _LABEL_MSG))
            elif item in seen:
                causes.append(_cause("FieldValueDuplicate", field, f'Duplicate value: "{item}"'))
            seen.add(str(item))


def _validate_schema_node(node: Any, path: str, causes: list[JSON], root: bool = False) -> None:
    """Structural-schema checks on one node (types known, object/array shapes consistent)."""
    if not isinstance(node, dict):
        causes.append(_invalid(path, type(node).__name__, "must be an object"))
        return
    typ = node.get("type")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if root and typ != "object":
        causes.append(_invalid(f"{path}.type", typ or "", "must be object at the root"))
    if typ is not None and typ not in _SCHEMA_TYPES:
        causes.append(_unsupported(f"{path}.type", typ, _SCHEMA_TYPES))
    if typ is None and not int_or_string and not preserve and ("properties" in node or "items" in node):
        causes.append(_required(f"{path}.type", "must not be empty for specified object fields"))
    if int_or_string and typ is not None:
        causes.append(_invalid(f"{path}.type", typ, "must be empty if x-kubernetes-int-or-string is true"))
    if "properties" in node and "additionalProperties" in node and node["additionalProperties"] is not False:
        causes.append(
            _cause(
                "FieldValueForbidden",
                f"{path}.additionalProperties",
                "Forbidden: additionalProperties and properties are mutual exclusive",
            )
        )
    if typ == "array" and not isinstance(node.get("items"), dict):
        causes.append(_required(f"{path}.items", "must be specified"))
    for key in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
        if key in node and (isinstance(node[key], bool) or not isinstance(node[key], int | float)):
            causes.append(_invalid(f"{path}.{key}", node[key], "must be a number"))
    if "pattern" in node:
        try:
            re.compile(str(node["pattern"]))
        except re.error as exc:
            causes.append(_invalid(f"{path}.pattern", node["pattern"], f"must be a valid regular expression: {exc}"))
    required = node.get("required")
    if required is not None and not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        causes.append(_invalid(f"{path}.required", required, "must be a list of strings"))
    for name, child in (node.get("properties") or {}).items():
        _validate_schema_node(child, f"{path}.properties[{name}]", causes)
    if isinstance(node.get("items"), dict):
        _validate_schema_node(node["items"], f"{path}.items", causes)
    if isinstance(node.get("additionalProperties"), dict):
        _validate_schema_node(node["additionalProperties"], f"{path}.additionalProperties", causes)


def _validate_version(v: Any, i: int, causes: list[JSON]) -> None:
    base = f"spec.versions[{i}]"
    if not isinstance(v, dict):
        causes.append(_invalid(base, str(v), "must be an object"))
        return
    name = v.get("name")
    if not name:
        causes.append(_required(f"{base}.name"))
    elif not isinstance(name, str) or not _VERSION.match(name):
        causes.append(_invalid(f"{base}.name", name, _LABEL_MSG))
    schema = (v.get("schema") or {}).get("openAPIV3Schema")
    if schema is None:
        causes.append(_required(f"{base}.schema.openAPIV3Schema", "schemas are required"))
    else:
        _validate_schema_node(schema, f"{base}.schema.openAPIV3Schema", causes, root=True)
    sub = v.get("subresources") or {}
    if not isinstance(sub, dict) or any(k not in ("status", "scale") for k in sub):
        causes.append(_invalid(f"{base}.subresources", str(sub), "only status and scale are supported"))
    for j, col in enumerate(v.get("additionalPrinterColumns") or ()):
        cbase = f"{base}.additionalPrinterColumns[{j}]"
        if not isinstance(col, dict):
            causes.append(_invalid(cbase, str(col), "must be an object"))
            continue
        if not col.get("name"):
            causes.append(_required(f"{cbase}.name"))
        if not col.get("jsonPath"):
            causes.append(_required(f"{cbase}.jsonPath"))
        elif not str(col["jsonPath"]).startswith("."):
            causes.append(_invalid(f"{cbase}.jsonPath", col["jsonPath"], "must be a simple json path starting with ."))
        if not col.get("type"):
            causes.append(_required(f"{cbase}.type"))
        elif col["type"] not in _COLUMN_TYPES:
            causes.append(_unsupported(f"{cbase}.type", col["type"], _COLUMN_TYPES))
        if col.get("format") and col["format"] not in _COLUMN_FORMATS:
            causes.append(_unsupported(f"{cbase}.format", col["format"], _COLUMN_FORMATS))


def validate_crd(crd: JSON) -> list[JSON]:
    """Problems with a CRD as Kubernetes causes (``reason``, ``message``, ``field``); empty if valid."""
    causes: list[JSON] = []
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    group = spec.get("group")
    if not group:
        causes.append(_required("spec.group"))
    elif not isinstance(group, str) or not _DNS_SUBDOMAIN.match(group):
        causes.append(_invalid("spec.group", group, "a lowercase RFC 1123 subdomain is required"))
    elif "." not in group:
        causes.append(_invalid("spec.group", group, "should be a domain with at least one dot"))
    names = spec.get("names")
    _validate_names(names, causes)
    plural = names.get("plural") if isinstance(names, dict) else None
    name = (crd.get("metadata") or {}).get("name")
    if not name:
        causes.append(_required("metadata.name", "name or generateName is required"))
    elif plural and group and name != f"{plural}.{group}":
        causes.append(_invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if not scope:
        causes.append(_required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        causes.append(_unsupported("spec.scope", scope, ("Cluster", "Namespaced")))
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(_required("spec.versions", "must have exactly one version marked as storage version"))
        return causes
    seen: set[str] = set()
    for i, v in enumerate(versions):
        _validate_version(v, i, causes)
        vname = v.get("name") if isinstance(v, dict) else None
        if isinstance(vname, str) and vname:
            if vname in seen:
                causes.append(_cause("FieldValueDuplicate", f"spec.versions[{i}].name", f'Duplicate value: "{vname}"'))
            seen.add(vname)
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage") is True)
    if storage != 1:
        causes.append(_invalid("spec.versions", storage, "must have exactly one version marked as storage version"))
    _validate_conversion(spec.get("conversion"), causes)
    return causes


def _validate_conversion(conversion: Any, causes: list[JSON]) -> None:
    """``spec.conversion``: strategy ``None`` (the default: only ``apiVersion`` changes between
    versions) or ``Webhook``, called at ``webhook.clientConfig.url`` (https; ``caBundle`` the PEM CAs
    it is verified with, base64) with a ``ConversionReview`` of ``apiextensions.k8s.io/v1``. A
    ``clientConfig.service`` is refused: the master does not route to Service addresses."""
    if conversion is None:
        return
    if not isinstance(conversion, dict):
        causes.append(_invalid("spec.conversion", str(conversion), "must be an object"))
        return
    strategy = conversion.get("strategy")
    if strategy is None or strategy == "None":
        return
    if strategy != "Webhook":
        causes.append(_unsupported("spec.conversion.strategy", strategy, ("None", "Webhook")))
        return
    webhook = conversion.get("webhook")
    if not isinstance(webhook, dict):
        causes.append(_required("spec.conversion.webhook", "required when strategy is set to Webhook"))
        return
    reviews = webhook.get("conversionReviewVersions")
    if not isinstance(reviews, list) or "v1" not in reviews:
        causes.append(
            _invalid(
                "spec.conversion.webhook.conversionReviewVersions", reviews, 'must include "v1" (the one Atoll sends)'
            )
        )
    config = webhook.get("clientConfig")
    if not isinstance(config, dict) or not (config.get("url") or config.get("service")):
        causes.append(_required("spec.conversion.webhook.clientConfig", "exactly one of url or service is required"))
    elif config.get("service"):
        causes.append(
            _cause(
                "FieldValueForbidden",
                "spec.conversion.webhook.clientConfig.service",
                "Forbidden: Atoll calls conversion webhooks by clientConfig.url only",
            )
        )
    elif not str(config["url"]).startswith("https://"):
        causes.append(
            _invalid(
                "spec.conversion.webhook.clientConfig.url", config["url"], "'https' is the only allowed URL scheme"
            )
        )


def conversion_webhook(crd: JSON) -> JSON | None:
    """The ``clientConfig`` of a (valid) CRD's conversion webhook, or None (strategy ``None``)."""
    conversion = crd["spec"].get("conversion") or {}
    if conversion.get("strategy") != "Webhook":
        return None
    config: JSON = conversion["webhook"]["clientConfig"]
    return config


# ------------------------------------------------------------------------------------- conversion


def _columns(version: JSON) -> tuple[PrinterColumn, ...]:
    return tuple(
        PrinterColumn(
            name=str(c["name"]),
            type=str(c["type"]),
            json_path=str(c["jsonPath"]),
            description=str(c.get("description") or ""),
            priority=int(c.get("priority") or 0),
            format=str(c.get("format") or ""),
        )
        for c in version.get("additionalPrinterColumns") or ()
    )


def version_priority(version: str) -> tuple[int, int, int, int, str]:
    """Sort key of kube-apiserver's ``CompareKubeAwareVersionStrings``: GA before beta before alpha,
    then the higher major and minor; versions not of that form after, alphabetically."""
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (1, 0, 0, 0, version)
    major, stability, minor = match.groups()
    return (0, -_STABILITY[stability], -int(major), -int(minor or 0), "")


def crd_to_resource_defs(crd: JSON) -> list[ResourceDef]:
    """One ``ResourceDef`` per served version of a (valid) CRD, the highest version priority first
    (the preferred version of discovery, as kube-apiserver orders a CRD's versions)."""
    spec = crd["spec"]
    names = spec["names"]
    kind = str(names["kind"])
    # several versions (served or not: objects may be stored at any): each converts what it reads
    storage = next(str(v["name"]) for v in spec["versions"] if v.get("storage")) if len(spec["versions"]) > 1 else ""
    versions = [v for v in spec["versions"] if v.get("served", True)]
    versions.sort(key=lambda v: version_priority(str(v["name"])))
    out = []
    for v in versions:
        subresources = tuple(k for k in ("status", "scale") if k in (v.get("subresources") or {}))
        out.append(
            ResourceDef(
                group=str(spec["group"]),
                version=str(v["name"]),
                kind=kind,
                plural=str(names["plural"]),
                singular=str(names.get("singular") or kind.lower()),
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                printer_columns=_columns(v),
                schema=(v.get("schema") or {}).get("openAPIV3Schema"),
                builtin=False,
                list_kind=str(names.get("listKind") or f"{kind}List"),
                storage_version=storage,
                conversion_webhook=conversion_webhook(crd) if storage else None,
            )
        )
    return out


def kuscia_resource_defs() -> list[ResourceDef]:
    """``ResourceDef``s of every shipped Kuscia CRD (storage versions)."""
    return [rd for crd in kuscia_crds() for rd in crd_to_resource_defs(crd)]
