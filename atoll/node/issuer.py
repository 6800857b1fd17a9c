"""Certificates the master's CA issues at lite registration (Kuscia §3.6 step 3).

Both certificates certify the **lite's own domain key** (the CSR's public key): the master never
sees or creates a lite's private key. Validity 10 years, like Kuscia.

* the domain certificate, ``CN=<domain>``, client + server auth: stored in ``Domain.spec.cert``
  (the domain's identity for route handshakes) and used by the lite's agent as its kubelet-style
  serving certificate for ``kubectl logs``;
* the node certificate, ``CN=system:node:<domain>``, ``O=system:nodes``, client auth only: the
  lite's API identity (see :mod:`atoll.node.lite_identity`).
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from atoll.node.registration_messages import NODES_GROUP, node_user
from atoll.pki import PKI

VALIDITY = dt.timedelta(days=3650)


def _load_ca(pki: PKI) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    return cert, key  # type: ignore[return-value]


def _issue(pki: PKI, subject: x509.Name, public_key: CertificatePublicKeyTypes, usages: list[x509.ObjectIdentifier],
           hosts: tuple[str, ...] = ()) -> bytes:
    ca_cert, ca_key = _load_ca(pki)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def domain_certificate(pki: PKI, domain: str, public_key: CertificatePublicKeyTypes) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    return _issue(pki, subject, public_key, usages, hosts=(domain, f"*.{domain}.svc"))


def node_certificate(pki: PKI, domain: str, public_key: CertificatePublicKeyTypes) -> bytes:
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODES_GROUP),
        x509.NameAttribute(NameOID.COMMON_NAME, node_user(domain)),
    ])
    return _issue(pki, subject, public_key, [ExtendedKeyUsageOID.CLIENT_AUTH])


def same_key(cert_pem: bytes, public_key: CertificatePublicKeyTypes) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == public_key.public_bytes(*fmt)
