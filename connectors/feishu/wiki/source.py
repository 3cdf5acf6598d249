"""A Feishu wiki as a `retrieval.sources.WikiSource`: node trees in, page stubs and pages out.

A page's id is its document's `obj_token`: it survives moves inside and between spaces (the node
is the same document wherever it sits), and a shortcut carries its target's `obj_token`, so one
document is one page however many nodes point at it. The breadcrumb and URL come from the node
the document sits at, so a moved page keeps one copy with its new place.

Kinds read: `docx` (blocks, with embedded sheets / Bitables read through their APIs), `sheet` (every
sheet, rows with their column names), `bitable` (every table's records), `file` (downloaded, text
taken out of PDF, Word, PowerPoint, Excel, Markdown, text), legacy `doc` (its raw content). Each
page's version is the node's `obj_edit_time` (which every kind moves on an edit) with its node token,
so a re-sync without changes downloads nothing. A docx page that embeds sheets, Bitables or synced
blocks also carries their latest edit times (drive `metas/batch_query`, one call per 200 objects per
sync), since editing an embedded object does not move the page's own edit time. Not read, and reported so: `mindnote` and `slides`
(no Open API returns their content), and shortcuts to documents outside the synced spaces.

With `page_permissions` (`[access] mode = "asker"`) every listed page's own permissions are read at each
sync (`permissions_of`): a page whose permissions no longer follow its space's carries its readers
(`Page.readers`), and their fingerprint is part of its version, so a permission change re-reads the page
on the next sync and rewrites its payloads (the text is unchanged: nothing is re-embedded).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrieval.sources import Listing, PageStub
from connectors.feishu.access import DEPARTMENT, ROOT_DEPARTMENT, principal
from connectors.feishu.wiki.bitable import read_base, read_embedded_base
from connectors.feishu.wiki.docx import blocks_to_markdown, embedded_objects, render_subtree
from connectors.feishu.wiki.client import FeishuApiError, FeishuAuthError, WikiClient, WikiNode
from connectors.feishu.wiki.files import FileLimits, read_file
from connectors.feishu.wiki.sheets import read_embedded_sheet, read_spreadsheet
from retrieval.pages import NOBODY, Page

if TYPE_CHECKING:
    from connectors.feishu.settings import FeishuSection

log = logging.getLogger(__name__)

READABLE = {"docx", "sheet", "bitable", "file", "doc"}
NOT_READABLE = {
    "mindnote": "mind maps: no Open API returns a mindnote's content",
    "slides": "slides: no Open API returns a presentation's content",
}
SHORTCUT = "shortcut"
LEGACY_DOC = "/open-apis/doc/v2/:doc_token/raw_content"
METAS = "/open-apis/drive/v1/metas/batch_query"
METAS_PER_CALL = 200  # the API's maximum
NO_ACCESS_STATUS = (403, 404)  # an embedded object the app may not read (or that is gone): left out
PERMISSION_PUBLIC = "/open-apis/drive/v1/permissions/:token/public"
PERMISSION_MEMBERS = "/open-apis/drive/v1/permissions/:token/members"
# link sharing that lets anyone in the tenant (or anyone at all) read: as open as the space, or more
TENANT_WIDE_LINKS = {"tenant_readable", "tenant_editable", "anyone_readable", "anyone_editable"}
OPEN = ""  # a page's permissions fingerprint when it reads like its space


@dataclass(frozen=True)
class _Placed:
    node: WikiNode
    path: tuple[str, ...]


class FeishuWikiSource:
    source_id = "feishu"

    def __init__(self, client: WikiClient, spaces: Sequence[str] = (), url_base: str = "",
                 file_limits: FileLimits | None = None, *, page_permissions: bool = False) -> None:
        self.client = client
        self.page_permissions = page_permissions  # read each page's own readers (asker mode only)
        self._access: dict[str, tuple[str, tuple[str, ...]]] = {}  # page id -> (fingerprint, readers)
        self.spaces = list(spaces)
        self.url_base = url_base or "https://feishu.cn/wiki/"
        self.file_limits = file_limits or FileLimits()
        self._nodes: dict[str, WikiNode] = {}

    @classmethod
    def from_settings(cls, feishu: FeishuSection, *, page_permissions: bool = False) -> FeishuWikiSource:
        client = WikiClient(feishu.app_id, feishu.app_secret.get_secret_value(), feishu.domain,
                            docs_requests_per_second=feishu.docs_requests_per_second)
        if not feishu.wiki_url_base:
            log.warning("FEISHU_WIKI_URL_BASE is not set; page links use https://feishu.cn/wiki/<node>")
        limits = FileLimits(int(feishu.wiki_file_max_mb * 1_000_000), feishu.wiki_file_timeout_seconds)
        return cls(client, feishu.wiki_spaces, feishu.wiki_url_base, limits,
                   page_permissions=page_permissions)

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
                stubs.append(self._stub(p, kind=SHORTCUT,
                                        skip_reason="a shortcut to a page outside the synced spaces"))
                continue
            if n.obj_type not in READABLE:
                reason = NOT_READABLE.get(n.obj_type, f"{n.obj_type or 'unknown'}: a node type wikibot does not read")
                stubs.append(self._stub(p, skip_reason=reason))
                continue
            nodes[n.obj_token] = n
            stubs.append(self._stub(p))
        self._nodes = nodes
        return stubs

    def _stub(self, p: _Placed, skip_reason: str = "", kind: str = "") -> PageStub:
        n = p.node
        return PageStub(
            id=n.obj_token or n.node_token, title=n.title or "(untitled)", space=n.space_id, path=p.path,
            url=self.url_base + n.node_token, edited_at=_time(n.obj_edit_time),
            version=f"{n.obj_edit_time}:{n.node_token}", kind=kind or n.obj_type or "unknown",
            skip_reason=skip_reason,
        )

    # ----- content -----------------------------------------------------------------------------
    def fetch_page(self, stub: PageStub) -> Page:
        """The page's text by its kind; `PageSkipped` for a file that cannot be read."""
        node = self._nodes.get(stub.id)
        meta = {"obj_type": stub.kind, "node_token": node.node_token if node else "",
                "obj_edit_time": node.obj_edit_time if node else ""}
        if stub.kind == "sheet":
            body = read_spreadsheet(self.client, stub.id)
        elif stub.kind == "bitable":
            body = read_base(self.client, stub.id)
        elif stub.kind == "file":
            body = read_file(self.client, stub.id, stub.title, self.file_limits)
        elif stub.kind == "doc":
            data = self.client.get(f"read legacy document {stub.id}", LEGACY_DOC, "docs", {"doc_token": stub.id})
            body = str(data.get("content") or "")
        else:
            body = self._docx(stub, meta)
        readers: tuple[str, ...] = ()
        if self.page_permissions:
            fingerprint, readers = self._access.get(stub.id) or self.permissions_of(stub.id, stub.kind)
            meta["version"] = _with_permissions(meta.get("version") or _without_permissions(stub.version),
                                                fingerprint)
            meta["permissions"] = fingerprint or "space"
        return Page(id=stub.id, title=stub.title, body=body, space=stub.space, path=stub.path,
                    url=stub.url, edited_at=stub.edited_at, source_meta=meta, readers=readers)

    # ----- a page's own permissions (asker mode) --------------------------------------------------
    def permissions_of(self, token: str, kind: str) -> tuple[str, tuple[str, ...]]:
        """(fingerprint, readers) of one page: `("", ())` when it reads like its space (its permissions
        are inherited, `lock_switch` false, or link sharing opens it to the whole tenant); else its
        permission members as principals (any `perm`: view, edit and full_access all read). When they
        cannot be read: restricted to nobody until a sync reads them (fail closed)."""
        try:
            public = self.client.get(f"read the sharing settings of {kind} {token}", PERMISSION_PUBLIC,
                                     "permissions", {"token": token}, {"type": kind})
            settings = public.get("permission_public") or {}
            if not settings.get("lock_switch") or settings.get("link_share_entity") in TENANT_WIDE_LINKS:
                return OPEN, ()
            data = self.client.get(f"read the members of {kind} {token}", PERMISSION_MEMBERS, "permissions",
                                   {"token": token}, {"type": kind})
        except FeishuAuthError:
            raise
        except FeishuApiError as exc:
            log.warning("permissions of %s %s unreadable (%s): answered to nobody in asker mode until read",
                        kind, token, exc)
            return "unknown", (NOBODY,)
        readers = set()
        for m in data.get("items") or []:
            kind_, member = str(m.get("member_type") or ""), str(m.get("member_id") or "")
            if (kind_, member) == (DEPARTMENT, ROOT_DEPARTMENT):
                return OPEN, ()  # shared with the whole company
            if kind_ and member:
                readers.add(principal(kind_, member))
        ordered = tuple(sorted(readers)) or (NOBODY,)
        return hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:16], ordered

    def _docx(self, stub: PageStub, meta: dict[str, str]) -> str:
        """A docx page; `meta` gets the objects it embeds and the version they are read at (their edit
        times are asked for before they are read, so an edit in between is seen by the next sync)."""
        blocks = self.client.blocks(stub.id)
        objects = embedded_objects(blocks)
        meta["version"] = _base_version(stub.version)
        if objects:
            meta["embeds"] = ",".join(sorted(objects))
            meta["version"] = _with_embeds(meta["version"], objects, self._edit_times(objects))
        return blocks_to_markdown(blocks, _Embeds(self.client), stub.url)

    # ----- embedded objects' versions -----------------------------------------------------------
    def refine_versions(self, stubs: list[PageStub], recorded: dict[str, dict[str, Any]]) -> list[PageStub]:
        """Docx stubs whose page embedded other objects when last read get those objects' edit times
        in their version, so an edit inside an embedded sheet re-reads the page. If the times cannot
        be had, the stubs stay as listed (those pages are read again: never stale, only slower)."""
        stubs = self._refine_embeds(stubs, recorded)
        if not self.page_permissions:
            return stubs
        out = []
        for s in stubs:
            if s.skip_reason or s.kind not in READABLE:
                out.append(s)
                continue
            self._access[s.id] = access = self.permissions_of(s.id, s.kind)
            out.append(replace(s, version=_with_permissions(s.version, access[0])))
        return out

    def _refine_embeds(self, stubs: list[PageStub], recorded: dict[str, dict[str, Any]]) -> list[PageStub]:
        embeds = {s.id: set(filter(None, str(recorded.get(s.id, {}).get("embeds") or "").split(",")))
                  for s in stubs if s.kind == "docx" and not s.skip_reason}
        wanted = set().union(*embeds.values()) if embeds else set()
        if not wanted:
            return stubs
        try:
            times = self._edit_times(wanted)
        except FeishuAuthError:
            raise
        except FeishuApiError as exc:
            log.warning("cannot read the edit times of embedded objects (%s); their pages are read again", exc)
            return stubs
        return [replace(s, version=_with_embeds(s.version, embeds[s.id], times)) if embeds.get(s.id) else s
                for s in stubs]

    def _edit_times(self, objects: set[str]) -> dict[str, str]:
        """`type:token` → latest_modify_time (epoch seconds), "" for an object the app cannot see."""
        out = dict.fromkeys(objects, "")
        ordered = sorted(objects)
        for i in range(0, len(ordered), METAS_PER_CALL):
            docs = [{"doc_token": o.partition(":")[2], "doc_type": o.partition(":")[0]}
                    for o in ordered[i:i + METAS_PER_CALL]]
            data = self.client.post(f"read the edit times of {len(docs)} embedded objects", METAS, "drive",
                                    {"request_docs": docs, "with_url": False})
            for m in data.get("metas") or []:
                key = f"{m.get('doc_type')}:{m.get('doc_token')}"
                if key in out:
                    out[key] = str(m.get("latest_modify_time") or "")
        return out


