"""Field selectors (``fields.ParseSelector`` semantics) and the field keys each kind supports.

``a.b=v``, ``a.b==v``, ``a.b!=v``, comma-joined, with ``\\`` escaping ``,``, ``=`` and ``!`` in
values. A field a kind does not support is ``BadRequest: field label not supported: <f>``, as in
Kubernetes. Public names are re-exported by ``atoll.api.selectors``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from atoll.api.errors import BadRequest

__all__ = ["FieldRequirement", "FieldSelector", "field_selectors_for", "field_value", "parse_field_selector"]


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str


def field_value(obj: Mapping[str, Any], path: tuple[str, ...]) -> str:
    """The string a selector compares for the field at ``path`` (``""`` when absent)."""
    cur: Any = obj
    for part in path:
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
        if cur is None:
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, Mapping):
        # Event "source" selects on source.component.
        comp = cur.get("component")
        return comp if isinstance(comp, str) else ""
    return cur if isinstance(cur, str) else str(cur)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of ``field=value`` / ``field!=value`` terms."""

    requirements: tuple[FieldRequirement, ...] = ()
    _paths: tuple[tuple[str, ...], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for req, path in zip(self.requirements, self._paths, strict=True):
            got = field_value(obj, path)
            if (got == req.value) != (req.op == "="):
                return False
        return True

    def exact(self, field: str) -> str | None:
        """The value ``field`` is pinned to by an ``=`` term, if any (``metadata.name`` fast path)."""
        for req in self.requirements:
            if req.field == field and req.op == "=":
                return req.value
        return None

    def __str__(self) -> str:
        return ",".join(f"{r.field}{r.op}{_escape_field_value(r.value)}" for r in self.requirements)


def _escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace("!", "\\!")


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    buf: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            buf.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if escaped:
        raise BadRequest(f"invalid field selector {text!r}: trailing backslash")
    terms.append("".join(buf))
    return terms


def _unescape(text: str, value: str) -> str:
    out: list[str] = []
    it = iter(range(len(value)))
    for i in it:
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            if nxt not in ("\\", ",", "=", "!"):
                raise BadRequest(f"invalid field selector {text!r}: invalid escape sequence '\\{nxt}'")
            out.append(nxt)
            next(it, None)
        elif ch in ("=", "!", ","):
            raise BadRequest(f"invalid field selector {text!r}: unescaped {ch!r} in value {value!r}")
        else:
            out.append(ch)
    return "".join(out)


def _find_op(term: str) -> tuple[int, str] | None:
    i, n = 0, len(term)
    while i < n:
        ch = term[i]
        if ch == "\\":
            i += 2
            continue
        if term.startswith("!=", i):
            return i, "!="
        if term.startswith("==", i):
            return i, "=="
        if ch == "=":
            return i, "="
        i += 1
    return None


@lru_cache(maxsize=1024)
def _parse_field_selector(text: str) -> tuple[FieldRequirement, ...]:
    reqs: list[FieldRequirement] = []
    for term in _split_terms(text):
        if not term.strip():
            continue
        found = _find_op(term)
        if found is None:
            raise BadRequest(f"invalid selector: '{text}'; can't understand '{term}'")
        pos, op = found
        field = term[:pos].strip()
        if not field:
            raise BadRequest(f"invalid selector: '{text}'; can't understand '{term}'")
        value = _unescape(text, term[pos + len(op):].strip())
        reqs.append(FieldRequirement(field, "!=" if op == "!=" else "=", value))
    return tuple(reqs)


def parse_field_selector(text: str, allowed: Collection[str]) -> FieldSelector:
    """Parse a ``fieldSelector``; a field outside ``allowed`` is ``field label not supported: f``."""
    reqs = _parse_field_selector(text)
    for r in reqs:
        if r.field not in allowed:
            raise BadRequest(f"field label not supported: {r.field}")
    return FieldSelector(reqs, tuple(tuple(r.field.split(".")) for r in reqs))


_COMMON = ("metadata.name", "metadata.namespace")
_BY_KIND: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                  "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    ("", "Event"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    ("", "Secret"): ("type",),
    ("", "Namespace"): ("status.phase",),
    ("", "Node"): ("spec.unschedulable",),
    ("", "ReplicationController"): ("status.replicas",),
}


@lru_cache(maxsize=256)
def field_selectors_for(group: str, kind: str) -> frozenset[str]:
    """The field selector keys a kind supports (``metadata.name``/``metadata.namespace`` always)."""
    return frozenset(_COMMON + _BY_KIND.get((group, kind), ()))
