"""RSA-GEN token crypto (Kuscia §2.3): domain keys, public-key encodings, "kuscia"-prefixed RSA.

Public keys travel as base64 of a PEM "RSA PUBLIC KEY" (PKCS#1), as in DomainRoute
``tokenConfig``. Token halves are encrypted with RSA PKCS#1 v1.5 over ``b"kuscia" + bytes``;
decryption checks the prefix. Tokens kept in DomainRoute status are the 32 raw bytes encrypted
with the owning side's own public key, so only that side's gateways can read them.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PREFIX = b"kuscia"
HALF = 16


class TokenCryptoError(ValueError):
    """A key, certificate or ciphertext that cannot be used."""


def load_domain_key(domain_key_data: str) -> rsa.RSAPrivateKey:
    """``domainKeyData``: base64 of a PEM RSA private key (PKCS#1 or PKCS#8)."""
    try:
        key = serialization.load_pem_private_key(base64.b64decode(domain_key_data), password=None)
    except (ValueError, TypeError) as exc:
        raise TokenCryptoError(f"domainKeyData: not a base64 PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TokenCryptoError("domainKeyData: not an RSA key")
    return key


def public_key_b64(key: rsa.RSAPublicKey) -> str:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    return base64.b64encode(pem).decode()


def public_key_of_cert(cert_b64: str) -> str:
    """Domain ``spec.cert`` (base64 PEM X.509) → base64 PEM PKCS#1 public key."""
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(cert_b64))
    except (ValueError, TypeError) as exc:
        raise TokenCryptoError(f"not a base64 PEM certificate ({exc})") from None
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise TokenCryptoError("the certificate's key is not RSA")
    return public_key_b64(key)


def _public_key(public_b64: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(base64.b64decode(public_b64))
    except (ValueError, TypeError) as exc:
        raise TokenCryptoError(f"not a base64 PEM public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise TokenCryptoError("not an RSA public key")
    return key


def pubhash(public_b64: str) -> str:
    return base64.b64encode(hashlib.sha256(base64.b64decode(public_b64)).digest()).decode()


def encrypt(public_b64: str, data: bytes) -> str:
    return base64.b64encode(_public_key(public_b64).encrypt(PREFIX + data, padding.PKCS1v15())).decode()


def decrypt(key: rsa.RSAPrivateKey, ciphertext_b64: str) -> bytes:
    try:
        plain = key.decrypt(base64.b64decode(ciphertext_b64), padding.PKCS1v15())
    except (ValueError, TypeError) as exc:
        raise TokenCryptoError(f"cannot decrypt token ({exc})") from None
    if not plain.startswith(PREFIX):
        raise TokenCryptoError("decrypted token lacks the kuscia prefix")
    return plain[len(PREFIX) :]


def header_token(raw: bytes) -> str:
    """The ``Kuscia-Token`` header value of a 32-byte token."""
    return base64.b64encode(raw).decode()


def self_signed_cert(key: rsa.RSAPrivateKey, common_name: str) -> bytes:
    """A PEM CA certificate for ``key``: Domain ``spec.cert``, the TLS listener's certificate, and
    the CA that verifies peers' client certificates in ``MTLS`` mode."""
    return _certificate(key, key.public_key(), common_name, issuer=None)


def issue_client_cert(ca_key: rsa.RSAPrivateKey, ca_cert_pem: bytes, client: rsa.RSAPublicKey, cn: str) -> bytes:
    """A client certificate for a peer's key, signed by this domain (a route's ``mTLSConfig``)."""
    issuer = x509.load_pem_x509_certificate(ca_cert_pem).subject
    return _certificate(ca_key, client, cn, issuer=issuer)


def _certificate(signer: rsa.RSAPrivateKey, subject_key: rsa.RSAPublicKey, cn: str, issuer: x509.Name | None) -> bytes:
    import datetime

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(subject_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        usage = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
