"""A plugin's ``handles`` only skips requests its ``admit`` would return from at once: on a real
server's chain, every (resource, operation, subresource) a plugin declines is admitted by it with
no change, no error and nothing reserved."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from atoll.api.builtins import BUILTINS
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.app import APIServer
from tests.integration.inprocess import in_process_server

JSON = dict[str, Any]


def _rd(group: str, plural: str) -> ResourceDef:
    return next(r for r in BUILTINS if r.plural == plural and r.group == group)


POD: JSON = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
             "spec": {"containers": [{"name": "c", "image": "i"}], "priorityClassName": "nope"},
             "status": {"phase": "Running"}}
CLASS: JSON = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "p"},
               "value": "not an integer"}
CASES = [
    (_rd("", "pods"), POD),
    (_rd("scheduling.k8s.io", "priorityclasses"), CLASS),
    (_rd("", "configmaps"), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {"a": 1}}),
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    async with in_process_server(tmp_path) as srv:
        yield srv


async def test_declined_requests_are_ones_admit_ignores(server: APIServer) -> None:
    chain = server.objects.admission
    declined = 0
    for rd, obj in CASES:
        for operation in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
            for subresource in ("", "status", "binding", "eviction"):
                for plugin in chain._plugins:
                    handles = getattr(plugin, "handles", None)
                    applies = getattr(plugin, "applies_to", None)
                    if handles is None or handles(rd, operation, subresource) or (applies and not applies(rd)):
                        continue
                    new = None if operation == "DELETE" else copy.deepcopy(obj)
                    attrs = Attributes(operation, rd, "ns", "p", new, copy.deepcopy(obj), subresource=subresource)
                    await plugin.admit(attrs)  # raises if it would have refused
                    assert new == (None if operation == "DELETE" else obj), (plugin, operation, subresource)
                    assert not attrs.on_abort and not attrs.warnings
                    declined += 1
    assert declined > 20
