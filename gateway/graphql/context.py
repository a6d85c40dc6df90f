"""The per-request GraphQL context: settings, the RPC client, the process's user directory, the
connection, the caller (resolved lazily, once), per-request DataLoaders, the call id sent to services,
and the cookies the response must carry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader

from gateway.auth import cookies, credentials
from gateway.auth.credentials import Authentication, UserRecord
from gateway.auth.tokens import IssuedToken
from gateway.graphql import errors
from gateway.graphql.loading import NOT_LOADED
from gateway.media import AvatarStore
from gateway.proxy import client_address, is_secure
from gateway.rpc import RpcClient, RpcError
from gateway.settings import Settings
from gateway.users.directory import UserDirectory

LoaderT = TypeVar("LoaderT")


def _held(future: asyncio.Future[Any] | None) -> Any:
    """The value of a DataLoader's cached future, ``NOT_LOADED`` while there is none yet; a failed load
    counts as none (``load`` raises it)."""
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return NOT_LOADED
    return future.result()


def _never() -> bool:
    return False


def new_call_id() -> str:
    """The id of one gateway request, sent to every service it calls (``gateway.<uuid>``)."""
    return f"gateway.{uuid.uuid4()}"


@dataclass
class ResponseEffects:
    """What resolvers ask of the HTTP response: ``Set-Cookie`` values and a CSRF token rotation."""

    cookies: list[str] = field(default_factory=list)
    rotate_csrf: bool = False


class GraphQLContext:
    """Built for every GraphQL request (and every subscription connection)."""

    def __init__(
        self,
        *,
        settings: Settings,
        rpc: RpcClient | None,
        connection: HTTPConnection,
        avatar_store: AvatarStore,
        call_id: str | None = None,
        token: str | None = None,
        token_from_connection: bool = True,
        users: UserDirectory | None = None,
    ) -> None:
        """``token`` overrides the connection's credential (e.g. a subscription's ``connection_init``);
        with ``token_from_connection`` the header/cookie of ``connection`` is used when it is ``None``.
        ``users`` is the user directory (default: the app's); without one every lookup asks the users
        service."""
        self.settings = settings
        self._rpc = rpc
        if users is None and "app" in connection.scope:
            users = getattr(connection.app.state, "user_directory", None)
        self.users = users if users is not None else UserDirectory(rpc, feed_live=_never)
        self.request = connection
        self.avatar_store = avatar_store
        self.call_id = call_id or new_call_id()
        self.call_id_stack: list[str] = [self.call_id]
        self.response = ResponseEffects()
        self.secure_cookies = is_secure(connection, settings)
        self.client_address = client_address(connection, settings)
        self.token = token if token is not None or not token_from_connection else credentials.request_token(connection)
        self._authentication: Authentication | None = None
        self._authentication_failure: errors.GatewayError | None = None
        self._authentication_lock = asyncio.Lock()
        self._loaders: dict[Callable[..., Any], Any] = {}
        self.rpc_calls = 0
        """RPC calls this request made (failed ones included); written to the request's log line."""

    # --- services ---------------------------------------------------------------------------------

    async def call(self, service: str, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call ``service.method`` with this request's call id; failures become :class:`GatewayError`."""
        self.rpc_calls += 1
        if self._rpc is None:
            raise errors.GatewayError(errors.SERVICE_UNAVAILABLE, errors.INTERNAL_SERVER_ERROR)
        try:
            return await self._rpc.call(
                service, method, *args, timeout=timeout, call_id_stack=self.call_id_stack, **kwargs
            )
        except RpcError as exc:
            raise errors.from_rpc_error(exc) from exc

    def loader(self, factory: Callable[[GraphQLContext], LoaderT]) -> LoaderT:
        """The request's DataLoader made by ``factory`` (one per factory per request)."""
        loader = self._loaders.get(factory)
        if loader is None:
            loader = self._loaders[factory] = factory(self)
        return loader

    def loaded(self, factory: Callable[[GraphQLContext], DataLoader[Any, Any]], key: Any) -> Any:
        """What the request's DataLoader made by ``factory`` already holds for ``key`` (primed, or loaded
        earlier in the request), else :data:`~gateway.graphql.loading.NOT_LOADED`; lets a field whose
        data is in hand resolve without awaiting a DataLoader future."""
        return _held(self.loader(factory).cache_map.get(key))

    def loaded_many(self, factory: Callable[[GraphQLContext], DataLoader[Any, Any]], keys: Iterable[Any]) -> Any:
        """:meth:`loaded` of each of ``keys``, in their order, or ``NOT_LOADED`` when any is not held."""
        cache = self.loader(factory).cache_map
        values = []
        for key in keys:
            value = _held(cache.get(key))
            if value is NOT_LOADED:
                return NOT_LOADED
            values.append(value)
        return values

    def load_missing(
        self, factory: Callable[[GraphQLContext], DataLoader[Any, Any]], keys: Iterable[Any]
    ) -> Awaitable[Any] | None:
        """Start loading, in one batch, those of ``keys`` the DataLoader made by ``factory`` does not
        hold yet, and return that load to await (after which :meth:`loaded` answers for every key);
        ``None`` when it holds them all, so data in hand costs no DataLoader round."""
        missing = [key for key in keys if self.loaded(factory, key) is NOT_LOADED]
        return self.loader(factory).load_many(missing) if missing else None

    # --- the caller ------------------------------------------------------------------------------

    async def authentication(self) -> Authentication:
        """The request's credential, checked once (§4.2); concurrent root fields share the lookup."""
        if self._authentication is None and self._authentication_failure is None:
            async with self._authentication_lock:
                if self._authentication is None and self._authentication_failure is None:
                    try:
                        self._authentication = await credentials.authenticate(
                            self.token, secret=self.settings.jwt_secret, find_user=self.find_user_by_email
                        )
                    except errors.GatewayError as exc:
                        # Remembered, so the other root fields fail at once instead of waiting for
                        # their own timeout on the same unavailable service.
                        self._authentication_failure = exc
        if self._authentication_failure is not None:
            raise self._authentication_failure
        assert self._authentication is not None
        return self._authentication

    async def check_credentials(self) -> None:
        """Raise the credential's §7.2 error (``UNAUTHENTICATED``) when it is bad."""
        authentication = await self.authentication()
        if authentication.error is not None:
            raise errors.unauthenticated(authentication.error)

    async def current_user(self) -> UserRecord | None:
        """The authenticated user, ``None`` when anonymous; a bad credential raises its error."""
        await self.check_credentials()
        return (await self.authentication()).user

    async def require_user(self) -> UserRecord:
        """The authenticated user, or the login-required error (§4.1)."""
        user = await self.current_user()
        if user is None:
            raise errors.login_required()
        return user

    async def find_user_by_email(self, email: str, *, fresh: bool = False) -> UserRecord | None:
        """The user with this email (case-insensitive, D1), ``None`` when there is none; from the user
        directory unless ``fresh``."""
        user = await self.users.viewer_by_email(email, lambda: self.call("users", "get_by_email", email), fresh=fresh)
        if user is not None:
            self.prime_user(user)
        return user

    async def user_by_username(self, username: str) -> UserRecord:
        """The public record of the user with exactly this username, from the user directory; ``User not
        found`` (``NOT_FOUND``) when there is none."""
        return await self.users.user_by_username(username, lambda: self.call("users", "get_by_username", username))

    def prime_user(self, user: UserRecord) -> None:
        """Let the users DataLoader answer for ``user`` without another RPC."""
        from gateway.users.loaders import user_loader  # the users domain builds on this module

        self.loader(user_loader).prime(user["id"], user)

    # --- response effects ----------------------------------------------------------------------

    def set_jwt_cookie(self, issued: IssuedToken) -> None:
        """Send the ``JWT`` cookie for ``issued`` and rotate the CSRF token (login and refresh)."""
        self.response.cookies.append(
            cookies.jwt_cookie(
                issued.token,
                expires_at=issued.expires_at,
                max_age=self.settings.jwt_expiration,
                secure=self.secure_cookies,
            )
        )
        self.response.rotate_csrf = True

    def delete_jwt_cookie(self) -> None:
        """Clear the ``JWT`` cookie (logout, account deletion)."""
        self.response.cookies.append(cookies.jwt_deletion_cookie(secure=self.secure_cookies))

    def delete_refresh_token_cookie(self) -> None:
        """Clear the ``JWT-refresh-token`` cookie."""
        self.response.cookies.append(cookies.refresh_token_deletion_cookie(secure=self.secure_cookies))
