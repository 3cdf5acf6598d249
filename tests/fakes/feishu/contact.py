"""Fake Feishu directory: who is who and who may read which wiki space.

Endpoints, as the Open API documents them (tenant token; `{code, msg, data}`; paged with `page_size`,
`page_token`, `has_more`):

- `GET /open-apis/wiki/v2/spaces/:space_id/members` → `data.members[]{member_type, member_id,
  member_role, type}` (a public space lists its admins only: everyone may read it anyway)
- `GET /open-apis/contact/v3/users/:user_id?user_id_type=open_id&department_id_type=open_department_id`
  → `data.user{open_id, user_id, union_id, name, email, department_ids}`
- `GET /open-apis/contact/v3/departments/parent?department_id=&department_id_type=open_department_id`
  → `data.items[]` the department's ancestors, nearest first (the root "0" not listed)
- `POST /open-apis/contact/v3/users/batch_get_id?user_id_type=open_id` `{"emails": [...]}`
  → `data.user_list[]{email, user_id?}` (no `user_id` for an e-mail nobody has)
- `GET /open-apis/im/v1/chats/:chat_id/members?member_id_type=open_id` → `data.items[]{member_id_type,
  member_id, name, tenant_key}`, `member_total` (bots are not listed)

Tests fill `fake.directory` (users, departments, space members, chats) and may change it at any time.
The exact error codes for an unknown user / chat are unverified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.feishu.wiki import page_args, paged_items

PARAM_ERROR = 99992402
NO_USER_AUTHORITY = 41050
NOT_IN_CHAT = 232011
WIKI_PERMISSION_DENIED = 131006


@dataclass
class User:
    open_id: str
    name: str
    email: str = ""
    user_id: str = ""
    union_id: str = ""
    departments: list[str] = field(default_factory=list)  # open_department_ids


@dataclass
class Directory:
    users: dict[str, User] = field(default_factory=dict)  # open_id -> user
    parents: dict[str, str] = field(default_factory=dict)  # open_department_id -> parent ("0": root)
    space_members: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # space_id -> members
    chats: dict[str, list[str]] = field(default_factory=dict)  # chat_id -> open_ids of its people

    def add_user(self, open_id: str, name: str, **kw: Any) -> User:
        user = User(open_id, name, **kw)
        self.users[open_id] = user
        return user

    def share(self, space_id: str, member_type: str, member_id: str, role: str = "member") -> None:
        kind = {"opendepartmentid": "department", "openchat": "chat"}.get(member_type, "user")
        self.space_members.setdefault(space_id, []).append(
            {"member_type": member_type, "member_id": member_id, "member_role": role, "type": kind})

    def unshare(self, space_id: str, member_id: str) -> None:
        self.space_members[space_id] = [m for m in self.space_members.get(space_id, [])
                                        if m["member_id"] != member_id]


def _page(request: Request, items: list[Any], scope: str,
          cap: int) -> tuple[list[Any], dict[str, Any]] | JSONResponse:
    args = page_args(request, 20, cap, scope)
    if isinstance(args, JSONResponse):
        return args
    return paged_items(items, *args, scope)


def routes(fake: Any) -> list[Route]:
    directory = Directory()
    fake.directory = directory

    def fail(status: int, code: int, msg: str) -> JSONResponse:
        return JSONResponse({"code": code, "msg": msg}, status_code=status)

    async def space_members(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        space_id = request.path_params["space_id"]
        wiki = getattr(fake, "wiki", None)
        if wiki is not None and wiki.root is not None and space_id not in wiki.tree()[0]:
            return fail(400, WIKI_PERMISSION_DENIED, "permission denied: wiki space permission denied")
        paged = _page(request, directory.space_members.get(space_id, []), f"members:{space_id}", 50)
        if isinstance(paged, JSONResponse):
            return paged
        items, more = paged
        return fake.ok({"members": items, **more})

    async def get_user(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        if request.query_params.get("user_id_type", "open_id") != "open_id":
            return fail(400, PARAM_ERROR, "the fake knows open_ids only")
        user = directory.users.get(request.path_params["user_id"])
        if user is None:
            return fail(400, NO_USER_AUTHORITY, "no user authority error")
        return fake.ok({"user": {"open_id": user.open_id, "user_id": user.user_id, "union_id": user.union_id,
                                 "name": user.name, "email": user.email,
                                 "department_ids": list(user.departments)}})

    async def parent_departments(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        dep = request.query_params.get("department_id", "")
        chain = []
        while directory.parents.get(dep, "0") != "0":
            dep = directory.parents[dep]
            chain.append({"open_department_id": dep, "department_id": dep.replace("od-", "d"),
                          "name": dep, "parent_department_id": directory.parents.get(dep, "0")})
        paged = _page(request, chain, f"parents:{request.query_params.get('department_id', '')}", 50)
        if isinstance(paged, JSONResponse):
            return paged
        items, more = paged
        return fake.ok({"items": items, **more})

    async def batch_get_id(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        body = await request.json()
        emails = [str(e) for e in body.get("emails") or []]
        if len(emails) > 50:
            return fail(400, PARAM_ERROR, "field validation failed: emails max 50")
        by_email = {u.email.lower(): u for u in directory.users.values() if u.email}
        out = []
        for e in emails:
            user = by_email.get(e.lower())
            out.append({"email": e, **({"user_id": user.open_id} if user else {})})
        return fake.ok({"user_list": out})

    async def chat_members(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        members = directory.chats.get(request.path_params["chat_id"])
        if members is None:
            return fail(400, NOT_IN_CHAT, "the bot is not in the chat")
        rows = [{"member_id_type": "open_id", "member_id": m,
                 "name": directory.users[m].name if m in directory.users else m, "tenant_key": "tk_test"}
                for m in members]
        paged = _page(request, rows, f"chat:{request.path_params['chat_id']}", 100)
        if isinstance(paged, JSONResponse):
            return paged
        items, more = paged
        return fake.ok({"items": items, **more, "member_total": len(rows)})

    return [
        Route("/open-apis/wiki/v2/spaces/{space_id}/members", space_members, methods=["GET"]),
        Route("/open-apis/contact/v3/users/batch_get_id", batch_get_id, methods=["POST"]),
        Route("/open-apis/contact/v3/departments/parent", parent_departments, methods=["GET"]),
        Route("/open-apis/contact/v3/users/{user_id}", get_user, methods=["GET"]),
        Route("/open-apis/im/v1/chats/{chat_id}/members", chat_members, methods=["GET"]),
    ]
