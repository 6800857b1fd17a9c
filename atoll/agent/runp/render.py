"""Kuscia's config templates (plugin ``config-render``, reference §4.4).

Two forms, evaluated against a variable map (the container's environment plus the task's
generated values):

* ``{{.VAR}}`` — the variable's text (Go ``text/template`` field access); in a ``.json`` file the
  text is JSON-escaped so it can sit inside quotes (SecretFlow's ``"{{.TASK_INPUT_CONFIG}}"``).
* ``{{{.X.a.b}}}``, ``{{{.X.list[0].f}}}``, ``{{{.X.list[.X.idx].f}}}``,
  ``{{{.X.list[key=value].f}}}`` — a path into the JSON value of ``X``; scalars render as text,
  objects and lists as compact JSON. ``[key=value]`` picks the first element whose ``key``
  equals ``value``.

An unknown variable or path renders as the empty string, like Go templates with
``missingkey=zero``; Go template control structures (``if``/``range``) are not supported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_TRIPLE = re.compile(r"\{\{\{\s*(\.[^}]*?)\s*\}\}\}")
_DOUBLE = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[([^\]]*)\]")


class _Missing(Exception):
    pass


def _json_of(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def evaluate(path: str, variables: Mapping[str, str]) -> Any:
    """The value at ``.X.a[0].b`` (``X`` a variable holding JSON text)."""
    steps = _STEP.findall(path)
    if not steps or not steps[0][0]:
        raise _Missing(path)
    name = steps[0][0]
    if name not in variables:
        raise _Missing(path)
    value: Any = _json_of(variables[name])
    for attr, index in steps[1:]:
        if attr:
            if not isinstance(value, dict) or attr not in value:
                raise _Missing(path)
            value = value[attr]
            continue
        if not isinstance(value, list):
            raise _Missing(path)
        value = _select(value, index.strip(), variables)
    return value


def _select(items: list[Any], index: str, variables: Mapping[str, str]) -> Any:
    if index.startswith("."):
        index = str(_scalar(evaluate(index, variables)))
    if "=" in index:
        key, _, wanted = index.partition("=")
        for item in items:
            if isinstance(item, dict) and str(_scalar(item.get(key.strip()))) == wanted.strip():
                return item
        raise _Missing(index)
    try:
        return items[int(index)]
    except (ValueError, IndexError):
        raise _Missing(index) from None


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render(template: str, variables: Mapping[str, str], *, json_escape: bool = False) -> str:
    def triple(match: re.Match[str]) -> str:
        try:
            return _scalar(evaluate(match.group(1), variables))
        except _Missing:
            return ""

    def double(match: re.Match[str]) -> str:
        value = variables.get(match.group(1), "")
        return json.dumps(value)[1:-1] if json_escape else value

    return _DOUBLE.sub(double, _TRIPLE.sub(triple, template))
