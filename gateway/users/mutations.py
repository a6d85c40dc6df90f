"""Mutation fields of the users domain: the auth mutations (§6.1) and registerUser, updateUser,
deleteAccount (§6.2)."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.auth import tokens
from gateway.auth.cookies import REFRESH_TOKEN_COOKIE
from gateway.auth.credentials import cookie_token
from gateway.graphql import errors
from gateway.graphql.context import GraphQLContext
from gateway.graphql.scalars import GenericScalar, Upload
from gateway.rpc import RemoteError, ServiceUnavailable
from gateway.users.types import (
    DeleteAccount,
    DeleteJSONWebTokenCookie,
    DeleteRefreshTokenCookie,
    ObtainJSONWebToken,
    Refresh,
    RegisterUser,
    UpdateUser,
    UserType,
    Verify,
)

log = logging.getLogger("gateway.users")

UPLOAD_AND_REMOVE = "Cannot upload and remove an avatar at the same time."

Context = Info[GraphQLContext, None]


def _value(argument: Any) -> Any:
    """An optional argument's value, ``None`` when it was not given."""
    return None if argument is strawberry.UNSET else argument


def _token_error(exc: tokens.TokenError) -> errors.GatewayError:
    # §16.2: refreshToken and verifyToken failures are BAD_USER_INPUT, so the web client's
    # refresh-on-UNAUTHENTICATED path cannot wait on itself.
    return errors.GatewayError(exc.message, errors.BAD_USER_INPUT)


def _explicit_or_cookie_token(context: GraphQLContext, token: str | None) -> str:
    """The ``token`` argument, else the ``JWT`` cookie, else ``Token is required``."""
    if token is None:
        token = cookie_token(context.request)
    if token is None:
        raise _token_error(tokens.TokenError(tokens.TOKEN_REQUIRED))
    return token


async def _delete_avatar_file(context: GraphQLContext, name: str) -> None:
    """Remove a stored avatar; a failure is logged, never shown (the profile change already happened)."""
    if not name:
        return
    try:
        await context.avatar_store.delete(name)
    except OSError:
        log.exception("could not delete avatar file %r", name, extra={"call_id": context.call_id})


def _definitely_not_applied(exc: errors.GatewayError) -> bool:
    """True when the service surely did not apply the call (it refused it, or never received it);
    after a timeout the outcome is unknown, so a freshly stored file is kept rather than risk losing
    an avatar the service did record."""
    return isinstance(exc.__cause__, (RemoteError, ServiceUnavailable))


