"""Pure parts of the Domain controller: deploy-token bookkeeping, node statuses, cert checks, labels."""

from __future__ import annotations

import base64

from atoll.api.constants import domain_id_problem
from atoll.api.podusage import namespace_usage, quota_used
from atoll.controllers.domain.cert import cert_problem
from atoll.controllers.domain.resources import label_patch, namespace_labels
from atoll.controllers.domain.status import deploy_tokens, new_token, node_status


def tok(token: str, state: str, when: str) -> dict[str, str]:
    return {"token": token, "state": state, "lastTransitionTime": when}


def test_deploy_tokens_generate_one_unused_when_none() -> None:
    out = deploy_tokens([], now=lambda: "T", generate=lambda: "x" * 32)
    assert out == [tok("x" * 32, "unused", "T")]


def test_deploy_tokens_keep_newest_used_and_unused_in_order() -> None:
    tokens = [tok("a", "used", "1"), tok("b", "unused", "3"), tok("c", "used", "2"), tok("d", "unused", "1")]
    assert deploy_tokens(tokens) == [tok("b", "unused", "3"), tok("c", "used", "2")]


def test_conforming_tokens_are_returned_unchanged() -> None:
    tokens = [tok("a", "used", "1"), tok("b", "unused", "2")]
    assert deploy_tokens(tokens, generate=lambda: "never") == tokens


def test_new_token_is_32_letters() -> None:
    token = new_token()
    assert len(token) == 32 and token.isalpha() and token.isascii()


def test_node_status_ready_only_when_true() -> None:
    node = {
        "metadata": {"name": "n"},
        "status": {
            "nodeInfo": {"kubeletVersion": "v1"},
            "conditions": [{"type": "Ready", "status": "Unknown", "lastHeartbeatTime": "h", "lastTransitionTime": "t"}],
        },
    }
    assert node_status(node) == {
        "name": "n",
        "version": "v1",
        "status": "NotReady",
        "lastHeartbeatTime": "h",
        "lastTransitionTime": "t",
    }
    assert node_status({"metadata": {"name": "m"}}) == {"name": "m", "version": "", "status": "NotReady"}


def test_cert_problem() -> None:
    assert cert_problem("base64<certificate>") is not None
    assert "PEM" in (cert_problem(base64.b64encode(b"not a cert").decode()) or "")


def test_namespace_label_patch_removes_deleted_mark_only_when_present() -> None:
    domain = {"metadata": {"name": "alice"}, "spec": {"role": "partner"}}
    wanted = namespace_labels(domain)
    marked = {"metadata": {"labels": {"kuscia.secretflow/domain-name": "alice", "kuscia.secretflow/deleted": "true"}}}
    assert label_patch(marked, wanted) == {"kuscia.secretflow/role": "partner", "kuscia.secretflow/deleted": None}
    done = {"metadata": {"labels": {"kuscia.secretflow/domain-name": "alice", "kuscia.secretflow/role": "partner"}}}
    assert label_patch(done, wanted) == {}


def test_domain_ids() -> None:
    assert domain_id_problem("alice") is None
    assert domain_id_problem("kuscia-system") is None
    assert "reserved" in (domain_id_problem("cross-domain") or "")
    assert "RFC 1123" in (domain_id_problem("Alice") or "")


def test_quota_used_formats_like_the_limit() -> None:
    pods = [
        {"spec": {"containers": [{"resources": {"requests": {"memory": "512Mi"}}}]}},
        {"spec": {"containers": [{}]}, "status": {"phase": "Succeeded"}},
    ]
    used = quota_used({"pods": "10", "requests.memory": "1Gi", "limits.cpu": "2"}, namespace_usage(pods))
    assert used == {"pods": "1", "requests.memory": "512Mi", "limits.cpu": "0"}
