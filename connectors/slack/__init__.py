"""The Slack bot: events in, Block Kit out. `connectors.slack.adapter.build_adapter(settings, bot)` is what
`serve` calls. Nothing is imported here: `serve`'s front process and the settings read this package's light
modules (settings, request checks) without loading slack-bolt or the answering core."""
