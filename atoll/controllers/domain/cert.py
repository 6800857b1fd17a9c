"""``spec.cert`` validation: the base64 of a PEM X.509 certificate, when it decodes.

Kuscia's own documentation applies ``cert: base64<certificate>`` literally, so a bad value is
never refused at admission: the controller records a ``Warning`` Event (reason ``InvalidCert``)
on the Domain instead, once per distinct value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography import x509


def cert_problem(cert: str) -> str | None:
    """Why ``cert`` is not a base64-encoded PEM certificate, or ``None`` when it is."""
    try:
        raw = base64.b64decode(cert.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "spec.cert is not valid base64 (expected the base64 of a PEM X.509 certificate)"
    try:
        x509.load_pem_x509_certificate(raw)
    except ValueError as exc:
        return f"spec.cert does not decode to a PEM X.509 certificate: {exc}"
    return None


def cert_digest(cert: str) -> str:
    return hashlib.sha256(cert.encode()).hexdigest()[:10]
