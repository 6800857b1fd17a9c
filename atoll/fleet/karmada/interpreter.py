"""Karmada's resource interpreter: built-in behaviour for the kinds it knows (:mod:`.aggregate`)
and, for any other kind, the Lua scripts of ``ResourceInterpreterCustomization`` objects
(``config.karmada.io/v1alpha1``) — the same scripts Karmada runs, so a customization written for
Karmada applies unchanged:

- ``statusReflection`` ``ReflectStatus(observedObj)`` → the status kept in the Work (default: the
  whole ``.status``);
- ``healthInterpretation`` ``InterpretHealth(observedObj)`` → bool (default, for kinds without
  one: a ``Ready``/``Available`` condition when the status has one, else ``Healthy`` as Karmada);
- ``statusAggregation`` ``AggregateStatus(desiredObj, statusItems)`` → the template with its new
  ``.status`` (``statusItems``: ``clusterName``, ``status``, ``applied``, ``health``);
- ``replicaResource`` ``GetReplicas(desiredObj)`` → replicas and requirements (so ``Divided``
  scheduling works for the kind), ``replicaRevision`` ``ReviseReplica(desiredObj, replicas)`` →
  the manifest with a cluster's share.

Scripts run in one Lua VM (``lupa``) per interpreter with only the base, table, string and math
libraries (no ``os``, ``io``, ``require``, ``load``), an instruction budget per call and a memory
cap, and are
compiled once per customization version (never per call). A failing script is logged and the
default applies.
"""

from __future__ import annotations

import logging
from typing import Any

import lupa

from atoll.fleet.karmada.aggregate import aggregate_status, health
from atoll.runtime import Cache

JSON = dict[str, Any]
log = logging.getLogger(__name__)
BUDGET = 1_000_000
"""Lua instructions one call may run (an endless loop fails instead of stalling the instance)."""
MAX_MEMORY = 64 * 1024 * 1024
"""Bytes the instance's Lua VM may hold (a runaway table fails the script, not the process)."""
_FUNCTIONS = {
    "statusReflection": "ReflectStatus",
    "healthInterpretation": "InterpretHealth",
    "statusAggregation": "AggregateStatus",
    "replicaResource": "GetReplicas",
    "replicaRevision": "ReviseReplica",
}
_SANDBOX = """
local sethook, pcall, error = debug.sethook, pcall, error
function atoll_call(f, budget, ...)
  sethook(function() error("lua script exceeded its instruction budget", 0) end, "", budget)
  local ok, a, b = pcall(f, ...)
  sethook()
  if not ok then error(a, 0) end
  return a, b
end
os, io, debug, package, require, dofile, loadfile, load, loadstring, python = nil
"""


BROKEN = object()
"""What a script that does not compile is cached as (its operation then fails, every call)."""


class ScriptError(Exception):
    """A customization's script did not compile or failed."""


