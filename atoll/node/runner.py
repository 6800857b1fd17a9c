"""Runs the node of a configuration's mode (master, lite; autonomy as it arrives)."""

from __future__ import annotations

from atoll.node.config import ConfigError, NodeConfig


async def run_node(config: NodeConfig) -> None:
    if config.mode == "master" and config.apiserver_external:
        from atoll.node.external import ExternalMaster

        await ExternalMaster(config).run()
        return
    if config.mode == "master":
        from atoll.node.master import MasterNode
        from atoll.node.run_lock import data_dir_lock

        with data_dir_lock(config.data_dir):
            await MasterNode(config).run()
        return
    if config.mode == "lite":
        from atoll.node.lite import LiteNode

        await LiteNode(config).run()
        return
    raise ConfigError(f"mode {config.mode!r} is not available yet in this build")
