"""Who is calling (§4.2, §9.3): the credential of a request, and its per-root-field check.

The credential is the ``Authorization: JWT <token>`` header (prefix case-insensitive; other schemes
such as ``Bearer`` are ignored) or, failing that, the ``JWT`` cookie. It is resolved lazily, once per
request, by the GraphQL context. When it is present but bad, every non-exempt root field fails with
its own copy of the error (``UNAUTHENTICATED``) and a ``null`` value: :class:`CredentialCheck` is
attached to each root field by :func:`protect_root_fields`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection
from strawberry.extensions import FieldExtension
from strawberry.types import Info
from strawberry.types.base import StrawberryObjectDefinition

from gateway.auth import tokens
from gateway.auth.cookies import JWT_COOKIE

AUTH_SCHEME = "jwt"

EXEMPT_ROOT_FIELDS = frozenset({"tokenAuth", "refreshToken", "verifyToken", "deleteToken", "deleteRefreshToken"})
"""Root fields that work whatever credential comes with them (C13 and §4.2)."""

UserRecord = dict[str, Any]
FindUser = Callable[[str], Awaitable[UserRecord | None]]


def header_token(connection: HTTPConnection) -> str | None:
    """The token of an ``Authorization: JWT <token>`` header, or ``None`` for no or another scheme."""
    header = connection.headers.get("authorization")
    if header is None:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != AUTH_SCHEME:
        return None
    return rest.strip()


def cookie_token(connection: HTTPConnection) -> str | None:
    """The ``JWT`` cookie's value, ``None`` when the request carries none."""
    return connection.cookies.get(JWT_COOKIE)


def request_token(connection: HTTPConnection) -> str | None:
    """The request's credential: the ``JWT`` header token, else the ``JWT`` cookie, else ``None``."""
    token = header_token(connection)
    return token if token is not None else cookie_token(connection)


@dataclass(frozen=True)
class Authentication:
    """The outcome of checking a credential: a user, anonymous (neither), or a §7.2 ``error``."""

    user: UserRecord | None = None
    error: str | None = None

    @property
    def is_authenticated(self) -> bool:
        """True when a valid credential named an existing, active user."""
        return self.user is not None


ANONYMOUS = Authentication()


def predates_account(payload: dict[str, Any], user: UserRecord) -> bool:
    """True when the token's session began before this account existed (§9.1): it was issued to an
    earlier, deleted account with the same email and must not log in the new one."""
    issued = tokens.orig_iat(payload)
    joined = user.get("date_joined_ts")
    if issued is None or not isinstance(joined, (int, float)):
        return False
    # Claims are whole seconds; an account made in the same second as the token is not "later".
    return issued < int(joined)


async def authenticate(token: str | None, *, secret: str, find_user: FindUser) -> Authentication:
    """Check ``token`` (§4.2): none → anonymous; bad → the §7.2 error; deleted user (or a token older
    than the account) → silently anonymous; inactive user → ``User is disabled``."""
    if token is None:
        return ANONYMOUS
    try:
        payload = tokens.decode(token, secret)
        email = tokens.payload_email(payload)
    except tokens.TokenError as exc:
        return Authentication(error=exc.message)
    user = await find_user(email)
    if user is None or predates_account(payload, user):
        return ANONYMOUS
    if not user.get("is_active", False):
        return Authentication(error=tokens.USER_DISABLED)
    return Authentication(user=user)


class CredentialCheck(FieldExtension):
    """Fails a root field when the request's credential is bad (§4.2); runs before the resolver."""

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any) -> Any:
        await info.context.check_credentials()
        return await next_(source, info, **kwargs)


def protect_root_fields(root_type: type) -> type:
    """Attach :class:`CredentialCheck` to every field of a root type except the exempt ones.

    Root resolvers must be ``async`` (they all call services anyway); strawberry refuses to build the
    schema otherwise, so a forgotten one cannot slip through.
    """
    definition: StrawberryObjectDefinition = root_type.__strawberry_definition__  # type: ignore[attr-defined]
    for field in definition.fields:
        name = field.graphql_name or _camel(field.python_name)
        if name in EXEMPT_ROOT_FIELDS:
            continue
        if not any(isinstance(extension, CredentialCheck) for extension in field.extensions):
            field.extensions.append(CredentialCheck())
    return root_type


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
