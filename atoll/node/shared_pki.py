"""Masters sharing one database share one set of credentials, sealed in that database.

``atoll init --mode master -e postgresql://… --shared-pki-key-file FILE`` on every master:

* the first master to run it generates the cluster CA, the admin credentials (certificate and
  token), the API server's kubelet client certificate and the ServiceAccount signing key as
  usual, seals them with AES-256-GCM under the operator's key (``FILE``: 32 random bytes,
  base64; created 0600 when missing) and stores the sealed blob under the store key
  ``atoll:pki/v1`` (outside ``/``, so no API, watch or LIST ever serves it);
* every other master finds the blob, unseals it and writes the same files into its own
  ``pki/`` before issuing its own serving certificate from the shared CA (with its own
  ``apiserver.certSANs``).

A kubeconfig or a ServiceAccount token issued through any master then works on every master.
Two masters initialised at once cannot both publish: the store's create is atomic, and the loser
adopts the winner's set. A wrong key is refused (the GCM tag does not verify); a data dir that
already has a different CA is refused rather than silently re-keyed (its lites and kubeconfigs
would stop working). Serving keys never leave their master.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from atoll.files import write_atomic
from atoll.node.config import ConfigError, NodeConfig
from atoll.node.pki import init_pki
from atoll.store.base import KeyExists
from atoll.store.endpoint import open_store

STORE_KEY = "atoll:pki/v1"
AAD = b"atoll shared pki v1"
SHARED = (
    "ca.crt",
    "ca.key",
    "sa.key",
    "admin.crt",
    "admin.key",
    "admin.token",
    "apiserver-kubelet-client.crt",
    "apiserver-kubelet-client.key",
)


def load_key(path: Path) -> bytes:
    """The operator's 256-bit key (base64 in ``path``); a missing file is created (0600)."""
    if not path.exists():
        key = os.urandom(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, base64.b64encode(key) + b"\n", 0o600)
        return key
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{path}: not base64 (create one with: head -c 32 /dev/urandom | base64)") from None
    if len(key) != 32:
        raise ConfigError(f"{path}: the key must be 32 bytes (got {len(key)}); head -c 32 /dev/urandom | base64")
    return key


def seal(key: bytes, files: dict[str, bytes]) -> bytes:
    nonce = os.urandom(12)
    body = orjson.dumps({name: base64.b64encode(data).decode() for name, data in files.items()})
    return nonce + AESGCM(key).encrypt(nonce, body, AAD)


def unseal(key: bytes, blob: bytes) -> dict[str, bytes]:
    try:
        body = AESGCM(key).decrypt(blob[:12], blob[12:], AAD)
    except InvalidTag:
        raise ConfigError(
            "the credentials in the datastore were sealed with a different key: give every master the key "
            "file of the first one (--shared-pki-key-file)"
        ) from None
    return {name: base64.b64decode(data) for name, data in orjson.loads(body).items()}


def _adopt(directory: Path, shared: dict[str, bytes], *, replace: bool) -> None:
    own = directory / "ca.crt"
    if own.exists() and own.read_bytes() != shared["ca.crt"] and not replace:
        raise ConfigError(
            f"{directory} already holds a different cluster CA than the shared one in the datastore: a master "
            "joining other masters needs a fresh --data-dir (its own lites and kubeconfigs would stop working)"
        )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in SHARED:
        write_atomic(directory / name, shared[name], 0o644 if name.endswith(".crt") else 0o600)


async def share_pki(config: NodeConfig, key: bytes) -> str:
    """Join the credentials sealed in the datastore, or publish this master's; returns which."""
    if not config.datastore_endpoint:
        raise ConfigError("--shared-pki-key-file needs a PostgreSQL or MySQL --datastore-endpoint (shared by masters)")
    directory = config.data_dir / "pki"
    fresh = not (directory / "ca.crt").exists()
    store = open_store(config.datastore_endpoint, config.data_dir)
    await store.start()
    try:
        kv = await store.get(STORE_KEY)
        if kv is None:
            init_pki(config)
            files = {name: (directory / name).read_bytes() for name in SHARED}
            try:
                await store.create(STORE_KEY, seal(key, files))
                return "published"
            except KeyExists:  # another master published first: take its set
                kv = await store.get(STORE_KEY)
                assert kv is not None
        _adopt(directory, unseal(key, kv.value), replace=fresh)
        init_pki(config)  # this master's domain key and serving certificate, from the shared CA
        return "joined"
    finally:
        await store.close()
