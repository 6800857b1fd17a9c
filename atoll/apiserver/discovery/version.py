"""What the server says it is: ``/version`` (Kubernetes 1.32, the API Atoll serves) and the media
type of the OpenAPI v2 protobuf (the document itself is built by :mod:`.openapi_v2`)."""

from __future__ import annotations

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
