"""Service-account tokens of mirrored pods: requested from the source cluster, kept fresh.

The target cluster cannot mint tokens for the source cluster's service accounts, so each projected
``serviceAccountToken`` volume of a source pod becomes a target Secret (key ``token``, label
``service-account-token=true``, back-pointers to the pod) holding a token from the source
cluster's TokenRequest API — bound to the source pod, with the projection's audience and
``expirationSeconds`` (default 1 h, at least the API's 10 minutes). Like the kubelet, a token is
renewed once 80 % of its lifetime has passed: the renewal time is recorded on the Secret
(``kubeocean.io/token-refresh-at``, RFC 3339) so a restarted syncer resumes the schedule, and the
pod's reconcile is requeued for it (:meth:`TokenSecrets.refresh`). Times come from the injected
clock.
"""

from __future__ import annotations

from typing import Any

from atoll.api import kinds
from atoll.api.clock import Clock
from atoll.api.errors import AlreadyExists, NotFound
from atoll.api.timestamps import format_time, try_parse_time
from atoll.client import Client
from atoll.mirror import keys
from atoll.mirror.deps import token_secret_name
from atoll.mirror.names import target_name

JSON = dict[str, Any]
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600
REFRESH_FRACTION = 0.8
REFRESH_AT = keys.PREFIX + "token-refresh-at"


def token_source(pod: JSON, volume: str) -> JSON:
    """The ``serviceAccountToken`` projection of ``volume`` in ``pod`` (empty if none)."""
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        if vol.get("name") == volume:
            for source in (vol.get("projected") or {}).get("sources") or ():
                if "serviceAccountToken" in source:
                    return dict(source["serviceAccountToken"] or {})
    return {}


def secret_name(pod: JSON, volume: str) -> str:
    md = pod["metadata"]
    return target_name(md["namespace"], f"{md['name']}-{token_secret_name(volume)}")


class TokenSecrets:
    """Token Secrets of one target namespace; ``_due`` remembers each pod's next renewal."""

    def __init__(self, source: Client, target: Client, namespace: str, clock: Clock) -> None:
        self.source = source
        self.target = target
        self.namespace = namespace
        self.clock = clock
        self._due: dict[str, float] = {}

    async def _request(self, pod: JSON, volume: str) -> tuple[str, int]:
        md, spec = pod["metadata"], pod.get("spec") or {}
        projection = token_source(pod, volume)
        seconds = max(int(projection.get("expirationSeconds") or DEFAULT_SECONDS), MIN_SECONDS)
        account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        request_spec: JSON = {"expirationSeconds": seconds,
                              "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md["name"],
                                                 "uid": md["uid"]}}
        if projection.get("audience"):
            request_spec["audiences"] = [projection["audience"]]
        path = f"/api/v1/namespaces/{md['namespace']}/serviceaccounts/{account}/token"
        answer = await self.source.request("POST", path, body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": request_spec})
        return str(((answer or {}).get("status") or {}).get("token") or ""), seconds

    async def ensure(self, pod: JSON, volume: str) -> str:
        """Request a token and write it into the volume's Secret (created or replaced); its name."""
        token, seconds = await self._request(pod, volume)
        md = pod["metadata"]
        due = self.clock.now() + seconds * REFRESH_FRACTION
        name = secret_name(pod, volume)
        secret: JSON = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {keys.MANAGED_BY: keys.MANAGED_BY_VALUE, keys.SERVICE_ACCOUNT_TOKEN: "true"},
                "annotations": {keys.VIRTUAL_POD_NAMESPACE: md["namespace"], keys.VIRTUAL_POD_NAME: md["name"],
                                keys.VIRTUAL_POD_UID: md["uid"], REFRESH_AT: format_time(due)},
            },
            "type": "Opaque",
            "stringData": {"token": token},
        }
        try:
            await self.target.create(kinds.SECRETS, secret, self.namespace)
        except AlreadyExists:
            current = await self.target.get(kinds.SECRETS, name, self.namespace)
            metadata = {**current["metadata"], "labels": secret["metadata"]["labels"],
                        "annotations": secret["metadata"]["annotations"]}
            await self.target.update(kinds.SECRETS, {**secret, "metadata": metadata})
        self._note(str(md["uid"]), due)
        return name

    def _note(self, uid: str, due: float) -> None:
        self._due[uid] = min(due, self._due.get(uid, due))

    async def refresh(self, pod: JSON, volumes: list[str]) -> float | None:
        """Renew the pod's tokens that are due; seconds until the next renewal (None: no tokens)."""
        if not volumes:
            return None
        uid = str(pod["metadata"]["uid"])
        due = self._due.get(uid)
        if due is None:
            due = await self._recorded_due(pod, volumes)
        now = self.clock.now()
        if due > now:
            self._due[uid] = due
            return due - now
        self._due.pop(uid, None)
        for volume in volumes:
            await self.ensure(pod, volume)
        return max(self._due.get(uid, now) - now, 0.0)

    async def _recorded_due(self, pod: JSON, volumes: list[str]) -> float:
        """After a restart: the earliest renewal time written on the pod's Secrets (now if unknown)."""
        dues = []
        for volume in volumes:
            try:
                secret = await self.target.get(kinds.SECRETS, secret_name(pod, volume), self.namespace)
            except NotFound:
                return self.clock.now()
            when = try_parse_time((secret["metadata"].get("annotations") or {}).get(REFRESH_AT))
            dues.append(when if when is not None else self.clock.now())
        return min(dues)

    def forget(self, uid: str) -> None:
        self._due.pop(uid, None)

    async def delete(self, pod: JSON, volumes: list[str]) -> None:
        self.forget(str(pod["metadata"]["uid"]))
        for volume in volumes:
            try:
                await self.target.delete(kinds.SECRETS, secret_name(pod, volume), self.namespace)
            except NotFound:
                pass
