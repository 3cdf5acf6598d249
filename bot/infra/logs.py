"""Logging for `serve`: one JSON line per record, with secrets scrubbed from every line.

Scrubbing happens in the handler, so it covers third-party loggers too (lark-oapi,
slack-sdk and httpx print headers and bodies at DEBUG).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Iterable

_TOKEN_PATTERNS = re.compile(
    r"(?:xox[abposr]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|sk-ant-[A-Za-z0-9_-]{6,}"
    r"|\b[tua]-[A-Za-z0-9_]{16,}|Bearer\s+[A-Za-z0-9._~+/=-]{8,})"
)
_EXTRA_SKIP = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class SecretScrubber(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return _TOKEN_PATTERNS.sub("***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = self.scrub(record.getMessage())
        record.msg, record.args = msg, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _EXTRA_SKIP and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _EXTRA_SKIP and not key.startswith("_"):
                out[key] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def configure(level: str, secrets: Iterable[str], json_lines: bool = True, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(SecretScrubber(secrets))
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def secret_values(settings: object) -> list[str]:
    """Every SecretStr value in the settings."""
    from pydantic import BaseModel, SecretStr

    out: list[str] = []

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                walk(value)

    if isinstance(settings, BaseModel):
        walk(settings)
    return [s for s in out if s]
