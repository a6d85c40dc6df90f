"""Client address and scheme of a request (D4, D7), and what they cost when no proxy is trusted."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest
from starlette.requests import HTTPConnection

from gateway import proxy
from gateway.settings import Settings
from gateway.tests.fake_rooms import make_settings


def connection(scheme: str = "http", peer: str = "10.0.0.5", headers: dict[str, str] | None = None) -> HTTPConnection:
    return HTTPConnection(
        {
            "type": "http",
            "scheme": scheme,
            "path": "/graphql/",
            "query_string": b"",
            "headers": [(name.encode(), value.encode()) for name, value in (headers or {}).items()],
            "client": (peer, 5555),
            "server": ("testserver", 80),
        }
    )


class NoURL(HTTPConnection):
    @property
    def url(self):  # type: ignore[override]
        raise AssertionError("the scheme is read from the scope, no URL is built")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, 10000, ())


def behind(settings: Settings, proxies: str) -> Settings:
    networks = Settings.from_env({"TRUSTED_PROXIES": proxies}).trusted_proxies
    return dataclasses.replace(settings, trusted_proxies=networks)


def test_without_trusted_proxies_no_address_is_parsed(settings, monkeypatch):
    parsed = []
    real = ipaddress.ip_address
    monkeypatch.setattr(proxy.ipaddress, "ip_address", lambda value: parsed.append(value) or real(value))
    spoofing = connection(headers={"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"})
    assert proxy.client_address(spoofing, settings) == "10.0.0.5"
    assert proxy.is_secure(spoofing, settings) is False
    assert parsed == []


def test_is_secure_reads_the_scheme_without_building_the_url(settings):
    for scheme, secure in (("https", True), ("wss", True), ("http", False), ("ws", False)):
        request = NoURL(connection(scheme=scheme).scope)
        assert proxy.is_secure(request, settings) is secure


def test_a_trusted_proxy_still_forwards_address_and_scheme(settings):
    trusted = behind(settings, "10.0.0.0/8")
    forwarded = connection(headers={"x-forwarded-for": "1.2.3.4, 10.0.0.7", "x-forwarded-proto": "https"})
    assert proxy.client_address(forwarded, trusted) == "1.2.3.4"
    assert proxy.is_secure(forwarded, trusted) is True
    untrusted_peer = connection(peer="192.0.2.1", headers={"x-forwarded-for": "1.2.3.4"})
    assert proxy.client_address(untrusted_peer, trusted) == "192.0.2.1"
