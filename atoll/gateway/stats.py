"""Envoy's statistics on the node's ``/metrics``.

Each gateway polls its Envoy's admin ``/stats/prometheus`` (``usedonly``) every few seconds and
keeps the parsed families; one process-wide collector, registered once in the runtime's
:data:`~atoll.runtime.metrics.REGISTRY`, merges them with a ``domain`` label. Scrapes never wait
on Envoy, and nothing is computed per request in Python.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from atoll.runtime.metrics import REGISTRY

log = logging.getLogger(__name__)
STATS_PATH = "/stats/prometheus?usedonly"


class EnvoyStats:
    """The collector: ``{domain: families}`` merged into one family per metric name."""

    def __init__(self) -> None:
        self.by_domain: dict[str, list[Metric]] = {}

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for domain, families in sorted(self.by_domain.items()):
            for family in families:
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(family.name, family.documentation, family.type)
                for sample in family.samples:
                    out.samples.append(sample._replace(labels={**sample.labels, "domain": domain}))
        yield from merged.values()

    def describe(self) -> list[Metric]:
        return []

    def update(self, domain: str, text: str) -> None:
        try:
            self.by_domain[domain] = list(text_string_to_metric_families(text))
        except ValueError as exc:
            log.debug("envoy stats of %s do not parse: %s", domain, exc)

    def forget(self, domain: str) -> None:
        self.by_domain.pop(domain, None)

    async def poll(self, domain: str, fetch: Callable[[str], Awaitable[str]], period: float = 5.0) -> None:
        try:
            while True:
                text = await fetch(STATS_PATH)
                if text:
                    self.update(domain, text)
                await asyncio.sleep(period)
        finally:
            self.forget(domain)


ENVOY_STATS = EnvoyStats()
REGISTRY.register(ENVOY_STATS)  # type: ignore[arg-type]
