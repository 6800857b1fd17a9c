"""``atoll init``: Kuscia's ``kuscia init`` flags → a node config file, and the node's key material.

Flags keep Kuscia's names and short forms (``--mode``, ``-d/--domain``, ``-r/--runtime``,
``-f/--domain-key-file``, ``-l/--log-level``, ``-t/--lite-deploy-token``, ``-m/--master-endpoint``,
``-e/--datastore-endpoint``, ``-p/--protocol``, ``--enable-workload-approve``); Atoll adds where the
node keeps its state (``--data-dir``) and its ports. The config is written atomically with mode
0600 (it holds ``domainKeyData``); the PKI is created here, once — ``atoll start`` only reads it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from atoll.cli.common import fail
from atoll.files import write_atomic
from atoll.node.config import (
    DEFAULT_DATAMESH_PORTS,
    DEFAULT_EXTERNAL_PORT,
    PROTOCOLS,
    RUNTIMES,
    ConfigError,
    NodeConfig,
    check_master_endpoint,
    domain_key_from_file,
    generate_domain_key,
    validate_domain_id,
)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _lite_fields(kubeconfig: str, master_endpoint: str, token: str) -> tuple[str, str]:
    if kubeconfig:
        return "", ""
    if not master_endpoint:
        fail("--master-endpoint is required for --mode lite (the master's gateway, e.g. https://master:1080)")
    if not token:
        fail("--lite-deploy-token is required for --mode lite (print it on the master: atoll domain add-lite ID)")
    try:
        return check_master_endpoint(master_endpoint), token
    except ConfigError as exc:
        fail(str(exc))


def _share(config: NodeConfig, key_file: Path) -> str:
    import asyncio

    from atoll.node.shared_pki import load_key, share_pki

    if config.mode != "master":
        fail("--shared-pki-key-file: only masters share credentials")
    try:
        done = asyncio.run(share_pki(config, load_key(key_file)))
    except ConfigError as exc:
        fail(str(exc))
    except (OSError, ValueError) as exc:
        if not isinstance(exc, ConnectionError | TimeoutError):
            raise  # writing pki/ failed: reported by the caller
        fail(f"--shared-pki-key-file: cannot reach the datastore: {exc}")
    except Exception as exc:  # the datastore is unreachable, refused the login, ... (no DSN: it may hold a password)
        fail(f"--shared-pki-key-file: cannot use the datastore: {type(exc).__name__}: {exc}")
    if done == "published":
        return f"published the masters' credentials to the datastore (sealed with {key_file})"
    return "joined the credentials the other masters share (CA, admin, ServiceAccount keys)"


@click.command()
@click.option("--mode", type=click.Choice(["master", "lite", "autonomy"], case_sensitive=False), required=True)
@click.option("--domain", "-d", "domain_id", required=True, help="Domain ID (RFC 1123 label).")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="State directory of the node.")
@click.option("--runtime", "-r", type=click.Choice(RUNTIMES, case_sensitive=False), default="runp", show_default=True)
@click.option("--domain-key-file", "-f", type=click.Path(path_type=Path), default=None,
              help="PEM RSA private key of the domain (default: generate a 2048-bit PKCS#1 key).")
@click.option("--log-level", "-l", default="INFO", show_default=True)
@click.option("--lite-deploy-token", "-t", default="", help="lite: the one-time deploy token from the master.")
@click.option("--master-endpoint", "-m", default="", help="lite: the master's gateway URL, http(s)://host:port.")
@click.option("--datastore-endpoint", "-e", default="", help="postgresql://… or mysql://… (empty: embedded SQLite).")
@click.option("--protocol", "-p", type=click.Choice(PROTOCOLS, case_sensitive=False), default="NOTLS",
              show_default=True, help="Protocol of the node's external (gateway) listener.")
@click.option("--enable-workload-approve", is_flag=True, help="P2P: jobs wait for this domain's approval.")
@click.option("--api-port", type=int, default=6443, show_default=True, help="API server port (0 = any free port).")
@click.option("--api-host", default="127.0.0.1", show_default=True)
@click.option("--external-port", type=int, default=DEFAULT_EXTERNAL_PORT, show_default=True,
              help="The node's public gateway port (Kuscia's 1080).")
@click.option("--internal-port", type=int, default=13081, show_default=True,
              help="The gateway's listener for the domain's own processes (Kuscia's 80).")
@click.option("--datamesh-http-port", type=int, default=DEFAULT_DATAMESH_PORTS[0], show_default=True)
@click.option("--datamesh-grpc-port", type=int, default=DEFAULT_DATAMESH_PORTS[1], show_default=True)
@click.option("--gateway/--no-gateway", default=True, show_default=True,
              help="Run the node's Envoy gateway (--no-gateway: API-only nodes, e.g. tests).")
@click.option("--kubeconfig", default="", help="lite: join a master directly with this kubeconfig (no registration).")
@click.option("--master-data-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="with --kubeconfig, same machine: issue the agent's log certificate from the master's CA.")
@click.option("--cert-san", "cert_sans", multiple=True,
              help="master: an extra DNS name or IP of the API server's certificate (repeatable; apiserver.certSANs).")
@click.option("--shared-pki-key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="master on PostgreSQL/MySQL: share the CA, admin and ServiceAccount keys with the other masters "
                   "of the datastore, sealed there with this key (32 bytes, base64; created if missing).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Config file to write (default: <data-dir>/kuscia.yaml).")
@click.option("--output-format", type=click.Choice(["yaml", "configmap"]), default="yaml", show_default=True,
              help="configmap: the config inside the ConfigMap of deploy/k8s (key kuscia.yaml); the PKI is then "
                   "created by the pod's first start.")
@click.option("--namespace", "configmap_namespace", default="",
              help="configmap: its namespace (default kuscia-master / <mode>-<domain>).")
@click.option("--runk-namespace", default="", help="runtime runk: runk.namespace (default <mode>-<domain>).")
@click.option("--runk-host-address", default="", help="runtime runk: runk.hostAddress, the lite's address as seen "
              "from the institution's pods (also makes --egress-address default to 0.0.0.0).")
@click.option("--egress-address", default="", help="gateway.egressAddress: the IP the egress listeners bind "
              "(default 127.0.0.1; 0.0.0.0 with --runk-host-address: restrict it with a NetworkPolicy/firewall).")
def init(mode: str, domain_id: str, data_dir: Path, runtime: str, domain_key_file: Path | None, log_level: str,
         lite_deploy_token: str, master_endpoint: str, datastore_endpoint: str, protocol: str,
         enable_workload_approve: bool, api_port: int, api_host: str, external_port: int, internal_port: int,
         datamesh_http_port: int, datamesh_grpc_port: int, gateway: bool, kubeconfig: str, master_data_dir: Path | None,
         output: Path | None, output_format: str, configmap_namespace: str, runk_namespace: str,
         runk_host_address: str, egress_address: str, cert_sans: tuple[str, ...] = (),
         shared_pki_key_file: Path | None = None) -> None:
    """Write a node configuration file (kuscia.yaml field names) and create the node's PKI."""
    from atoll.node.pki import init_pki

    mode = mode.lower()
    try:
        validate_domain_id(domain_id)
        key_data = domain_key_from_file(domain_key_file) if domain_key_file else generate_domain_key()
    except ConfigError as exc:
        fail(str(exc))
    deployed = output_format == "configmap"  # a template for deploy/k8s: lite fields may come later
    lite_fields = mode == "lite" and not (deployed and not (master_endpoint or lite_deploy_token))
    endpoint, token = _lite_fields(kubeconfig, master_endpoint, lite_deploy_token) if lite_fields else ("", "")
    extra: dict[str, object] = {}
    if gateway and not kubeconfig:  # a direct join (tests) runs no gateway: nothing to register with
        block: dict[str, object] = {"externalPort": external_port, "internalPort": internal_port}
        egress = egress_address or ("0.0.0.0" if runtime.lower() == "runk" and runk_host_address else "")
        if egress and not _is_ip(egress):
            fail(f"--egress-address: must be an IP address to listen on (got {egress!r})")
        if egress:  # runk.hostAddress rewrites 127.0.0.1 in pods' env: the egress ports must be reachable there
            block["egressAddress"] = egress
        extra["gateway"] = block
        if mode in ("lite", "autonomy"):
            extra["datamesh"] = {"httpPort": datamesh_http_port, "grpcPort": datamesh_grpc_port}
    if runtime.lower() == "runk":
        extra["runk"] = {"namespace": runk_namespace or f"{mode}-{domain_id}", "kubeconfigFile": "", "dnsServers": [],
                         "hostAddress": runk_host_address}
    if deployed:
        extra["pki"] = {"createOnStart": True}  # the data directory lives in the pod's volume
    config = NodeConfig(
        mode=mode, domain_id=domain_id, data_dir=data_dir.resolve(), api_host=api_host, api_port=api_port,
        datastore_endpoint=datastore_endpoint, log_level=log_level.upper(), protocol=protocol.upper(),
        domain_key_data=key_data, kubeconfig=str(Path(kubeconfig).resolve()) if kubeconfig else "",
        master_endpoint=endpoint, lite_deploy_token=token, runtime=runtime.lower(),
        enable_workload_approve=enable_workload_approve, extra=extra, cert_sans=cert_sans,
    )
    try:
        if shared_pki_key_file is not None and deployed:
            fail("--shared-pki-key-file: not with --output-format configmap (the pod creates its PKI at first start)")
        if shared_pki_key_file is not None:
            click.echo(f"pki: {_share(config, shared_pki_key_file)}")
        elif not deployed:
            init_pki(config)
    except (OSError, ValueError) as exc:
        fail(f"cannot create the node's PKI under {config.data_dir / 'pki'}: {exc}")
    if master_data_dir is not None:
        from atoll.node.lite import issue_agent_certificate

        try:
            issued = issue_agent_certificate(master_data_dir, config.data_dir, domain_id)
        except (OSError, ValueError) as exc:
            fail(f"--master-data-dir: cannot issue the agent certificate: {exc}")
        click.echo(f"issued {issued}")
    target = output or config.data_dir / "kuscia.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    if deployed:
        from atoll.node.configmap import as_configmap

        write_atomic(target, as_configmap(config, configmap_namespace).encode(), 0o600)
    else:
        write_atomic(target, config.to_yaml().encode(), 0o600)
    click.echo(f"wrote {target}")
