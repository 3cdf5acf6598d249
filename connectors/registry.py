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
    from bot.adapters import Adapter, FrontConnection, QuickAckDoor
    from bot.answering.wikibot import WikiBot


@dataclass(frozen=True)
class Platform:
    name: str  # the config section, `[name]` / `NAME_*`
    section: type[Section]  # with an `enabled` property
    adapter_module: str  # has `build_adapter(section, bot) -> Adapter`, imported only when enabled
    keys_hint: str  # what to set to enable it
    front_module: str  # light, for serve's front process: `front_doors(section) -> {path: QuickAckDoor}` and
    #                    `front_connections(section) -> [FrontConnection]`


PLATFORMS: tuple[Platform, ...] = (
    Platform("feishu", FeishuSection, "connectors.feishu.adapter", "FEISHU_APP_ID and FEISHU_APP_SECRET",
             "connectors.feishu.front"),
    Platform("slack", SlackSection, "connectors.slack.adapter",
             "SLACK_BOT_TOKEN with SLACK_APP_TOKEN (socket mode) or SLACK_SIGNING_SECRET (http mode)",
             "connectors.slack.front"),
)


def enabled(settings: Any) -> list[Platform]:
    return [p for p in PLATFORMS if getattr(settings, p.name).enabled]


def build_adapters(settings: Any, bot: "WikiBot", *, connect: bool = True) -> list["Adapter"]:
    """The adapters of every configured platform (each module imported only when it is configured);
    `connect=False`: serve's front holds the platforms' connections (`front_connections`)."""
    return [importlib.import_module(p.adapter_module).build_adapter(getattr(settings, p.name), bot, connect=connect)
            for p in enabled(settings)]


def front_doors(settings: Any) -> dict[str, "QuickAckDoor"]:
    """The quick acknowledgements of every configured platform, by HTTP path (for `serve`'s front)."""
    doors: dict[str, QuickAckDoor] = {}
    for p in enabled(settings):
        doors.update(importlib.import_module(p.front_module).front_doors(getattr(settings, p.name)))
    return doors


def front_connections(settings: Any) -> list["FrontConnection"]:
    """The connections (long connection, Socket Mode) of every configured platform, for `serve`'s front."""
    return [c for p in enabled(settings)
            for c in importlib.import_module(p.front_module).front_connections(getattr(settings, p.name))]


def missing_platform_keys(settings: Any) -> str | None:
    """None if at least one platform is configured, else a message naming the keys to set."""
    if enabled(settings):
        return None
    hints = ", and/or ".join(f"{p.keys_hint} for {p.name.capitalize()}" for p in PLATFORMS)
    return f"no chat platform is configured: set {hints} (or the same keys in config/wikibot.toml)"
