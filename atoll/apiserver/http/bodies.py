"""Request bodies that cannot explode: YAML without aliases, JSON-compatible values, bounded depth.

* YAML aliases (``*a`` referring to ``&a``) are refused in request bodies: a 454-byte "billion
  laughs" document expands to gigabytes when encoded. kubectl never sends them (it converts
  manifests to JSON first).
* YAML values are made JSON-compatible as ``sigs.k8s.io/yaml`` does: integer, float, boolean and
  null keys become strings (``{1: 2}`` → ``{"1": 2}``, then a type error for ``data.1``);
  timestamps become RFC 3339 strings; ``!!binary`` and ``!!set`` values are refused (400).
* Nesting is bounded (``MAX_DEPTH``) for every decoded body, well below the 255 levels at which
  orjson cannot encode an object any more.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from atoll.api import errors

MAX_DEPTH = 100
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class NoAliasLoader(_BASE_LOADER):  # type: ignore[misc]
    """The safe (C) loader, refusing any node constructed twice — i.e. every alias."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects or node in self.recursive_objects:
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in request bodies", node.start_mark
            )
        return super().construct_object(node, deep)


def load_yaml(raw: bytes) -> Any:
    try:
        value = yaml.load(raw, Loader=NoAliasLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise errors.BadRequest(f"the body of the request was not valid YAML: {exc}") from None
    return json_compatible(value)


def _key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float):
        return str(key)
    raise errors.BadRequest(f"the body of the request has an unsupported YAML key at {path or '<root>'}: {key!r}")


def json_compatible(value: Any, path: str = "", depth: int = 0) -> Any:
    """``value`` with YAML-only types converted (or refused, naming the path) and depth checked."""
    if depth > MAX_DEPTH:
        raise errors.BadRequest(f"the body of the request is nested more than {MAX_DEPTH} levels deep (at {path})")
    if isinstance(value, dict):
        return {
            (k := _key(key, path)): json_compatible(v, f"{path}.{k}" if path else k, depth + 1)
            for key, v in value.items()
        }
    if isinstance(value, list):
        return [json_compatible(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | set):
        kind = "!!binary" if isinstance(value, bytes | bytearray) else "!!set"
        raise errors.BadRequest(f"the body of the request has an unsupported YAML value ({kind}) at {path or '<root>'}")
    return value


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """400 when a decoded JSON body nests deeper than ``limit`` (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise errors.BadRequest(f"the body of the request is nested more than {limit} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
