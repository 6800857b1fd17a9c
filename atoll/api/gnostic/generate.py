"""Regenerate ``OpenAPIv2.pb`` (a ``FileDescriptorSet``) from the vendored ``OpenAPIv2.proto`` of
``github.com/google/gnostic-models`` with protoc from ``grpcio-tools`` (a tool, not a run-time
dependency)::

    pip install grpcio-tools && python -m atoll.api.gnostic.generate
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    from grpc_tools import protoc  # type: ignore[import-not-found,import-untyped,unused-ignore]

    code = protoc.main(["protoc", f"-I{HERE}", f"--descriptor_set_out={HERE / 'OpenAPIv2.pb'}", "OpenAPIv2.proto"])
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
