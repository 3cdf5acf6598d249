"""HTTP mode's checks on a request, before bolt sees it: the signature, then the body's shape.

Slack signs `v0:{timestamp}:{raw body}` with the signing secret (HMAC-SHA256, `X-Slack-Signature:
v0=<hex>`); a timestamp more than five minutes off is refused, as bolt does. The check is ours
rather than bolt's because bolt logs the whole body of every request it refuses (anyone could fill
the log, and genuine messages would be logged verbatim on clock skew or a rotated secret), and
because bolt decodes and parses the body before verifying it, so a body that is not UTF-8, JSON or a
form raised out of bolt as a 500. Here nothing of the body is logged, and a signed but malformed
body is a 400.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

MAX_AGE_SECONDS = 5 * 60


class Refused(Exception):
    """`reason` is the metric label (`signature`, `malformed`); `status` the HTTP status."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def check_request(secret: str, headers: Mapping[str, str], body: bytes,
                  clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """The parsed body of a correctly signed, well-formed request; else raises `Refused`."""
    from slack_bolt.request.internals import parse_body  # here: serve's front process uses signature_ok alone

    if not signature_ok(secret, headers, body, clock()):
        raise Refused("signature", 401)
    try:
        parsed = parse_body(body.decode("utf-8"), headers.get("content-type"))
    except ValueError:  # not UTF-8 (UnicodeDecodeError), not JSON (JSONDecodeError)
        raise Refused("malformed", 400) from None
    if not isinstance(parsed, dict):
        raise Refused("malformed", 400)
    return parsed


def signature_ok(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    timestamp = headers.get("x-slack-request-timestamp") or ""
    signature = headers.get("x-slack-signature") or ""
    if not (secret and timestamp.isdigit() and signature):
        return False
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
