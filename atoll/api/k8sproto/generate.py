"""Generate ``messages.json`` — the wire schema of every built-in kind — from Kubernetes' published
sources: the ``generated.proto`` files of ``k8s.io/api`` and ``k8s.io/apimachinery`` (field
numbers, types, repetition, maps) joined with the Go struct tags of their ``types.go`` files
(whether a field is a pointer, so a present zero — ``replicas: 0`` — is kept).

    python -m atoll.api.k8sproto.generate <k8s.io/api checkout> <k8s.io/apimachinery checkout>

Only the stable ``v1`` (and ``v2``) API versions are included, plus the apimachinery types they
use. The output maps a message's full name to ``{field number: [json name, type, message or map
value type, repeated, pointer]}``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_MESSAGE = re.compile(r"^message (\w+) \{$")
_FIELD = re.compile(r"^\s*(optional|repeated)?\s*([\w.]+|map<\s*\w+\s*,\s*[\w.]+\s*>)\s+(\w+)\s*=\s*(\d+);")
_STRUCT = re.compile(r"^type (\w+) struct \{")
_GO_FIELD = re.compile(r"^\s+\w+\s+(\S+)\s+`(?:[^`]*json:\"([^\",]*)[^`]*)?protobuf:\"\w+,(\d+),")
_SCALARS = {"string", "bytes", "int32", "int64", "uint32", "uint64", "bool", "double", "float", "sint32",
            "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}


def _resolve(name: str, package: str) -> str:
    if name in _SCALARS:
        return name
    return name.lstrip(".") if name.startswith(".") else f"{package}.{name}"


def parse_proto(text: str) -> tuple[str, dict[str, dict[int, list[object]]]]:
    package = re.search(r"^package ([\w.]+);", text, re.M)
    assert package is not None
    pkg, current = package.group(1), None
    messages: dict[str, dict[int, list[object]]] = {}
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            continue
        match = _MESSAGE.match(line)
        if match and depth == 0:
            current = messages.setdefault(f"{pkg}.{match.group(1)}", {})
            depth = 1
            continue
        if current is None:
            continue
        if stripped == "}":
            depth -= 1
            if depth == 0:
                current = None
            continue
        field = _FIELD.match(line)
        if field:
            label, ftype, name, number = field.groups()
            if ftype.startswith("map<"):
                value = ftype[4:-1].split(",")[1].strip()
                current[int(number)] = [name, "map", _resolve(value, pkg), False, False]
            else:
                resolved = _resolve(ftype, pkg)
                kind = resolved if resolved in _SCALARS else "msg"
                current[int(number)] = [name, kind, "" if kind != "msg" else resolved, label == "repeated", False]
    return pkg, messages


def go_fields(go_sources: list[str]) -> dict[str, dict[int, tuple[str, bool]]]:
    """Struct name -> protobuf field number -> (JSON name, whether the Go type is a pointer)."""
    out: dict[str, dict[int, tuple[str, bool]]] = {}
    current = None
    for text in go_sources:
        for line in text.splitlines():
            struct = _STRUCT.match(line)
            if struct:
                current = out.setdefault(struct.group(1), {})
                continue
            if line.startswith("}"):
                current = None
                continue
            field = _GO_FIELD.match(line)
            if field and current is not None:
                current[int(field.group(3))] = (field.group(2) or "", field.group(1).startswith("*"))
    return out


def generate(api: Path, machinery: Path) -> dict[str, dict[int, list[object]]]:
    protos = [p for p in api.glob("*/v[12]/generated.proto")]
    protos += [machinery / "pkg" / sub / "generated.proto" for sub in
               ("apis/meta/v1", "api/resource", "util/intstr", "runtime", "runtime/schema")]
    schema: dict[str, dict[int, list[object]]] = {}
    for proto in protos:
        _pkg, messages = parse_proto(proto.read_text())
        tags = go_fields([p.read_text() for p in proto.parent.glob("*.go") if not p.name.endswith("_test.go")
                                   and not p.name.startswith("zz_") and not p.name.endswith(".pb.go")])
        for name, fields in messages.items():
            struct = tags.get(name.rsplit(".", 1)[1], {})
            for number, field in fields.items():
                json_name, pointer = struct.get(number, ("", False))
                field[0] = json_name or field[0]
                field[4] = pointer
            schema[name] = fields
    return schema


def main() -> None:
    api, machinery = Path(sys.argv[1]), Path(sys.argv[2])
    out = Path(__file__).with_name("messages.json")
    schema = generate(api, machinery)
    out.write_text(json.dumps(dict(sorted(schema.items())), separators=(",", ":")) + "\n")
    print(f"{len(schema)} messages -> {out}")


if __name__ == "__main__":
    main()
