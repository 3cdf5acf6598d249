"""A Feishu wiki as a `retrieval.sources.WikiSource`: node trees in, page stubs and pages out.

A page's id is its document's `obj_token`: it survives moves inside and between spaces (the node
is the same document wherever it sits), and a shortcut carries its target's `obj_token`, so one
document is one page however many nodes point at it. The breadcrumb and URL come from the node
the document sits at, so a moved page keeps one copy with its new place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from retrieval.sources import Listing, PageStub
from connectors.feishu.wiki.docx import blocks_to_markdown
from connectors.feishu.wiki.client import FeishuApiError, FeishuAuthError, WikiClient, WikiNode
from retrieval.pages import Page

if TYPE_CHECKING:
    from connectors.feishu.settings import FeishuSection

log = logging.getLogger(__name__)

READABLE = {"docx"}
SHORTCUT = "shortcut"


@dataclass(frozen=True)
class _Placed:
    node: WikiNode
    path: tuple[str, ...]


class FeishuWikiSource:
    source_id = "feishu"

    def __init__(self, client: WikiClient, spaces: Sequence[str] = (), url_base: str = "") -> None:
        self.client = client
        self.spaces = list(spaces)
        self.url_base = url_base or "https://feishu.cn/wiki/"
        self._nodes: dict[str, WikiNode] = {}

    @classmethod
    def from_settings(cls, feishu: FeishuSection) -> FeishuWikiSource:
        client = WikiClient(feishu.app_id, feishu.app_secret.get_secret_value(), feishu.domain,
                            docs_requests_per_second=feishu.docs_requests_per_second)
        if not feishu.wiki_url_base:
            log.warning("FEISHU_WIKI_URL_BASE is not set; page links use https://feishu.cn/wiki/<node>")
        return cls(client, feishu.wiki_spaces, feishu.wiki_url_base)

    # ----- listing -----------------------------------------------------------------------------
    def list_pages(self) -> Listing:
        """Every node of every synced space. A branch that cannot be listed makes the listing
        incomplete (so the sync deletes nothing) but the rest is still listed and synced."""
        errors: list[str] = []
        try:
            spaces = self.spaces or [s.space_id for s in self.client.spaces()]
        except FeishuAuthError:
            raise
        except FeishuApiError as exc:
            return Listing([], complete=False, errors=[str(exc)])
        placed: list[_Placed] = []
        for space in spaces:
            placed += self._walk(space, errors)
        return Listing(self._stubs(placed), complete=not errors, errors=errors)

    def _walk(self, space_id: str, errors: list[str]) -> list[_Placed]:
        """Depth first, children in the wiki's order; each node with its parents' titles."""
        out: list[_Placed] = []
        seen: set[str] = set()
        stack: list[tuple[str, tuple[str, ...]]] = [("", ())]
        while stack:
            parent, path = stack.pop()
            try:
                kids = list(self.client.children(space_id, parent))
            except FeishuAuthError:
                raise
            except FeishuApiError as exc:
                log.warning("listing failed: %s", exc)
                errors.append(str(exc))
                continue
            for n in kids:
                if n.node_token in seen:
                    continue
                seen.add(n.node_token)
                out.append(_Placed(n, path))
            for n in reversed(kids):
                if n.has_child:
                    stack.append((n.node_token, path + (n.title,)))
        return out

    def _stubs(self, placed: list[_Placed]) -> list[PageStub]:
        origins = {p.node.node_token for p in placed if p.node.node_type != SHORTCUT}
        stubs: list[PageStub] = []
        nodes: dict[str, WikiNode] = {}
        for p in placed:
            n = p.node
            if n.node_type == SHORTCUT:
                if n.origin_node_token in origins:
                    continue  # indexed once, where the document itself sits
                # its target lies outside the synced spaces: reported, not indexed (not ours to expose)
                stubs.append(self._stub(p, skip_reason="shortcut"))
                continue
            if n.obj_type not in READABLE:
                stubs.append(self._stub(p, skip_reason=n.obj_type or "unknown"))
                continue
            nodes[n.obj_token] = n
            stubs.append(self._stub(p))
        self._nodes = nodes
        return stubs

    def _stub(self, p: _Placed, skip_reason: str = "") -> PageStub:
        n = p.node
        return PageStub(
            id=n.obj_token or n.node_token, title=n.title or "(untitled)", space=n.space_id, path=p.path,
            url=self.url_base + n.node_token, edited_at=_time(n.obj_edit_time),
            version=f"{n.obj_edit_time}:{n.node_token}", kind=n.obj_type, skip_reason=skip_reason,
        )

    # ----- content -----------------------------------------------------------------------------
    def fetch_page(self, stub: PageStub) -> Page:
        node = self._nodes.get(stub.id)
        blocks = self.client.blocks(stub.id)
        return Page(
            id=stub.id, title=stub.title, body=blocks_to_markdown(blocks), space=stub.space, path=stub.path,
            url=stub.url, edited_at=stub.edited_at,
            source_meta={"obj_type": stub.kind, "node_token": node.node_token if node else "",
                         "obj_edit_time": node.obj_edit_time if node else ""},
        )


def _time(epoch_seconds: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(epoch_seconds), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
