"""CORS exactly as §1.3 says, and the accepted ``Host`` names.

Starlette's ``CORSMiddleware`` does the work; this subclass only makes its headers match the contract:
the preflight lists exactly our request headers (Starlette adds its safelisted ones, capitalised), and
a disallowed origin gets no CORS header at all (Starlette still sends ``Allow-Credentials`` to it).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_HEADERS = ("accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with")
ALLOWED_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
MAX_AGE = 86400


class ContractCORSMiddleware(CORSMiddleware):
    """Exact-origin CORS with credentials, the §1.3 preflight headers, nothing for other origins."""

    def __init__(self, app: ASGIApp, allow_origins: Collection[str]) -> None:
        super().__init__(
            app,
            allow_origins=list(allow_origins),
            allow_methods=list(ALLOWED_METHODS),
            allow_headers=list(ALLOWED_HEADERS),
            allow_credentials=True,
            max_age=MAX_AGE,
        )
        self.allow_headers = list(ALLOWED_HEADERS)
        self.preflight_headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)

    def preflight_response(self, request_headers: Headers) -> Response:
        """The §1.3 preflight for an allowed origin; a bare 400 (no CORS headers) for any other."""
        if not self.is_allowed_origin(request_headers["origin"]):
            return PlainTextResponse("Disallowed CORS origin", status_code=400, headers={"Vary": "Origin"})
        return super().preflight_response(request_headers)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        """Add CORS headers to a simple response only when its origin is allowed."""
        origin = request_headers.get("origin")
        if message["type"] == "http.response.start" and origin is not None and not self.is_allowed_origin(origin):
            headers = list(message.get("headers", []))
            headers.append((b"vary", b"Origin"))
            await send({**message, "headers": headers})
            return
        await super().send(message, send, request_headers)


class AllowedHostsMiddleware:
    """Answer 400 to a ``Host`` not in ``ALLOWED_HOSTS`` (``*`` allows any). Health probes are exempt:
    orchestrators call them by pod address."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str], exempt_paths: Collection[str] = ()) -> None:
        self.app = app
        self.allow_any = "*" in allowed_hosts
        self.allowed = {host.lower() for host in allowed_hosts}
        self.exempt_paths = set(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket") or scope.get("path") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "").split(":")[0].lower()
        if host.startswith("["):  # IPv6 literal
            host = Headers(scope=scope).get("host", "").lower().split("]")[0] + "]"
        if host in self.allowed:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await PlainTextResponse("Invalid host header", status_code=400)(scope, receive, send)
