"""Kubeconfig loading: contexts, CA / insecure TLS, tokens, client certificates, in-cluster files.

The TLS round trip (CA verification + client certificate) runs against a local aiohttp HTTPS
server, so the produced ``SSLContext`` is proven to work, not only to load.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from atoll.client import Client, ConfigError, in_cluster_config, load_kubeconfig


def _cert(
    cn: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[bytes, bytes, x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, name, key


@pytest.fixture(scope="module")
def pki() -> dict[str, bytes]:
    ca_pem, _, ca_name, ca_key = _cert("test-ca", None, ca=True)
    srv_pem, srv_key, _, _ = _cert("localhost", (ca_name, ca_key), server=True)
    cli_pem, cli_key, _, _ = _cert("admin", (ca_name, ca_key))
    return {"ca": ca_pem, "srv": srv_pem, "srv_key": srv_key, "cli": cli_pem, "cli_key": cli_key}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def config(server: str, cluster: dict[str, object], user: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "clusters": [
            {"name": "c", "cluster": {"server": server, **cluster}},
            {"name": "other", "cluster": {"server": "http://other:8080"}},
        ],
        "users": [{"name": "u", "user": user}, {"name": "nobody", "user": {}}],
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u", "namespace": "team"}},
            {"name": "alt", "context": {"cluster": "other", "user": "nobody"}},
        ],
    }


def test_token_namespace_and_named_context(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            config("https://127.0.0.1:6443/", {"insecure-skip-tls-verify": True}, {"token": "abc"})
        )
    )
    cfg = load_kubeconfig(path)
    assert cfg.server == "https://127.0.0.1:6443" and cfg.token == "abc" and cfg.namespace == "team"
    assert cfg.ssl_context is not None and cfg.ssl_context.verify_mode == ssl.CERT_NONE
    alt = load_kubeconfig(str(path), context="alt")
    assert alt.server == "http://other:8080" and alt.ssl_context is None and alt.token is None
    assert alt.namespace == "default"


def test_token_file_and_relative_paths(tmp_path: Path, pki: dict[str, bytes]) -> None:
    (tmp_path / "token").write_text("from-file\n")
    (tmp_path / "ca.crt").write_bytes(pki["ca"])
    (tmp_path / "kubeconfig").write_text(
        yaml.safe_dump(
            config("https://localhost:1", {"certificate-authority": "ca.crt"}, {"tokenFile": "token"})
        )
    )
    cfg = load_kubeconfig(tmp_path / "kubeconfig")
    assert cfg.token == "from-file" and cfg.token_file == str(tmp_path / "token")
    assert cfg.ssl_context is not None and cfg.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_basic_auth_header() -> None:
    cfg = load_kubeconfig(config("http://x", {}, {"username": "me", "password": "pw"}))
    assert cfg.headers["Authorization"] == "Basic " + b64(b"me:pw")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"current-context": "nope", "contexts": []}, "no context named 'nope'"),
        ({}, "no current-context"),
        (config("", {}, {}), "has no server"),
        (config("https://x", {}, {"exec": {"command": "aws"}}), "exec credential plugins"),
        (config("https://x", {"certificate-authority-data": b64(b"junk")}, {}), "certificate-authority"),
        (config("https://x", {}, {"client-certificate-data": b64(b"x")}), "must be given together"),
    ],
)
def test_bad_configs_raise_config_error(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_kubeconfig(doc)


def test_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read kubeconfig"):
        load_kubeconfig(tmp_path / "absent")


def test_in_cluster_config(tmp_path: Path, pki: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_bytes(pki["ca"])
    (tmp_path / "namespace").write_text("kuscia-system")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    cfg = in_cluster_config(
        token_file=tmp_path / "token", ca_file=tmp_path / "ca.crt", namespace_file=tmp_path / "namespace"
    )
    assert (cfg.server, cfg.token, cfg.namespace) == ("https://10.0.0.1:6443", "sa-token", "kuscia-system")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ConfigError, match="not in a cluster"):
        in_cluster_config(token_file=tmp_path / "token")


async def test_tls_round_trip_with_client_certificate(tmp_path: Path, pki: dict[str, bytes]) -> None:
    for name in ("ca", "srv", "srv_key"):
        (tmp_path / name).write_bytes(pki[name])
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca"))
    server_ctx.load_cert_chain(tmp_path / "srv", tmp_path / "srv_key")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    seen: list[tuple[str, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        cn = dict(x[0] for x in peer["subject"])["commonName"] if peer else ""
        seen.append((cn, request.headers.get("Authorization")))
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    app = web.Application()
    app.router.add_get("/api", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = runner.addresses[0][1]
    try:
        doc = config(
            f"https://127.0.0.1:{port}",
            {"certificate-authority-data": b64(pki["ca"])},
            {
                "client-certificate-data": b64(pki["cli"]),
                "client-key-data": b64(pki["cli_key"]),
                "token": "t0k",
            },
        )
        async with Client.from_kubeconfig(doc) as client:
            assert (await client.get_path("/api"))["versions"] == ["v1"]
        assert seen == [("admin", "Bearer t0k")]
        no_ca = config(f"https://127.0.0.1:{port}", {}, {"token": "t"})
        async with Client.from_kubeconfig(no_ca) as client:
            from atoll.client import ClientConnectionError

            with pytest.raises(ClientConnectionError):
                await client.get_path("/api")
    finally:
        await runner.cleanup()
