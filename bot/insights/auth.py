"""Who may see the owners' page: the admin token, as a bearer header (scripts) or a signed session
cookie (browsers, after the login form).

The token is compared in constant time. A session cookie carries its expiry and a random id,
signed with an HMAC key derived from the token (changing the token ends every session); it is
HttpOnly, SameSite=Strict, scoped to /admin, and Secure over HTTPS. Every state-changing request
(login, logout) must come from our own page: same-origin `Origin`/`Referer` when the browser sends
one, and a CSRF token in the form (double-submit for the login, bound to the session for logout).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request

COOKIE = "wikibot_admin"
LOGIN_CSRF_COOKIE = "wikibot_admin_login"
PATH = "/admin"


@dataclass(frozen=True)
class AdminAuth:
    token: str
    session_seconds: float = 12 * 3600

    @property
    def _key(self) -> bytes:
        return hmac.new(self.token.encode(), b"wikibot admin session v1", hashlib.sha256).digest()

    def _sign(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def token_ok(self, given: str) -> bool:
        return bool(self.token) and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(value.strip())

    def new_session(self, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.session_seconds)
        body = f"{expires}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign(body)}"

    def session_ok(self, cookie: str, now: float | None = None) -> bool:
        body, _, mac = cookie.rpartition(".")
        expires = body.partition(".")[0]
        if not body or not expires.isdigit() or not hmac.compare_digest(mac.encode(), self._sign(body).encode()):
            return False
        return int(expires) > (now or time.time())

    def authorized(self, request: Request) -> bool:
        return self.bearer_ok(request) or self.session_ok(request.cookies.get(COOKIE, ""))

    def csrf_for(self, session: str) -> str:
        """The logout form's CSRF token: bound to the session, so another site cannot know it."""
        return self._sign("csrf:" + session)[:32]

    def csrf_ok(self, request: Request, form_value: str) -> bool:
        session = request.cookies.get(COOKIE, "")
        return bool(session) and hmac.compare_digest(form_value.encode(), self.csrf_for(session).encode())


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site (Origin, else Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    if not source:
        return True  # not a browser cross-site form (browsers send Origin on POST); the CSRF token decides
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")} - {""}
    rest = source.split("://", 1)[-1]
    return rest.split("/", 1)[0] in hosts  # behind a proxy that rewrites Host: its X-Forwarded-Host


def cookie_kwargs(request: Request, max_age: int) -> dict[str, object]:
    return {"max_age": max_age, "path": PATH, "httponly": True, "samesite": "strict",
            "secure": request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"}
