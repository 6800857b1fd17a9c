"""OpenAPI v2 (``/openapi/v2``) against one ``atoll start`` process: real kubectl 1.27, 1.32 and 1.33
(``explain --output=plaintext-openapiv2``, which parses the gnostic protobuf with kube-openapi's
strict v2 parser; the default v3 ``explain``; kubectl 1.27's client-side ``apply``, whose strategic
merge patch takes its merge keys from the v2 document), the official Python client reading the
JSON, and the protobuf/ETag contract (decoded with gnostic's published message types)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client, config

from atoll.api import gnostic
from tests.e2e.conftest import ALICE, Kubectl, make_kubectl

pytestmark = pytest.mark.slow
PROTO = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@pytest.fixture(scope="module", params=["1.27", "1.32", "1.33"])
def kubectl(request: pytest.FixtureRequest, module_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return make_kubectl(request.param, module_server, tmp_path_factory.mktemp(f"kubectl{request.param}"))


def _get(server: Any, accept: str, etag: str = "") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(server.url + "/openapi/v2", headers={
        **server.headers(), "Accept": accept, **({"If-None-Match": etag} if etag else {})})
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_explain_plaintext_openapiv2(kubectl: Kubectl) -> None:
    out = kubectl.out("explain", "deployments.spec", "--output=plaintext-openapiv2")
    assert "KIND:" in out and "Deployment" in out and "VERSION:" in out and "apps/v1" in out, out
    assert "RESOURCE: spec <Object>" in out and "Specification of the desired behavior" in out, out
    fields = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("   ") and
              len(line.split()) >= 2 and line.split()[1].startswith("<")}
    assert fields["replicas"] == "<integer>" and fields["template"] == "<Object>", fields
    assert fields["selector"] == "<Object>" and fields["strategy"] == "<Object>", fields
    # a CRD kind and a path through references and arrays
    out = kubectl.out("explain", "domains.spec.role", "--output=plaintext-openapiv2")
    assert "KIND:" in out and "Domain" in out and "role" in out and "<string>" in out, out
    out = kubectl.out("explain", "pods.spec.containers.ports", "--output=plaintext-openapiv2")
    assert "containerPort" in out and "<integer>" in out and "-required-" in out, out


def test_explain_default_v3(kubectl: Kubectl) -> None:
    out = kubectl.out("explain", "deployment.spec.strategy")
    assert "DeploymentStrategy" in out or "strategy" in out, out
    assert "rollingUpdate" in out and "type" in out, out


def test_client_side_apply_uses_v2_merge_keys(kubectl: Kubectl) -> None:
    """kubectl's client-side apply computes a strategic merge patch from the v2 document: containers
    merge by name, so changing one container's image keeps the other container and its fields."""
    ns = f"oa2-{kubectl.tag}"
    kubectl.run("create", "ns", ns)

    def manifest(image: str) -> str:
        return yaml.safe_dump({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "a", "image": image}, {"name": "b", "image": "b:1"}]}}}})

    assert "created" in kubectl.apply(manifest("a:1"), "web.yaml")
    # an edit outside the manifest survives only if apply patches by merge key (not replace)
    kubectl.run("patch", "deployment", "web", "-n", ns, "--type=strategic", "-p",
                '{"spec":{"template":{"spec":{"containers":[{"name":"b","env":[{"name":"X","value":"1"}]}]}}}}')
    (kubectl.workdir / "web.yaml").write_text(manifest("a:2"))
    applied = kubectl.run("apply", "-f", str(kubectl.workdir / "web.yaml"))
    assert "configured" in applied.stdout and "openapi" not in applied.stderr, applied.stderr
    got = orjson.loads(kubectl.out("get", "deployment", "web", "-n", ns, "-o", "json"))
    containers = {c["name"]: c for c in got["spec"]["template"]["spec"]["containers"]}
    assert containers["a"]["image"] == "a:2" and containers["b"]["image"] == "b:1", containers
    assert containers["b"].get("env") == [{"name": "X", "value": "1"}], containers
    # a custom resource: kubectl <= 1.28 reads its schema from the same document (JSON merge patch)
    domain = ALICE.replace("name: alice", f"name: oa2-{kubectl.tag}")
    assert "created" in kubectl.apply(domain.format(pods=3), "domain.yaml")
    assert "configured" in kubectl.apply(domain.format(pods=4), "domain.yaml")
    got = orjson.loads(kubectl.out("get", "domain", f"oa2-{kubectl.tag}", "-o", "json"))
    assert got["spec"]["resourceQuota"]["podMaxCount"] == 4


