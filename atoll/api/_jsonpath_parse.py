"""The path half of Kubernetes JSONPath: steps, filters and the recursive-descent path parser.

Internal to ``atoll.api.jsonpath`` (which compiles templates and is the public API). A compiled
path is a list of ``Step`` functions ``(values, root) -> values``; missing keys select nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from atoll.api.errors import BadRequest

__all__ = ["Parser", "Step", "run"]

Step = Callable[[list[Any], Any], list[Any]]  # (current values, root) -> next values
_MISSING = object()


# --------------------------------------------------------------------------------------------------
# Steps


def _field_step(names: tuple[str, ...]) -> Step:
    if len(names) == 1 and names[0] != "*":
        name = names[0]

        def one(values: list[Any], root: Any) -> list[Any]:
            out = []
            for v in values:
                if isinstance(v, dict):
                    got = v.get(name, _MISSING)
                    if got is not _MISSING:
                        out.append(got)
            return out

        return one

    def many(values: list[Any], root: Any) -> list[Any]:
        out: list[Any] = []
        for v in values:
            for name in names:
                if name == "*":
                    if isinstance(v, dict):
                        out.extend(v.values())
                    elif isinstance(v, list):
                        out.extend(v)
                elif isinstance(v, dict) and name in v:
                    out.append(v[name])
        return out

    return many


def _index_step(indexes: tuple[int, ...]) -> Step:
    def step(values: list[Any], root: Any) -> list[Any]:
        out = []
        for v in values:
            if isinstance(v, list):
                n = len(v)
                for i in indexes:
                    j = i + n if i < 0 else i
                    if 0 <= j < n:
                        out.append(v[j])
        return out

    return step


def _slice_step(start: int | None, end: int | None, stride: int | None) -> Step:
    sl = slice(start, end, stride)

    def step(values: list[Any], root: Any) -> list[Any]:
        out: list[Any] = []
        for v in values:
            if isinstance(v, list):
                out.extend(v[sl])
        return out

    return step


def _all_step(values: list[Any], root: Any) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(v)
        elif isinstance(v, dict):
            out.extend(v.values())
    return out


def _descendants(value: Any, out: list[Any]) -> None:
    out.append(value)
    if isinstance(value, dict):
        for child in value.values():
            _descendants(child, out)
    elif isinstance(value, list):
        for child in value:
            _descendants(child, out)


def _recursive_step(values: list[Any], root: Any) -> list[Any]:
    out: list[Any] = []
    for v in values:
        _descendants(v, out)
    return out


def run(steps: Sequence[Step], values: list[Any], root: Any) -> list[Any]:
    for step in steps:
        if not values:
            return values
        values = step(values, root)
    return values


# --------------------------------------------------------------------------------------------------
# Filters


Operand = Callable[[Any, Any], list[Any]]  # (item, root) -> values


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    return None


def _compare(op: str, left: Any, right: Any) -> bool:
    ln, rn = _number(left), _number(right)
    if ln is not None and rn is not None:
        a: Any = ln
        b: Any = rn
    elif isinstance(left, str) and isinstance(right, str):
        a, b = left, right
    elif op in ("==", "!="):
        eq = type(left) is type(right) and left == right
        return eq if op == "==" else not eq
    else:
        return False
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == ">":
        return bool(a > b)
    if op == "<=":
        return bool(a <= b)
    return bool(a >= b)


def _filter_step(left: Operand, op: str, right: Operand | None) -> Step:
    def step(values: list[Any], root: Any) -> list[Any]:
        out = []
        for v in values:
            items = v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else []
            for item in items:
                lefts = left(item, root)
                if right is None:
                    if lefts:
                        out.append(item)
                    continue
                rights = right(item, root)
                if len(lefts) == 1 and len(rights) == 1 and _compare(op, lefts[0], rights[0]):
                    out.append(item)
        return out

    return step


# --------------------------------------------------------------------------------------------------
# Parser


class Parser:
    def __init__(self, text: str, expr: str) -> None:
        self.s = text
        self.i = 0
        self.expr = expr

    def error(self, why: str) -> BadRequest:
        return BadRequest(f"invalid jsonpath expression {self.expr!r}: {why} at position {self.i}")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def skip_ws(self) -> None:
        while self.peek() in (" ", "\t", "\n"):
            self.i += 1

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def parse_path(self, stop: str = "") -> list[Step]:
        """Steps until the end of input or a character in ``stop`` (outside brackets)."""
        steps: list[Step] = []
        if self.peek() in ("$", "@"):
            self.i += 1
        elif self.peek() not in (".", "[", "") and self.peek() not in stop:
            steps.append(_field_step((self.parse_name(),)))  # "items[0]" without the leading dot
        while not self.at_end() and self.peek() not in stop:
            ch = self.peek()
            if ch == ".":
                if self.peek(1) == ".":
                    self.i += 2
                    steps.append(_recursive_step)
                    if self.peek() == "[":
                        continue
                    if self.peek() == "*":
                        self.i += 1
                        steps.append(_field_step(("*",)))
                        continue
                    steps.append(_field_step((self.parse_name(),)))
                    continue
                self.i += 1
                if self.peek() == "*":
                    self.i += 1
                    steps.append(_field_step(("*",)))
                elif self.at_end() or self.peek() in stop or self.peek() in (" ", ")"):
                    continue  # "." alone is the current object
                elif self.peek() == "[":
                    continue
                else:
                    steps.append(_field_step((self.parse_name(),)))
            elif ch == "[":
                steps.append(self.parse_bracket())
            elif ch in (" ", "\t"):
                break
            else:
                raise self.error(f"unexpected {ch!r}")
        return steps

    def parse_name(self) -> str:
        buf: list[str] = []
        while not self.at_end():
            ch = self.peek()
            if ch == "\\" and self.i + 1 < len(self.s):
                buf.append(self.s[self.i + 1])
                self.i += 2
                continue
            if ch in ".[]()=!<>,@$}{ \t\"'":
                break
            buf.append(ch)
            self.i += 1
        if not buf:
            raise self.error("expected a field name")
        return "".join(buf)

    def parse_quoted(self) -> str:
        quote = self.peek()
        self.i += 1
        buf: list[str] = []
        while True:
            if self.at_end():
                raise self.error("unterminated quoted string")
            ch = self.peek()
            if ch == "\\" and self.i + 1 < len(self.s):
                nxt = self.s[self.i + 1]
                buf.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                self.i += 2
                continue
            self.i += 1
            if ch == quote:
                return "".join(buf)
            buf.append(ch)

    def parse_int(self) -> int | None:
        self.skip_ws()
        start = self.i
        if self.peek() == "-":
            self.i += 1
        while self.peek().isdigit():
            self.i += 1
        txt = self.s[start:self.i]
        self.skip_ws()
        if txt in ("", "-"):
            if txt == "-":
                raise self.error("expected an integer")
            return None
        return int(txt)

    def parse_bracket(self) -> Step:
        self.i += 1  # "["
        self.skip_ws()
        ch = self.peek()
        if ch == "?":
            return self.parse_filter()
        if ch == "*":
            self.i += 1
            self.skip_ws()
            self.expect("]")
            return _all_step
        if ch in ("'", '"'):
            names = [self.parse_quoted()]
            self.skip_ws()
            while self.peek() == ",":
                self.i += 1
                self.skip_ws()
                if self.peek() not in ("'", '"'):
                    raise self.error("expected a quoted key in union")
                names.append(self.parse_quoted())
                self.skip_ws()
            self.expect("]")
            return _field_step(tuple(names))
        first = self.parse_int()
        if self.peek() == ":":
            parts: list[int | None] = [first]
            while self.peek() == ":":
                self.i += 1
                parts.append(self.parse_int())
            self.expect("]")
            if len(parts) > 3:
                raise self.error("too many ':' in slice")
            parts += [None] * (3 - len(parts))
            if parts[2] == 0:
                raise self.error("slice step cannot be zero")
            return _slice_step(parts[0], parts[1], parts[2])
        if first is None:
            raise self.error("expected an index, slice, '*', quoted key or filter")
        idx = [first]
        while self.peek() == ",":
            self.i += 1
            nxt = self.parse_int()
            if nxt is None:
                raise self.error("expected an integer in union")
            idx.append(nxt)
        self.expect("]")
        return _index_step(tuple(idx))

    def expect(self, ch: str) -> None:
        self.skip_ws()
        if self.peek() != ch:
            raise self.error(f"expected {ch!r}")
        self.i += 1

    def parse_operand(self) -> Operand:
        self.skip_ws()
        ch = self.peek()
        if ch in ("@", "$"):
            is_root = ch == "$"
            steps = self.parse_path(stop=" =!<>)")
            if is_root:
                return lambda item, root: run(steps, [root], root)
            return lambda item, root: run(steps, [item], root)
        if ch in ("'", '"'):
            s = self.parse_quoted()
            return lambda item, root: [s]
        start = self.i
        while not self.at_end() and self.peek() not in " =!<>)":
            self.i += 1
        tok = self.s[start:self.i]
        lit: Any
        if tok in ("true", "false"):
            lit = tok == "true"
        elif tok == "null":
            lit = None
        else:
            try:
                lit = int(tok)
            except ValueError:
                try:
                    lit = float(tok)
                except ValueError:
                    raise self.error(f"unrecognised filter operand {tok!r}") from None
        return lambda item, root: [lit]

    def parse_filter(self) -> Step:
        self.i += 1  # "?"
        self.expect("(")
        left = self.parse_operand()
        self.skip_ws()
        op = ""
        for cand in ("==", "!=", "<=", ">=", "<", ">"):
            if self.s.startswith(cand, self.i):
                op = cand
                self.i += len(cand)
                break
        right = self.parse_operand() if op else None
        self.expect(")")
        self.expect("]")
        return _filter_step(left, op, right)
