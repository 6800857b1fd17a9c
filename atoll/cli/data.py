"""``atoll data add|ls``: register CSV tables as DomainData of a domain, and list them.

The data directory is found through the node config (``-c``): ``atoll data add`` must run on the
machine of DOMAIN's lite with that lite's config; the file is copied into the domain's localfs
DomainDataSource (``--datasource``, default ``default-data-source`` = ``<dataDir>/var/storage/data``)
and the DomainData is created with the lite's own credentials, by the same code as DataMesh's
``CreateDomainData`` (same checks, same object). ``atoll data ls`` also accepts a master config
(admin credentials).
"""

from __future__ import annotations

import asyncio
import csv
import os
import shutil
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from atoll.client import Client
from atoll.client.errors import ClientError, ConfigError
from atoll.datamesh.constants import DEFAULT_DATA_SOURCE_ID, DOMAINDATAS
from atoll.datamesh.info import InfoError, data_path, load_domain_key
from atoll.datamesh.service import DataMeshError, DomainDataService, DomainDataSourceService, Scope
from atoll.node.config import ConfigError as NodeConfigError
from atoll.node.config import NodeConfig, load_config

JSON = dict[str, Any]


class DataCommandError(Exception):
    """One line for the user."""


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def _client(config: NodeConfig) -> Client:
    if config.mode == "lite":  # a direct join's kubeconfig, or the credentials registration issued
        from atoll.node.lite import lite_api_source

        try:
            source = lite_api_source(config)
        except NodeConfigError as exc:
            raise DataCommandError(str(exc)) from None
        return Client.from_kubeconfig(source, user_agent=f"atoll-data/{config.domain_id}")  # type: ignore[arg-type]
    if config.kubeconfig:
        return Client.from_kubeconfig(config.kubeconfig, user_agent=f"atoll-data/{config.domain_id}")
    if config.mode == "master":
        from atoll.node.kubeconfig import admin_kubeconfig
        from atoll.node.master import endpoint_file
        from atoll.pki import PKI

        running = endpoint_file(config.data_dir)
        server = running.read_text().strip() if running.exists() else f"https://{config.api_host}:{config.api_port}"
        return Client.from_kubeconfig(admin_kubeconfig(PKI(config.data_dir / "pki"), server))
    raise DataCommandError(f"{config.domain_id}'s config has no kubeconfig to reach the master")


def parse_columns(spec: str) -> list[JSON]:
    """``id:str,age:int`` → DataColumns (every column needs a name and a type)."""
    columns = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, kind = part.partition(":")
        if not name.strip() or not kind.strip():
            raise DataCommandError(f"--columns: {part!r} must be NAME:TYPE (e.g. id:str,age:int)")
        columns.append({"name": name.strip(), "type": kind.strip()})
    return columns


def _header(file: Path) -> list[str]:
    with open(file, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def _columns(file: Path, spec: str) -> list[JSON]:
    header = _header(file)
    if not spec:
        if not header:
            raise DataCommandError(f"{file} has no header line to take the columns from; pass --columns")
        return [{"name": h, "type": "str"} for h in header]
    columns = parse_columns(spec)
    missing = [c["name"] for c in columns if c["name"] not in header]
    if missing:
        raise DataCommandError(f"--columns: {missing} not in the header of {file} ({header})")
    return columns


def _copy(file: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(file, tmp)
    os.replace(tmp, target)


async def add(config: NodeConfig, domain: str, file: Path, req: JSON) -> str:
    if config.mode not in ("lite", "autonomy") or config.domain_id != domain:
        raise DataCommandError(f"-c must be the config of {domain}'s lite on this machine "
                               f"(got a {config.mode} of {config.domain_id})")
    async with _client(config) as client:
        scope = Scope(client, domain, config.data_dir, load_domain_key(config.domain_key_data))
        source = await DomainDataSourceService(scope).QueryDomainDataSource({"datasource_id": req["datasource_id"]})
        root = ((source["data"]["info"] or {}).get("localfs") or {}).get("path")
        if not root:
            raise DataCommandError(f"datasource {req['datasource_id']} is not a localfs source")
        target = data_path(Path(root), req["relative_uri"])
        await asyncio.to_thread(_copy, file, target)
        result = await DomainDataService(scope).CreateDomainData(req)
        return f"{domain}/{result['data']['domaindata_id']} -> {target}"


async def list_data(config: NodeConfig, domain: str) -> list[JSON]:
    async with _client(config) as client:
        items, _ = await client.list_all(DOMAINDATAS, namespace=domain)
        return sorted(items, key=lambda o: o["metadata"]["name"])


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except (DataCommandError, InfoError, ConfigError, ClientError) as exc:
        _fail(str(exc))
    except DataMeshError as exc:
        _fail(exc.message)
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def _load(path: Path) -> NodeConfig:
    try:
        return load_config(path)
    except NodeConfigError as exc:
        _fail(str(exc))
        raise


@click.group()
def data() -> None:
    """DomainData of a domain: register CSV files, list them."""


@data.command("add")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True,
              help="The config of DOMAIN's lite (its dataDir holds the localfs data).")
@click.option("--name", required=True, help="DomainData ID (and display name).")
@click.option("--columns", default="", help="NAME:TYPE,... (default: the CSV header, all str).")
@click.option("--type", "data_type", default="table", show_default=True)
@click.option("--datasource", default=DEFAULT_DATA_SOURCE_ID, show_default=True)
@click.option("--relative-uri", default="", help="Path inside the data source (default: the file's name).")
@click.option("--vendor", default="manual", show_default=True)
@click.argument("domain")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def data_add(config_path: Path, name: str, columns: str, data_type: str, datasource: str, relative_uri: str,
             vendor: str, domain: str, file: Path) -> None:
    """Copy FILE into DOMAIN's data source and register it as DomainData NAME."""
    config = _load(config_path)
    try:
        cols = _columns(file, columns) if data_type == "table" else parse_columns(columns)
    except DataCommandError as exc:
        _fail(str(exc))
    req = {"domaindata_id": name, "name": name, "type": data_type, "relative_uri": relative_uri or file.name,
           "datasource_id": datasource, "columns": cols, "vendor": vendor}
    click.echo(f"added {_run(add(config, domain, file, req))}")


@data.command("ls")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True,
              help="A node config: DOMAIN's lite, or the master.")
@click.argument("domain")
def data_ls(config_path: Path, domain: str) -> None:
    """List DOMAIN's DomainData."""
    items = _run(list_data(_load(config_path), domain))
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "NAME", "TYPE", "DATASOURCE", "RELATIVE URI", "VENDOR", "COLUMNS"):
        table.add_column(column)
    for obj in items:
        spec = obj.get("spec") or {}
        cols = ",".join(f"{c.get('name')}:{c.get('type')}" for c in spec.get("columns") or [])
        table.add_row(obj["metadata"]["name"], str(spec.get("name", "")), str(spec.get("type", "")),
                      str(spec.get("dataSource", "")), str(spec.get("relativeURI", "")), str(spec.get("vendor", "")),
                      cols)
    Console(width=200, soft_wrap=True).print(table)
