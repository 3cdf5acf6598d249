"""Uploaded files in the wiki: downloaded from drive within a size cap and a time limit, then read.

The bytes go to a spooled temporary file (memory up to a few MB, then disk), so a 100 MB PDF is
not held in memory while pypdf reads it page by page. Too big, too slow, or not readable: the page
is skipped with the reason (`retrieval.sources.PageSkipped`), never failed; a download the server
refuses or breaks off is a failure like any other (retried by the next sync).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from connectors.feishu.wiki.extract import Unreadable, extract_text, file_kind
from connectors.feishu.wiki.download import TooLarge
from retrieval.sources import PageSkipped

if TYPE_CHECKING:
    from connectors.feishu.wiki.client import WikiClient

DOWNLOAD = "/open-apis/drive/v1/files/{token}/download"
SPOOL_BYTES = 4 << 20


@dataclass(frozen=True)
class FileLimits:
    max_bytes: int = 100 * 1_000_000
    timeout_seconds: float = 120.0  # download and reading together


def read_file(client: WikiClient, token: str, title: str, limits: FileLimits) -> str:
    """The text of the drive file `token` (named `title` in the wiki), or `PageSkipped` with the reason."""
    deadline = time.monotonic() + limits.timeout_seconds
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as f:
        try:
            got = client.download(f"download file {token}", DOWNLOAD.format(token=quote(token, safe="")), f,
                                  limits.max_bytes, deadline)
        except TooLarge as exc:
            raise PageSkipped(f"file {exc}") from None
        except TimeoutError as exc:
            raise PageSkipped(f"file download took longer than {limits.timeout_seconds:.0f} s ({exc})") from None
        f.seek(0)
        name = title if file_kind(title, b"") else (got.name or title)
        try:
            return extract_text(f, name, deadline)
        except Unreadable as exc:
            raise PageSkipped(str(exc)) from None
