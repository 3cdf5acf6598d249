"""The Feishu (Lark) bot: events in, cards out. `build_adapter(settings, bot)` is what `serve` calls."""

from connectors.feishu.adapter import FeishuAdapter, build_adapter

__all__ = ["FeishuAdapter", "build_adapter"]
