"""The API server's TLS context: client certificates verified, no session tickets issued (the
clients never resume; sealing two tickets per handshake was ~30 % of its server CPU)."""

from __future__ import annotations

import ssl
from pathlib import Path

from atoll.pki import ensure_pki, issue_client_cert, peer_identity, server_ssl_context


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    si, so, ci, co = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    s = server.wrap_bio(si, so, server_side=True)
    c = client.wrap_bio(ci, co, server_hostname="127.0.0.1")
    for _ in range(8):
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        si.write(co.read())
        ci.write(so.read())
    c.write(b"ping")  # the client reads whatever the server sent after the handshake (tickets)
    si.write(co.read())
    assert s.read(4) == b"ping"
    s.write(b"pong")
    ci.write(so.read())
    assert c.read(4) == b"pong"
    return s, c


def test_client_certificates_verified_and_no_session_ticket(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    cert, key = issue_client_cert(pki, "agent", ("system:nodes",))
    (tmp_path / "c.crt").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(key)
    client = ssl.create_default_context(cafile=str(pki.ca_cert))
    client.load_cert_chain(str(tmp_path / "c.crt"), str(tmp_path / "c.key"))
    server, client_side = _handshake(server_ssl_context(pki), client)
    assert server.version() == "TLSv1.3"
    assert peer_identity(server.getpeercert()) == ("agent", ("system:nodes",))
    session = client_side.session
    assert session is not None and not session.has_ticket
