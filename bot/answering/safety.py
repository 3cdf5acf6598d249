"""Wiki text is data, not instructions: a reply never carries a link that is not a source page's URL."""

from __future__ import annotations

import re
from typing import Iterable

_MD_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BARE_URL = re.compile(r"(?:https?|ftp|file)://[^\s<>()\[\]{}\"'，。！？、）]+", re.I)
_WWW = re.compile(r"\bwww\.[^\s<>()\[\]{}\"'，。！？、）]+", re.I)


def strip_foreign_links(text: str, allowed_urls: Iterable[str]) -> str:
    """Remove every URL not in `allowed_urls`; a markdown link keeps its label, a bare URL goes."""
    allowed = {u.rstrip("/") for u in allowed_urls if u}

    def ok(url: str) -> bool:
        return url.rstrip("/.,;") in allowed

    def md(m: re.Match[str]) -> str:
        return m.group(0) if ok(m.group(2)) else m.group(1)

    text = _MD_LINK.sub(md, text)
    text = _BARE_URL.sub(lambda m: m.group(0) if ok(m.group(0)) else "[link removed]", text)
    text = _WWW.sub(lambda m: m.group(0) if ok(m.group(0)) else "[link removed]", text)
    return text
