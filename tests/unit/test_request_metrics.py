"""``/metrics`` request series: counts by verb/resource/code, the latency histogram by
verb/resource, and the (verb, resource) labels kube-apiserver gives each request."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import generate_latest

from atoll.apiserver.http import metrics
from atoll.runtime.metrics import REGISTRY


def _lines(prefix: str) -> dict[str, float]:
    out = {}
    for line in generate_latest(REGISTRY).decode().splitlines():
        if line.startswith(prefix):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def _serve(method: str, path: str, status: int) -> None:
    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=status)

    await metrics.count_requests(make_mocked_request(method, path), handler)


def test_classify_like_kube_apiserver() -> None:
    cases = {
        ("GET", "/api/v1/namespaces/a/pods/p/log"): ("GET", "pods/log"),
        ("GET", "/api/v1/namespaces/a/pods"): ("LIST", "pods"),
        ("GET", "/api/v1/namespaces/a/pods?watch=true"): ("WATCH", "pods"),
        ("GET", "/api/v1/namespaces/a/pods?watch=1"): ("WATCH", "pods"),
        ("GET", "/api/v1/namespaces/a/pods?watch=false"): ("LIST", "pods"),
        ("GET", "/api/v1/namespaces/a/pods/p?watch=true"): ("GET", "pods"),  # a named GET is a get
        ("DELETE", "/apis/apps/v1/namespaces/a/deployments"): ("DELETECOLLECTION", "deployments"),
        ("DELETE", "/apis/apps/v1/namespaces/a/deployments/d"): ("DELETE", "deployments"),
        ("PATCH", "/api/v1/nodes/n/status"): ("PATCH", "nodes/status"),
        ("GET", "/api/v1/namespaces"): ("LIST", "namespaces"),
        ("GET", "/healthz"): ("get", "healthz"),
    }
    for (method, path), expected in cases.items():
        assert metrics.classify(make_mocked_request(method, path)) == expected, (method, path)
        assert metrics.classify(make_mocked_request(method, path)) == expected, "memoised: same answer"


async def test_counts_and_histogram() -> None:
    before = _lines("apiserver_request")
    count = 'apiserver_request_total{code="201",resource="widgetmetrics",verb="POST"}'
    hist = 'apiserver_request_duration_seconds_bucket{le="+Inf",resource="widgetmetrics",verb="POST"}'
    for _ in range(3):
        await _serve("POST", "/apis/x.io/v1/namespaces/a/widgetmetrics", 201)
    await _serve("POST", "/apis/x.io/v1/namespaces/a/widgetmetrics", 409)
    await _serve("GET", "/apis/x.io/v1/namespaces/a/widgetmetrics?watch=true", 200)
    after = _lines("apiserver_request")
    assert after[count] - before.get(count, 0) == 3
    conflict = count.replace('"201"', '"409"')
    assert after[conflict] - before.get(conflict, 0) == 1
    assert after[hist] - before.get(hist, 0) == 4  # by verb and resource, every code
    assert after[hist] == after[hist.replace('_bucket{le="+Inf",', "_count{")]
    assert after['apiserver_request_duration_seconds_bucket{le="5.0",resource="widgetmetrics",verb="POST"}'] == 4
    watch = 'apiserver_request_total{code="200",resource="widgetmetrics",verb="WATCH"}'
    assert after[watch] == 1
    assert after[hist.replace("POST", "WATCH")] == 0  # a watch's duration is not observed


async def test_bucket_boundaries_are_inclusive() -> None:
    key = ("GET", "bucketprobes", 200)
    series = metrics._series[key] = metrics._Series()
    for seconds in (0.001, 0.0011, 7.0):
        series.count += 1
        series.observe(seconds)
    lines = _lines("apiserver_request_duration_seconds")
    label = 'resource="bucketprobes",verb="GET"'
    assert lines[f'apiserver_request_duration_seconds_bucket{{le="0.001",{label}}}'] == 1
    assert lines[f'apiserver_request_duration_seconds_bucket{{le="0.0025",{label}}}'] == 2
    assert lines[f'apiserver_request_duration_seconds_bucket{{le="5.0",{label}}}'] == 2
    assert lines[f'apiserver_request_duration_seconds_bucket{{le="+Inf",{label}}}'] == 3
    assert lines[f"apiserver_request_duration_seconds_sum{{{label}}}"] == 0.001 + 0.0011 + 7.0
    del metrics._series[key]
