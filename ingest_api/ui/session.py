"""Sessions and CSRF tokens of the web UI: pure functions of a secret, a cookie and `now`.

The signing secret is **derived from the admin token** with HMAC-SHA256 (`ui_secret`): nothing
new is stored, every API process (and replica) derives the same secret, and rotating the admin
token signs every session out. A session cookie is `<payload>.<signature>`, the payload being
urlsafe base64 of `{"r": role, "k": key id, "e": expiry, "n": nonce}`; role `admin`, or `read`
for a read key (checked again on every request: revoking the key ends its sessions). The CSRF
token of a form is an HMAC of the session's nonce, so it needs no server-side state and is
useless without the HttpOnly cookie it belongs to. Sign-in itself is protected the same way by
a short-lived pre-session nonce cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import msgspec

SESSION_COOKIE = "coalmine_session"
LOGIN_COOKIE = "coalmine_login"
SESSION_TTL_S = 12 * 3600
LOGIN_TTL_S = 600
Role = Literal["admin", "read"]


@dataclass(frozen=True)
class Session:
    role: Role
    key_id: str  # "" for the admin
    expires_at: float
    nonce: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"


class _Payload(msgspec.Struct, frozen=True):
    r: str
    k: str
    e: float
    n: str


_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(_Payload)


def ui_secret(admin_token: str) -> bytes:
    """The UI's signing key: HMAC-SHA256(admin token, a fixed label)."""
    return hmac.new(admin_token.encode(), b"coalmine-ui-session-v1", hashlib.sha256).digest()


def _mac(secret: bytes, purpose: str, message: str) -> str:
    digest = hmac.new(secret, f"{purpose}\0{message}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_session(role: Role, key_id: str, now: float, ttl_s: float = SESSION_TTL_S) -> Session:
    return Session(role, key_id, now + ttl_s, secrets.token_urlsafe(16))


def sign_session(secret: bytes, session: Session) -> str:
    payload = _encode.encode(
        _Payload(session.role, session.key_id, session.expires_at, session.nonce)
    )
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_mac(secret, 'session', body)}"


def read_session(secret: bytes, cookie: str | None, now: float) -> Session | None:
    """The session a cookie carries, or None when it is absent, forged, malformed or expired."""
    if not cookie or len(cookie) > 1024:
        return None
    body, _, signature = cookie.partition(".")
    if not hmac.compare_digest(signature.encode(), _mac(secret, "session", body).encode()):
        return None
    try:
        payload = _decode.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, msgspec.MsgspecError):
        return None
    if payload.r not in ("admin", "read") or payload.e <= now:
        return None
    return Session(payload.r, payload.k, payload.e, payload.n)  # type: ignore[arg-type]


def csrf_token(secret: bytes, nonce: str) -> str:
    """The token every form of a session (or of a sign-in page, by its nonce) carries."""
    return _mac(secret, "csrf", nonce)


def csrf_ok(secret: bytes, nonce: str | None, token: str | None) -> bool:
    if not nonce or not token:
        return False
    return hmac.compare_digest(token.encode(), csrf_token(secret, nonce).encode())


def cookie_header(name: str, value: str, max_age: int, secure: bool) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Strict, whole site, Secure over https."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
