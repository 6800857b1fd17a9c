"""The cluster CA, the API server's serving certificate and client certificates.

Generated once at first start under ``<data_dir>/pki`` and reused afterwards (like K3s'
``server/tls``). The CA signs the serving certificate (SAN ``IP:127.0.0.1``, ``DNS:localhost``
plus any extra names) and client certificates whose subject CN is the user and whose O values
are the groups (``CN=atoll-admin, O=system:masters``), which is how the server authenticates
X.509 clients.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from atoll.files import locked, private_dir, write_atomic

_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True, slots=True)
class PKI:
    """Paths of the files under ``<data_dir>/pki``."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def kubelet_client_cert(self) -> Path:
        """The API server's client certificate towards node agents (pod logs)."""
        return self.directory / "apiserver-kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.directory / "apiserver-kubelet-client.key"

    @property
    def admin_token(self) -> Path:
        return self.directory / "admin.token"

    @property
    def signing_key(self) -> Path:
        """Key that signs ServiceAccount tokens (JWT, ES256)."""
        return self.directory / "sa.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    write_atomic(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    write_atomic(path, data, 0o644)


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _load_ca(pki: PKI) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def issue_client_cert(pki: PKI, user: str, groups: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """A client certificate (PEM cert, PEM key) for ``user`` in ``groups``, signed by the CA."""
    ca_cert, ca_key = _load_ca(pki)
    key = _new_key()
    cert = (
        _builder(_name(user, groups), ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), private_key_pem(key)


def issue_serving_cert(pki: PKI, name: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[bytes, bytes]:
    """A serving certificate (PEM cert, PEM key) for ``hosts``, signed by the CA (node agents)."""
    ca_cert, ca_key = _load_ca(pki)
    key = _new_key()
    cert = (
        _builder(_name(name), ca_cert.subject, key.public_key())
        .add_extension(x509.SubjectAlternativeName(subject_alt_names(hosts)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), private_key_pem(key)


def subject_alt_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return sans


def ensure_pki(directory: Path, *, extra_hosts: tuple[str, ...] = ()) -> PKI:
    """Create the CA, serving certificate, admin credentials and SA signing key if missing."""
    pki = PKI(directory)
    if not directory.parent.exists():
        private_dir(directory.parent)  # a fresh data dir: 0700 too
    private_dir(directory)
    # one writer at a time (``atoll start`` and ``atoll kubeconfig`` on a fresh data dir); every
    # file is renamed into place complete, certificates after their keys
    with locked(directory / ".lock"):
        _ensure_pki(pki, extra_hosts)
    return pki


def _ensure_pki(pki: PKI, extra_hosts: tuple[str, ...]) -> None:
    if not pki.ca_cert.exists():
        key = _new_key()
        name = _name("atoll-ca")
        cert = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write_private(pki.ca_key, private_key_pem(key))
        _write_public(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    if not pki.server_cert.exists() or not _covers(pki.server_cert, ("localhost", "127.0.0.1", *extra_hosts)):
        ca_cert, ca_key = _load_ca(pki)
        key = _new_key()
        sans = subject_alt_names(("localhost", "127.0.0.1", *extra_hosts))
        cert = (
            _builder(_name("atoll-apiserver"), ca_cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(pki.server_key, private_key_pem(key))
        _write_public(pki.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    if not pki.admin_cert.exists():
        cert_pem, key_pem = issue_client_cert(pki, "atoll-admin", ("system:masters",))
        _write_private(pki.admin_key, key_pem)
        _write_public(pki.admin_cert, cert_pem)
    if not pki.kubelet_client_cert.exists():
        cert_pem, key_pem = issue_client_cert(pki, "atoll-apiserver", ("system:masters",))
        _write_private(pki.kubelet_client_key, key_pem)
        _write_public(pki.kubelet_client_cert, cert_pem)
    if not pki.admin_token.exists():
        _write_private(pki.admin_token, os.urandom(24).hex().encode())
    if not pki.signing_key.exists():
        _write_private(pki.signing_key, private_key_pem(_new_key()))


def _covers(cert_file: Path, hosts: tuple[str, ...]) -> bool:
    """Whether the serving certificate names every host and is issued by the current CA (a
    master that adopted a shared CA, or gained a ``certSANs`` entry, gets a new one)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate(PKI(cert_file.parent).ca_cert.read_bytes())
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    named = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    return all(san in named for san in subject_alt_names(hosts))


def server_ssl_context(pki: PKI) -> ssl.SSLContext:
    """TLS for the API server: serving cert, client certificates optional and verified by the CA.

    No TLS 1.3 session tickets: OpenSSL seals two after every handshake (with the client's
    certificate), ~0.35 ms of the ~1.15 ms a handshake costs the server, and the clients here
    (aiohttp, client-go, curl, urllib3) never resume. (A client that leaves Nagle on — a raw
    socket — may wait for the delayed ACK, 40 ms, before its first request: the ticket flight no
    longer answers its Finished; HTTP clients set ``TCP_NODELAY``.)"""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.num_tickets = 0
    return ctx


def peer_identity(peercert: dict[str, object] | None) -> tuple[str, tuple[str, ...]] | None:
    """(user, groups) from a verified peer certificate as returned by ``getpeercert()``."""
    if not peercert:
        return None
    user, groups = "", []
    for rdn in peercert.get("subject", ()):  # type: ignore[attr-defined]
        for attr, value in rdn:
            if attr == "commonName":
                user = value
            elif attr == "organizationName":
                groups.append(value)
    return (user, tuple(groups)) if user else None


def sign_csr(ca_cert_file: Path, ca_key_file: Path, csr_pem: bytes, *, server: bool = True, days: int = 365) -> bytes:
    """Sign a PKCS#10 request with the CA (a kubelet-serving certificate: subject and SANs as
    requested, server auth); returns the PEM certificate."""
    csr = x509.load_pem_x509_csr(csr_pem)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_file.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                              else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        builder = builder.add_extension(sans, critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
