"""ResourceDefs of the fleet's kinds: Kairship's Instance and the Karmada kinds inside instances."""

from __future__ import annotations

from atoll.api.crd import crd_to_resource_defs, fleet_crds, karmada_crds
from atoll.api.registry import ResourceDef

_DEFS = {rd.plural: rd for crd in (*fleet_crds(), *karmada_crds()) for rd in crd_to_resource_defs(crd)}
INSTANCES: ResourceDef = _DEFS["instances"]
CLUSTERS: ResourceDef = _DEFS["clusters"]
PROPAGATION_POLICIES: ResourceDef = _DEFS["propagationpolicies"]
CLUSTER_PROPAGATION_POLICIES: ResourceDef = _DEFS["clusterpropagationpolicies"]
OVERRIDE_POLICIES: ResourceDef = _DEFS["overridepolicies"]
CLUSTER_OVERRIDE_POLICIES: ResourceDef = _DEFS["clusteroverridepolicies"]
RESOURCE_BINDINGS: ResourceDef = _DEFS["resourcebindings"]
CLUSTER_RESOURCE_BINDINGS: ResourceDef = _DEFS["clusterresourcebindings"]
WORKS: ResourceDef = _DEFS["works"]
RESOURCE_INTERPRETER_CUSTOMIZATIONS: ResourceDef = _DEFS["resourceinterpretercustomizations"]
