"""Where chat platform adapters are registered: one line per platform."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from bot.adapters import Adapter
    from bot.core import WikiBot


def build_adapters(settings: Settings, bot: "WikiBot") -> list["Adapter"]:
    adapters: list["Adapter"] = []
    if settings.feishu.enabled:
        from connectors.feishu.adapter import build_adapter as feishu

        adapters.append(feishu(settings, bot))
    if settings.slack.enabled:
        from connectors.slack.adapter import build_adapter as slack

        adapters.append(slack(settings, bot))
    return adapters


def missing_platform_keys(settings: Settings) -> str | None:
    """None if at least one platform is configured, else a message naming the keys to set."""
    if settings.feishu.enabled or settings.slack.enabled:
        return None
    return ("no chat platform is configured: set FEISHU_APP_ID and FEISHU_APP_SECRET for Feishu, and/or "
            "SLACK_BOT_TOKEN with SLACK_APP_TOKEN (socket mode) or SLACK_SIGNING_SECRET (http mode) for Slack "
            "(or the same keys in config/wikibot.toml)")
