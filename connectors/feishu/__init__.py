"""The Feishu (Lark) bot: events in, cards out. `connectors.feishu.adapter.build_adapter(settings, bot)` is
what `serve` calls. Nothing is imported here: `serve`'s front process and the settings read this package's
light modules (settings, events, webhook checks) without loading lark-oapi or the answering core."""
