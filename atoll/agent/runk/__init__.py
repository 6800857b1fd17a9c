"""RunK: the agent runtime that forwards this node's pods into a namespace of the institution's
Kubernetes cluster (Kuscia's ``runtime: runk``), built on the pod-mirroring core
:mod:`atoll.mirror` shared with compute pooling. See docs/kubernetes.md."""
