"""The `[slack]` config section (SLACK_* variables): it lives with the connector that reads it."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from bot.infra.config import Section


class SlackSection(Section):
    bot_token: SecretStr = SecretStr("")
    app_token: SecretStr = SecretStr("")
    signing_secret: SecretStr = SecretStr("")
    api_url: str = "https://slack.com/api/"
    mode: Literal["socket", "http"] = "socket"
    ask_command: str = "/ask"
    ref_command: str = "/ref"

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token.get_secret_value())

    @property
    def commands(self) -> dict[str, str]:
        """The slash commands as Slack sends them: {"ask": "/ask", "ref": "/ref"}."""
        return {"ask": command_name(self.ask_command), "ref": command_name(self.ref_command)}


def command_name(name: str) -> str:
    return "/" + name.strip().lstrip("/")
