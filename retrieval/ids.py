"""Point ids, derived from content so that writing the same thing twice lands on the same point.

Shared by the index (which writes points) and search (which looks page records up), so it lives
on its own: neither imports the other for it.
"""

from __future__ import annotations

import uuid

_NS = uuid.UUID("6f1c2b1e-5d0c-4f5e-9a53-7f2d4e0b9c11")
META_POINT_ID = 0  # the one record of an index's meta collection


def chunk_point_id(page_id: str, text: str, occurrence: int) -> str:
    """A chunk's id: its page, its text and which occurrence of that text on the page it is."""
    return str(uuid.uuid5(_NS, f"{page_id}\x00{text}\x00{occurrence}"))


def page_point_id(page_id: str) -> str:
    """The id of a page's record in the pages collection."""
    return str(uuid.uuid5(_NS, f"page\x00{page_id}"))


def skip_point_id(page_id: str) -> str:
    """The id of a skipped page's note in the meta collection (see `retrieval.sync`)."""
    return str(uuid.uuid5(_NS, f"skipped\x00{page_id}"))
