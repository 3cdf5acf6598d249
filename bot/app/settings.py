"""The program's settings: the core's sections plus one section per registered chat platform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, create_model

from bot.infra import config
from connectors.registry import PLATFORMS

ConfigError = config.ConfigError

Settings: type[config.Settings] = create_model(  # type: ignore[call-overload]
    "Settings", __base__=config.Settings,
    **{p.name: (p.section, Field(default_factory=p.section)) for p in PLATFORMS})


def load_settings(config_file: Path | str | None = None, environ: dict[str, str] | None = None,
                  **overrides: Any) -> Any:
    """The settings from the environment and the config file (see `bot.infra.config.load_settings`)."""
    return config.load_settings(config_file, environ, Settings, **overrides)
