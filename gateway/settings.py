"""Gateway settings, read once from environment variables.

Every setting has a default suited to local development (``make run``). Production deployments set
``EDUSPHERE_ENV=production``, which turns GraphiQL and introspection off by default and refuses to start
with the development JWT secret.

| variable | default | meaning |
|---|---|---|
| ``EDUSPHERE_ENV`` | ``development`` | ``development`` or ``production`` (also ``test``, treated like development) |
| ``AMQP_URI`` | ``amqp://guest:guest@127.0.0.1:5672/`` | broker of the nameko services |
| ``RPC_EXCHANGE`` | ``nameko-rpc`` | nameko's RPC exchange |
| ``RPC_TIMEOUT`` | ``5.0`` | seconds an RPC call may take before it fails with ``Service unavailable`` |
| ``GATEWAY_SERVICES`` | ``users,rooms,messages`` | services ``/readyz`` pings |
| ``READY_PING_TIMEOUT`` | ``2.0`` | seconds each ``/readyz`` ping may take |
| ``JWT_SECRET`` | a development secret | HS256 key shared by every gateway instance (>= 32 bytes in production) |
| ``JWT_EXPIRATION_SECONDS`` | ``600`` | token lifetime and ``JWT`` cookie ``Max-Age`` (§9.1) |
| ``JWT_REFRESH_EXPIRATION_SECONDS`` | ``604800`` | refresh window after ``origIat`` (§9.1) |
| ``MEDIA_ROOT`` | ``media`` | directory of the avatar files served at ``/media/`` |
| ``AVATAR_MAX_BYTES`` | ``2097152`` | avatar size cap (D10) |
| ``AVATAR_MAX_PIXELS`` | ``40000000`` | avatar pixel cap (D10) |
| ``MAX_BODY_BYTES`` | ``3145728`` | request bodies above this get 413 (§1.2) |
| ``LIST_CAP`` | ``10000`` | the list cap N of B2 |
| ``GRAPHQL_MAX_DEPTH`` | ``10`` | selection depth limit (D6) |
| ``GRAPHQL_MAX_DOCUMENT_BYTES`` | ``16384`` | document size limit in UTF-8 bytes (D6) |
| ``GRAPHQL_MAX_FIELDS`` | ``500`` | fields per operation after fragment expansion (D6) |
| ``GRAPHQL_MAX_ROOT_FIELDS`` | ``10`` | root fields per operation (D6) |
| ``GRAPHIQL`` | on in development, off in production | serve GraphiQL to browsers (D5) |
| ``INTROSPECTION`` | on in development, off in production | allow ``__schema``/``__type`` (D5) |
| ``CORS_ALLOWED_ORIGINS`` | ``http://localhost,http://127.0.0.1`` | exact origins that get CORS headers (§1.3) |
| ``ALLOWED_HOSTS`` | ``localhost,127.0.0.1`` | accepted ``Host`` names (``*`` accepts any); health probes are exempt |
| ``TRUSTED_PROXIES`` | empty | proxy addresses or networks whose ``X-Forwarded-For``/``-Proto`` are believed |
| ``SECURE_COOKIES`` | ``auto`` | ``auto`` (per request, D4), ``true`` or ``false`` |
| ``LOG_LEVEL`` | ``INFO`` | gateway log level |
| ``LOG_FORMAT`` | ``json`` | ``json`` (one JSON object per line) or ``text`` |
| ``SOCKET_ORIGIN_HOSTS`` | ``localhost,127.0.0.1`` | ``Origin`` host names (any scheme and port) allowed to open the chat socket and subscriptions (D8) |
| ``SOCKET_MAX_FRAME_BYTES`` | ``16384`` | a client frame above this closes the connection with 1009 (D9); keep uvicorn's ``--ws-max-size`` equal |
| ``SOCKET_RATE`` | ``5`` | client frames per second per connection (D9) |
| ``SOCKET_BURST`` | ``10`` | client frames a connection may send at once before the rate applies (D9) |
| ``SOCKET_SEND_QUEUE`` | ``256`` | events queued for one socket or subscription; a client that lets it fill is disconnected |
| ``SOCKET_RECHECK_SECONDS`` | ``25`` | period of the re-check of every open socket's user, room and participation (D12: at most 30) |
| ``CHAT_ROOMS_EXCHANGE`` | ``edusphere.chat.rooms`` | headers exchange that routes each room's message events to the gateways holding its sockets |

Booleans accept ``1/true/yes/on`` and ``0/false/no/off`` (any case).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

DEVELOPMENT_JWT_SECRET = "edusphere-development-secret-do-not-use-in-production"
"""The default key; refused when ``EDUSPHERE_ENV=production``."""

MAX_SOCKET_RECHECK_SECONDS = 30.0
"""D12: an open socket's user, room and participation are re-checked at least this often."""

