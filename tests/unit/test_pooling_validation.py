"""ClusterBinding / ResourceLeasingPolicy validation names the field."""

from __future__ import annotations

from typing import Any

import pytest

from atoll.pooling.validation import binding_problem, policy_problem

JSON = dict[str, Any]


def binding(**spec: Any) -> JSON:
    base = {"clusterID": "cls-1", "secretRef": {"name": "s", "namespace": "kubeocean-system"},
            "mountNamespace": "pool"}
    base.update(spec)
    return {"metadata": {"name": "b"}, "spec": {k: v for k, v in base.items() if v is not None}}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"clusterID": None}, "spec.clusterID: Required value"),
        ({"clusterID": "Bad_ID"}, "spec.clusterID: Invalid value"),
        ({"clusterID": "a" * 25}, "spec.clusterID: Invalid value"),
        ({"secretRef": {"name": "s"}}, "spec.secretRef.namespace: Required value"),
        ({"mountNamespace": None}, "spec.mountNamespace: Required value"),
        ({"serviceNamespaces": ["a", ""]}, "spec.serviceNamespaces[1]: Required value"),
        ({"nodeSelector": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Near"}]}]}},
         "spec.nodeSelector.nodeSelectorTerms[0].matchExpressions[0].operator"),
    ],
)
def test_binding_problems(spec: JSON, field: str) -> None:
    problem = binding_problem(binding(**spec), [], None)
    assert problem is not None and problem.startswith(field)


def test_cluster_id_is_unique_and_immutable() -> None:
    other = {"metadata": {"name": "other"}, "spec": {"clusterID": "cls-1"}}
    assert "Duplicate value" in str(binding_problem(binding(), [other], None))
    assert "immutable" in str(binding_problem(binding(), [], "cls-0"))
    assert binding_problem(binding(), [], "cls-1") is None


def test_policy_problems() -> None:
    assert policy_problem({"spec": {}}) == "spec.cluster: Required value"
    bad_window = {"spec": {"cluster": "b", "timeWindows": [{"start": "24:00", "end": "01:00"}]}}
    assert str(policy_problem(bad_window)).startswith("spec.timeWindows[0].start")
    bad_percent = {"spec": {"cluster": "b", "resourceLimits": [{"resource": "cpu", "percent": 101}]}}
    assert str(policy_problem(bad_percent)).startswith("spec.resourceLimits[0].percent")


def test_a_broken_kubeconfig_is_reported_without_its_content() -> None:
    import base64

    from atoll.pooling.manager import ConnectivityError, kubeconfig_of

    secret = {"data": {"kubeconfig": base64.b64encode(b"users:\n- user: {token: s3cr3t-token\n").decode()}}
    with pytest.raises(ConnectivityError) as info:
        kubeconfig_of(secret)
    assert "s3cr3t" not in str(info.value) and "not valid YAML" in str(info.value)
    with pytest.raises(ConnectivityError, match="no key 'kubeconfig'"):
        kubeconfig_of({"data": {}})
