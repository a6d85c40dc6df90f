"""What a request says about its client, believing forwarded headers only from trusted proxies.

Used for the login rate limit's client address (D7) and for ``Secure`` cookies (D4). A proxy is trusted
when its address is in ``TRUSTED_PROXIES``; nothing is trusted by default, so a client cannot spoof its
address or scheme with its own ``X-Forwarded-*`` headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

from starlette.requests import HTTPConnection

from gateway.settings import IPNetwork, Settings


def _is_trusted(address: str | None, proxies: Collection[IPNetwork]) -> bool:
    if not address or not proxies:  # no proxies (the default): no address to parse
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def peer_address(connection: HTTPConnection) -> str | None:
    """The address of the TCP peer (the proxy, when there is one)."""
    return connection.client.host if connection.client else None


def client_address(connection: HTTPConnection, settings: Settings) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest untrusted hop
    of ``X-Forwarded-For`` (read right to left, skipping trusted proxies)."""
    peer = peer_address(connection) or "unknown"
    if not _is_trusted(peer, settings.trusted_proxies):
        return peer
    forwarded = connection.headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, settings.trusted_proxies):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_secure(connection: HTTPConnection, settings: Settings) -> bool:
    """Whether cookies get ``Secure`` (D4): forced by ``SECURE_COOKIES``, or the request arrived over
    HTTPS directly or per a trusted proxy's ``X-Forwarded-Proto``."""
    if settings.secure_cookies != "auto":
        return settings.secure_cookies == "true"
    # The scope's scheme is what ``connection.url`` would parse, without building the URL.
    if connection.scope.get("scheme", "http") in ("https", "wss"):
        return True
    if _is_trusted(peer_address(connection), settings.trusted_proxies):
        proto = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return proto in ("https", "wss")
    return False
