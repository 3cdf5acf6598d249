"""The Slack bot: events in, Block Kit out. `build_adapter(settings, bot)` is what `serve` calls."""

from connectors.slack.adapter import SlackAdapter, build_adapter

__all__ = ["SlackAdapter", "build_adapter"]
