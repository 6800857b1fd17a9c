"""Start-up of a RunK agent: the institution cluster's client, the capacity, the permission check."""

from __future__ import annotations

import dataclasses

from atoll.agent.config import AgentConfig
from atoll.agent.runk.capacity import resolve_capacity
from atoll.agent.runk.runtime import RunK
from atoll.agent.runk.settings import RunKSettings, RunKSettingsError
from atoll.client import Client, ConfigError, in_cluster_config

TARGET_CONNECTIONS = 8


def institution_client(settings: RunKSettings) -> Client:
    """``runk.kubeconfigFile``, or the in-cluster ServiceAccount when it is empty (Kuscia)."""
    try:
        if settings.kubeconfig_file:
            return Client.from_kubeconfig(settings.kubeconfig_file, user_agent="atoll-runk",
                                          pool_size=TARGET_CONNECTIONS)
        return Client.from_config(in_cluster_config(), user_agent="atoll-runk", pool_size=TARGET_CONNECTIONS)
    except ConfigError as exc:
        field = "runk.kubeconfigFile" if settings.kubeconfig_file else "runk.kubeconfigFile (empty: in-cluster)"
        raise RunKSettingsError(f"{field}: {exc}") from None


async def prepare_runk(runtime: RunK) -> AgentConfig:
    """The agent config with the resolved capacity; the first permission check is done."""
    await runtime.check_permissions()
    capacity = await resolve_capacity(runtime.target, runtime.settings.namespace, runtime.config.capacity)
    return dataclasses.replace(runtime.config, capacity=capacity)
