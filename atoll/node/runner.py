"""Runs the node of a configuration's mode (master now; lite and autonomy as they arrive)."""

from __future__ import annotations

from atoll.node.config import ConfigError, NodeConfig


async def run_node(config: NodeConfig) -> None:
    if config.mode == "master":
        from atoll.node.master import MasterNode

        await MasterNode(config).run()
        return
    raise ConfigError(f"mode {config.mode!r} is not available yet in this build")
