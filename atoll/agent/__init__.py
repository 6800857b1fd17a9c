"""The node agent (Kuscia ``pkg/agent``, a trimmed kubelet): Node registration and heartbeats,
pods of this node run by a runtime (``runp``: local processes), and the kubelet log endpoint.

Layer: imports only ``runtime``, ``client`` and ``api``. Entry point: :class:`atoll.agent.agent.Agent`.
"""