def _base_version(version: str) -> str:
    return version.partition("|")[0]


def _with_permissions(version: str, fingerprint: str) -> str:
    """The version with the page's permissions fingerprint last (none when it reads like its space)."""
    return version + "|perm:" + fingerprint if fingerprint else version


def _without_permissions(version: str) -> str:
    return version.partition("|perm:")[0]


def _with_embeds(version: str, objects: set[str], times: dict[str, str]) -> str:
    return version + "|" + ",".join(f"{o}@{times.get(o, '')}" for o in sorted(objects))


class _Embeds:
    """What a docx page's blocks point at, read through the owning APIs. An object the app may not
    read, or that is gone, is left out (the page is still indexed); any other error fails the page,
    so the next sync tries it again."""

    def __init__(self, client: WikiClient) -> None:
        self.client = client

    def sheet(self, token: str) -> str:
        return self._read(f"embedded sheet {token}", lambda: read_embedded_sheet(self.client, token))

    def bitable(self, token: str) -> str:
        return self._read(f"embedded base {token}", lambda: read_embedded_base(self.client, token))

    def synced(self, document_id: str, block_id: str) -> str:
        return self._read(f"synced block {block_id} of {document_id}",
                          lambda: render_subtree(self.client.blocks(document_id), block_id))

    @staticmethod
    def _read(what: str, read: Callable[[], str]) -> str:
        try:
            return read()
        except FeishuAuthError:
            raise
        except FeishuApiError as exc:
            if exc.status not in NO_ACCESS_STATUS:
                raise
            log.info("%s left out: %s", what, exc)
            return ""


def _time(epoch_seconds: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(epoch_seconds), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
