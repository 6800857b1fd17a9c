"""What the server says it is: ``/version`` and the minimal OpenAPI v2 document.

``/version`` claims Kubernetes 1.32 (the API Atoll serves). kubectl <= 1.28 downloads
``/openapi/v2`` (gnostic protobuf) before every ``apply``/``create -f`` and fails hard on a 404;
an empty schema set (swagger "2.0", info, no paths or definitions) makes it skip client-side
validation of unknown kinds and compute strategic merge patches from its compiled-in types,
while newer kubectl uses ``/openapi/v3``.
"""

from __future__ import annotations

from typing import Any

VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+atoll",
    "gitCommit": "atoll",
    "gitTreeState": "clean",
    "buildDate": "2026-11-22T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}

OPENAPI_V2_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
OPENAPI_V2_PROTOBUF = b"\x0a\x032.0\x12\x15\x0a\x0aKubernetes\x12\x07v1.32.0"
OPENAPI_V2_JSON: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "Kubernetes", "version": "v1.32.0"},
    "paths": {},
    "definitions": {},
}
