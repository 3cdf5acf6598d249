"""The chat platforms, one line each: the config section a platform reads and where its adapter lives.

`bot.app` (the composition root) builds the program's settings from these sections and starts the
adapters of the configured platforms; nothing else in `bot/` knows a platform by name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.infra.config import Section
from connectors.feishu.settings import FeishuSection
from connectors.slack.settings import SlackSection

if TYPE_CHECKING:
    from bot.adapters import Adapter
    from bot.answering.wikibot import WikiBot


@dataclass(frozen=True)
class Platform:
    name: str  # the config section, `[name]` / `NAME_*`
    section: type[Section]  # with an `enabled` property
    adapter_module: str  # has `build_adapter(section, bot) -> Adapter`, imported only when enabled
    keys_hint: str  # what to set to enable it


PLATFORMS: tuple[Platform, ...] = (
    Platform("feishu", FeishuSection, "connectors.feishu.adapter", "FEISHU_APP_ID and FEISHU_APP_SECRET"),
    Platform("slack", SlackSection, "connectors.slack.adapter",
             "SLACK_BOT_TOKEN with SLACK_APP_TOKEN (socket mode) or SLACK_SIGNING_SECRET (http mode)"),
)


def enabled(settings: Any) -> list[Platform]:
    return [p for p in PLATFORMS if getattr(settings, p.name).enabled]


def build_adapters(settings: Any, bot: "WikiBot") -> list["Adapter"]:
    """The adapters of every configured platform (each module imported only when it is configured)."""
    return [importlib.import_module(p.adapter_module).build_adapter(getattr(settings, p.name), bot)
            for p in enabled(settings)]


def missing_platform_keys(settings: Any) -> str | None:
    """None if at least one platform is configured, else a message naming the keys to set."""
    if enabled(settings):
        return None
    hints = ", and/or ".join(f"{p.keys_hint} for {p.name.capitalize()}" for p in PLATFORMS)
    return f"no chat platform is configured: set {hints} (or the same keys in config/wikibot.toml)"
