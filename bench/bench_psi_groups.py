"""The group operations an ECDH PSI can use, measured on this machine (how atoll-psi chose X25519).

    .venv/bin/python bench/bench_psi_groups.py [--n 20000]

Per ID a party does one hash-to-group and two scalar multiplications. Candidates: X25519 from
``cryptography`` (OpenSSL; what atoll-psi uses), X25519 from libsodium through PyNaCl (if
installed), and ristretto255 from libsodium (``crypto_core_ristretto255_from_hash`` +
``crypto_scalarmult_ristretto255``; PyNaCl does not bind them, so through ctypes when the system
libsodium is present). Prints microseconds per operation and per PSI ID.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey


def timed(n: int, work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    n = parser.parse_args().n
    ids = [f"id{i:09d}".encode() for i in range(n)]
    us = [bytes(bytearray(hashlib.sha256(x).digest())[:31]) + b"\x00" for x in ids]
    rows: list[tuple[str, float, float]] = []

    exchange, load = X25519PrivateKey.generate().exchange, X25519PublicKey.from_public_bytes
    sha = timed(n, lambda: [hashlib.sha256(x).digest() for x in ids])
    rows.append(("X25519, cryptography (OpenSSL)", sha, timed(n, lambda: [exchange(load(u)) for u in us])))
    try:
        from nacl.bindings import crypto_scalarmult

        scalar = os.urandom(32)
        rows.append(("X25519, PyNaCl (libsodium)", sha, timed(n, lambda: [crypto_scalarmult(scalar, u) for u in us])))
    except ImportError:
        print("PyNaCl not installed: skipped")
    path = ctypes.util.find_library("sodium")
    if path:
        lib = ctypes.CDLL(path)
        lib.sodium_init()
        out, s = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
        lib.crypto_core_ristretto255_scalar_random(s)
        h64 = [hashlib.sha512(x).digest() for x in ids]
        points: list[bytes] = []

        def from_hash() -> None:
            for h in h64:
                lib.crypto_core_ristretto255_from_hash(out, h)
                points.append(out.raw)

        hash_cost = timed(n, from_hash)
        rows.append(("ristretto255, libsodium (ctypes)", hash_cost,
                     timed(n, lambda: [lib.crypto_scalarmult_ristretto255(out, s, p) for p in points])))
    else:
        print("libsodium not found: ristretto255 skipped")
    print(f"{'group / binding':<36}{'hash us':>9}{'mul us':>9}{'per ID us':>11}")
    for name, hash_us, mul_us in rows:
        print(f"{name:<36}{hash_us:9.1f}{mul_us:9.1f}{hash_us + 2 * mul_us:11.1f}")


if __name__ == "__main__":
    main()