MIN_PRODUCTION_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """An environment variable holds a value the gateway cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment; build it with :meth:`from_env`."""

    env: str = "development"
    amqp_uri: str = "amqp://guest:guest@127.0.0.1:5672/"
    rpc_exchange: str = "nameko-rpc"
    rpc_timeout: float = 5.0
    services: tuple[str, ...] = ("users", "rooms", "messages")
    ready_ping_timeout: float = 2.0
    jwt_secret: str = field(default=DEVELOPMENT_JWT_SECRET, repr=False)
    jwt_expiration: int = 600
    jwt_refresh_expiration: int = 604800
    media_root: str = "media"
    avatar_max_bytes: int = 2 * 1024 * 1024
    avatar_max_pixels: int = 40_000_000
    max_body_bytes: int = 3 * 1024 * 1024
    list_cap: int = 10000
    max_depth: int = 10
    max_document_bytes: int = 16 * 1024
    max_fields: int = 500
    max_root_fields: int = 10
    graphiql: bool = True
    introspection: bool = True
    cors_allowed_origins: tuple[str, ...] = ("http://localhost", "http://127.0.0.1")
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
    trusted_proxies: tuple[IPNetwork, ...] = field(default=())
    secure_cookies: Literal["auto", "true", "false"] = "auto"
    log_level: str = "INFO"
    log_format: str = "json"
    socket_origin_hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
    socket_max_frame_bytes: int = 16 * 1024
    socket_rate: float = 5.0
    socket_burst: int = 10
    socket_send_queue: int = 256
    socket_recheck_seconds: float = 25.0
    chat_rooms_exchange: str = "edusphere.chat.rooms"

    def __post_init__(self) -> None:
        if self.is_production and self.jwt_secret == DEVELOPMENT_JWT_SECRET:
            raise SettingsError("JWT_SECRET must be set in production (the development secret is refused)")
        if self.is_production and len(self.jwt_secret.encode()) < MIN_PRODUCTION_SECRET_BYTES:
            raise SettingsError(f"JWT_SECRET must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production")
        if not self.jwt_secret:
            raise SettingsError("JWT_SECRET must not be empty")
        if self.secure_cookies not in ("auto", "true", "false"):
            raise SettingsError("SECURE_COOKIES must be auto, true or false")
        for name in (
            "list_cap",
            "max_depth",
            "max_document_bytes",
            "max_fields",
            "max_root_fields",
            "socket_max_frame_bytes",
            "socket_burst",
            "socket_send_queue",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be positive")
        if not 0 < self.socket_recheck_seconds <= MAX_SOCKET_RECHECK_SECONDS:
            raise SettingsError(
                f"SOCKET_RECHECK_SECONDS must be above 0 and at most {MAX_SOCKET_RECHECK_SECONDS:.0f} (D12)"
            )

    @property
    def is_production(self) -> bool:
        """True when ``EDUSPHERE_ENV=production``."""
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default ``os.environ``); raise :class:`SettingsError`."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        deployment = reader.text("EDUSPHERE_ENV", "development").lower()
        if deployment not in ("development", "production", "test"):
            raise SettingsError("EDUSPHERE_ENV must be development, production or test")
        development = deployment != "production"
        return cls(
            env=deployment,
            amqp_uri=reader.text("AMQP_URI", cls.amqp_uri),
            rpc_exchange=reader.text("RPC_EXCHANGE", cls.rpc_exchange),
            rpc_timeout=reader.number("RPC_TIMEOUT", cls.rpc_timeout),
            services=reader.items("GATEWAY_SERVICES", cls.services),
            ready_ping_timeout=reader.number("READY_PING_TIMEOUT", cls.ready_ping_timeout),
            jwt_secret=reader.text("JWT_SECRET", DEVELOPMENT_JWT_SECRET),
            jwt_expiration=reader.integer("JWT_EXPIRATION_SECONDS", cls.jwt_expiration),
            jwt_refresh_expiration=reader.integer("JWT_REFRESH_EXPIRATION_SECONDS", cls.jwt_refresh_expiration),
            media_root=reader.text("MEDIA_ROOT", cls.media_root),
            avatar_max_bytes=reader.integer("AVATAR_MAX_BYTES", cls.avatar_max_bytes),
            avatar_max_pixels=reader.integer("AVATAR_MAX_PIXELS", cls.avatar_max_pixels),
            max_body_bytes=reader.integer("MAX_BODY_BYTES", cls.max_body_bytes),
            list_cap=reader.integer("LIST_CAP", cls.list_cap),
            max_depth=reader.integer("GRAPHQL_MAX_DEPTH", cls.max_depth),
            max_document_bytes=reader.integer("GRAPHQL_MAX_DOCUMENT_BYTES", cls.max_document_bytes),
            max_fields=reader.integer("GRAPHQL_MAX_FIELDS", cls.max_fields),
            max_root_fields=reader.integer("GRAPHQL_MAX_ROOT_FIELDS", cls.max_root_fields),
            graphiql=reader.flag("GRAPHIQL", development),
            introspection=reader.flag("INTROSPECTION", development),
            cors_allowed_origins=reader.items("CORS_ALLOWED_ORIGINS", cls.cors_allowed_origins),
            allowed_hosts=reader.items("ALLOWED_HOSTS", cls.allowed_hosts),
            trusted_proxies=parse_networks(reader.text("TRUSTED_PROXIES", "")),
            secure_cookies=reader.choice("SECURE_COOKIES", "auto", ("auto", "true", "false")),  # type: ignore[arg-type]
            log_level=reader.text("LOG_LEVEL", cls.log_level).upper(),
            log_format=reader.choice("LOG_FORMAT", cls.log_format, ("json", "text")),
            socket_origin_hosts=tuple(
                host.lower() for host in reader.items("SOCKET_ORIGIN_HOSTS", cls.socket_origin_hosts)
            ),
            socket_max_frame_bytes=reader.integer("SOCKET_MAX_FRAME_BYTES", cls.socket_max_frame_bytes),
            socket_rate=reader.number("SOCKET_RATE", cls.socket_rate),
            socket_burst=reader.integer("SOCKET_BURST", cls.socket_burst),
            socket_send_queue=reader.integer("SOCKET_SEND_QUEUE", cls.socket_send_queue),
            socket_recheck_seconds=reader.number("SOCKET_RECHECK_SECONDS", cls.socket_recheck_seconds),
            chat_rooms_exchange=reader.text("CHAT_ROOMS_EXCHANGE", cls.chat_rooms_exchange),
        )


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """``"10.0.0.1, 172.16.0.0/12"`` → networks; a bare address is a one-address network."""
    networks = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise SettingsError(f"TRUSTED_PROXIES: {item!r} is not an IP address or network") from exc
    return tuple(networks)


class _Reader:
    """Typed access to environment variables, naming the variable in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def text(self, name: str, default: str) -> str:
        value = self._raw(name)
        return default if value is None else value

    def integer(self, name: str, default: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, not {value!r}") from None

    def number(self, name: str, default: float) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number, not {value!r}") from None
        if number <= 0:
            raise SettingsError(f"{name} must be positive")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise SettingsError(f"{name} must be a boolean (true/false), not {value!r}")

    def items(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.environ.get(name)
        if value is None:
            return default
        return tuple(item.strip() for item in value.split(",") if item.strip())

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value
