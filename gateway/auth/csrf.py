"""CSRF double submit (D3): the ``csrftoken`` cookie value and the ``X-CSRFToken`` header must match."""

from __future__ import annotations

import hmac
import secrets
import string
from collections.abc import Mapping

from gateway.auth.cookies import CSRF_COOKIE

CSRF_HEADER = "x-csrftoken"
TOKEN_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits
_UNBIASED = 256 - 256 % len(_ALPHABET)
"""Random bytes below this map onto the alphabet evenly (``byte % 62``); the others are drawn again."""
_BYTE_TO_CHAR = bytes(ord(_ALPHABET[byte % len(_ALPHABET)]) for byte in range(_UNBIASED)) + bytes(256 - _UNBIASED)
_BIASED_BYTES = bytes(range(_UNBIASED, 256))

CSRF_FAILED = "CSRF verification failed."


def new_token() -> str:
    """A fresh 32-character alphanumeric token (Django's format), each character uniform."""
    # One read of random bytes instead of a secrets.choice per character: every response to a client
    # without the cookie (API clients) carries a new token.
    # bytes.translate maps and drops the biased bytes in C rather than a Python step per byte.
    chars = b""
    while len(chars) < TOKEN_LENGTH:
        chars += secrets.token_bytes(40).translate(_BYTE_TO_CHAR, _BIASED_BYTES)
    return chars[:TOKEN_LENGTH].decode("ascii")


def is_well_formed(token: str | None) -> bool:
    """True for a 32-character alphanumeric token."""
    # For an ASCII string, isalnum() is exactly [A-Za-z0-9].
    return token is not None and len(token) == TOKEN_LENGTH and token.isascii() and token.isalnum()


def cookie_token(cookies: Mapping[str, str]) -> str:
    """The token to send back: the request's own when well formed (same value unless rotated), else new."""
    token = cookies.get(CSRF_COOKIE)
    return token if token is not None and is_well_formed(token) else new_token()


def passes(cookies: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    """The double-submit check: a non-empty cookie equal to the header, compared in constant time."""
    cookie = cookies.get(CSRF_COOKIE) or ""
    header = headers.get(CSRF_HEADER) or ""
    if not cookie or not header:
        return False
    return hmac.compare_digest(cookie.encode("utf-8"), header.encode("utf-8"))
