"""Building the program's parts from the settings: the one place that knows which ones are configured.

The answering core takes its parts ready-made (an index, a generator or none); this module picks them:
the embedded index or a Qdrant server, Claude or extractive answers, and the wiki source. It is part of
the composition root, so it may import a connector (lazily, where it is needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.answering.wikibot import WikiBot
from bot.app.settings import Settings
from retrieval.embedders import Embedder, make_embedder
from retrieval.index import WikiIndex
from retrieval.index import open_index as open_retrieval_index
from retrieval.sources import WikiSource

if TYPE_CHECKING:
    from bot.answering.llm import ClaudeGenerator


def build_embedder(settings: Settings) -> Embedder:
    e = settings.embedding
    return make_embedder(e.kind, e.fastembed_model, e.specific_model_path, e.batch_size)


def open_index(settings: Settings, embedder: Embedder | None = None, rebuild: bool = False,
               check: bool = True) -> WikiIndex:
    """The configured index (embedded or server), checked against the configured embedder.

    `check=False` skips creating/checking the collections, for a caller that rebuilds them itself.
    """
    embedder = embedder or build_embedder(settings)
    q, r = settings.qdrant, settings.retrieval
    return open_retrieval_index(settings.data_dir, embedder, url=q.url, api_key=q.api_key.get_secret_value(),
                                prefix=q.collection_prefix, chunk_size=r.chunk_size, chunk_overlap=r.chunk_overlap,
                                fusion=r.fusion, rebuild=rebuild, check=check, compact_above_mb=q.compact_above_mb)


def build_generator(settings: Settings) -> "ClaudeGenerator | None":
    """Claude when an API key is configured; None means extractive answers."""
    if not settings.llm_enabled:
        return None
    from bot.answering.llm import ClaudeGenerator

    a = settings.anthropic
    return ClaudeGenerator(a.api_key.get_secret_value(), settings.wikibot.model, base_url=a.base_url,
                           max_tokens=a.max_tokens, timeout_seconds=a.timeout_seconds, max_retries=a.max_retries,
                           first_text_seconds=a.first_text_seconds, answer_deadline_seconds=a.answer_deadline_seconds,
                           max_retry_after_seconds=a.max_retry_after_seconds)


def open_bot(settings: Settings, *, embedder: Embedder | None = None) -> WikiBot:
    """The answering core with the configured index and generator."""
    return WikiBot(settings, open_index(settings, embedder), generator=build_generator(settings))


def wiki_source(settings: Settings) -> WikiSource:
    """The configured Feishu wiki."""
    if not settings.feishu.enabled:
        raise ValueError("The Feishu app is not configured: set FEISHU_APP_ID and FEISHU_APP_SECRET "
                         "(or [feishu] app_id / app_secret in the config file).")
    from connectors.feishu.wiki import FeishuWikiSource

    return FeishuWikiSource.from_settings(settings.feishu, page_permissions=settings.access.mode == "asker")
