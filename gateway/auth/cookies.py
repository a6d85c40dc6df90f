"""The exact ``Set-Cookie`` values of the contract's §9.2.

Attribute order and spelling follow Django's cookie rendering, which the contract quotes: ``expires``,
``HttpOnly``, ``Max-Age``, ``Path``, ``SameSite``, then ``Secure`` when D4 applies.
"""

from __future__ import annotations

import functools
from email.utils import formatdate

JWT_COOKIE = "JWT"
REFRESH_TOKEN_COOKIE = "JWT-refresh-token"
CSRF_COOKIE = "csrftoken"
CSRF_MAX_AGE = 31449600  # one year (52 weeks), as Django's CSRF_COOKIE_AGE
DELETED_EXPIRES = "Thu, 01 Jan 1970 00:00:00 GMT"


@functools.lru_cache(maxsize=256)  # every response sets the CSRF cookie, whose expiry moves once a second
def http_date(epoch_seconds: int) -> str:
    """RFC 1123 date in GMT, e.g. ``Wed, 20 Aug 2025 12:21:11 GMT``."""
    return formatdate(epoch_seconds, usegmt=True)


def _render(name: str, value: str, attributes: list[str], secure: bool) -> str:
    if secure:
        attributes = [*attributes, "Secure"]
    return "; ".join([f"{name}={value}", *attributes])


def jwt_cookie(token: str, *, expires_at: int, max_age: int, secure: bool) -> str:
    """``JWT=<token>; expires=<exp>; HttpOnly; Max-Age=<lifetime>; Path=/; SameSite=Lax`` (no Domain)."""
    return _render(
        JWT_COOKIE,
        token,
        [f"expires={http_date(expires_at)}", "HttpOnly", f"Max-Age={max_age}", "Path=/", "SameSite=Lax"],
        secure,
    )


def deletion_cookie(name: str, *, secure: bool) -> str:
    """``<name>=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/``."""
    return _render(name, '""', [f"expires={DELETED_EXPIRES}", "Max-Age=0", "Path=/"], secure)


def jwt_deletion_cookie(*, secure: bool) -> str:
    """Clears the ``JWT`` cookie (``deleteToken``, ``deleteAccount``)."""
    return deletion_cookie(JWT_COOKIE, secure=secure)


def refresh_token_deletion_cookie(*, secure: bool) -> str:
    """Clears the ``JWT-refresh-token`` cookie (``deleteRefreshToken``)."""
    return deletion_cookie(REFRESH_TOKEN_COOKIE, secure=secure)


def csrf_cookie(token: str, *, now: int, secure: bool) -> str:
    """``csrftoken=<32 chars>; expires=<+1 year>; Max-Age=31449600; Path=/; SameSite=Lax`` (readable by JS)."""
    return _render(
        CSRF_COOKIE,
        token,
        [f"expires={http_date(now + CSRF_MAX_AGE)}", f"Max-Age={CSRF_MAX_AGE}", "Path=/", "SameSite=Lax"],
        secure,
    )
