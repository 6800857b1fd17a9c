"""Validation of query parameters and option bodies, answered as kube-apiserver answers them.

Every malformed value is a 400 ``BadRequest`` (or 422 ``Invalid`` for DeleteOptions fields)
``Status`` naming the parameter — never a 500, and never silently taken as something else
(``dryRun=Bogus`` is not a dry run; ``gracePeriodSeconds=abc`` deletes nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from atoll.api import errors

JSON = dict[str, Any]
PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
MAX_INT64 = 2**63 - 1


def _bad(name: str, value: object, detail: str) -> errors.APIError:
    return errors.BadRequest(f'{name}: Invalid value: "{value}": {detail}')


def integer(name: str, raw: str, *, minimum: int | None = None) -> int:
    """A decimal int64 query parameter (400 naming it otherwise)."""
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, raw, "must be an integer") from None
    if not -MAX_INT64 - 1 <= value <= MAX_INT64:
        raise _bad(name, raw, "out of range for a 64-bit integer")
    if minimum is not None and value < minimum:
        raise _bad(name, raw, f"must be greater than or equal to {minimum}")
    return value


def flag(value: object) -> bool | None:
    """A boolean of list/watch/patch options as kube-apiserver reads it from the query
    (``runtime.Convert_Slice_string_To_bool``): None when absent; when present, only "0" and "false"
    (any case) are false and anything else, "" included, is true -- never an error. An in-process
    caller's bool is itself."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value)
    return text != "0" and text.lower() != "false"


def boolean(name: str, raw: str) -> bool:
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0", ""):
        return False
    raise _bad(name, raw, "must be true or false")


def resource_version(query: Mapping[str, str]) -> str:
    """``resourceVersion`` of a list or watch: empty or a non-negative integer."""
    raw = query.get("resourceVersion", "")
    if raw and not (raw.isdigit() and int(raw) <= MAX_INT64):
        raise _bad("resourceVersion", raw, "must be a non-negative integer (a resourceVersion)")
    return raw


def dry_run(values: list[str]) -> bool:
    """``dryRun`` (query, repeatable, or DeleteOptions): only ``All`` is defined."""
    for value in values:
        if value != "All":
            raise errors.BadRequest(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def delete_options(options: JSON, query: Mapping[str, str]) -> JSON:
    """DeleteOptions from the body with the query's parameters filled in, types checked."""
    out = dict(options)
    for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
        if key in query and key not in out:
            out[key] = query[key]
    grace = out.get("gracePeriodSeconds")
    if isinstance(grace, str):
        out["gracePeriodSeconds"] = integer("gracePeriodSeconds", grace)
    elif grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)):
        raise _bad("gracePeriodSeconds", grace, "must be an integer")
    policy = out.get("propagationPolicy")
    if policy is not None and policy not in PROPAGATION_POLICIES:
        raise errors.invalid(
            "DeleteOptions",
            "",
            "",
            [
                {
                    "reason": "FieldValueNotSupported",
                    "field": "propagationPolicy",
                    "message": f'Unsupported value: "{policy}": supported values: "Orphan", "Background", "Foreground"',
                }
            ],
        )
    orphan = out.get("orphanDependents")
    if isinstance(orphan, str):
        out["orphanDependents"] = boolean("orphanDependents", orphan)
    elif orphan is not None and not isinstance(orphan, bool):
        raise _bad("orphanDependents", orphan, "must be true or false")
    if out.get("preconditions") is not None and not isinstance(out["preconditions"], dict):
        raise _bad("preconditions", out["preconditions"], "must be an object")
    if "dryRun" in out and not isinstance(out["dryRun"], list):
        raise _bad("dryRun", out["dryRun"], "must be a list")
    return out


def pod_log(query: Mapping[str, str]) -> None:
    """The ``pods/log`` parameters, as the kubelet would refuse them (before anything is forwarded)."""
    for name in ("tailLines", "sinceSeconds", "limitBytes"):
        if name in query:
            integer(name, query[name], minimum=0 if name == "tailLines" else 1)
    for name in ("follow", "previous", "timestamps"):
        if name in query:
            boolean(name, query[name])
    if "sinceTime" in query and not _RFC3339.match(query["sinceTime"]):
        raise _bad("sinceTime", query["sinceTime"], "must be an RFC 3339 time")
    if "sinceTime" in query and "sinceSeconds" in query:
        raise errors.BadRequest("at most one of sinceTime or sinceSeconds may be specified")


RESOURCE_VERSION_MATCHES = ("", "Exact", "NotOlderThan")
MAX_FIELD_MANAGER = 128


def _forbidden(field: str, detail: str) -> JSON:
    return {"reason": "FieldValueForbidden", "field": field, "message": f"Forbidden: {detail}"}


def _not_supported(value: str, supported: tuple[str, ...]) -> JSON:
    values = ", ".join(f'"{v}"' for v in supported)
    return {
        "reason": "FieldValueNotSupported",
        "field": "resourceVersionMatch",
        "message": f'Unsupported value: "{value}": supported values: {values}',
    }


def _raise_list_options(causes: list[JSON]) -> None:
    if causes:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", causes)


def resource_version_match(query: Mapping[str, str], rv: str) -> str:
    """A LIST's ``resourceVersionMatch`` (``Exact`` or ``NotOlderThan``, only with a ``resourceVersion``,
    not with ``continue``, not ``Exact`` at "0") and no ``sendInitialEvents``: 422 naming every bad
    combination, as kube-apiserver's ``ValidateListOptions``."""
    match = query.get("resourceVersionMatch", "")
    causes: list[JSON] = []
    if match:
        if not rv:
            causes.append(
                _forbidden(
                    "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"
                )
            )
        if query.get("continue"):
            causes.append(
                _forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
            )
        if match not in RESOURCE_VERSION_MATCHES:
            causes.append(_not_supported(match, RESOURCE_VERSION_MATCHES))
        if match == "Exact" and rv == "0":
            causes.append(
                _forbidden("resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
            )
    if "sendInitialEvents" in query:
        causes.append(_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    _raise_list_options(causes)
    return match


def watch_resource_version_match(match: str, send_initial: bool | None, continue_token: str) -> None:
    """A watch's ``resourceVersionMatch``: only ``NotOlderThan``, required by ``sendInitialEvents`` and
    only with it, not with ``continue`` (kube-apiserver's ``validateWatchOptions``; 422)."""
    causes: list[JSON] = []
    if send_initial is not None and match != "NotOlderThan":
        causes.append(
            _forbidden(
                "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            )
        )
    if match:
        if send_initial is None:
            causes.append(
                _forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )
            )
        if match != "NotOlderThan":
            causes.append(_not_supported(match, ("NotOlderThan",)))
        if continue_token:
            causes.append(
                _forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
            )
    _raise_list_options(causes)


def field_manager(value: str) -> str:
    if len(value) > MAX_FIELD_MANAGER:
        raise errors.invalid(
            "Options",
            "meta.k8s.io",
            "",
            [
                {
                    "reason": "FieldValueTooLong",
                    "field": "fieldManager",
                    "message": f"Too long: may not be longer than {MAX_FIELD_MANAGER}",
                }
            ],
        )
    return value
