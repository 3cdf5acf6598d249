"""The `[feishu]` config section (FEISHU_* variables): it lives with the connector that reads it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from bot.infra.config import Section


class FeishuSection(Section):
    app_id: str = ""
    app_secret: SecretStr = SecretStr("")
    domain: str = "https://open.feishu.cn"
    event_mode: Literal["ws", "webhook"] = "ws"
    verification_token: SecretStr = SecretStr("")
    encrypt_key: SecretStr = SecretStr("")
    wiki_spaces: list[str] = Field(default_factory=list)
    wiki_url_base: str = ""
    docs_requests_per_second: float = Field(4.0, gt=0)
    wiki_file_max_mb: float = Field(100.0, gt=0)  # uploaded files bigger than this are skipped
    wiki_file_timeout_seconds: float = Field(120.0, gt=0)  # download + text extraction, per file

    @field_validator("wiki_spaces", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.app_secret.get_secret_value())
