"""Data-source connection info: sealed with the domain's RSA key, and localfs roots.

Kuscia keeps a DomainDataSource's ``DataSourceInfo`` (JSON) in ``spec.data.encryptedInfo``: RSA-OAEP
with SHA-256 under the domain's public key, in chunks of ``k - 2·32 - 2`` bytes, the ciphertexts
concatenated and base64-encoded (``pkg/utils/tls`` ``EncryptOAEP``). Atoll writes the same format,
so a Kuscia DataMesh given the same domain key reads it and vice versa.

A localfs ``path`` that is relative is relative to the lite's ``dataDir`` (Kuscia's is relative to
its home ``/home/kuscia``); :func:`localfs_root` gives the absolute directory, and
:func:`data_path` a DomainData's file inside it, refusing any relative URI that escapes the root
(Kuscia joins the two strings unchecked).
"""

from __future__ import annotations

import base64
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JSON = dict[str, Any]
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class InfoError(ValueError):
    """Connection info that cannot be sealed, opened or used."""


def load_domain_key(domain_key_data: str) -> rsa.RSAPrivateKey | None:
    """``domainKeyData`` (base64 of a PEM RSA key, as Kuscia's) → the key; ``None`` if empty."""
    if not domain_key_data:
        return None
    try:
        key = serialization.load_pem_private_key(base64.b64decode(domain_key_data), password=None)
    except ValueError as exc:
        raise InfoError(f"domainKeyData: not a base64 PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InfoError("domainKeyData: not an RSA private key")
    return key


def seal(key: rsa.RSAPublicKey, info: JSON) -> str:
    plain = orjson.dumps(info)
    step = key.key_size // 8 - 2 * hashes.SHA256.digest_size - 2
    sealed = b"".join(key.encrypt(plain[i : i + step], _OAEP) for i in range(0, len(plain), step))
    return base64.b64encode(sealed).decode()


def open_sealed(key: rsa.RSAPrivateKey, text: str) -> JSON:
    try:
        sealed = base64.b64decode(text, validate=True)
        size = key.key_size // 8
        plain = b"".join(key.decrypt(sealed[i : i + size], _OAEP) for i in range(0, len(sealed), size))
        info = orjson.loads(plain)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InfoError(f"encryptedInfo cannot be opened with this domain's key ({type(exc).__name__})") from None
    if not isinstance(info, dict):
        raise InfoError("encryptedInfo does not hold a DataSourceInfo object")
    return info


def localfs_root(path: str, data_dir: Path) -> Path:
    """The absolute root of a localfs source whose ``path`` is absolute or relative to ``data_dir``."""
    if not path:
        raise InfoError("localfs path is empty")
    root = Path(path)
    return root if root.is_absolute() else (data_dir / root).resolve()


def relative_uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not a safe relative URI inside a data source (``None`` if it is)."""
    if not uri:
        return "relative_uri: required"
    pure = PurePosixPath(uri)
    if pure.is_absolute():
        return f"relative_uri: must be relative to the data source (got {uri!r})"
    if ".." in pure.parts:
        return f"relative_uri: must not leave the data source with '..' (got {uri!r})"
    return None


def data_path(root: Path, relative_uri: str) -> Path:
    problem = relative_uri_problem(relative_uri)
    if problem:
        raise InfoError(problem)
    return root / relative_uri
