"""The default DomainDataSource every own (non-partner) domain gets, created by the Domain controller.

``default-data-source``: type ``localfs``, ``spec.uri`` = ``var/storage/data`` (Kuscia's default
root, relative to the lite's ``dataDir`` here), ``accessDirectly: true``. It carries no
``encryptedInfo``: the master does not hold the domain's private key and a localfs path is no
secret, so DataMesh derives the localfs info from ``spec.uri`` (Kuscia's DataMesh creates it on
the lite instead, where the key is).
"""

from __future__ import annotations

from typing import Any

from atoll.datamesh.constants import (
    DEFAULT_DATA_SOURCE_ID,
    DEFAULT_LOCALFS_URI,
    LABEL_DATASOURCE_TYPE,
    LABEL_DOMAIN_NAME,
)

JSON = dict[str, Any]


def default_data_source(domain: str) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "DomainDataSource",
        "metadata": {
            "name": DEFAULT_DATA_SOURCE_ID,
            "namespace": domain,
            "labels": {LABEL_DOMAIN_NAME: domain, LABEL_DATASOURCE_TYPE: "localfs"},
        },
        "spec": {
            "name": DEFAULT_DATA_SOURCE_ID,
            "type": "localfs",
            "uri": DEFAULT_LOCALFS_URI,
            "accessDirectly": True,
        },
    }
