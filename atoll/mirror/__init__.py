"""The pod-mirroring core: one pod and its dependencies mapped into a namespace of another cluster.

Used by compute pooling (``atoll.pooling``: virtual pods on virtual nodes → physical pods in a
worker cluster) and meant for the agent's RunK runtime (a domain's pods → pods on the
institution's Kubernetes). Everything is generic over two :class:`atoll.client.Client` objects —
the *source* cluster where the pod was created and the *target* cluster where it runs:

- :mod:`atoll.mirror.names`: deterministic target names (``name[:30]-md5(ns/name)``);
- :mod:`atoll.mirror.keys`: the mapping labels/annotations (Kubeocean's ``kubeocean.io/`` keys);
- :mod:`atoll.mirror.deps`: which ConfigMaps/Secrets/PVCs/service-account tokens a pod uses, and
  rewriting those references to target names;
- :mod:`atoll.mirror.podspec`: the target pod built from the source pod;
- :mod:`atoll.mirror.objects`: dependency copies kept in sync and removed when unused;
- :mod:`atoll.mirror.podsync`: the checkpointed create/adopt/delete state machine;
- :mod:`atoll.mirror.status`: target status → source status;
- :mod:`atoll.mirror.logs`: source ``pods/log`` requests answered from the target cluster.
"""
