"""kubectl authentication and authorization against one ``atoll start`` process per module, with the
real kubectl 1.32 and 1.28: ``auth can-i`` (admin and a ServiceAccount token from ``kubectl create
token``), ``auth whoami``, no credentials (401), and a domain's ServiceAccount refused in another
domain's namespace (403 naming user, verb, resource and namespace)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Kubectl, make_kubectl, table

VERSIONS = ["1.32", "1.28"]


@pytest.fixture(scope="module", params=VERSIONS)
def kubectl(request: pytest.FixtureRequest, module_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return make_kubectl(request.param, module_server, tmp_path_factory.mktemp(f"kubectl{request.param}"))


def _kubeconfig(kubectl: Kubectl, name: str, user: dict[str, str]) -> Path:
    """A kubeconfig for the same server and CA as the admin's, with another user."""
    admin = yaml.safe_load(kubectl.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name, "namespace": "default"}}],
        "current-context": name,
    }
    path = kubectl.workdir / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_admin_can_i_and_whoami(kubectl: Kubectl) -> None:
    ns = f"alice-{kubectl.tag}"
    kubectl.run("create", "ns", ns)
    assert kubectl.out("auth", "can-i", "list", "secrets", "-n", ns) == "yes"
    assert kubectl.out("auth", "can-i", "create", "domains.kuscia.secretflow") == "yes"
    assert kubectl.out("auth", "can-i", "*", "*") == "yes"
    rows = table(kubectl.out("auth", "whoami"))
    assert rows[0] == ["ATTRIBUTE", "VALUE"]
    attrs = dict((r[0], r[1]) for r in rows[1:])
    assert attrs["Username"] == "atoll-admin"
    assert "system:masters" in attrs["Groups"] and "system:authenticated" in attrs["Groups"]


