"""The shipped Kuscia CRDs: names, scope, columns, subresources, CRD validation and conversion."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from atoll.api.crd import crd_to_resource_defs, kuscia_crds, kuscia_resource_defs, validate_crd, version_priority
from atoll.api.registry import Registry
from atoll.apiserver.apiextensions.schema import StructuralSchema

FIXTURES = Path(__file__).parent / "fixtures"

# kind -> (plural, short names, namespaced, printer columns (name, jsonPath)) as in kuscia.md §1.1
S, C, L = ".status.startTime", ".status.completionTime", ".status.lastReconcileTime"
ROUTE = [
    ("Source", ".spec.source"),
    ("Destination", ".spec.destination"),
    ("Host", ".spec.endpoint.host"),
    ("Authentication", ".spec.authenticationType"),
]
TIMES = [("StartTime", S), ("CompletionTime", C), ("LastReconcileTime", L)]
PHASE = ("Phase", ".status.phase")
TR_COLS = [PHASE, ("StartTime", S), ("CompletionTime", C), ("LastTransitionTime", ".status.lastTransitionTime")]
AGE = ("Age", ".metadata.creationTimestamp")
EXPECTED: dict[str, tuple[str, tuple[str, ...], bool, list[tuple[str, str]]]] = {
    "Domain": ("domains", (), False, []),
    "DomainRoute": ("domainroutes", ("dr",), True, ROUTE),
    "ClusterDomainRoute": (
        "clusterdomainroutes",
        ("cdr",),
        False,
        [*ROUTE, ("Ready", '.status.conditions[?(@.type=="Ready")].status')],
    ),
    "Gateway": (
        "gateways",
        ("gw",),
        True,
        [
            ("CreationTime", ".metadata.creationTimestamp"),
            ("UpTime", ".status.uptime"),
            ("HeartbeatTime", ".status.heartbeatTime"),
            ("Address", ".status.address"),
            ("Version", ".status.version"),
        ],
    ),
    "KusciaJob": ("kusciajobs", ("kj",), True, [*TIMES, PHASE]),
    "KusciaJobSummary": ("kusciajobsummaries", ("kjs",), True, TIMES),
    "KusciaTask": ("kusciatasks", ("kt",), True, [*TIMES, PHASE]),
    "KusciaTaskSummary": (
        "kusciatasksummaries",
        ("kts",),
        True,
        [("JobID", ".spec.jobID"), ("TaskAlias", ".spec.alias"), PHASE],
    ),
    "TaskResourceGroup": (
        "taskresourcegroups",
        ("trg",),
        False,
        [("MinReservedMembers", ".spec.minReservedMembers"), *TR_COLS],
    ),
    "TaskResource": ("taskresources", ("tr",), True, [("MinReservedPods", ".spec.minReservedPods"), *TR_COLS]),
    "AppImage": ("appimages", ("aimg",), False, []),
    "DomainAppImage": ("domainappimages", ("daimg",), True, []),
    "DomainData": ("domaindatas", ("kdd",), True, []),
    "DomainDataSource": ("domaindatasources", ("dds",), True, []),
    "DomainDataGrant": ("domaindatagrants", ("ddg",), True, []),
    "KusciaDeployment": (
        "kusciadeployments",
        ("kd",),
        True,
        [("TotalParties", ".status.totalParties"), ("AvailableParties", ".status.availableParties"), PHASE, AGE],
    ),
    "KusciaDeploymentSummary": ("kusciadeploymentsummaries", ("kds",), True, [AGE]),
    "InteropConfig": ("interopconfigs", ("interop",), False, []),
}
NO_STATUS = {"AppImage", "DomainAppImage", "InteropConfig"}


def _by_kind() -> dict[str, dict[str, Any]]:
    return {c["spec"]["names"]["kind"]: c for c in kuscia_crds()}


@cache
def _schemas() -> dict[str, StructuralSchema]:
    return {k: StructuralSchema(c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) for k, c in _by_kind().items()}


def test_every_kuscia_kind_is_shipped() -> None:
    crds = kuscia_crds()
    assert sorted(c["spec"]["names"]["kind"] for c in crds) == sorted(EXPECTED)
    for c in crds:
        assert c["apiVersion"] == "apiextensions.k8s.io/v1"
        assert c["kind"] == "CustomResourceDefinition"
        assert c["spec"]["group"] == "kuscia.secretflow"
        assert [v["name"] for v in c["spec"]["versions"]] == ["v1alpha1"]


def test_loader_returns_fresh_objects() -> None:
    a, b = kuscia_crds(), kuscia_crds()
    a[0]["spec"]["group"] = "mutated.example"
    assert b[0]["spec"]["group"] == "kuscia.secretflow"
    assert kuscia_crds()[0]["spec"]["group"] == "kuscia.secretflow"


@pytest.mark.parametrize("crd", kuscia_crds(), ids=lambda c: c["metadata"]["name"])
def test_shipped_crd_is_valid(crd: dict[str, Any]) -> None:
    assert validate_crd(crd) == []


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_resource_def_matches_kuscia(kind: str) -> None:
    plural, short, namespaced, columns = EXPECTED[kind]
    [rd] = crd_to_resource_defs(_by_kind()[kind])
    assert (rd.group, rd.version, rd.kind, rd.plural) == ("kuscia.secretflow", "v1alpha1", kind, plural)
    assert rd.singular == kind.lower()
    assert rd.short_names == short
    assert rd.namespaced is namespaced
    assert rd.has_status is (kind not in NO_STATUS)
    assert [(c.name, c.json_path) for c in rd.printer_columns] == columns
    assert rd.builtin is False
    assert rd.kind_list() == f"{kind}List"
    assert rd.schema is not None and rd.schema["type"] == "object"
    assert rd.group_resource == f"{plural}.kuscia.secretflow"


def test_printer_column_types() -> None:
    rds = {rd.kind: rd for rd in kuscia_resource_defs()}
    types = {c.name: c.type for c in rds["KusciaJob"].printer_columns}
    assert types == {"StartTime": "date", "CompletionTime": "date", "LastReconcileTime": "date", "Phase": "string"}
    assert rds["TaskResourceGroup"].printer_columns[0].type == "integer"
    assert all(c.type == "string" for c in rds["Gateway"].printer_columns)


def test_resource_defs_register() -> None:
    reg = Registry()
    for rd in kuscia_resource_defs():
        reg.register(rd)
    assert reg.groups() == {"kuscia.secretflow": ["v1alpha1"]}
    assert len(reg.in_group_version("kuscia.secretflow", "v1alpha1")) == len(EXPECTED)
    domain = reg.by_kind("kuscia.secretflow", "Domain")
    assert domain is not None and domain.key(None, "alice") == "/kuscia.secretflow/domains/alice"


def test_schema_defaults_from_kuscia() -> None:
    spec = _by_kind()["KusciaJob"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["scheduleMode"]["default"] == "Strict"
    assert spec["properties"]["maxParallelism"] == {
        **spec["properties"]["maxParallelism"],
        "default": 1,
        "minimum": 1,
        "maximum": 128,
    }
    role = _by_kind()["Domain"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "role"
    ]
    assert role["enum"] == ["", "partner"]


# ------------------------------------------------------------------------------ conversion details


def _multi_version_crd() -> dict[str, Any]:
    schema = {"type": "object", "properties": {"spec": {"type": "object"}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"], "categories": ["all"]},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1alpha1", "served": True, "storage": False, "schema": {"openAPIV3Schema": schema}},
                {"name": "v1beta1", "served": False, "storage": False, "schema": {"openAPIV3Schema": schema}},
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {
                        "status": {},
                        "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
                    },
                    "additionalPrinterColumns": [
                        {
                            "name": "Size",
                            "type": "integer",
                            "jsonPath": ".spec.size",
                            "priority": 1,
                            "description": "d",
                            "format": "int32",
                        }
                    ],
                },
            ],
        },
    }


def test_conversion_served_versions_storage_first() -> None:
    crd = _multi_version_crd()
    assert validate_crd(crd) == []
    rds = crd_to_resource_defs(crd)
    assert [rd.version for rd in rds] == ["v1", "v1alpha1"]
    v1 = rds[0]
    assert v1.singular == "widget" and v1.list_kind == "WidgetList"
    assert v1.categories == ("all",) and v1.short_names == ("wd",)
    assert v1.subresources == ("status", "scale")
    [col] = v1.printer_columns
    assert (col.name, col.type, col.json_path, col.priority, col.description, col.format) == (
        "Size",
        "integer",
        ".spec.size",
        1,
        "d",
        "int32",
    )
    assert rds[1].subresources == () and rds[1].printer_columns == ()
    # several versions: each names the storage version (reads and writes convert); one version: none
    assert [rd.storage_version for rd in rds] == ["v1", "v1"]
    assert rds[1].storage_api_version == rds[0].api_version
    assert all(rd.storage_version == "" for rd in kuscia_resource_defs())


def test_versions_in_kube_priority_order() -> None:
    names = ["foo", "v1alpha1", "v2beta1", "v1", "v11alpha2", "v1beta2", "v10", "bar", "v12alpha1"]
    assert sorted(names, key=version_priority) == [
        "v10",
        "v1",
        "v2beta1",
        "v1beta2",
        "v12alpha1",
        "v11alpha2",
        "v1alpha1",
        "bar",
        "foo",
    ]
    crd = _multi_version_crd()
    crd["spec"]["versions"].reverse()
    for version in crd["spec"]["versions"]:
        version["storage"] = version["name"] == "v1alpha1"
    assert [rd.version for rd in crd_to_resource_defs(crd)] == ["v1", "v1alpha1"]  # not storage first


def test_conversion_strategies() -> None:
    def conversion(value: Any) -> Any:
        return lambda c: c["spec"].update(conversion=value)

    assert _bad(conversion({"strategy": "Other"})) == {
        "spec.conversion.strategy": 'Unsupported value: "Other": supported values: "None", "Webhook"'
    }
    assert set(_bad(conversion({"strategy": "Webhook"}))) == {"spec.conversion.webhook"}
    review = {"conversionReviewVersions": ["v1beta1"], "clientConfig": {"url": "https://h/c"}}
    assert set(_bad(conversion({"strategy": "Webhook", "webhook": review}))) == {
        "spec.conversion.webhook.conversionReviewVersions"
    }
    for config, field in (
        ({"service": {"name": "s", "namespace": "n"}}, "spec.conversion.webhook.clientConfig.service"),
        ({"url": "http://h/c"}, "spec.conversion.webhook.clientConfig.url"),
    ):
        webhook = {"conversionReviewVersions": ["v1"], "clientConfig": config}
        assert set(_bad(conversion({"strategy": "Webhook", "webhook": webhook}))) == {field}
    for strategy in (
        {"strategy": "None"},
        {"strategy": "Webhook", "webhook": {**review, "conversionReviewVersions": ["v1"]}},
    ):
        crd = copy.deepcopy(_by_kind()["Domain"])
        crd["spec"]["conversion"] = strategy
        assert validate_crd(crd) == []


# --------------------------------------------------------------------------------- bad CRDs


def _fields(causes: list[dict[str, Any]]) -> dict[str, str]:
    return {c["field"]: c["message"] for c in causes}


def _bad(mutate: Any) -> dict[str, str]:
    crd = copy.deepcopy(_by_kind()["Domain"])
    mutate(crd)
    causes = validate_crd(crd)
    assert causes, "expected the CRD to be rejected"
    for c in causes:
        assert set(c) == {"reason", "message", "field"}
    return _fields(causes)


def test_bad_name() -> None:
    got = _bad(lambda c: c["metadata"].update(name="domain.kuscia.secretflow"))
    assert got["metadata.name"] == (
        'Invalid value: "domain.kuscia.secretflow": must be spec.names.plural+"."+spec.group'
    )


def test_bad_scope() -> None:
    got = _bad(lambda c: c["spec"].update(scope="Global"))
    assert got["spec.scope"] == 'Unsupported value: "Global": supported values: "Cluster", "Namespaced"'
    assert _bad(lambda c: c["spec"].pop("scope"))["spec.scope"] == "Required value"


def test_missing_names() -> None:
    assert _bad(lambda c: c["spec"]["names"].pop("kind"))["spec.names.kind"] == "Required value"
    assert _bad(lambda c: c["spec"]["names"].pop("plural"))["spec.names.plural"] == "Required value"


def test_bad_plural_and_short_names() -> None:
    def mutate(c: dict[str, Any]) -> None:
        c["spec"]["names"]["plural"] = "Domains"
        c["metadata"]["name"] = "Domains.kuscia.secretflow"
        c["spec"]["names"]["shortNames"] = ["ok", "ok", "Not_OK"]

    got = _bad(mutate)
    assert got["spec.names.plural"].startswith('Invalid value: "Domains": a lowercase RFC 1123 label')
    assert got["spec.names.shortNames[1]"] == 'Duplicate value: "ok"'
    assert "spec.names.shortNames[2]" in got


def test_group_needs_a_dot() -> None:
    def mutate(c: dict[str, Any]) -> None:
        c["spec"]["group"] = "kuscia"
        c["metadata"]["name"] = "domains.kuscia"

    assert _bad(mutate)["spec.group"] == 'Invalid value: "kuscia": should be a domain with at least one dot'
    assert _bad(lambda c: c["spec"].pop("group"))["spec.group"] == "Required value"


def test_exactly_one_storage_version() -> None:
    def two(c: dict[str, Any]) -> None:
        v2 = copy.deepcopy(c["spec"]["versions"][0])
        v2["name"] = "v1beta1"
        c["spec"]["versions"].append(v2)

    assert _bad(two)["spec.versions"] == ("Invalid value: 2: must have exactly one version marked as storage version")
    got = _bad(lambda c: c["spec"]["versions"][0].update(storage=False))
    assert got["spec.versions"].endswith("must have exactly one version marked as storage version")
    assert _bad(lambda c: c["spec"].update(versions=[]))["spec.versions"].startswith("Required value")


def test_duplicate_version_names() -> None:
    def dup(c: dict[str, Any]) -> None:
        v2 = copy.deepcopy(c["spec"]["versions"][0])
        v2["storage"] = False
        c["spec"]["versions"].append(v2)

    assert _bad(dup)["spec.versions[1].name"] == 'Duplicate value: "v1alpha1"'


def test_schema_required_and_structural() -> None:
    got = _bad(lambda c: c["spec"]["versions"][0].pop("schema"))
    assert got["spec.versions[0].schema.openAPIV3Schema"] == "Required value: schemas are required"
    got = _bad(lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(type="array"))
    assert "spec.versions[0].schema.openAPIV3Schema.type" in got

    def bad_type(c: dict[str, Any]) -> None:
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["role"]["type"] = (
            "str"
        )

    got = _bad(bad_type)
    assert got["spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[role].type"].startswith(
        'Unsupported value: "str"'
    )


def test_bad_printer_column() -> None:
    def mutate(c: dict[str, Any]) -> None:
        c["spec"]["versions"][0]["additionalPrinterColumns"] = [
            {"name": "X", "type": "time", "jsonPath": ".status.x"},
            {"type": "string"},
        ]

    got = _bad(mutate)
    assert got["spec.versions[0].additionalPrinterColumns[0].type"].startswith('Unsupported value: "time"')
    assert got["spec.versions[0].additionalPrinterColumns[1].name"] == "Required value"
    assert got["spec.versions[0].additionalPrinterColumns[1].jsonPath"] == "Required value"


def test_missing_spec() -> None:
    assert validate_crd({"metadata": {"name": "x"}}) == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec"}
    ]


# ------------------------------------------------------------------------ users' YAML validates


def _examples() -> list[dict[str, Any]]:
    with open(FIXTURES / "kuscia_examples.yaml", encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


@pytest.mark.parametrize("obj", _examples(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_kuscia_user_yaml_is_accepted_unchanged(obj: dict[str, Any]) -> None:
    schema = _schemas()[obj["kind"]]
    before = copy.deepcopy(obj)
    unknown, causes = schema.admit(obj)
    assert causes == []
    assert unknown == []
    # Nothing the user wrote is removed or changed (defaults may only add fields;
    # a YAML `role:` null is dropped exactly as kube-apiserver does).
    _assert_superset(before, obj)


def _assert_superset(before: Any, after: Any, path: str = "") -> None:
    if isinstance(before, dict):
        assert isinstance(after, dict), path
        for k, v in before.items():
            if v is None:
                continue
            assert k in after, f"{path}.{k} was removed"
            _assert_superset(v, after[k], f"{path}.{k}")
    elif isinstance(before, list):
        assert isinstance(after, list) and len(after) == len(before), path
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            _assert_superset(b, a, f"{path}[{i}]")
    else:
        assert before == after, path


def test_every_kind_has_an_example() -> None:
    assert {o["kind"] for o in _examples()} == set(EXPECTED)
