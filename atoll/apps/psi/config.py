"""What the PSI task is, from the three variables every Kuscia app gets.

``TASK_CLUSTER_DEFINE`` (ClusterDefine JSON): the parties, this party (``selfPartyIdx``) and the
peer's ``psi`` service endpoint. ``ALLOCATED_PORTS``: this party's ``psi`` port.
``TASK_INPUT_CONFIG``: SecretFlow's PSI component shape (see docs/apps.md)::

    {"sf_cluster_desc": {"parties": ["alice", "bob"]},
     "sf_datasource_config": {"alice": {"id": "default-data-source"}, "bob": {...}},   # optional
     "sf_input_ids": ["alice-table", "bob-table"],          # per party, in sf_cluster_desc order
     "sf_output_ids": ["psi-output", "psi-output"],
     "sf_output_uris": ["psi-output.csv", "psi-output.csv"],
     "sf_node_eval_param": {"domain": "data_prep", "name": "psi", "version": "1.0.0",
        "attr_paths": ["input/input_ds1/keys", "input/input_ds2/keys", "receiver_parties",
                       "sort_result", "allow_empty_result", "join_type", "protocol"],
        "attrs": [{"ss": ["id"]}, {"ss": ["id"]}, {"ss": ["alice", "bob"]}, {"b": true},
                  {"b": true}, {"s": "inner_join"}, {"s": "PROTOCOL_ECDH"}]},
     "atoll_psi": {"batch_size": 4096, "window": 4, "connect_timeout_seconds": 120,
                   "peer_timeout_seconds": 120}}                                      # optional
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

JSON = dict[str, Any]
PORT_NAME = "psi"
ECDH_PROTOCOLS = ("PROTOCOL_ECDH", "ECDH_PSI_2PC", "ECDH")


class TaskConfigError(ValueError):
    """A task variable that cannot be used; the message names it and the field."""


@dataclass(frozen=True, slots=True)
class PsiTask:
    task_id: str
    self_party: str
    peer_party: str
    peer_url: str
    port: int
    input_id: str
    output_id: str
    output_uri: str
    output_datasource: str
    keys: tuple[str, ...]
    """Key columns of this party's table (empty: its first column)."""
    receivers: frozenset[str]
    sort_result: bool = True
    allow_empty_result: bool = False
    protocol: str = "PROTOCOL_ECDH"
    batch_size: int = 4096
    window: int = 4
    connect_timeout: float = 120.0
    peer_timeout: float = 120.0

    @property
    def self_receives(self) -> bool:
        return self.self_party in self.receivers

    @property
    def peer_receives(self) -> bool:
        return self.peer_party in self.receivers


def _json(env: Mapping[str, str], name: str) -> JSON:
    raw = env.get(name)
    if not raw:
        raise TaskConfigError(f"{name}: not set")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TaskConfigError(f"{name}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise TaskConfigError(f"{name}: must be a JSON object")
    return value


def _get(obj: JSON, camel: str, snake: str, default: Any = None) -> Any:
    return obj.get(camel, obj.get(snake, default))


def _attrs(param: JSON) -> dict[str, Any]:
    """``attr_paths`` / ``attrs`` (SecretFlow's component attributes) → path → value (``is_na`` dropped)."""
    out: dict[str, Any] = {}
    for path, attr in zip(param.get("attr_paths") or [], param.get("attrs") or [], strict=False):
        if not isinstance(attr, dict) or attr.get("is_na"):
            continue
        for kind in ("ss", "s", "b", "i64", "f"):
            if kind in attr:
                out[str(path)] = attr[kind]
                break
    return out


def _per_party(cfg: JSON, field: str, idx: int) -> str:
    values = cfg.get(field) or []
    if not isinstance(values, list) or idx >= len(values) or not values[idx]:
        raise TaskConfigError(f"TASK_INPUT_CONFIG: {field}[{idx}] is missing")
    return str(values[idx])


def _peer_url(cluster: JSON, peer: str) -> str:
    for party in cluster.get("parties") or []:
        if party.get("name") != peer:
            continue
        for service in party.get("services") or []:
            if _get(service, "portName", "port_name") == PORT_NAME and service.get("endpoints"):
                endpoint = str(service["endpoints"][0])
                return endpoint if endpoint.startswith(("http://", "https://")) else f"http://{endpoint}"
        raise TaskConfigError(f"TASK_CLUSTER_DEFINE: party {peer} has no {PORT_NAME!r} service endpoint")
    raise TaskConfigError(f"TASK_CLUSTER_DEFINE: no party {peer}")


def _port(env: Mapping[str, str]) -> int:
    for port in _json(env, "ALLOCATED_PORTS").get("ports") or []:
        if port.get("name") == PORT_NAME:
            return int(port["port"])
    raise TaskConfigError(f"ALLOCATED_PORTS: no port named {PORT_NAME!r}")


def load_task(env: Mapping[str, str] = os.environ) -> PsiTask:
    cfg, cluster = _json(env, "TASK_INPUT_CONFIG"), _json(env, "TASK_CLUSTER_DEFINE")
    cluster_parties = [str(p.get("name")) for p in cluster.get("parties") or []]
    self_idx = int(_get(cluster, "selfPartyIdx", "self_party_idx", 0) or 0)
    if not 0 <= self_idx < len(cluster_parties):
        raise TaskConfigError(f"TASK_CLUSTER_DEFINE: selfPartyIdx {self_idx} out of range")
    me = cluster_parties[self_idx]
    parties = [str(p) for p in (cfg.get("sf_cluster_desc") or {}).get("parties") or cluster_parties]
    if len(parties) != 2 or me not in parties:
        raise TaskConfigError(f"TASK_INPUT_CONFIG: sf_cluster_desc.parties must be two parties including {me} "
                              f"(got {parties})")
    idx = parties.index(me)
    peer = parties[1 - idx]
    attrs = _attrs(cfg.get("sf_node_eval_param") or {})
    join = str(attrs.get("join_type", "inner_join"))
    if join != "inner_join":
        raise TaskConfigError(f"TASK_INPUT_CONFIG: join_type {join!r} is not supported (inner_join)")
    receivers = frozenset(str(p) for p in attrs.get("receiver_parties") or parties)
    if not receivers or not receivers <= set(parties):
        raise TaskConfigError(f"TASK_INPUT_CONFIG: receiver_parties must be among {parties} (got {sorted(receivers)})")
    tuning = cfg.get("atoll_psi") or {}
    input_id = _per_party(cfg, "sf_input_ids", idx)
    source = ((cfg.get("sf_datasource_config") or {}).get(me) or {}).get("id") or ""
    return PsiTask(
        task_id=str(env.get("TASK_ID") or ""),
        self_party=me,
        peer_party=peer,
        peer_url=_peer_url(cluster, peer),
        port=_port(env),
        input_id=input_id,
        output_id=_per_party(cfg, "sf_output_ids", idx) if me in receivers else "",
        output_uri=_per_party(cfg, "sf_output_uris", idx) if me in receivers else "",
        output_datasource=str(source),
        keys=tuple(str(k) for k in attrs.get(f"input/input_ds{idx + 1}/keys") or ()),
        receivers=receivers,
        sort_result=bool(attrs.get("sort_result", True)),
        allow_empty_result=bool(attrs.get("allow_empty_result", False)),
        protocol=str(attrs.get("protocol", "PROTOCOL_ECDH")),
        batch_size=int(tuning.get("batch_size", 4096)),
        window=int(tuning.get("window", 4)),
        connect_timeout=float(tuning.get("connect_timeout_seconds", 120)),
        peer_timeout=float(tuning.get("peer_timeout_seconds", 120)),
    )