def test_service_account_token_kubeconfig(kubectl: Kubectl) -> None:
    ns = f"sa-{kubectl.tag}"
    kubectl.run("create", "ns", ns)
    kubectl.run("create", "serviceaccount", "robot", "-n", ns)
    token = kubectl.out("create", "token", "robot", "-n", ns)
    robot = kubectl.with_kubeconfig(_kubeconfig(kubectl, f"robot-{kubectl.tag}", {"token": token}))

    proc = robot.run("auth", "can-i", "list", "secrets", "-n", ns, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (1, "no")
    rows = table(robot.out("auth", "whoami"))
    attrs = dict((r[0], r[1]) for r in rows[1:])
    assert attrs["Username"] == f"system:serviceaccount:{ns}:robot"
    assert "system:serviceaccounts" in attrs["Groups"] and f"system:serviceaccounts:{ns}" in attrs["Groups"]

    kubectl.run("create", "role", "secret-reader", "-n", ns, "--verb=get,list,watch", "--resource=secrets")
    kubectl.run("create", "rolebinding", "robot-reads", "-n", ns, "--role=secret-reader",
                f"--serviceaccount={ns}:robot")
    assert robot.out("auth", "can-i", "list", "secrets", "-n", ns) == "yes"
    proc = robot.run("auth", "can-i", "delete", "secrets", "-n", ns, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (1, "no")
    proc = robot.run("auth", "can-i", "list", "secrets", "-n", "default", check=False)
    assert (proc.returncode, proc.stdout.strip()) == (1, "no")
    kubectl.run("create", "secret", "generic", "s", "-n", ns, "--from-literal=k=v")
    assert robot.out("get", "secrets", "-n", ns, "-o", "name") == "secret/s"
    proc = robot.run("delete", "secret", "s", "-n", ns, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): secrets "s" is forbidden: User "system:serviceaccount:{ns}:robot" '
        f'cannot delete resource "secrets" in API group "" in the namespace "{ns}"'
    )
    # the admin can ask on the robot's behalf
    assert kubectl.out("auth", "can-i", "list", "secrets", "-n", ns, f"--as=system:serviceaccount:{ns}:robot") == "yes"


# kubectl's wording of a 401: "(Unauthorized)" when its discovery cache is warm (the 401 of the request
# itself is decoded as our Status); the generic one when discovery is refused first (client-go's discovery
# client words any 401 that way, against kube-apiserver too), e.g. when this test runs alone
UNAUTHORIZED_LINES = (
    "error: You must be logged in to the server (Unauthorized)",
    "error: You must be logged in to the server (the server has asked for the client to provide credentials)",
)

def test_no_or_bad_credentials_are_unauthorized(kubectl: Kubectl) -> None:
    # a user entry with nothing in it makes kubectl itself prompt for a username ("error: EOF" without a
    # terminal); a bare username (no password, no token, no certificate) reaches the server credential-less
    proc = kubectl.with_kubeconfig(_kubeconfig(kubectl, f"empty-{kubectl.tag}", {})).run("get", "ns", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().endswith("error: EOF")
    anonymous = kubectl.with_kubeconfig(_kubeconfig(kubectl, f"nobody-{kubectl.tag}", {"username": "nobody"}))
    proc = anonymous.run("get", "ns", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] in UNAUTHORIZED_LINES
    bad = kubectl.with_kubeconfig(_kubeconfig(kubectl, f"bad-{kubectl.tag}", {"token": "not-a-token"}))
    proc = bad.run("get", "pods", "-n", "default", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] in UNAUTHORIZED_LINES
    proc = bad.run("auth", "can-i", "list", "pods", check=False)
    assert proc.returncode == 1 and "Unauthorized" in proc.stderr


DOMAIN = """apiVersion: kuscia.secretflow/v1alpha1
kind: Domain
metadata:
  name: {name}
spec:
  role: partner
"""


def _domain_identity(kubectl: Kubectl, domain: str) -> None:
    """The domain's ServiceAccount and its admin binding in its own namespace (the domain controller's
    identity step); created here when no controller provides them within a few seconds."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if kubectl.run("get", "rolebinding", "-n", domain, "-o", "name", check=False).stdout.strip() and \
                kubectl.run("get", "sa", domain, "-n", domain, check=False).returncode == 0:
            return
        time.sleep(0.25)
    if kubectl.run("get", "ns", domain, check=False).returncode != 0:
        kubectl.run("create", "ns", domain)
    kubectl.run("create", "serviceaccount", domain, "-n", domain)
    kubectl.run("create", "rolebinding", f"{domain}-admin", "-n", domain, "--clusterrole=admin",
                f"--serviceaccount={domain}:{domain}")


def test_domain_service_account_is_refused_in_another_namespace(kubectl: Kubectl) -> None:
    alice, bob = f"dalice-{kubectl.tag}", f"dbob-{kubectl.tag}"
    for name in (alice, bob):
        kubectl.apply(DOMAIN.format(name=name), f"{name}.yaml")
    _domain_identity(kubectl, alice)
    if kubectl.run("get", "ns", bob, check=False).returncode != 0:
        kubectl.run("create", "ns", bob)
    token = kubectl.out("create", "token", alice, "-n", alice)
    claims = yaml.safe_load(base64.urlsafe_b64decode(token.split(".")[1] + "==").decode())
    assert claims["sub"] == f"system:serviceaccount:{alice}:{alice}"
    sa = kubectl.with_kubeconfig(_kubeconfig(kubectl, f"{alice}-sa", {"token": token}))
    user = f"system:serviceaccount:{alice}:{alice}"

    assert sa.out("auth", "can-i", "list", "secrets", "-n", alice) == "yes"
    sa.run("get", "secrets", "-n", alice)
    proc = sa.run("auth", "can-i", "list", "secrets", "-n", bob, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (1, "no")

    proc = sa.run("get", "secrets", "-n", bob, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): secrets is forbidden: User "{user}" cannot list resource "secrets" '
        f'in API group "" in the namespace "{bob}"'
    )
    proc = sa.run("create", "configmap", "x", "-n", bob, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'error: failed to create configmap: configmaps is forbidden: User "{user}" cannot create resource '
        f'"configmaps" in API group "" in the namespace "{bob}"'
    )
    proc = sa.run("get", "domain", bob, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): domains.kuscia.secretflow "{bob}" is forbidden: User "{user}" cannot get '
        f'resource "domains" in API group "kuscia.secretflow" at the cluster scope'
    )
