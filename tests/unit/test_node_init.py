"""``atoll init``: Kuscia's flags, kuscia.yaml field names, the PKI created up front (0600), and
the config validation ``atoll start`` relies on."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.cli.main import main
from atoll.node.config import ConfigError, load_config
from atoll.node.pki import check_pki


def init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["init", *args])
    return result.exit_code, result.output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_master_config_has_kuscia_field_names_and_its_pki(tmp_path: Path) -> None:
    code, out = init("--mode", "master", "-d", "kuscia-system", "--data-dir", str(tmp_path / "m"), "-p", "tls",
                     "-e", "postgresql://u@h/db", "-l", "debug", "--external-port", "1081")
    assert code == 0, out
    config = tmp_path / "m" / "kuscia.yaml"
    doc = yaml.safe_load(config.read_text())
    assert doc["mode"] == "master" and doc["domainID"] == "kuscia-system" and doc["protocol"] == "TLS"
    assert doc["datastoreEndpoint"] == "postgresql://u@h/db" and doc["logLevel"] == "DEBUG"
    assert doc["gateway"] == {"externalPort": 1081, "internalPort": 13081}
    pem = base64.b64decode(doc["domainKeyData"])
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")  # PKCS#1, as Kuscia requires
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    pki = tmp_path / "m" / "pki"
    assert mode(config) == 0o600 and mode(pki) == 0o700
    for name in ("domain.key", "ca.key", "apiserver.key", "admin.key", "sa.key", "admin.token"):
        assert mode(pki / name) == 0o600, name
    assert (pki / "ca.crt").exists() and (pki / "apiserver.crt").exists()
    assert (pki / "domain.key").read_bytes() == pem
    check_pki(load_config(config))


def test_lite_config_and_an_imported_pkcs8_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    code, out = init("--mode", "lite", "-d", "alice", "--data-dir", str(tmp_path / "a"), "-f", str(key_file),
                     "-m", "https://master:1080/", "-t", "TOKEN", "-r", "runp", "--datamesh-http-port", "18070")
    assert code == 0, out
    config = load_config(tmp_path / "a" / "kuscia.yaml")
    assert (config.mode, config.runtime, config.master_endpoint, config.lite_deploy_token) == (
        "lite", "runp", "https://master:1080", "TOKEN")
    assert config.extra["datamesh"] == {"httpPort": 18070, "grpcPort": 8071}
    stored = serialization.load_pem_private_key(base64.b64decode(config.domain_key_data), None)
    assert stored.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert base64.b64decode(config.domain_key_data).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert not (tmp_path / "a" / "pki" / "ca.key").exists()  # a lite has no CA
    check_pki(config)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", "Bad_Domain"], "domainID: a domain ID must be an RFC 1123 label"),
        (["-d", "cross-domain"], "is reserved"),
        (["-d", "alice", "-f", "/nonexistent/key.pem"], "--domain-key-file: cannot read"),
        (["-d", "alice", "-m", "ftp://x", "-t", "t", "--mode", "lite"], "masterEndpoint: must be http(s)://"),
    ],
)
def test_init_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    full = ["--data-dir", str(tmp_path / "n"), *args]
    if "--mode" not in args:
        full = ["--mode", "master", *full]
    code, out = init(*full)
    assert code == 1
    assert out.strip().count("\n") == 0 and out.startswith("error: ") and message in out


def test_a_small_or_non_rsa_key_is_refused(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "small.pem"
    path.write_bytes(small.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption()))
    code, out = init("--mode", "master", "-d", "m", "--data-dir", str(tmp_path / "n"), "-f", str(path))
    assert code == 1 and "at least 2048" in out


def test_load_config_validates_protocol_runtime_and_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    base = {"mode": "lite", "domainID": "alice", "dataDir": "d"}
    for extra, message in (({"protocol": "SSL"}, "protocol: must be one of NOTLS, TLS, MTLS"),
                           ({"runtime": "docker"}, "runtime: must be one of"),
                           ({"masterEndpoint": "master:1080"}, r"masterEndpoint: must be http\(s\)://")):
        path.write_text(yaml.safe_dump({**base, **extra}))
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def test_start_refuses_a_node_without_its_pki(tmp_path: Path) -> None:
    code, _ = init("--mode", "master", "-d", "kuscia-system", "--data-dir", str(tmp_path / "m"))
    assert code == 0
    (tmp_path / "m" / "pki" / "ca.crt").unlink()
    with pytest.raises(ConfigError, match="create the node with `atoll init` first"):
        check_pki(load_config(tmp_path / "m" / "kuscia.yaml"))


def test_start_refuses_a_changed_domain_key(tmp_path: Path) -> None:
    from atoll.node.config import generate_domain_key

    init("--mode", "master", "-d", "kuscia-system", "--data-dir", str(tmp_path / "m"))
    path = tmp_path / "m" / "kuscia.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["domainKeyData"] = generate_domain_key()
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="domainKeyData does not match"):
        check_pki(load_config(path))


def test_no_gateway_and_direct_join_write_no_gateway_block(tmp_path: Path) -> None:
    code, _ = init("--mode", "master", "-d", "kuscia-system", "--data-dir", str(tmp_path / "m"), "--no-gateway")
    assert code == 0 and "gateway" not in yaml.safe_load((tmp_path / "m" / "kuscia.yaml").read_text())
    kubeconfig = tmp_path / "admin.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    code, _ = init("--mode", "lite", "-d", "alice", "--data-dir", str(tmp_path / "a"), "--kubeconfig", str(kubeconfig))
    doc = yaml.safe_load((tmp_path / "a" / "kuscia.yaml").read_text())
    assert code == 0 and "gateway" not in doc and "datamesh" not in doc and "masterEndpoint" not in doc


def test_runk_host_address_opens_the_egress_listeners_beyond_loopback(tmp_path: Path) -> None:
    lite = ("--mode", "lite", "-d", "alice", "-m", "http://master:1080", "-t", "T")
    code, out = init(*lite, "--data-dir", str(tmp_path / "p"))
    assert code == 0, out
    assert "egressAddress" not in yaml.safe_load((tmp_path / "p" / "kuscia.yaml").read_text())["gateway"]  # RunP
    code, out = init(*lite, "--data-dir", str(tmp_path / "k"), "-r", "runk", "--runk-host-address", "lite.ns.svc")
    assert code == 0, out
    doc = yaml.safe_load((tmp_path / "k" / "kuscia.yaml").read_text())
    assert doc["runk"]["hostAddress"] == "lite.ns.svc" and doc["gateway"]["egressAddress"] == "0.0.0.0"
    code, out = init(*lite, "--data-dir", str(tmp_path / "e"), "-r", "runk", "--runk-host-address", "10.0.0.5",
                     "--egress-address", "10.0.0.5")
    doc = yaml.safe_load((tmp_path / "e" / "kuscia.yaml").read_text())
    assert code == 0 and doc["gateway"]["egressAddress"] == "10.0.0.5"
    code, out = init(*lite, "--data-dir", str(tmp_path / "x"), "--egress-address", "lite.ns.svc")
    assert code != 0 and "--egress-address: must be an IP address" in out and "Traceback" not in out


def test_cert_sans_go_into_the_config_and_the_serving_certificate(tmp_path: Path) -> None:
    from cryptography import x509

    from atoll.node.pki import server_hosts
    from atoll.pki import ensure_pki

    code, out = init("--mode", "master", "-d", "m", "--data-dir", str(tmp_path / "m"), "--cert-san", "lb.example",
                     "--cert-san", "10.1.2.3")
    assert code == 0, out
    config = load_config(tmp_path / "m" / "kuscia.yaml")
    assert config.cert_sans == ("lb.example", "10.1.2.3")
    assert yaml.safe_load((tmp_path / "m" / "kuscia.yaml").read_text())["apiserver"]["certSANs"] == [
        "lb.example", "10.1.2.3"]
    cert_file = tmp_path / "m" / "pki" / "apiserver.crt"

    def names() -> list[str]:
        san = x509.load_pem_x509_certificate(cert_file.read_bytes()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        return [str(v) for v in (*san.get_values_for_type(x509.DNSName), *san.get_values_for_type(x509.IPAddress))]

    assert {"localhost", "127.0.0.1", "lb.example", "10.1.2.3"} <= set(names())
    before = cert_file.read_bytes()
    ensure_pki(tmp_path / "m" / "pki", extra_hosts=server_hosts(config))
    assert cert_file.read_bytes() == before  # covered: kept
    ensure_pki(tmp_path / "m" / "pki", extra_hosts=(*server_hosts(config), "new.example"))
    assert "new.example" in names()  # a SAN added to the config later: reissued at start


def test_cert_sans_and_shared_key_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"mode": "master", "domainID": "m", "dataDir": "d",
                                    "apiserver": {"certSANs": "lb.example"}}))
    with pytest.raises(ConfigError, match=r"apiserver\.certSANs: must be a list"):
        load_config(path)
    code, out = init("--mode", "master", "-d", "m", "--data-dir", str(tmp_path / "n"),
                     "--shared-pki-key-file", str(tmp_path / "k"))
    assert code == 1 and "needs a PostgreSQL or MySQL --datastore-endpoint" in out and out.count("\n") == 1
    (tmp_path / "short").write_text(base64.b64encode(b"x" * 16).decode())
    code, out = init("--mode", "master", "-d", "m", "--data-dir", str(tmp_path / "n"), "-e", "postgresql://u@h/db",
                     "--shared-pki-key-file", str(tmp_path / "short"))
    assert code == 1 and "must be 32 bytes" in out and out.count("\n") == 1


def test_a_data_dir_runs_one_master_at_a_time(tmp_path: Path) -> None:
    import os

    from atoll.node.run_lock import data_dir_lock

    with data_dir_lock(tmp_path / "d"):
        with pytest.raises(ConfigError, match=f"in use by another atoll master \\(pid {os.getpid()}\\)"):
            with data_dir_lock(tmp_path / "d"):
                pass
        assert mode(tmp_path / "d" / "run" / "master.lock") == 0o600
    with data_dir_lock(tmp_path / "d"):  # released on exit
        pass


def test_status_hides_the_datastore_password_and_names_the_leader() -> None:
    from atoll.cli.status import _leader_line, _redacted

    assert _redacted("postgresql://atoll:s3cret@db:5432/atoll") == "postgresql://atoll:***@db:5432/atoll"
    assert "s3cret" not in _redacted("mysql://root:s3cret@db/atoll?pollInterval=50ms")
    in_query = _redacted("postgresql://atoll@db/atoll?sslmode=require&password=s3cret")
    assert "s3cret" not in in_query and "sslmode=require" in in_query, in_query
    assert _redacted("").startswith("sqlite")
    lease = {"spec": {"holderIdentity": "vm_10.0.0.1:6443_ab12cd34", "leaseTransitions": 2}}
    assert "(this master" in _leader_line(lease, "10.0.0.1:6443")
    assert "(another master" in _leader_line(lease, "10.0.0.1:644")  # a prefix of the port is not a match
    assert "none" in _leader_line({"spec": {}}, "10.0.0.1:6443")
