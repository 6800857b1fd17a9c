"""Object metadata rules shared by every kind: names, labels, annotations, generated names and uids."""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

from atoll.api.errors import cause

JSON = dict[str, Any]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"



class _RandomPool:
    """``os.urandom`` bytes read 4 KiB at a time: one ``getrandom`` call (which releases the GIL, a
    costly hand-off while the store threads are busy) per 256 UIDs instead of one per UID."""

    __slots__ = ("buf", "pos")

    def __init__(self) -> None:
        self.buf, self.pos = b"", 0

    def take16(self) -> bytes:
        pos = self.pos
        if pos + 16 > len(self.buf):
            self.buf, pos = os.urandom(4096), 0
        self.pos = pos + 16
        return self.buf[pos : pos + 16]

    def reset(self) -> None:
        self.buf, self.pos = b"", 0


_random = _RandomPool()
os.register_at_fork(after_in_child=_random.reset)  # a forked child must never reuse the parent's bytes


def new_uid() -> str:
    """A random (version 4) UUID string, without ``uuid.UUID``'s per-call object overhead."""
    b = bytearray(_random.take16())
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))


def name_problems(name: str, rule: str) -> list[str]:
    """Why ``name`` is not acceptable under a kind's name ``rule`` (empty list when it is):
    ``subdomain`` (DNS-1123 subdomain, most kinds), ``label`` (DNS-1123 label: Namespace,
    Service) or ``path`` (a path segment: RBAC kinds, whose names may hold ``:``)."""
    if rule == "path":
        if name in (".", "..") or "/" in name or "%" in name:
            return ['may not contain "/" or "%" and may not be "." or ".."']
        return []
    if rule == "label":
        if len(name) > 63:
            return ["must be no more than 63 characters"]
        if not _DNS1123_LABEL.match(name):
            return [
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
                "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        return []
    if len(name) > 253:
        return ["must be no more than 253 characters"]
    if not _DNS1123_SUBDOMAIN.match(name):
        return [
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ]
    return []


def _qualified_name_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character"
        )
    return None


def metadata_causes(meta: JSON) -> list[JSON]:
    """422 causes for malformed labels, annotations, finalizers and owner references."""
    causes: list[JSON] = []
    generate = meta.get("generateName")
    if generate is not None and not isinstance(generate, str):
        causes.append(cause("FieldValueTypeInvalid", "metadata.generateName", "must be a string"))
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        return [*causes, cause("FieldValueTypeInvalid", "metadata.labels", "must be a map of strings")]
    for key, value in labels.items():
        problem = _qualified_name_problem(key)
        if problem:
            causes.append(cause("FieldValueInvalid", "metadata.labels", f'Invalid value: "{key}": {problem}'))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                cause(
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist of '
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character (at most 63 characters)",
                )
            )
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        causes.append(cause("FieldValueTypeInvalid", "metadata.annotations", "must be a map of strings"))
    else:
        for key in annotations:
            problem = _qualified_name_problem(key)
            if problem:
                causes.append(cause("FieldValueInvalid", "metadata.annotations", f'Invalid value: "{key}": {problem}'))
        if sum(len(k) + len(v) for k, v in annotations.items()) > 256 * 1024:
            causes.append(
                cause("FieldValueTooLong", "metadata.annotations", "Too long: must have at most 262144 bytes")
            )
    finalizers = meta.get("finalizers") or []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        causes.append(cause("FieldValueTypeInvalid", "metadata.finalizers", "must be a list of strings"))
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        if not isinstance(ref, dict):
            causes.append(cause("FieldValueTypeInvalid", f"metadata.ownerReferences[{i}]", "must be an object"))
            continue
        for fld in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(fld):
                causes.append(cause("FieldValueRequired", f"metadata.ownerReferences[{i}].{fld}", "Required value"))
    return causes
