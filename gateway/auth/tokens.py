"""HS256 JSON Web Tokens exactly as the contract's §9.1 describes them.

The payload is exactly ``{"email", "exp", "origIat"}`` (epoch seconds); decoding uses leeway 0 and
always verifies ``exp``. Every failure is a :class:`TokenError` whose ``message`` is one of the §7.2
strings, so callers never show a library's own text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import jwt

ALGORITHM = "HS256"

SIGNATURE_EXPIRED = "Signature has expired"
DECODING_ERROR = "Error decoding signature"
INVALID_TOKEN = "Invalid token"
INVALID_PAYLOAD = "Invalid payload"
USER_DISABLED = "User is disabled"
ORIG_IAT_REQUIRED = "origIat field is required"
REFRESH_EXPIRED = "Refresh has expired"
TOKEN_REQUIRED = "Token is required"


class TokenError(Exception):
    """A token was refused; ``message`` is the contract's string for the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class IssuedToken:
    """A freshly signed token and the payload it carries."""

    token: str
    payload: dict[str, Any]

    @property
    def expires_at(self) -> int:
        """``exp``, epoch seconds (also the cookie's expiry)."""
        return int(self.payload["exp"])


def now() -> int:
    """The current time in whole epoch seconds, the unit of every claim."""
    return int(time.time())


def issue(email: str, secret: str, *, lifetime: int, issued_at: int, orig_iat: int | None = None) -> IssuedToken:
    """Sign ``{"email", "exp": issued_at + lifetime, "origIat"}``.

    ``orig_iat`` defaults to ``issued_at`` (a login); a refresh passes the session's original value.
    """
    payload: dict[str, Any] = {
        "email": email,
        "exp": issued_at + lifetime,
        "origIat": issued_at if orig_iat is None else orig_iat,
    }
    return IssuedToken(jwt.encode(payload, secret, algorithm=ALGORITHM), payload)


VERIFIED_CACHE_SIZE = 4096

# Every request carries its token again; verifying it is pure CPU (HMAC, base64, JSON). A token that
# passed keeps passing (its ``iat``/``nbf`` only grow older) until ``exp``, which is checked again on
# every use, exactly as PyJWT does.
_verified: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}


def _timestamp() -> float:
    """Now, as PyJWT reads it for ``exp``."""
    return datetime.now(tz=timezone.utc).timestamp()


def decode(token: str, secret: str) -> dict[str, Any]:
    """Verify the signature and ``exp`` (leeway 0) and return the payload, or raise :class:`TokenError`.

    Expired → ``Signature has expired``; malformed, empty or signed with another key → ``Error decoding
    signature``; any other invalid token (no ``exp``, ``iat``/``nbf`` in the future, …) → ``Invalid token``.
    """
    key = (secret, token) if isinstance(token, str) and isinstance(secret, str) else None
    cached = _verified.get(key) if key is not None else None
    if cached is not None:
        expires, payload = cached
        if expires <= _timestamp():
            del _verified[key]  # type: ignore[arg-type]
            raise TokenError(SIGNATURE_EXPIRED)
        return dict(payload)
    payload = _verify(token, secret)
    if key is not None:
        if len(_verified) >= VERIFIED_CACHE_SIZE:
            del _verified[next(iter(_verified))]  # the oldest entry
        _verified[key] = (int(payload["exp"]), dict(payload))
    return payload


def _verify(token: str, secret: str) -> dict[str, Any]:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=0,
            options={"require": ["exp"], "verify_exp": True, "verify_aud": False, "verify_iss": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError(SIGNATURE_EXPIRED) from None
    except jwt.DecodeError:  # includes InvalidSignatureError
        raise TokenError(DECODING_ERROR) from None
    except jwt.InvalidTokenError:
        raise TokenError(INVALID_TOKEN) from None
    except (TypeError, ValueError):  # a non-string token that the library cannot even look at
        raise TokenError(DECODING_ERROR) from None
    return payload


def payload_email(payload: dict[str, Any]) -> str:
    """The ``email`` claim, or :class:`TokenError` ``Invalid payload`` when it is missing or not a string."""
    email = payload.get("email")
    if not isinstance(email, str) or not email:
        raise TokenError(INVALID_PAYLOAD)
    return email


def orig_iat(payload: dict[str, Any]) -> int | None:
    """The ``origIat`` claim as an int, or ``None`` when missing or unusable."""
    value = payload.get("origIat")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def check_refreshable(payload: dict[str, Any], *, current: int, window: int) -> int:
    """Return ``origIat`` if the session may still be refreshed at ``current``.

    Raises ``origIat field is required`` when the claim is missing and ``Refresh has expired`` when
    ``current > origIat + window``.
    """
    issued = orig_iat(payload)
    if not issued:
        raise TokenError(ORIG_IAT_REQUIRED)
    if current > issued + window:
        raise TokenError(REFRESH_EXPIRED)
    return issued
