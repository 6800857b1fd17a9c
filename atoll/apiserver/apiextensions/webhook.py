"""The call to a CRD's conversion webhook, as kube-apiserver makes it.

One ``ConversionReview`` (``apiextensions.k8s.io/v1``) per batch of objects is POSTed to the CRD's
``spec.conversion.webhook.clientConfig.url``, verified against its ``caBundle`` (the system CAs
without one), within ``TIMEOUT``. The answer must be ``Success`` with as many converted objects,
in order, each at the desired ``apiVersion`` and of the same kind; as kube-apiserver, only the
labels and annotations of a converted object's metadata are taken from the webhook (the rest is
kept from the original). Any failure is a 500 ``InternalError`` naming the webhook.
"""

from __future__ import annotations

import base64
import ssl
import uuid
from functools import lru_cache
from typing import Any

import aiohttp

from atoll.api import errors

JSON = dict[str, Any]
TIMEOUT = 30.0
"""Seconds a conversion webhook has to answer (kube-apiserver's default)."""
REVIEW_VERSION = "apiextensions.k8s.io/v1"


@lru_cache(maxsize=32)
def _ssl_context(ca_bundle: str) -> ssl.SSLContext:
    if not ca_bundle:
        return ssl.create_default_context()
    return ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())


def _failed(resource: str, detail: str) -> errors.InternalError:
    return errors.InternalError(f"conversion webhook for {resource} failed: {detail}")


async def convert(config: JSON, resource: str, objects: list[JSON], desired: str) -> list[JSON]:
    """``objects`` converted to ``desired`` by the webhook ``config`` (a ``clientConfig``) of
    ``resource`` (``plural.group``, for error messages)."""
    uid = str(uuid.uuid4())
    review = {
        "apiVersion": REVIEW_VERSION,
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
    }
    try:
        context = _ssl_context(str(config.get("caBundle") or ""))
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(str(config["url"]), json=review, ssl=context) as reply:
                if reply.status != 200:
                    raise _failed(resource, f"the server answered {reply.status}")
                answer = await reply.json(content_type=None)
    except errors.APIError:
        raise
    except (aiohttp.ClientError, TimeoutError, ValueError, ssl.SSLError, OSError) as exc:
        raise _failed(resource, str(exc) or type(exc).__name__) from None
    return _converted(resource, uid, answer, objects, desired)


def _converted(resource: str, uid: str, answer: Any, objects: list[JSON], desired: str) -> list[JSON]:
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict) or response.get("uid") != uid:
        raise _failed(resource, "the response is not a ConversionReview for the request")
    result = response.get("result") or {}
    if result.get("status") != "Success":
        raise _failed(resource, str(result.get("message") or "conversion failed"))
    converted = response.get("convertedObjects")
    if not isinstance(converted, list) or len(converted) != len(objects):
        raise _failed(resource, f"expected {len(objects)} converted objects, got {len(converted or [])}")
    out = []
    for original, new in zip(objects, converted, strict=True):
        if not isinstance(new, dict) or new.get("apiVersion") != desired or new.get("kind") != original.get("kind"):
            raise _failed(resource, f"a converted object is not a {original.get('kind')} of {desired}")
        metadata = dict(original.get("metadata") or {})
        theirs: JSON = new["metadata"] if isinstance(new.get("metadata"), dict) else {}
        for key in ("labels", "annotations"):
            if theirs.get(key):
                metadata[key] = theirs[key]
            else:
                metadata.pop(key, None)
        out.append({**new, "metadata": metadata})
    return out
