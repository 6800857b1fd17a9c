"""``metrics.k8s.io/v1beta1`` (what metrics-server serves, built in): ``NodeMetrics`` and
``PodMetrics`` answered from the node agents' ``/stats/summary`` (:mod:`atoll.agent.stats`,
fetched over the same mutual TLS as pod logs), never stored. ``kubectl top nodes|pods`` use it.
Nodes whose agent does not answer within ``TIMEOUT`` seconds are left out, as metrics-server does
with unreachable kubelets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.api.selectors import parse_label_selector
from atoll.api.timestamps import format_time
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.http import codec
from atoll.apiserver.http.podlogs import PodLogs
from atoll.apiserver.http.routing import Route
from atoll.apiserver.registry.podlog import node_endpoint

JSON = dict[str, Any]
TIMEOUT = 5.0


def cpu(nanocores: int) -> str:
    return f"{int(nanocores)}n"


def memory(size: int) -> str:
    return f"{int(size) // 1024}Ki"


class MetricsAPI:
    def __init__(self, cache: WatchCache, logs: PodLogs) -> None:
        self.cache = cache
        self.logs = logs

    async def serve(self, request: web.Request, route: Route) -> web.Response:
        if request.method != "GET":
            raise errors.MethodNotAllowed(f"{request.method} is not supported on {route.rd.group_resource}")
        if route.rd.kind == "NodeMetrics":
            items = await self._nodes(route.name)
        else:
            items = await self._pods(route.namespace, route.name, request.query.get("labelSelector", ""))
        if route.name is not None:
            if not items:
                raise errors.not_found(route.rd.plural, route.rd.group, route.name)
            return codec.json_response(items[0])
        return codec.json_response({"kind": f"{route.rd.kind}List", "apiVersion": route.rd.api_version,
                                    "metadata": {}, "items": items})

    async def _summaries(self, nodes: Iterable[str]) -> dict[str, JSON]:
        async def one(name: str) -> tuple[str, JSON | None]:
            cached = self.cache.get(f"/core/nodes/{name}")
            if cached is None:
                return name, None
            with contextlib.suppress(errors.APIError, OSError, TimeoutError):
                url = node_endpoint(cached.obj)
                return name, await asyncio.wait_for(self.logs.fetch_json(url, "/stats/summary"), TIMEOUT)
            return name, None

        results = await asyncio.gather(*(one(n) for n in set(nodes)))
        return {name: summary for name, summary in results if summary is not None}

    async def _nodes(self, name: str | None) -> list[JSON]:
        names = [name] if name else [c.obj["metadata"]["name"] for c in self.cache.list("/core/nodes/")]
        out = []
        for node, summary in sorted((await self._summaries(names)).items()):
            usage = summary.get("node") or {}
            out.append({"metadata": {"name": node, "creationTimestamp": format_time(summary["timestamp"])},
                        "timestamp": format_time(summary["timestamp"]), "window": f"{round(summary['window'])}s",
                        "usage": {"cpu": cpu(usage.get("cpu", 0)), "memory": memory(usage.get("memory", 0))}})
        return out

    async def _pods(self, namespace: str | None, name: str | None, selector: str) -> list[JSON]:
        labels = parse_label_selector(selector) if selector else None
        prefix = f"/core/pods/{namespace}/" if namespace else "/core/pods/"
        pods = {}
        for cached in self.cache.list(prefix):
            md, spec = cached.obj["metadata"], cached.obj.get("spec") or {}
            if (name and md["name"] != name) or not spec.get("nodeName"):
                continue
            if labels is not None and not labels.matches(md.get("labels") or {}):
                continue
            pods[(md["namespace"], md["name"])] = cached.obj
        summaries = await self._summaries(p["spec"]["nodeName"] for p in pods.values())
        out = []
        for summary in summaries.values():
            stamp = format_time(summary["timestamp"])
            for entry in summary.get("pods") or []:
                pod = pods.get((entry["namespace"], entry["name"]))
                if pod is None:
                    continue
                containers = [{"name": c["name"], "usage": {"cpu": cpu(c["cpu"]), "memory": memory(c["memory"])}}
                              for c in entry.get("containers") or []]
                out.append({"metadata": {"name": entry["name"], "namespace": entry["namespace"],
                                         "creationTimestamp": stamp, "labels": pod["metadata"].get("labels") or {}},
                            "timestamp": stamp, "window": f"{round(summary['window'])}s", "containers": containers})
        return sorted(out, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))


def is_metrics(rd: ResourceDef) -> bool:
    return rd.group == "metrics.k8s.io"
