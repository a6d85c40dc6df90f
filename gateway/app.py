"""The gateway's ASGI application: ``uvicorn gateway.app:app`` (``app`` is ``create_app()``, built on
first access).

Routes: ``/graphql/`` and ``/graphql`` (POST, GET and WebSocket upgrades for subscriptions, A1, B6),
the chat socket ``/ws/chat/{host}/{slug}`` (§10), ``GET /api/csrf/``, ``/media`` (avatar files),
``GET /healthz`` (the process is alive) and ``GET /readyz`` (the broker connections are up and every
service in ``GATEWAY_SERVICES`` answers ``health``).

The lifespan creates one :class:`~gateway.rpc.RpcClient` per process (``app.state.rpc``). A broker
that is down at start does not stop the gateway: the client keeps trying in the background, meanwhile
calls fail fast with ``Service unavailable`` and ``/readyz`` answers 503. It also starts the process's
chat relay (``app.state.chat_relay``, :mod:`gateway.chat.relay`), which connects (and reconnects) on its own
and keeps the process's user directory (``app.state.user_directory``, :mod:`gateway.users.directory`)
current from the users events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute

from gateway.chat.graphql_ws import SubscriptionEndpoint
from gateway.chat.relay import ChatRelay
from gateway.chat.socket import chat_socket
from gateway.cors import AllowedHostsMiddleware, ContractCORSMiddleware
from gateway.graphql.schema import build_schema
from gateway.graphql.view import GraphQLView, set_csrf_cookie
from gateway.logging import configure_logging
from gateway.media import AvatarStore, media_app
from gateway.rpc import RpcClient, RpcError
from gateway.settings import Settings
from gateway.users.directory import UserDirectory

log = logging.getLogger("gateway.app")

HEALTH_PATHS = ("/healthz", "/readyz")
RECONNECT_MAX_DELAY = 30.0


async def csrf_endpoint(request: Request) -> Response:
    """``GET /api/csrf/``: ``{"SetCsrfToken": "X-CSRFToken"}`` and the ``csrftoken`` cookie (§1.1)."""
    response = JSONResponse({"SetCsrfToken": "X-CSRFToken"})
    set_csrf_cookie(response, request, request.app.state.settings, rotate=False)
    return response


async def healthz(_request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: 200 when the broker connection is up and every configured service answers ``health``
    in time; otherwise 503 naming what is not ready."""
    settings: Settings = request.app.state.settings
    rpc: RpcClient | None = getattr(request.app.state, "rpc", None)
    relay: ChatRelay | None = getattr(request.app.state, "chat_relay", None)
    # The lifespan always makes the relay; an app served without it (some tests) has none to wait for.
    broker_up = rpc is not None and rpc.connected and (relay is None or relay.connected)
    services: dict[str, str] = {}
    if broker_up:
        assert rpc is not None
        answers = await asyncio.gather(
            *(rpc.ping(service, timeout=settings.ready_ping_timeout) for service in settings.services)
        )
        services = {
            service: "ok" if ok else "unavailable" for service, ok in zip(settings.services, answers, strict=True)
        }
    else:
        services = {service: "unknown" for service in settings.services}
    not_ready = ([] if broker_up else ["broker"]) + [name for name, state in services.items() if state != "ok"]
    body: dict[str, object] = {
        "status": "ready" if not not_ready else "not ready",
        "broker": "up" if broker_up else "down",
        "services": services,
    }
    if not_ready:
        body["not_ready"] = not_ready
    return JSONResponse(body, status_code=200 if not not_ready else 503)


async def _connect_until_up(rpc: RpcClient) -> None:
    delay = 1.0
    while True:
        try:
            await rpc.start()
            log.info("RPC client connected")
            return
        except RpcError as exc:
            log.warning("broker unavailable (%s); retrying in %.0f s", exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX_DELAY)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Create the process's RPC client, connect it (in the background if the broker is down), close it."""
    settings: Settings = app.state.settings
    configure_logging(settings.log_level, settings.log_format)
    rpc = RpcClient(settings.amqp_uri, default_timeout=settings.rpc_timeout, exchange=settings.rpc_exchange)
    app.state.rpc = rpc
    connector: asyncio.Task[None] | None = None
    try:
        await rpc.start()
    except RpcError as exc:
        log.warning("broker unavailable at start (%s); connecting in the background", exc)
        connector = asyncio.create_task(_connect_until_up(rpc))
    directory: UserDirectory = app.state.user_directory
    directory.rpc = rpc
    relay = ChatRelay(settings, rpc, users=directory)  # the relay's users events keep the directory current
    app.state.chat_relay = relay
    await relay.start()
    try:
        yield
    finally:
        await relay.close()
        if connector is not None:
            connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connector
        await rpc.close()


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the gateway application (settings from the environment by default)."""
    settings = settings or Settings.from_env()
    view = GraphQLView(build_schema(settings), settings)
    subscriptions = SubscriptionEndpoint(view, settings)  # the view's WebSocket side, behind D8 and D9
    routes = [
        Route("/graphql/", view),
        Route("/graphql", view),
        WebSocketRoute("/graphql/", subscriptions),
        WebSocketRoute("/graphql", subscriptions),
        WebSocketRoute("/ws/chat/{host}/{slug}", chat_socket),
        WebSocketRoute("/ws/chat/{host}/{slug}/", chat_socket),  # the slash form is served alike (§10.1)
        Route("/api/csrf/", csrf_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Mount("/media", app=media_app(settings.media_root)),
    ]
    middleware = [
        Middleware(AllowedHostsMiddleware, allowed_hosts=settings.allowed_hosts, exempt_paths=HEALTH_PATHS),
        Middleware(ContractCORSMiddleware, allow_origins=settings.cors_allowed_origins),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.rpc = None
    app.state.chat_relay = None
    # Keeps nothing until the lifespan's relay feeds it users events (an app served without the
    # lifespan asks the users service every time).
    app.state.user_directory = UserDirectory(feed_live=lambda: False)
    app.state.avatar_store = AvatarStore(
        settings.media_root, max_bytes=settings.avatar_max_bytes, max_pixels=settings.avatar_max_pixels
    )
    app.state.view = view
    return app


def __getattr__(name: str) -> Starlette:
    # ``app`` is built on first access (``uvicorn gateway.app:app``, ``from gateway.app import app``)
    # rather than at import, so importing this module (tests, tools) reads no environment and creates
    # no media directory.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
