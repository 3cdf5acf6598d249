"""Streaming a drive file: lark-oapi's `download` reads a whole body into memory with no limit, so the
wiki client streams it itself (`WikiClient.download`), into a file, stopping at a size cap or a deadline."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import IO

import requests

from connectors.feishu.openapi import Answer

DOWNLOAD_CHUNK = 1 << 20


class TooLarge(Exception):
    """A download passed its size cap; nothing more was read."""

    def __init__(self, size: int, cap: int) -> None:
        super().__init__(f"larger than the {cap / 1e6:.3g} MB cap" + (f" ({size / 1e6:.3g} MB)" if size else ""))
        self.size, self.cap = size, cap


@dataclass(frozen=True)
class Downloaded:
    name: str  # from Content-Disposition, may be empty
    size: int


def stream_to(dest: IO[bytes], resp: requests.Response, max_bytes: int, deadline: float) -> Downloaded:
    """The body of a 200 answer into `dest`: `TooLarge` past `max_bytes`, `TimeoutError` past `deadline`."""
    declared = int(resp.headers.get("content-length") or 0)
    if declared > max_bytes:
        raise TooLarge(declared, max_bytes)
    size = 0
    for chunk in resp.iter_content(DOWNLOAD_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(0, max_bytes)
        if time.monotonic() > deadline:
            raise TimeoutError(f"download not finished in time ({size / 1e6:.1f} MB read)")
        dest.write(chunk)
    return Downloaded(_file_name(resp.headers.get("content-disposition", "")), size)


def _file_name(disposition: str) -> str:
    """The file name of a Content-Disposition header (RFC 6266 `filename*=UTF-8''…` preferred)."""
    from email.message import Message
    from urllib.parse import unquote

    if not disposition:
        return ""
    msg = Message()
    msg["content-disposition"] = disposition
    name = msg.get_filename() or ""
    return unquote(name) if "%" in name else name


def error_answer(resp: requests.Response) -> Answer:
    """A non-file answer of the download API (an error, or a rate limit) as the policy reads it."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict) or "code" not in body:
        body = {"code": -1, "msg": f"unexpected answer (HTTP {resp.status_code})"}
    code = body.get("code")
    return Answer(resp.status_code, {k.lower(): v for k, v in resp.headers.items()},
                  int(code) if isinstance(code, int) or str(code).lstrip("-").isdigit() else -1,
                  str(body.get("msg") or ""), dict(body.get("data") or {}), body)
