"""Kubeocean's names: API group, labels, annotations, taints, finalizers, namespaces, timers.

Kept identical to ``api/v1beta1/constants.go`` of gocrane/kubeocean (see docs/pooling.md), so
selectors, dashboards and runbooks written for Kubeocean work against Atoll.
"""

from __future__ import annotations

from atoll.mirror.keys import MANAGED_BY, MANAGED_BY_VALUE, PREFIX

GROUP = "cloud.tencent.com"
VERSION = "v1beta1"
SYSTEM_NAMESPACE = "kubeocean-system"
KUBECONFIG_KEY = "kubeconfig"
DEFAULT_PRIORITY_CLASS = "kubeocean-default"
DEFAULT_PRIORITY_VALUE = -10000
MANAGER_LEASE = "kubeocean-manager-leader"

# labels on virtual nodes
LABEL_CLUSTER_BINDING = PREFIX + "cluster-binding"
LABEL_CLUSTER_ID = PREFIX + "physical-cluster-id"
LABEL_PHYSICAL_NODE_NAME = PREFIX + "physical-node-name"
LABEL_PHYSICAL_NODE_UID = PREFIX + "physical-node-uid"
LABEL_PHYSICAL_NODE_INNER_IP = PREFIX + "physical-node-innerip"
LABEL_PROXIER_PORT = PREFIX + "proxier_port"
LABEL_POLICY_APPLIED = PREFIX + "policy-applied"  # on the physical node
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
BETA_INSTANCE_TYPE = "beta.kubernetes.io/instance-type"
VIRTUAL_INSTANCE_TYPES = ("external", "vnode", "eklet")

# annotations on virtual nodes
ANN_LAST_SYNC_TIME = PREFIX + "last-sync-time"
ANN_POLICIES_APPLIED = PREFIX + "policies-applied"
ANN_POLICY_DETAILS = PREFIX + "policy-details"
ANN_EXPECTED_METADATA = PREFIX + "expected-metadata"
ANN_PROMETHEUS_URL = PREFIX + "prometheus-url"
ANN_DELETION_TAINT_TIME = PREFIX + "deletion-taint-time"
ANN_RUNNING_DAEMONSET = PREFIX + "running-daemonset"

# taints
TAINT_VNODE = PREFIX + "vnode"
TAINT_OUT_OF_WINDOW = PREFIX + "out-of-time-windows"
TAINT_PHYSICAL_UNSCHEDULABLE = PREFIX + "physical-node-unschedulable"
TAINT_VNODE_DELETING = PREFIX + "vnode-deleting"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

# finalizers
FINALIZER_VNODE = PREFIX + "vnode"
FINALIZER_MANAGER = PREFIX + "clusterbinding-manager"
FINALIZER_SYNCER = PREFIX + "clusterbinding-syncer"
FINALIZER_POLICY = "policy.kubeocean.io/finalizer"

# ClusterBinding status
PHASE_PENDING, PHASE_READY, PHASE_FAILED = "Pending", "Ready", "Failed"
COND_READY, COND_CONNECTED, COND_SYNCER_READY, COND_PROXIER_READY = "Ready", "Connected", "SyncerReady", "ProxierReady"

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", SYSTEM_NAMESPACE, "kubeocean-fake")

__all__ = ["MANAGED_BY", "MANAGED_BY_VALUE", "PREFIX"]
