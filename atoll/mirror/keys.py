"""Labels and annotations that record a mapping between a source and a target object.

The names are Kubeocean's (``kubeocean.io/…``) so that tools written for Kubeocean read Atoll's
objects unchanged; RunK uses the same keys. Forward pointers live on the source object, backward
pointers on the target object; both are checked before a target object is adopted or deleted.
"""

from __future__ import annotations

PREFIX = "kubeocean.io/"

MANAGED_BY = PREFIX + "managed-by"
MANAGED_BY_VALUE = "kubeocean"

# source pod → target pod (forward), written before each step (checkpoints)
PHYSICAL_POD_NAMESPACE = PREFIX + "physical-pod-namespace"
PHYSICAL_POD_NAME = PREFIX + "physical-pod-name"
PHYSICAL_POD_UID = PREFIX + "physical-pod-uid"

# target pod → source pod (backward)
VIRTUAL_POD_NAMESPACE = PREFIX + "virtual-pod-namespace"
VIRTUAL_POD_NAME = PREFIX + "virtual-pod-name"
VIRTUAL_POD_UID = PREFIX + "virtual-pod-uid"
VIRTUAL_NODE_NAME = PREFIX + "virtual-node-name"
EXPECTED_METADATA = PREFIX + "expected-metadata"
LAST_SYNC_TIME = PREFIX + "last-sync-time"

# labels on target pods
VIRTUAL_NAMESPACE_LABEL = PREFIX + "virtual-namespace"
WORKLOAD_TYPE = PREFIX + "workload-type"
WORKLOAD_NAME = PREFIX + "workload-name"

# dependency objects (ConfigMaps, Secrets, PVCs, PVs)
PHYSICAL_NAME = PREFIX + "physical-name"
PHYSICAL_NAMESPACE = PREFIX + "physical-namespace"
VIRTUAL_NAME = PREFIX + "virtual-name"
VIRTUAL_NAMESPACE = PREFIX + "virtual-namespace"
SERVICE_ACCOUNT_TOKEN = PREFIX + "service-account-token"
USED_BY_PV = PREFIX + "used-by-pv"

FORWARD_POD_KEYS = (PHYSICAL_POD_NAMESPACE, PHYSICAL_POD_NAME, PHYSICAL_POD_UID)
BACKWARD_POD_KEYS = (VIRTUAL_POD_NAMESPACE, VIRTUAL_POD_NAME, VIRTUAL_POD_UID)


def synced_by(cluster_id: str) -> str:
    """Label on a source dependency copied to the target cluster ``cluster_id``."""
    return f"{PREFIX}synced-by-{cluster_id}"


def finalizer_for(cluster_id: str) -> str:
    """Finalizer on a source dependency: its target copy must be removed first."""
    return f"{PREFIX}finalizer-{cluster_id}"


def deleting_for(cluster_id: str) -> str:
    """Annotation marking source objects during a binding's teardown."""
    return f"{PREFIX}deleting-{cluster_id}"
