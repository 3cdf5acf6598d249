"""Feishu (Lark) wiki pages in: the wiki and docx Open APIs read through lark-oapi."""

from connectors.feishu.wiki.docx import blocks_to_markdown
from connectors.feishu.wiki.client import FeishuApiError, FeishuAuthError, RateLimiter, WikiClient, WikiNode
from connectors.feishu.wiki.source import FeishuWikiSource

__all__ = ["FeishuApiError", "FeishuAuthError", "FeishuWikiSource", "RateLimiter", "WikiClient", "WikiNode",
           "blocks_to_markdown"]
