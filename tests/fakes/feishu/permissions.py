"""Fake drive permission APIs: a document's sharing settings and its permission members.

Endpoints, as the Open API documents them (tenant token; `{code, msg, data}`; `type` required):

- `GET /open-apis/drive/v1/permissions/:token/public?type=docx|sheet|bitable|file|doc`
  → `data.permission_public{external_access, security_entity, comment_entity, share_entity,
  link_share_entity, invite_external, lock_switch}`; `lock_switch` true: the wiki node no longer
  inherits its parent's (the space's) permissions
- `GET /open-apis/drive/v1/permissions/:token/members?type=...` → `data.items[]{member_type, member_id,
  perm, perm_type, type}` (not paged)

Tests fill `fake.permissions`: `restrict(token, [(member_type, member_id), ...])` narrows a page to
those members, `inherit(token)` gives it back its space's permissions, `fail[token] = (status, code,
msg)` makes both calls fail. A token never mentioned inherits. The exact error codes are unverified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PARAM_ERROR = 99992402
TYPES = {"doc", "docx", "sheet", "bitable", "file", "wiki", "mindnote", "minutes", "slides"}


@dataclass
class Permissions:
    restricted: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # token -> members
    links: dict[str, str] = field(default_factory=dict)  # token -> link_share_entity
    fail: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    def restrict(self, token: str, members: list[tuple[str, str]], perm: str = "view") -> None:
        kinds = {"opendepartmentid": "department", "openchat": "chat"}
        self.restricted[token] = [{"member_type": t, "member_id": m, "perm": perm, "perm_type": "container",
                                   "type": kinds.get(t, "user")} for t, m in members]

    def inherit(self, token: str) -> None:
        self.restricted.pop(token, None)


def routes(fake: Any) -> list[Route]:
    perms = Permissions()
    fake.permissions = perms

    def check(request: Request) -> JSONResponse | None:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        if request.query_params.get("type") not in TYPES:
            return fake.error(PARAM_ERROR, "field validation failed: type")
        failing = perms.fail.get(request.path_params["token"])
        if failing is not None:
            status, code, msg = failing
            return fake.error(code, msg, status)
        return None

    async def public(request: Request) -> JSONResponse:
        if (bad := check(request)) is not None:
            return bad
        token = request.path_params["token"]
        return fake.ok({"permission_public": {
            "external_access": False, "security_entity": "anyone_can_view",
            "comment_entity": "anyone_can_view",
            "share_entity": "anyone", "link_share_entity": perms.links.get(token, "closed"),
            "invite_external": False, "lock_switch": token in perms.restricted}})

    async def members(request: Request) -> JSONResponse:
        if (bad := check(request)) is not None:
            return bad
        return fake.ok({"items": list(perms.restricted.get(request.path_params["token"], []))})

    return [
        Route("/open-apis/drive/v1/permissions/{token}/public", public, methods=["GET"]),
        Route("/open-apis/drive/v1/permissions/{token}/members", members, methods=["GET"]),
    ]