@strawberry.type
class UsersMutation:
    """Root mutation fields about users and authentication."""

    @strawberry.mutation(description="Log in with email and password; sets the JWT cookie.")
    async def token_auth(self, info: Context, email: str, password: str) -> ObtainJSONWebToken | None:
        """Rate limits first (D7), then a case-insensitive email match (D1), the password and the active
        flag; any failure is ``Please enter valid credentials``. Rotates the CSRF token."""
        context = info.context
        user = await context.call("users", "authenticate", email, password, context.client_address)
        issued_at = tokens.now()
        issued = tokens.issue(
            user["email"], context.settings.jwt_secret, lifetime=context.settings.jwt_expiration, issued_at=issued_at
        )
        context.set_jwt_cookie(issued)
        context.users.learn(user, viewer=True)  # the token just issued names this record
        context.prime_user(user)
        return ObtainJSONWebToken(
            payload=GenericScalar(issued.payload),
            refresh_expires_in=issued_at + context.settings.jwt_refresh_expiration,
            user=UserType.from_record(user),
            success=True,
            token=issued.token,
        )

    @strawberry.mutation(description="Check a token (the argument, else the JWT cookie) and return its payload.")
    async def verify_token(self, info: Context, token: str | None = strawberry.UNSET) -> Verify | None:
        """Verifies signature and expiry only; does not look the user up."""
        raw = _explicit_or_cookie_token(info.context, _value(token))
        try:
            payload = tokens.decode(raw, info.context.settings.jwt_secret)
        except tokens.TokenError as exc:
            raise _token_error(exc) from None
        return Verify(payload=GenericScalar(payload))

    @strawberry.mutation(description="Keep-alive: exchange a still-valid token for a new one with the same origIat.")
    async def refresh_token(self, info: Context, token: str | None = strawberry.UNSET) -> Refresh | None:
        """The token must be unexpired; then, in order: inactive user, missing ``origIat``, refresh window
        over, deleted user. Sets the new JWT cookie and rotates the CSRF token."""
        context = info.context
        settings = context.settings
        raw = _explicit_or_cookie_token(context, _value(token))
        current = tokens.now()
        try:
            payload = tokens.decode(raw, settings.jwt_secret)
            email = tokens.payload_email(payload)
            # No "token older than the account" check here (§9.1 is about authenticating): the new
            # token keeps this origIat, so it authenticates the newer account no more than this one.
            # Read fresh, not from the user directory: a refresh extends the session.
            user = await context.find_user_by_email(email, fresh=True)
            if user is not None and not user.get("is_active", False):
                raise tokens.TokenError(tokens.USER_DISABLED)
            orig_iat = tokens.check_refreshable(payload, current=current, window=settings.jwt_refresh_expiration)
            if user is None:
                raise tokens.TokenError(tokens.INVALID_TOKEN)
        except tokens.TokenError as exc:
            raise _token_error(exc) from None
        issued = tokens.issue(
            user["email"], settings.jwt_secret, lifetime=settings.jwt_expiration, issued_at=current, orig_iat=orig_iat
        )
        context.set_jwt_cookie(issued)
        return Refresh(
            payload=GenericScalar(issued.payload),
            refresh_expires_in=orig_iat + settings.jwt_refresh_expiration,
            token=issued.token,
        )

    @strawberry.mutation(description="Log out: always clears the JWT cookie, whatever its state.")
    async def delete_token(self, info: Context) -> DeleteJSONWebTokenCookie | None:
        """``deleted`` is whether a ``JWT`` cookie came with the request (valid or not, C13)."""
        context = info.context
        deleted = cookie_token(context.request) is not None
        context.delete_jwt_cookie()
        return DeleteJSONWebTokenCookie(deleted=deleted)

    @strawberry.mutation(description="Always clears the JWT-refresh-token cookie (none is ever set).")
    async def delete_refresh_token(self, info: Context) -> DeleteRefreshTokenCookie | None:
        """``deleted`` is whether a ``JWT-refresh-token`` cookie came with the request."""
        context = info.context
        deleted = REFRESH_TOKEN_COOKIE in context.request.cookies
        context.delete_refresh_token_cookie()
        return DeleteRefreshTokenCookie(deleted=deleted)

    @strawberry.mutation(description="Create an account (does not log in).")
    async def register_user(
        self, info: Context, email: str, name: str, password1: str, password2: str, username: str
    ) -> RegisterUser | None:
        """Inputs checked as in §8.2 (``Invalid data``); a taken or empty slugified username is a raw error."""
        user = await info.context.call("users", "register", username, name, email, password1, password2)
        info.context.users.learn(user)
        info.context.prime_user(user)
        return RegisterUser(user=UserType.from_record(user), success=True)

    @strawberry.mutation(description="Change the caller's name, bio and avatar; login required.")
    async def update_user(
        self,
        info: Context,
        avatar: Upload | None = strawberry.UNSET,
        bio: str | None = strawberry.UNSET,
        name: str | None = strawberry.UNSET,
        remove_avatar: bool | None = strawberry.UNSET,
    ) -> UpdateUser | None:
        """Given keys change (``null`` counts as given: ``name`` is then required, ``bio`` becomes ``""``);
        a file ``avatar`` is validated and stored and the old file deleted; ``removeAvatar: true`` clears
        it (B4). All field errors come back together as one ``Invalid data``."""
        context = info.context
        user = await context.require_user()
        changes: dict[str, Any] = {}
        if name is not strawberry.UNSET:
            changes["name"] = name if name is not None else ""
        if bio is not strawberry.UNSET:
            changes["bio"] = bio if bio is not None else ""
        upload = _value(avatar)
        extra_errors: dict[str, list[str]] = {}
        saved = ""
        if upload is not None and remove_avatar is True:
            extra_errors["avatar"] = [UPLOAD_AND_REMOVE]
        elif upload is not None:
            problems = await context.avatar_store.validate(upload)
            if problems:
                extra_errors["avatar"] = problems
            else:
                saved = await context.avatar_store.save(upload)
                changes["avatar"] = saved
        elif remove_avatar is True:
            changes["avatar"] = ""

        if not changes and not extra_errors:
            return UpdateUser(user=UserType.from_record(user))
        try:
            result = await context.call("users", "update_profile", user["id"], changes, extra_errors or None)
        except errors.GatewayError as exc:
            if saved and _definitely_not_applied(exc):
                await _delete_avatar_file(context, saved)
            raise
        updated = result["user"]
        previous = result.get("previous_avatar") or ""
        if "avatar" in changes and previous and previous != updated.get("avatar"):
            await _delete_avatar_file(context, previous)
        context.users.learn(updated)  # read-your-writes on this gateway; others follow the event
        context.prime_user(updated)
        return UpdateUser(user=UserType.from_record(updated))

    @strawberry.mutation(description="Delete the caller's account and everything they own; login required.")
    async def delete_account(self, info: Context, password: str) -> DeleteAccount | None:
        """Wrong password → ``Invalid data`` ``{"password": ["Incorrect password."]}`` (counted for D7).
        On success the avatar file is deleted and the JWT cookie cleared."""
        context = info.context
        user = await context.require_user()
        result = await context.call("users", "delete_account", user["id"], password, context.client_address)
        context.users.forget(user["id"], user.get("username"))  # its tokens name nobody from now on (§6.2)
        await _delete_avatar_file(context, (result or {}).get("previous_avatar") or "")
        context.delete_jwt_cookie()
        return DeleteAccount(success=True)
