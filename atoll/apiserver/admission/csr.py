"""CertificateSigningRequests: the requester's identity, the kubelet-serving approver and the signer.

* **Requester.** On create, ``spec.username``/``uid``/``groups`` are the authenticated user's (a
  client cannot claim another identity); ``spec`` never changes afterwards.
* **Approver** (Kubernetes' csrapproving controller, for ``kubernetes.io/kubelet-serving`` only):
  a request is approved at once when the subject is ``CN=system:node:<node>, O=system:nodes``, the
  usages are serving ones, the SANs are IP addresses or DNS names, and the requester owns that
  Node — the Node exists and the requester is its domain's own identity (its label
  ``kuscia.secretflow/namespace`` is the requester's domain) or an administrator
  (``system:masters``). Anything else stays pending for ``kubectl certificate approve``.
* **Signer.** An approved kubelet-serving request (approved here or through ``/approval``) is signed
  with the cluster CA; ``status.certificate`` holds the PEM. Denied or failed requests never are.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.api.timestamps import now_time
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.auth.nodegrants import NodeGrants, node_domain
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.pki import sign_csr

JSON = dict[str, Any]
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
SERVING_USAGES = frozenset({"digital signature", "key encipherment", "server auth"})
Signer = Callable[[bytes], bytes]


def signer_from(ca_file: Path | None, ca_key: Path | None) -> Signer | None:
    """The cluster CA as a kubelet-serving signer (None without the CA key)."""
    if ca_file is None or ca_key is None:
        return None
    return lambda csr: sign_csr(ca_file, ca_key, csr)


class CSRAdmission:
    def __init__(self, grants: NodeGrants, cache: WatchCache, signer: Signer | None) -> None:
        self._grants = grants
        self._cache = cache
        self._signer = signer

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return rd.group == "certificates.k8s.io" and rd.plural == "certificatesigningrequests"

    async def admit(self, attrs: Attributes) -> None:
        if attrs.rd.group != "certificates.k8s.io" or attrs.rd.plural != "certificatesigningrequests":
            return
        obj = attrs.obj
        if obj is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        if attrs.operation == "CREATE":
            self._stamp_requester(attrs, obj)
            if obj["spec"].get("signerName") == KUBELET_SERVING:
                reason = self._auto_approval(obj)
                if reason:
                    _add_condition(obj, "Approved", "AutoApproved", reason)
        elif attrs.old is not None:
            obj["spec"] = attrs.old.get("spec")
        self._sign_if_approved(obj)

    def _stamp_requester(self, attrs: Attributes, obj: JSON) -> None:
        spec = obj["spec"]
        if not spec.get("request") or not spec.get("signerName"):
            raise errors.invalid("CertificateSigningRequest", "certificates.k8s.io", attrs.name, [
                errors.cause("FieldValueRequired", "spec.request" if not spec.get("request") else "spec.signerName",
                             "Required value")])
        if attrs.user is not None:
            spec["username"] = attrs.user.name
            spec["uid"] = attrs.user.uid
            spec["groups"] = list(attrs.user.groups)

    def _auto_approval(self, obj: JSON) -> str:
        """Why the request is approved automatically, or "" to leave it pending."""
        spec = obj["spec"]
        try:
            csr = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
        except ValueError:
            return ""
        cns = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        orgs = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        if len(cns) != 1 or not str(cns[0]).startswith("system:node:") or orgs != ["system:nodes"]:
            return ""
        if not set(spec.get("usages") or ()) <= SERVING_USAGES or "server auth" not in (spec.get("usages") or ()):
            return ""
        node_name = str(cns[0]).removeprefix("system:node:")
        cached = self._cache.get(f"/core/nodes/{node_name}")
        if cached is None:
            return ""
        groups = spec.get("groups") or []
        if "system:masters" in groups:
            return f"requested by an administrator for node {node_name}"
        user = UserInfo(str(spec.get("username") or ""), tuple(groups), str(spec.get("uid") or ""))
        domain = self._grants.domain_of(user)
        if domain is not None and domain == node_domain(cached.obj):
            return f"requester {user.name} owns node {node_name} (domain {domain})"
        return ""

    def _sign_if_approved(self, obj: JSON) -> None:
        status = obj.setdefault("status", {})
        types = {c.get("type") for c in status.get("conditions") or ()}
        if "Approved" not in types or types & {"Denied", "Failed"} or status.get("certificate"):
            return
        if obj["spec"].get("signerName") != KUBELET_SERVING or self._signer is None:
            return
        cert = self._signer(base64.b64decode(obj["spec"]["request"]))
        status["certificate"] = base64.b64encode(cert).decode()


def _add_condition(obj: JSON, kind: str, reason: str, message: str) -> None:
    status = obj.setdefault("status", {})
    now = now_time()
    status.setdefault("conditions", []).append({"type": kind, "status": "True", "reason": reason,
                                                "message": message, "lastUpdateTime": now,
                                                "lastTransitionTime": now})
