"""Admission for Kuscia kinds: Domain IDs and the Domain fields the CRD schema cannot express.

A Domain's name becomes a namespace and a DNS label in gateway host names
(``<svc>.<domain>.svc``), so it must be an RFC 1123 label and not one of the reserved namespaces
(``default``, ``kube-system``, ``kube-public``, ``kube-node-lease``, ``master``, ``cross-domain``;
the master's own ``kuscia-system`` is allowed). ``spec.interConnProtocols`` entries must be
``kuscia`` or ``bfia``. ``spec.cert`` is deliberately *not* checked here: Kuscia's documented
examples apply ``cert: base64<certificate>`` literally, so the Domain controller reports a bad
certificate with an Event instead of refusing the object. A KusciaJob created outside namespace
``cross-domain`` is refused with a message saying where it belongs (Kuscia accepts it and never
runs it, a common source of "my job does nothing").
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.api.constants import CROSS_DOMAIN_NAMESPACE, INTERCONN_PROTOCOLS, KUSCIA_PREFIX, domain_id_problem
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import Attributes

JSON = dict[str, Any]


def _cause(field: str, value: Any, detail: str, reason: str = "FieldValueInvalid") -> JSON:
    return {"reason": reason, "field": field, "message": f'Invalid value: "{value}": {detail}'}


def _job_namespace(attrs: Attributes) -> None:
    """A KusciaJob runs only in ``cross-domain``; Kuscia accepts it elsewhere and silently ignores it."""
    if attrs.operation == "CREATE" and not attrs.subresource and attrs.namespace != CROSS_DOMAIN_NAMESPACE:
        where = CROSS_DOMAIN_NAMESPACE
        detail = f"a KusciaJob belongs in namespace {where!r} (create it with -n {where}); elsewhere it never runs"
        causes = [_cause("metadata.namespace", attrs.namespace, detail)]
        raise errors.invalid(attrs.rd.kind, attrs.rd.group, attrs.name, causes)


class KusciaAdmission:
    """Validates Domains on create (name) and on create/update (spec)."""

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return rd.group == KUSCIA_PREFIX and rd.kind in ("KusciaJob", "Domain")

    async def admit(self, attrs: Attributes) -> None:
        if attrs.rd.group == KUSCIA_PREFIX and attrs.rd.kind == "KusciaJob":
            _job_namespace(attrs)
        if attrs.rd.group != KUSCIA_PREFIX or attrs.rd.kind != "Domain" or attrs.obj is None:
            return
        if attrs.operation not in ("CREATE", "UPDATE") or attrs.subresource:
            return
        causes: list[JSON] = []
        if attrs.operation == "CREATE":
            problem = domain_id_problem(attrs.name)
            if problem:
                causes.append(_cause("metadata.name", attrs.name, problem))
        spec = attrs.obj.get("spec")
        protocols = spec.get("interConnProtocols") if isinstance(spec, dict) else None
        for i, protocol in enumerate(protocols if isinstance(protocols, list) else ()):
            if protocol not in INTERCONN_PROTOCOLS:
                causes.append(
                    {
                        "reason": "FieldValueNotSupported",
                        "field": f"spec.interConnProtocols[{i}]",
                        "message": f'Unsupported value: "{protocol}": supported values: "kuscia", "bfia"',
                    }
                )
        if causes:
            raise errors.invalid(attrs.rd.kind, attrs.rd.group, attrs.name, causes)
