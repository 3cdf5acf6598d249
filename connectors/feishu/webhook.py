"""Checks on Feishu's HTTP callbacks, before any answer work is done.

Feishu signs a callback (when an Encrypt Key is set) as lowercase hex
SHA-256(timestamp + nonce + encrypt_key + raw body) and encrypts the JSON with
AES-256-CBC under SHA-256(encrypt_key). A signature alone does not stop a
captured request being sent again, so the request timestamp must be recent and
each nonce is accepted once. The timestamp checked is the delivery's header
(`X-Lark-Request-Timestamp`, seconds), not the event's `create_time`: Feishu's
redeliveries of an old event arrive hours later with a fresh header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TIMESTAMP_HEADER = "x-lark-request-timestamp"
NONCE_HEADER = "x-lark-request-nonce"
SIGNATURE_HEADER = "x-lark-signature"
MAX_UNSIGNED_BYTES = 2048  # the URL challenge, the one callback Feishu may send unsigned, is ~300 bytes


class Rejected(Exception):
    """A callback that failed a check; `reason` is a short label for logs and metrics."""

    def __init__(self, reason: str, detail: str = "", status: int = 401) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.status = status


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()


def decrypt(encrypted: str, encrypt_key: str) -> bytes:
    """Feishu's `{"encrypt": ...}` payload: base64(IV ‖ AES-256-CBC ciphertext), PKCS#7 padded."""
    raw = base64.b64decode(encrypted, validate=False)
    if len(raw) < 32 or len(raw) % 16:
        raise ValueError("ciphertext has a wrong length")
    key = hashlib.sha256(encrypt_key.encode("utf-8")).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    padded = decryptor.update(raw[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


@dataclass
class WebhookChecks:
    """Turns a raw callback into its JSON envelope, or raises `Rejected`.

    `claim_nonce` returns True the first time a nonce is seen (a persistent store,
    so a replay is refused across restarts too).
    """

    verification_token: str
    encrypt_key: str
    claim_nonce: Callable[[str, float], bool]
    max_age_seconds: float = 300.0
    clock: Callable[[], float] = field(default=time.time)

    @property
    def configured(self) -> bool:
        return bool(self.verification_token or self.encrypt_key)

    def open(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        if not self.configured:
            raise Rejected("not_configured", "set FEISHU_VERIFICATION_TOKEN and/or FEISHU_ENCRYPT_KEY", 403)
        if self.encrypt_key:
            # the signature first (one hash of the raw body): a forged body is never parsed or decrypted,
            # and an unsigned one only when it is small enough to be Feishu's URL challenge
            signed = self._check_signature(headers, body)
            if not signed and len(body) > MAX_UNSIGNED_BYTES:
                raise Rejected("unsigned", "signature headers missing")
            outer = _json(body)
            if "encrypt" not in outer:
                raise Rejected("not_encrypted", "an encrypt key is configured but the body is plaintext")
            try:
                envelope = _json(decrypt(str(outer["encrypt"]), self.encrypt_key))
            except Rejected:
                raise
            except Exception as exc:  # wrong key, corrupt ciphertext, bad padding
                raise Rejected("undecryptable", type(exc).__name__, 400) from None
            if not signed and envelope.get("type") != "url_verification":
                raise Rejected("unsigned", "signature headers missing")
        else:
            outer = _json(body)
            if "encrypt" in outer:
                raise Rejected("encrypted_without_key", "body is encrypted but FEISHU_ENCRYPT_KEY is not set",
                               400)
            envelope = outer
        self._check_token(envelope)
        return envelope

    def _check_signature(self, headers: Mapping[str, str], body: bytes) -> bool:
        """False when the request carries no signature at all (only the URL challenge may)."""
        ts, nonce, sig = (headers.get(TIMESTAMP_HEADER), headers.get(NONCE_HEADER),
                          headers.get(SIGNATURE_HEADER))
        if not (ts or nonce or sig):
            return False
        if not (ts and nonce and sig):
            raise Rejected("bad_signature", "incomplete signature headers")
        expected = signature(ts, nonce, self.encrypt_key, body)
        if not hmac.compare_digest(expected, sig.strip().lower()):
            raise Rejected("bad_signature", f"timestamp={ts} nonce={nonce}")
        try:
            sent = float(ts)
        except ValueError:
            raise Rejected("stale", f"unreadable timestamp {ts!r}") from None
        if sent > 1e12:  # milliseconds, defensively
            sent /= 1000
        age = self.clock() - sent
        if abs(age) > self.max_age_seconds:
            raise Rejected("stale", f"request timestamp is {age:+.0f}s off "
                                    f"(limit {self.max_age_seconds:.0f}s)")
        if not self.claim_nonce(f"feishu:nonce:{nonce}", 2 * self.max_age_seconds + 60):
            raise Rejected("replayed", f"nonce {nonce} was already used")
        return True

    def _check_token(self, envelope: Mapping[str, Any]) -> None:
        if not self.verification_token:
            return
        header = envelope.get("header")
        token = header.get("token") if isinstance(header, Mapping) else envelope.get("token")
        expected = self.verification_token.encode()
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), expected):
            raise Rejected("bad_token", "verification token does not match")


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("malformed", "body is not JSON", 400) from None
    if not isinstance(value, dict):
        raise Rejected("malformed", "body is not a JSON object", 400)
    return value
