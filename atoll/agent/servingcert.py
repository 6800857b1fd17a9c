"""The agent's serving certificate through ``certificates.k8s.io/v1``, as kubelets get theirs.

With no certificate configured, the agent generates a key, asks for ``CN=system:node:<node>,
O=system:nodes`` with its addresses as SANs (signer ``kubernetes.io/kubelet-serving``, usages
digital signature, key encipherment, server auth), waits until the request is approved and signed
(Atoll's API server approves it at once when the requester owns the Node; on another Kubernetes
the cluster's approver or ``kubectl certificate approve`` does), and writes ``pki/kubelet.crt`` and
``pki/kubelet.key`` (0600, atomically). Without an answer in ``timeout`` seconds the agent runs on
without a log endpoint (port 0), saying why.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from atoll.api import kinds
from atoll.api.errors import AlreadyExists, APIError
from atoll.client import Client, ClientError
from atoll.files import write_atomic
from atoll.pki import private_key_pem, subject_alt_names

JSON = dict[str, Any]
log = logging.getLogger(__name__)
CSRS = kinds.kind("certificates.k8s.io", "certificatesigningrequests")
SIGNER = "kubernetes.io/kubelet-serving"
USAGES = ["digital signature", "key encipherment", "server auth"]
POLL_SECONDS = 0.2


class CSRRefused(Exception):
    """The request was denied or failed."""


def certificate_request(node: str, hosts: tuple[str, ...]) -> tuple[bytes, bytes]:
    """(PEM CSR, PEM private key) for ``system:node:<node>`` serving ``hosts``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    csr = (x509.CertificateSigningRequestBuilder().subject_name(subject)
           .add_extension(x509.SubjectAlternativeName(subject_alt_names(hosts)), critical=False)
           .sign(key, hashes.SHA256()))
    key_pem = private_key_pem(key)
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


async def request_certificate(client: Client, node: str, csr_pem: bytes, timeout: float) -> bytes:  # noqa: ASYNC109
    """Create the CSR and wait for its certificate (PEM)."""
    name = f"node-csr-{node}-{hashlib.sha256(csr_pem).hexdigest()[:10]}"
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": base64.b64encode(csr_pem).decode(), "signerName": SIGNER, "usages": USAGES}}
    try:
        await client.create(CSRS, body)
    except AlreadyExists:
        pass
    deadline = time.monotonic() + timeout
    while True:
        obj: JSON = await client.get(CSRS, name)
        status = obj.get("status") or {}
        refused = [c for c in status.get("conditions") or () if c.get("type") in ("Denied", "Failed")]
        if refused:
            raise CSRRefused(f"certificatesigningrequest {name}: {refused[0].get('type')}: {refused[0].get('message')}")
        if status.get("certificate"):
            return base64.b64decode(status["certificate"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"certificatesigningrequest {name} was not approved and signed in {timeout:g} s "
                               f"(approve it: kubectl certificate approve {name})")
        await asyncio.sleep(POLL_SECONDS)


def _store(pki_dir: Path, *files: tuple[Path, bytes]) -> None:
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path, data in files:
        write_atomic(path, data)


async def obtain_serving_cert(client: Client, node: str, hosts: tuple[str, ...], pki_dir: Path,
                              timeout: float = 30.0) -> tuple[Path, Path] | None:  # noqa: ASYNC109
    """``(cert, key)`` paths under ``pki_dir``, or None (logged) when no certificate came."""
    csr_pem, key_pem = await asyncio.to_thread(certificate_request, node, hosts)
    try:
        cert = await request_certificate(client, node, csr_pem, timeout)
    except (CSRRefused, TimeoutError, APIError, ClientError) as exc:
        log.warning("node %s: no serving certificate, pod logs are not served: %s", node, exc)
        return None
    cert_path, key_path = pki_dir / "kubelet.crt", pki_dir / "kubelet.key"
    await asyncio.to_thread(_store, pki_dir, (key_path, key_pem), (cert_path, cert))
    log.info("node %s: serving certificate issued through certificates.k8s.io", node)
    return cert_path, key_path
