"""``atoll init --output-format configmap``: the node config wrapped in the ConfigMap that the
Kubernetes manifests mount (``deploy/k8s/<master|lite>/configmap.yaml``, seed 003's names:
``kuscia-master-cm`` / ``kuscia-lite-<domain>-cm``, key ``kuscia.yaml``)."""

from __future__ import annotations

import yaml

from atoll.node.config import NodeConfig

CONFIG_KEY = "kuscia.yaml"


def configmap_name(config: NodeConfig) -> str:
    return "kuscia-master-cm" if config.mode == "master" else f"kuscia-{config.mode}-{config.domain_id}-cm"


def default_namespace(config: NodeConfig) -> str:
    return "kuscia-master" if config.mode == "master" else f"{config.mode}-{config.domain_id}"


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, so the embedded config stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _str)


def as_configmap(config: NodeConfig, namespace: str = "") -> str:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap_name(config), "namespace": namespace or default_namespace(config)},
        "data": {CONFIG_KEY: config.to_yaml()},
    }
    return yaml.dump(body, Dumper=_BlockDumper, sort_keys=False)
