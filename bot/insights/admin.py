"""`/admin`: the owners' page as Starlette routes, mounted by `wikibot serve` and `wikibot admin`.

Off unless an admin token is configured. Without a valid bearer header or session cookie a browser
is sent to the login form and anything else gets 401; no question text leaves without one.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from importlib import resources
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.insights.auth import COOKIE, LOGIN_CSRF_COOKIE, AdminAuth, cookie_kwargs, same_origin
from bot.insights.page import PERIODS, admin_page, login_page
from bot.insights.questions import Scope
from bot.insights.report import GapReport
from bot.insights.service import Insights, now_utc
from bot.insights.texts import pick_lang

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin", "Content-Security-Policy": CSP}
CACHE_SECONDS = 60.0
MAX_FORM_BYTES = 4096


class _ReportCache:
    """Reports take a while on a big log (clustering, searches): reuse one for a minute per view."""

    def __init__(self, insights: Insights) -> None:
        self.insights = insights
        self._cache: dict[tuple[str | None, int], tuple[float, GapReport]] = {}
        self._lock = asyncio.Lock()

    async def get(self, space: str | None, days: int) -> GapReport:
        key = (space, days)
        async with self._lock:
            hit = self._cache.get(key)
            if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
            from datetime import timedelta

            scope = Scope(since=now_utc() - timedelta(days=days), space=space)
            report = await asyncio.to_thread(self.insights.report, scope)
            self._cache[key] = (time.monotonic(), report)
            return report


def admin_routes(insights: Insights, auth: AdminAuth) -> list[BaseRoute]:
    """The routes of the owners' page; an empty token means no routes at all (404)."""
    if not auth.token:
        return []
    cache = _ReportCache(insights)

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def check(request: Request) -> Response:
            if not auth.authorized(request):
                if "text/html" in request.headers.get("accept", ""):
                    lang = pick_lang(request.query_params.get("lang"), request.headers.get("accept-language", ""))
                    return RedirectResponse(f"/admin/login?lang={lang}", status_code=303, headers=HEADERS)
                return JSONResponse({"error": "unauthorized"}, status_code=401,
                                    headers={**HEADERS, "WWW-Authenticate": 'Bearer realm="wikibot admin"'})
            return await handler(request)
        return check

    def view(request: Request) -> tuple[str | None, int]:
        space = request.query_params.get("space") or None
        try:
            days = int(request.query_params.get("days", "30"))
        except ValueError:
            days = 30
        return space, days if days in PERIODS else 30

    async def page(request: Request) -> Response:
        space, days = view(request)
        lang = pick_lang(request.query_params.get("lang"), request.headers.get("accept-language", ""))
        report = await cache.get(space, days)
        size, spaces, syncs = await asyncio.to_thread(
            lambda: (insights.index_size(), insights.spaces(), insights.syncs()))
        session = request.cookies.get(COOKIE, "")
        csrf = auth.csrf_for(session) if session and auth.session_ok(session) else ""
        html = admin_page(report, lang, spaces=spaces, days=days, csrf=csrf, index_size=size, syncs=syncs)
        return HTMLResponse(html, headers=HEADERS)

    async def report_json(request: Request) -> Response:
        space, days = view(request)
        return JSONResponse((await cache.get(space, days)).to_json(), headers=HEADERS)

    async def login_form(request: Request) -> Response:
        lang = pick_lang(request.query_params.get("lang"), request.headers.get("accept-language", ""))
        return _login(request, lang, failed=False)

    async def login(request: Request) -> Response:
        lang = pick_lang(request.query_params.get("lang"), request.headers.get("accept-language", ""))
        form = await _form(request)
        csrf_cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        fresh = bool(csrf_cookie) and secrets.compare_digest(form.get("csrf", "").encode(), csrf_cookie.encode())
        if not same_origin(request) or not fresh:
            return Response("cross-site request refused", status_code=403, headers=HEADERS)
        if not auth.token_ok(form.get("token", "")):
            await asyncio.sleep(0.5)  # slows guessing
            return _login(request, lang, failed=True)
        out = RedirectResponse(f"/admin?lang={lang}", status_code=303, headers=HEADERS)
        out.set_cookie(COOKIE, auth.new_session(), **cookie_kwargs(request, int(auth.session_seconds)))  # type: ignore[arg-type]
        out.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")
        return out

    async def logout(request: Request) -> Response:
        form = await _form(request)
        if not same_origin(request) or not auth.csrf_ok(request, form.get("csrf", "")):
            return Response("cross-site request refused", status_code=403, headers=HEADERS)
        out = RedirectResponse("/admin/login", status_code=303, headers=HEADERS)
        out.delete_cookie(COOKIE, path="/admin")
        return out

    def _login(request: Request, lang: Any, failed: bool) -> Response:
        csrf = secrets.token_urlsafe(24)
        out = HTMLResponse(login_page(lang, csrf, failed), status_code=401 if failed else 200, headers=HEADERS)
        out.set_cookie(LOGIN_CSRF_COOKIE, csrf, **cookie_kwargs(request, 3600))  # type: ignore[arg-type]
        return out

    async def static(request: Request) -> Response:
        css = (resources.files("bot.insights") / "static" / "admin.css").read_text(encoding="utf-8")
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600",
                                                             "X-Content-Type-Options": "nosniff"})

    return [Route("/admin", guarded(page)), Route("/admin/report.json", guarded(report_json)),
            Route("/admin/login", login_form, methods=["GET"]), Route("/admin/login", login, methods=["POST"]),
            Route("/admin/logout", logout, methods=["POST"]), Route("/admin/static/admin.css", static)]


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (no multipart parser needed); anything bigger is refused as empty."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
