"""One error hierarchy shared by the API server and the client, mirroring ``metav1.Status``.

``APIError`` carries an HTTP code, a Kubernetes ``reason``, a message and optional ``details``.
The server renders any ``APIError`` to a ``Status`` body; the client parses a ``Status`` body back
into the same classes, so callers write ``except NotFound:`` exactly as Go code checks
``apierrors.IsNotFound``::

    APIError
    ├── BadRequest (400)          ├── Conflict (409, Conflict)
    ├── Unauthorized (401)        ├── AlreadyExists (409, AlreadyExists)
    ├── Forbidden (403)           ├── Gone (410, Expired)
    ├── NotFound (404)            ├── RequestEntityTooLarge (413)
    ├── MethodNotAllowed (405)    ├── UnsupportedMediaType (415)
    ├── Invalid (422)             ├── TooManyRequests (429)
    ├── InternalError (500)       └── NotImplemented (501)
"""

from __future__ import annotations

from typing import Any, ClassVar

JSON = dict[str, Any]


class APIError(Exception):
    """A request the server refuses; rendered as a Kubernetes ``Status``."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(self, message: str, *, details: JSON | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def status(self) -> JSON:
        """The ``Status`` object for this error."""
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(APIError):
    code, reason = 400, "BadRequest"


class Unauthorized(APIError):
    code, reason = 401, "Unauthorized"


class Forbidden(APIError):
    code, reason = 403, "Forbidden"


class NotFound(APIError):
    code, reason = 404, "NotFound"

    def status(self) -> JSON:
        """Always with ``details`` (``{}`` for an unknown path, as kube-apiserver answers): kubectl
        dereferences it (``kubectl debug`` crashed on a 404 without it)."""
        body = super().status()
        body.setdefault("details", {})
        return body


class MethodNotAllowed(APIError):
    code, reason = 405, "MethodNotAllowed"


class Conflict(APIError):
    code, reason = 409, "Conflict"


class AlreadyExists(APIError):
    code, reason = 409, "AlreadyExists"


class Gone(APIError):
    code, reason = 410, "Expired"


class NotAcceptable(APIError):
    code, reason = 406, "NotAcceptable"


class RequestEntityTooLarge(APIError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(APIError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(APIError):
    code, reason = 422, "Invalid"


class TooManyRequests(APIError):
    code, reason = 429, "TooManyRequests"


class InternalError(APIError):
    code, reason = 500, "InternalError"


class ServerTimeout(APIError):
    """504: e.g. a LIST at a resourceVersion the server has not reached (``Too large resource version``)."""

    code, reason = 504, "Timeout"


class NotImplementedYet(APIError):
    code, reason = 501, "NotImplemented"


class ServiceUnavailable(APIError):
    code, reason = 503, "ServiceUnavailable"


_BY_REASON: dict[str, type[APIError]] = {
    cls.reason: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        AlreadyExists,
        Gone,
        NotAcceptable,
        RequestEntityTooLarge,
        UnsupportedMediaType,
        Invalid,
        TooManyRequests,
        InternalError,
        NotImplementedYet,
        ServiceUnavailable,
    )
}
_BY_CODE: dict[int, type[APIError]] = {409: Conflict, 410: Gone, 500: InternalError}
for _cls in _BY_REASON.values():
    if _cls is not ServiceUnavailable:  # a bare 503 body stays an InternalError; a 503 Status maps by reason
        _BY_CODE.setdefault(_cls.code, _cls)


def from_status(status: JSON, http_code: int | None = None) -> APIError:
    """Rebuild the matching ``APIError`` from a ``Status`` body (client side)."""
    reason = str(status.get("reason") or "")
    code = int(status.get("code") or http_code or 500)
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, InternalError)
    return cls(str(status.get("message") or reason or f"HTTP {code}"), details=status.get("details"))


def not_found(resource: str, group: str, name: str) -> NotFound:
    """``pods "x" not found`` / ``domains.kuscia.secretflow "x" not found``."""
    qualified = f"{resource}.{group}" if group else resource
    return NotFound(f'{qualified} "{name}" not found', details={"name": name, "group": group, "kind": resource})


def already_exists(resource: str, group: str, name: str) -> AlreadyExists:
    qualified = f"{resource}.{group}" if group else resource
    return AlreadyExists(
        f'{qualified} "{name}" already exists', details={"name": name, "group": group, "kind": resource}
    )


def conflict(resource: str, group: str, name: str) -> Conflict:
    qualified = f"{resource}.{group}" if group else resource
    return Conflict(
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details={"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, group: str, name: str, causes: list[JSON]) -> Invalid:
    """422 naming every bad field: ``Domain.kuscia.secretflow "eve" is invalid: spec.role: ...``."""
    qualified = f"{kind}.{group}" if group else kind
    summary = ", ".join(f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    return Invalid(
        f'{qualified} "{name}" is invalid: {summary}',
        details={"name": name, "group": group, "kind": kind, "causes": causes},
    )


def cause(reason: str, field: str, message: str) -> JSON:
    """One ``StatusCause`` of an ``Invalid`` error: ``FieldValueInvalid``, ``metadata.name``, why."""
    return {"reason": reason, "message": message, "field": field}
