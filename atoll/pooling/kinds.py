"""ResourceDefs of Kubeocean's CRDs and of the built-in kinds pooling uses beyond ``atoll.api.kinds``."""

from __future__ import annotations

from atoll.api.crd import crd_to_resource_defs, pooling_crds
from atoll.api.registry import ResourceDef

_DEFS = {rd.plural: rd for crd in pooling_crds() for rd in crd_to_resource_defs(crd)}
CLUSTERBINDINGS: ResourceDef = _DEFS["clusterbindings"]
RESOURCELEASINGPOLICIES: ResourceDef = _DEFS["resourceleasingpolicies"]
PRIORITYCLASSES = ResourceDef(
    "scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", False, ("pc",)
)
