"""Retrieval core: pages, chunks, embedders, the Qdrant index and search.

Knows nothing of chats or platforms.
"""

from retrieval.pages import Page
from retrieval.chunker import Chunk, chunk_page

__all__ = ["Page", "Chunk", "chunk_page"]