@pytest.fixture(scope="module")
def python_client(module_server: Any) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(module_server.kubeconfig))
    yield api_client
    api_client.close()


def test_python_client_reads_a_real_document(python_client: client.ApiClient) -> None:
    request = python_client.param_serialize("GET", "/openapi/v2", header_params={"Accept": "application/json"},
                                            auth_settings=["BearerToken"])
    reply = python_client.call_api(*request)
    reply.read()
    parsed = python_client.response_deserialize(reply, {"200": "object"})
    doc = parsed.data
    assert parsed.status_code == 200 and doc["swagger"] == "2.0"
    definitions = doc["definitions"]
    deployment = definitions["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["properties"]["spec"] == {
        "$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec",
        "description": "Specification of the desired behavior of the Deployment."}
    containers = definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    path = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert {p["name"]: p["in"] for p in path["parameters"]} == {"name": "path", "namespace": "path"}
    patch = path["patch"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])
    assert patch["parameters"][0] == {"name": "body", "in": "body", "required": True,
                                      "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status" in doc["paths"]
    assert doc["paths"]["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    # every reference resolves; every array has items (kube-openapi rejects the document otherwise)
    raw = orjson.dumps(doc).decode()
    for ref in {part.split('"')[0] for part in raw.split('"$ref":"#/definitions/')[1:]}:
        assert ref in definitions, ref
    domain_gvk = {"group": "kuscia.secretflow", "version": "v1alpha1", "kind": "Domain"}
    domain = next(d for d in definitions.values() if domain_gvk in d.get("x-kubernetes-group-version-kind", []))
    assert domain["properties"]["spec"]["properties"]["role"]["type"] == "string"


def test_protobuf_and_etag(module_server: Any) -> None:
    status, headers, body = _get(module_server, PROTO)
    assert status == 200 and headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    doc = gnostic.message("Document").FromString(body)
    assert doc.swagger == "2.0" and doc.info.title == "Kubernetes"
    names = {d.name: d.value for d in doc.definitions.additional_properties}
    deployment = names["io.k8s.api.apps.v1.Deployment"]
    gvk = {e.name: yaml.safe_load(e.value.yaml) for e in deployment.vendor_extension}
    assert gvk["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    spec = {p.name: p.value for p in names["io.k8s.api.apps.v1.DeploymentSpec"].properties.additional_properties}
    assert spec["replicas"].type.value == ["integer"] and spec["template"]._ref.endswith(".PodTemplateSpec")
    path = next(p.value for p in doc.paths.path if p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    query = [p.parameter.non_body_parameter.query_parameter_sub_schema.name for p in path.patch.parameters]
    assert "fieldValidation" in query
    assert path.parameters[0].parameter.non_body_parameter.path_parameter_sub_schema.name == "name"
    # cached: the same ETag, and a conditional request gets 304 without a body
    status, again, _ = _get(module_server, PROTO)
    assert again["ETag"] == headers["ETag"]
    status, _, empty = _get(module_server, PROTO, etag=headers["ETag"])
    assert status == 304 and empty == b""
    status, json_headers, raw = _get(module_server, "application/json")
    assert status == 200 and json_headers["ETag"] != headers["ETag"] and orjson.loads(raw)["swagger"] == "2.0"
