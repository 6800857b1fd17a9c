"""certificates.k8s.io/v1 CertificateSigningRequests on Atoll's API server: the requester is stamped
from authentication, kubelet-serving requests are approved and signed only when the requester owns
the Node (its domain's own identity, or an administrator), others wait for ``/approval``; an agent
with no certificate gets one this way and serves ``kubectl logs``."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509

from atoll.agent.servingcert import CSRS, SIGNER, USAGES, certificate_request
from atoll.api import kinds
from atoll.api.constants import LABEL_DOMAIN_NAME, LABEL_NODE_NAMESPACE
from atoll.client import Client
from tests.conftest import RunningServer, eventually, kubectl_binary, kubectl_environ
from tests.integration.agents import agent_config, kill_leftovers, load_image, pod, start_agent

JSON = dict[str, Any]


def csr_body(name: str, node: str, **spec: Any) -> JSON:
    pem, _key = certificate_request(node, ("127.0.0.1",))
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": SIGNER, "usages": USAGES, **spec}}


async def domain_client(admin: Client, server: RunningServer, domain: str) -> Client:
    """A client authenticated as ``domain``'s own ServiceAccount (a lite's identity)."""
    await admin.create(kinds.NAMESPACES, {"metadata": {"name": domain, "labels": {LABEL_DOMAIN_NAME: domain}}})
    await admin.create(kinds.SERVICEACCOUNTS, {"metadata": {"name": domain, "namespace": domain}})
    answer = await admin.request("POST", f"/api/v1/namespaces/{domain}/serviceaccounts/{domain}/token",
                                 body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    return Client(server.url, ssl_context=server.ssl_context(), token=answer["status"]["token"])


async def test_only_the_nodes_owner_gets_a_certificate_at_once(api_server: RunningServer) -> None:
    async with api_server.client() as admin:
        await admin.create(kinds.NODES, {"metadata": {"name": "alice-node",
                                                      "labels": {LABEL_NODE_NAMESPACE: "alice"}}})
        async with await domain_client(admin, api_server, "alice") as alice, \
                await domain_client(admin, api_server, "bob") as bob:
            mine = await alice.create(CSRS, csr_body("alice-own", "alice-node", username="someone-else"))
            assert mine["spec"]["username"] == "system:serviceaccount:alice:alice"  # stamped, not claimed
            assert [c["type"] for c in mine["status"]["conditions"]] == ["Approved"]
            cert = x509.load_pem_x509_certificate(base64.b64decode(mine["status"]["certificate"]))
            assert cert.subject.rfc4514_string() == "CN=system:node:alice-node,O=system:nodes"
            ca = x509.load_pem_x509_certificate(api_server.ca_file.read_bytes())
            assert cert.issuer == ca.subject

            theirs = await bob.create(CSRS, csr_body("bob-for-alice", "alice-node"))
            assert not (theirs.get("status") or {}).get("certificate")  # bob does not own alice-node
            assert not (theirs.get("status") or {}).get("conditions")
            missing = await alice.create(CSRS, csr_body("no-such-node", "ghost-node"))
            assert not (missing.get("status") or {}).get("conditions")

            # an administrator approves the pending one through /approval: then it is signed
            current = await admin.get(CSRS, "bob-for-alice")
            current["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "AdminApproved",
                                                 "message": "approved by hand"}]}
            approved = await admin.update(CSRS, current, subresource="approval")
            assert approved["status"]["certificate"]

            # and with kubectl (PUT …/approval), as an administrator does
            await bob.create(CSRS, csr_body("bob-again", "alice-node"))
            proc = await asyncio.create_subprocess_exec(
                kubectl_binary(), "--kubeconfig", str(api_server.kubeconfig), "certificate", "approve", "bob-again",
                env=kubectl_environ(api_server.data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            signed = await admin.get(CSRS, "bob-again")
            assert signed["status"]["certificate"] and signed["status"]["conditions"][0]["type"] == "Approved"


async def test_agent_without_certificate_gets_one_and_serves_logs(
    api_server: RunningServer, tmp_path: Path
) -> None:
    data = tmp_path / "alice"
    config = dataclasses.replace(agent_config(api_server, data, "alice"), tls_cert=None, tls_key=None)
    (data / "pki" / "kubelet.crt").unlink()
    (data / "pki" / "kubelet.key").unlink()
    load_image(data)
    agent = await start_agent(api_server, config)
    try:
        node = await agent.client.get(kinds.NODES, "alice-node")
        assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0
        assert (data / "pki" / "kubelet.key").stat().st_mode & 0o777 == 0o600
        await agent.client.create(kinds.PODS, pod("hello", "alice-node", ["hello", "csr"], restartPolicy="Never"))

        async def done() -> None:
            current = await agent.client.get(kinds.PODS, "hello", "default")
            assert current["status"]["phase"] == "Succeeded", current["status"]

        await eventually(done, 20)
        proc = await asyncio.create_subprocess_exec(
            kubectl_binary(), "--kubeconfig", str(api_server.kubeconfig), "logs", "hello",
            env=kubectl_environ(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert out.decode() == "hello from the image csr\n", err.decode()
    finally:
        await agent.stop()
        kill_leftovers(data)
