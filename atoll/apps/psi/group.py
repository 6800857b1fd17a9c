"""The group of the ECDH PSI: X25519 (OpenSSL through ``cryptography``), IDs hashed to u-coordinates.

Why X25519 and not ristretto255 (measured on this machine, see docs/apps.md): one X25519
``exchange`` from ``cryptography`` costs ~30 µs, libsodium's X25519 ~34 µs, libsodium's
ristretto255 scalar multiplication ~41 µs plus ~13 µs for Elligator hash-to-group — and PyNaCl
does not bind ristretto255 at all. A party does one hash and two scalar multiplications per ID, so
X25519 is ~1.6x faster and needs no new dependency.

X25519 needs care because Curve25519 is not prime-order (cofactor 8, and its twist has cofactor 4):

* **Hash to group**: ``u = SHA-256(DST ‖ id)`` with the top bit cleared, used directly as a
  u-coordinate (as SecretFlow's ECDH-PSI on Curve25519 does). About half of all u lie on the
  twist rather than the curve; the Montgomery ladder computes the scalar multiple on either, and
  both prime-order subgroups (2^252+…, 2^253-…) are DDH-hard — Curve25519 is twist-secure.
* **Cofactor / clamping**: every X25519 scalar is clamped to a multiple of 8, which kills any
  small-order component, so ``X25519(a, X25519(b, u)) == X25519(b, X25519(a, u))`` lands in a
  prime-order subgroup: the commutativity the protocol needs. Two IDs collide only if their
  hashes differ by a small-order point or a sign (x-only) — a 2^-250 event for a random oracle.
* **Small-order inputs** make OpenSSL refuse the exchange (all-zero output). Our own hashes hit
  them with probability ~2^-252; a peer that sends one is broken or malicious and the batch is
  rejected (:class:`GroupError`).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

ELEMENT_BYTES = 32
COMPARE_BYTES = 16
"""Double-masked elements are compared on their first 128 bits (collision odds ~n²/2^128)."""
DST = b"atoll-psi/ecdh-x25519/v1\x00"


class GroupError(ValueError):
    """A point that cannot be multiplied (small order, wrong length)."""


def hash_to_group(keys: list[bytes]) -> list[bytes]:
    base = hashlib.sha256(DST)
    out = []
    for key in keys:
        h = base.copy()
        h.update(key)
        u = bytearray(h.digest())
        u[31] &= 0x7F
        out.append(bytes(u))
    return out


class Masker:
    """Multiplies points by this party's secret scalar (fresh per task, never leaves the process)."""

    def __init__(self) -> None:
        self._exchange = X25519PrivateKey.generate().exchange

    def mask(self, points: list[bytes]) -> bytes:
        """The concatenated 32-byte multiples of ``points``."""
        load, exchange = X25519PublicKey.from_public_bytes, self._exchange
        try:
            return b"".join([exchange(load(p)) for p in points])
        except ValueError as exc:
            raise GroupError(f"cannot multiply a point: {exc}") from None

    def mask_packed(self, packed: bytes) -> bytes:
        """``mask`` of a batch of concatenated 32-byte points (as received from the peer)."""
        if len(packed) % ELEMENT_BYTES:
            raise GroupError(f"batch of {len(packed)} bytes is not a whole number of {ELEMENT_BYTES}-byte points")
        return self.mask([packed[i : i + ELEMENT_BYTES] for i in range(0, len(packed), ELEMENT_BYTES)])


def compare_keys(packed: bytes) -> list[bytes]:
    """The comparison prefixes of a batch of concatenated double-masked elements."""
    return [packed[i : i + COMPARE_BYTES] for i in range(0, len(packed), ELEMENT_BYTES)]
