"""Compute pooling (Kubeocean): worker clusters' nodes as virtual nodes of a computing cluster.

- :mod:`atoll.pooling.manager` — ClusterBinding lifecycle, leader-elected on the computing master;
- :mod:`atoll.pooling.supervisor` — one supervised, isolated syncer per binding;
- :mod:`atoll.pooling.syncer` — informers on both clusters and the controllers of one binding:
  :mod:`~atoll.pooling.bottomup` (physical node → vnode, capacity, windows, node deletion),
  :mod:`~atoll.pooling.topdown` (virtual pod → physical pod through :mod:`atoll.mirror`),
  :mod:`~atoll.pooling.policies` (ResourceLeasingPolicy status), :mod:`~atoll.pooling.leases`;
- :mod:`atoll.pooling.proxier` — the kubelet log endpoint of the vnodes;
- :mod:`atoll.pooling.node` — what a master (or ``atoll pool-syncer``) runs.

See docs/pooling.md for the resources, names and the differences from Kubeocean.
"""
