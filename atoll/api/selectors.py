"""Label and field selectors with Kubernetes semantics (``labels.Parse`` / ``fields.ParseSelector``).

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists),
``!k`` (does not exist), ``k>1`` / ``k<1`` (numeric), comma-joined, whitespace tolerant. As in
Kubernetes, ``!=`` and ``notin`` also match objects that lack the label.

Field selectors: ``a.b=v``, ``a.b==v``, ``a.b!=v``, comma-joined, with ``\\`` escaping ``,``, ``=``
and ``!`` in values. Only the fields a kind supports (``field_selectors_for``) may be used.

Parsing is cached, so a selector string seen again (every watch event, every list page) costs a
dict lookup. All parse errors are ``BadRequest``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from atoll.api.errors import BadRequest
from atoll.api.field_selectors import (
    FieldRequirement,
    FieldSelector,
    field_selectors_for,
    parse_field_selector,
)

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "field_selectors_for",
    "label_selector_from_spec",
    "parse_field_selector",
    "parse_label_selector",
    "selector_from_labels",
]

_KEY_RE = re.compile(
    r"^([A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_INT_RE = re.compile(r"^-?[0-9]+$")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement; ``op`` is one of ``= != in notin exists !exists gt lt``."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "=" or op == "in":
            return self.key in labels and labels[self.key] in self.values
        if op == "!=" or op == "notin":
            return self.key not in labels or labels[self.key] not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        value = labels.get(self.key)
        if value is None or not _INT_RE.match(value):
            return False
        bound = int(next(iter(self.values)))
        return int(value) > bound if op == "gt" else int(value) < bound

    def __str__(self) -> str:
        vals = sorted(self.values)
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{vals[0]}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(vals)})"
        if self.op == "exists":
            return self.key
        if self.op == "!exists":
            return f"!{self.key}"
        return f"{self.key}{'>' if self.op == 'gt' else '<'}{vals[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of label requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # a selector that matches nothing (e.g. an impossible spec)

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        if not self.requirements:
            return True
        lbls: Mapping[str, str] = labels or {}
        return all(r.matches(lbls) for r in self.requirements)

    def equality_requirements(self) -> dict[str, str]:
        """``key -> value`` for every requirement pinning a key to one value (index lookups)."""
        out: dict[str, str] = {}
        for r in self.requirements:
            if r.op in ("=", "in") and len(r.values) == 1:
                out[r.key] = next(iter(r.values))
        return out

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _bad_label(text: str, why: str) -> BadRequest:
    return BadRequest(f"unable to parse requirement: invalid label selector {text!r}: {why}")


def _check_key(text: str, key: str) -> None:
    if not _KEY_RE.match(key):
        raise _bad_label(text, f"invalid label key {key!r}: name part must consist of alphanumeric "
                               "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                               "character")


def _check_value(text: str, value: str) -> None:
    if not _VALUE_RE.match(value):
        raise _bad_label(text, f"invalid label value {value!r}: a valid label must be an empty string or "
                               "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                               "with an alphanumeric character")


_TOKEN_RE = re.compile(r"\s*(?:(?P<sym>==|!=|=|\(|\)|,|!|>|<)|(?P<word>[^\s=!(),<>]+))")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise _bad_label(text, f"unexpected character at position {pos}")
        if m.end() == pos:
            break
        tok = m.group("sym") or m.group("word")
        if tok is None:  # only trailing whitespace was consumed
            break
        tokens.append(tok)
        pos = m.end()
    return tokens


@lru_cache(maxsize=1024)
def parse_label_selector(text: str) -> LabelSelector:
    """Parse a ``labelSelector`` query value; raises ``BadRequest`` naming the selector."""
    if not text.strip():
        return LabelSelector()
    toks = _tokenize(text)
    reqs: list[Requirement] = []
    i, n = 0, len(toks)

    def peek(k: int = 0) -> str | None:
        return toks[i + k] if i + k < n else None

    while True:
        tok = peek()
        if tok is None:
            raise _bad_label(text, "expected a requirement")
        if tok == "!":
            i += 1
            key = peek()
            if key is None or not _is_word(key):
                raise _bad_label(text, "expected a label key after '!'")
            _check_key(text, key)
            i += 1
            reqs.append(Requirement(key, "!exists"))
        elif _is_word(tok):
            key = tok
            _check_key(text, key)
            i += 1
            op = peek()
            if op is None or op == ",":
                reqs.append(Requirement(key, "exists"))
            elif op in ("=", "==", "!="):
                i += 1
                val = peek()
                if val is None or val == ",":
                    val = ""  # "k=" selects the empty value
                elif _is_word(val):
                    i += 1
                else:
                    raise _bad_label(text, f"expected a value after {op!r}, found {val!r}")
                _check_value(text, val)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", frozenset((val,))))
            elif op in (">", "<"):
                i += 1
                val = peek()
                if val is None or not _INT_RE.match(val):
                    name = "gt" if op == ">" else "lt"
                    raise _bad_label(text, f"for {name!r} operator, the value must be an integer")
                i += 1
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", frozenset((val,))))
            elif op in ("in", "notin"):
                i += 1
                if peek() != "(":
                    raise _bad_label(text, f"expected '(' after {op!r}")
                i += 1
                vals: list[str] = []
                expect_value = True
                while True:
                    t = peek()
                    if t is None:
                        raise _bad_label(text, "unterminated value list, expected ')'")
                    if t == ")":
                        if expect_value and vals:
                            vals.append("")  # trailing "a," means an empty value
                        i += 1
                        break
                    if t == ",":
                        if expect_value:
                            vals.append("")
                        expect_value = True
                        i += 1
                        continue
                    if not _is_word(t) or not expect_value:
                        raise _bad_label(text, f"unexpected {t!r} in value list")
                    vals.append(t)
                    expect_value = False
                    i += 1
                if not vals:
                    raise _bad_label(text, f"for {op!r} operator, values set can't be empty")
                for v in vals:
                    _check_value(text, v)
                reqs.append(Requirement(key, op, frozenset(vals)))
            else:
                raise _bad_label(text, f"found {op!r}, expected one of '=', '!=', '==', 'in', 'notin', ','")
        else:
            raise _bad_label(text, f"found {tok!r}, expected a label key")
        tok = peek()
        if tok is None:
            break
        if tok != ",":
            raise _bad_label(text, f"found {tok!r}, expected ','")
        i += 1
    return LabelSelector(tuple(reqs))


def _is_word(tok: str) -> bool:
    return tok not in ("==", "!=", "=", "(", ")", ",", "!", ">", "<", "in", "notin")


def label_selector_from_spec(spec: Mapping[str, Any] | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` dict (``matchLabels`` + ``matchExpressions``) as a selector.

    As in ``metav1.LabelSelectorAsSelector``: ``None`` selects nothing, ``{}`` selects everything.
    """
    if spec is None:
        return LabelSelector(nothing=True)
    if not isinstance(spec, Mapping):
        raise BadRequest("invalid label selector: must be an object")
    reqs: list[Requirement] = []
    match_labels = spec.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise BadRequest("invalid label selector: matchLabels must be an object")
    for k in sorted(match_labels):
        v = match_labels[k]
        if not isinstance(v, str):
            raise BadRequest(f"invalid label selector: matchLabels[{k}] must be a string")
        _check_key(str(spec), k)
        _check_value(str(spec), v)
        reqs.append(Requirement(k, "=", frozenset((v,))))
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in spec.get("matchExpressions") or ():
        if not isinstance(expr, Mapping):
            raise BadRequest("invalid label selector: matchExpressions items must be objects")
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not isinstance(key, str) or op not in ops:
            raise BadRequest(f"invalid label selector: {op!r} is not a valid label selector operator")
        _check_key(str(spec), key)
        if op in ("In", "NotIn"):
            if not values:
                raise BadRequest(f"invalid label selector: for {op!r} operator, values set can't be empty")
        elif values:
            raise BadRequest(f"invalid label selector: values set must be empty for {op!r}")
        reqs.append(Requirement(key, ops[op], frozenset(str(v) for v in values)))
    return LabelSelector(tuple(reqs))


def selector_from_labels(labels: Mapping[str, str] | None) -> LabelSelector:
    """An equality selector for a plain ``{k: v}`` map (Service ``spec.selector`` style)."""
    items: Iterable[tuple[str, str]] = sorted((labels or {}).items())
    return LabelSelector(tuple(Requirement(k, "=", frozenset((v,))) for k, v in items))