class Interpreter:
    def __init__(self, customizations: Cache | None = None) -> None:
        self.customizations = customizations
        self._lua = lupa.LuaRuntime(
            unpack_returned_tuples=True, register_eval=False, register_builtins=False, max_memory=MAX_MEMORY
        )
        self._lua.execute(_SANDBOX)
        self._call = self._lua.globals().atoll_call
        self._compiled: dict[tuple[str, str, str], Any] = {}

    # --- the operations ---------------------------------------------------------------------------
    def reflect_status(self, obj: JSON) -> JSON:
        status: JSON = obj.get("status") or {}
        script = self._script(obj, "statusReflection")
        if script is None:
            return status
        out = self._run(script, obj)
        return out if isinstance(out, dict) else status

    def health(self, obj: JSON) -> str:
        """``Healthy`` / ``Unhealthy`` / ``Unknown``."""
        script = self._script(obj, "healthInterpretation")
        if script is not None:
            try:
                return "Healthy" if self._invoke(script, obj)[0] else "Unhealthy"
            except ScriptError as exc:
                log.warning("%s: InterpretHealth failed: %s", _what(obj), exc)
                return "Unknown"
        if _group(obj) in _BUILTIN_GROUPS:
            return health(str(obj.get("kind")), obj)
        for cond in (obj.get("status") or {}).get("conditions") or ():
            if isinstance(cond, dict) and cond.get("type") in ("Ready", "Available"):
                return "Healthy" if cond.get("status") == "True" else "Unhealthy"
        return "Healthy"

    def aggregate(self, template: JSON, items: list[JSON]) -> JSON | None:
        """The template's new ``.status`` from the binding's ``aggregatedStatus`` (None: not aggregated)."""
        script = self._script(template, "statusAggregation")
        if script is not None:
            out = self._run(script, template, items)
            return (out.get("status") or {}) if isinstance(out, dict) else None
        if _group(template) not in _BUILTIN_GROUPS:
            return None
        statuses = [i.get("status") or {} for i in items]
        return aggregate_status(str(template.get("kind")), template["metadata"].get("generation"), statuses)

    def replicas(self, template: JSON) -> tuple[int, JSON | None] | None:
        """(replicas, one replica's resource request) from ``GetReplicas``; None: no customization."""
        script = self._script(template, "replicaResource")
        if script is None:
            return None
        try:
            count, requires = self._invoke(script, template)
        except (ScriptError, TypeError, ValueError) as exc:
            log.warning("%s: GetReplicas failed: %s", _what(template), exc)
            return None
        request = _py(requires).get("resourceRequest") if requires is not None else None
        return int(count or 0), request if isinstance(request, dict) and request else None

    def revise_replica(self, manifest: JSON, replicas: int) -> JSON | None:
        """The manifest with ``replicas`` (``ReviseReplica``); None: no customization."""
        script = self._script(manifest, "replicaRevision")
        if script is None:
            return None
        out = self._run(script, manifest, replicas)
        return out if isinstance(out, dict) else None

    # --- machinery --------------------------------------------------------------------------------
    def _script(self, obj: JSON, operation: str) -> Any | None:
        """The compiled function of the first customization (by name) of this kind with ``operation``."""
        if self.customizations is None:
            return None
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        for ric in sorted(self.customizations, key=lambda r: str(r["metadata"]["name"])):
            spec = ric.get("spec") or {}
            target = spec.get("target") or {}
            if target.get("apiVersion") != api_version or target.get("kind") != kind:
                continue
            source = ((spec.get("customizations") or {}).get(operation) or {}).get("luaScript")
            if not source:
                continue
            key = (str(ric["metadata"]["uid"]), str(ric["metadata"].get("resourceVersion")), operation)
            if key not in self._compiled:
                self._compiled = {k: v for k, v in self._compiled.items() if k[0] != key[0] or k[1] == key[1]}
                self._compiled[key] = self._compile(str(source), _FUNCTIONS[operation], ric)
            return self._compiled[key]
        return None

    def _compile(self, source: str, function: str, ric: JSON) -> Any:
        try:
            return self._lua.execute(f"{source}\nreturn {function}")
        except lupa.LuaError as exc:
            name = ric["metadata"]["name"]
            log.warning("ResourceInterpreterCustomization %s: %s does not compile: %s", name, function, exc)
            return BROKEN

    def _invoke(self, function: Any, *args: Any) -> tuple[Any, Any]:
        """The script's (first, second) results."""
        if function is BROKEN:
            raise ScriptError("the script does not compile")
        try:
            out = self._call(function, BUDGET, *(_lua(self._lua, a) for a in args))
        except (lupa.LuaError, MemoryError) as exc:
            raise ScriptError(str(exc) or type(exc).__name__) from None
        return (out[0], out[1]) if isinstance(out, tuple) else (out, None)

    def _run(self, function: Any, *args: Any) -> Any:
        try:
            return _py(self._invoke(function, *args)[0])
        except ScriptError as exc:
            log.warning("interpreter script failed: %s", exc)
            return None


_BUILTIN_GROUPS = ("apps", "batch", "")
"""Groups whose kinds Karmada interprets natively (the bench's Deployment-shaped CRDs are not)."""


def _group(obj: JSON) -> str:
    api_version = str(obj.get("apiVersion") or "")
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _what(obj: JSON) -> str:
    md = obj.get("metadata") or {}
    namespace = f"{md['namespace']}/" if md.get("namespace") else ""
    return f"{obj.get('kind')} {namespace}{md.get('name')}"


def _lua(runtime: Any, value: Any) -> Any:
    """Python JSON → Lua (lists 1-based)."""
    if isinstance(value, dict):
        return runtime.table_from({k: _lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_lua(runtime, v) for v in value])
    return value


def _py(value: Any) -> Any:
    """Lua → Python JSON: a table with keys 1..n is a list, any other a dict (empty: a dict)."""
    if lupa.lua_type(value) != "table":
        return value
    items = list(value.items())
    if (
        items
        and all(isinstance(k, int) for k, _ in items)
        and sorted(k for k, _ in items) == list(range(1, len(items) + 1))
    ):
        return [_py(v) for _, v in sorted(items, key=lambda kv: kv[0])]
    return {str(k): _py(v) for k, v in items}
