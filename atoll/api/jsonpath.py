"""Kubernetes JSONPath (``k8s.io/client-go/util/jsonpath`` semantics) for printer columns and output.

``compile_jsonpath`` accepts the template form (``{.items[*].metadata.name}``) and a bare path
(``.status.phase``); compiled expressions are cached. ``JSONPath.find(obj)`` returns every value
the path selects, in document order (``[]`` when nothing matches: missing keys are not errors, as
with ``AllowMissingKeys(true)`` on the server). Supported: ``.field``, ``['field']`` (quoted keys
may contain dots), ``field\\.with\\.dots``, ``[n]`` (negative too), ``[*]``, ``.*``, ``..``
(recursive descent), ``[start:end:step]``, unions ``['a','b']`` / ``[0,2]``, and filters
``[?(@.type=="Ready")]`` with ``== != < > <= >=`` or existence ``[?(@.x)]``.

``render_template(expr, obj)`` implements kubectl's ``-o jsonpath`` text output, including
``{range …}{end}`` and string literals such as ``{"\\n"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from atoll.api._jsonpath_parse import Parser, run
from atoll.api.errors import BadRequest

__all__ = ["JSONPath", "compile_jsonpath", "format_value", "render_template"]

# --------------------------------------------------------------------------------------------------
# Templates

Node = tuple[str, Any]  # ("text", str) | ("path", steps) | ("range", (steps, body))


def _split_actions(expr: str) -> list[tuple[bool, str]]:
    """``[(is_action, text), …]``; braces inside quoted strings do not end an action."""
    parts: list[tuple[bool, str]] = []
    i, n = 0, len(expr)
    text: list[str] = []
    while i < n:
        ch = expr[i]
        if ch == "{":
            if text:
                parts.append((False, "".join(text)))
                text = []
            j = i + 1
            quote = ""
            depth_brackets = 0
            while j < n:
                c = expr[j]
                if quote:
                    if c == "\\":
                        j += 2
                        continue
                    if c == quote:
                        quote = ""
                elif c in ("'", '"'):
                    quote = c
                elif c == "[":
                    depth_brackets += 1
                elif c == "]":
                    depth_brackets -= 1
                elif c == "}" and depth_brackets <= 0:
                    break
                j += 1
            if j >= n:
                raise BadRequest(f"invalid jsonpath expression {expr!r}: unclosed action")
            parts.append((True, expr[i + 1:j]))
            i = j + 1
        else:
            text.append(ch)
            i += 1
    if text:
        parts.append((False, "".join(text)))
    return parts


def _parse_template(expr: str) -> list[Node]:
    root: list[Node] = []
    stack: list[list[Node]] = [root]
    for is_action, text in _split_actions(expr):
        if not is_action:
            stack[-1].append(("text", text))
            continue
        body = text.strip()
        if body == "end":
            if len(stack) == 1:
                raise BadRequest(f"invalid jsonpath expression {expr!r}: 'end' without 'range'")
            stack.pop()
            continue
        if body.startswith(("range ", "range\t")):
            p = Parser(body[6:].strip(), expr)
            steps = p.parse_path()
            if not p.at_end():
                raise p.error("unexpected trailing input")
            inner: list[Node] = []
            stack[-1].append(("range", (steps, inner)))
            stack.append(inner)
            continue
        if body and body[0] in ("'", '"'):
            p = Parser(body, expr)
            s = p.parse_quoted()
            if not p.at_end():
                raise p.error("unexpected trailing input")
            stack[-1].append(("text", s))
            continue
        p = Parser(body, expr)
        paths: list[list[Any]] = [p.parse_path(stop=",")]
        while p.peek() == ",":  # "{.a,.b}" lists several paths
            p.i += 1
            p.skip_ws()
            paths.append(p.parse_path(stop=","))
        p.skip_ws()
        if not p.at_end():
            raise p.error("unexpected trailing input")
        for steps in paths:
            stack[-1].append(("path", steps))
    if len(stack) != 1:
        raise BadRequest(f"invalid jsonpath expression {expr!r}: 'range' without 'end'")
    return root


@dataclass(frozen=True, slots=True, eq=False)
class JSONPath:
    """A compiled JSONPath template; ``find`` evaluates its paths, ``render`` prints kubectl text."""

    expr: str
    nodes: tuple[Node, ...]

    def find(self, obj: Any) -> list[Any]:
        out: list[Any] = []
        self._find(self.nodes, obj, obj, out)
        return out

    def _find(self, nodes: Sequence[Node], cur: Any, root: Any, out: list[Any]) -> None:
        for kind, payload in nodes:
            if kind == "path":
                out.extend(run(payload, [cur], root))
            elif kind == "range":
                steps, body = payload
                for item in run(steps, [cur], root):
                    self._find(body, item, root, out)

    def first(self, obj: Any, default: Any = None) -> Any:
        found = self.find(obj)
        return found[0] if found else default

    def render(self, obj: Any) -> str:
        buf: list[str] = []
        self._render(self.nodes, obj, obj, buf)
        return "".join(buf)

    def _render(self, nodes: Sequence[Node], cur: Any, root: Any, buf: list[str]) -> None:
        for kind, payload in nodes:
            if kind == "text":
                buf.append(payload)
            elif kind == "path":
                buf.append(" ".join(format_value(v) for v in run(payload, [cur], root)))
            else:
                steps, body = payload
                for item in run(steps, [cur], root):
                    self._render(body, item, root, buf)


@lru_cache(maxsize=2048)
def compile_jsonpath(expr: str) -> JSONPath:
    """Compile (once) a template (``{.a.b}``) or bare path (``.a.b``); bad syntax is ``BadRequest``."""
    text = expr.strip()
    if "{" not in text:
        text = "{" + text + "}"
    return JSONPath(expr, tuple(_parse_template(text)))


def format_value(value: Any) -> str:
    """How kubectl's jsonpath printer writes one value: strings raw, composites as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def render_template(expr: str, obj: Any) -> str:
    """kubectl ``-o jsonpath=…`` output for ``obj``."""
    return compile_jsonpath(expr).render(obj)
