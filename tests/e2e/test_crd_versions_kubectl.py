"""The real kubectl (1.33) with a CRD of two served versions against a real ``atoll start`` process:
an object applied at v1beta1 (stored at v1) is shown by ``get <plural>.<version>.<group> -o yaml``
at the version asked for, and at the preferred version (v1) by plain ``get <plural>``; the table
lists it at either version."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import RunningServer
from tests.e2e.conftest import make_kubectl, table

CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.conv.example.com
spec:
  group: conv.example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
"""

GADGET = """apiVersion: conv.example.com/v1beta1
kind: Gadget
metadata:
  name: g1
  namespace: default
spec:
  size: 3
"""


def test_kubectl_reads_each_version(module_server: RunningServer, tmp_path: Path) -> None:
    kubectl = make_kubectl("1.33", module_server, tmp_path)
    kubectl.apply(CRD, "crd.yaml")
    assert "gadget.conv.example.com/g1 created" in kubectl.apply(GADGET, "gadget.yaml")
    for version in ("v1beta1", "v1"):
        shown = yaml.safe_load(kubectl.out("get", f"gadgets.{version}.conv.example.com", "g1", "-o", "yaml"))
        assert shown["apiVersion"] == f"conv.example.com/{version}"
        assert shown["spec"] == {"size": 3}
        rows = table(kubectl.out("get", f"gadgets.{version}.conv.example.com"))
        assert [r[0] for r in rows] == ["NAME", "g1"]
    preferred = json.loads(kubectl.out("get", "gadgets", "g1", "-o", "json"))
    assert preferred["apiVersion"] == "conv.example.com/v1"
