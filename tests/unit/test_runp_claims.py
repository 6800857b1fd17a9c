"""The RunP agent mounts a claim's volume only when the volume names that claim (kubelet's check):
a claim whose ``volumeName`` (and even a forged ``Bound`` status) points at another claim's volume
never gets its directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atoll.agent.runp.claims import VolumeNotReady, claim_dir
from atoll.api.errors import NotFound

JSON = dict[str, Any]


class Objects:
    """The two reads ``claim_dir`` makes, answered from a dict (the API itself is not under test)."""

    def __init__(self, objects: dict[tuple[str, str | None, str], JSON]) -> None:
        self.objects = objects

    async def get(self, rd: Any, name: str, namespace: str | None = None) -> JSON:
        try:
            return self.objects[(rd.plural, namespace, name)]
        except KeyError:
            raise NotFound(f"{rd.plural} {name!r} not found") from None


def _world(tmp_path: Path, ref: JSON) -> tuple[Objects, JSON]:
    directory = tmp_path / "data"
    directory.mkdir()
    pv = {"metadata": {"name": "vol"}, "spec": {"hostPath": {"path": str(directory)}, "claimRef": ref}}
    claim = {"metadata": {"name": "data", "namespace": "alice", "uid": "u-alice"},
             "spec": {"volumeName": "vol"}, "status": {"phase": "Bound"}}
    pod = {"metadata": {"name": "p", "namespace": "alice"}, "spec": {"nodeName": "alice-node"}}
    return Objects({("persistentvolumes", None, "vol"): pv, ("persistentvolumeclaims", "alice", "data"): claim}), pod


async def test_the_volume_of_the_claim_is_mounted(tmp_path: Path) -> None:
    client, pod = _world(tmp_path, {"namespace": "alice", "name": "data", "uid": "u-alice"})
    assert await claim_dir(client, pod, "data", tmp_path / "root") == tmp_path / "data"  # type: ignore[arg-type]


@pytest.mark.parametrize("ref", [
    {"namespace": "bob", "name": "data", "uid": "u-bob"},  # another domain's claim
    {"namespace": "alice", "name": "data", "uid": "u-old"},  # a deleted claim of the same name
    {},  # a free volume the controller never bound to this claim
])
async def test_a_volume_bound_to_another_claim_is_never_mounted(tmp_path: Path, ref: JSON) -> None:
    client, pod = _world(tmp_path, ref)
    with pytest.raises(VolumeNotReady, match='persistentvolume "vol" is not bound to claim "data"'):
        await claim_dir(client, pod, "data", tmp_path / "root")  # type: ignore[arg-type]
