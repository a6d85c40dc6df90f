"""Settings from the environment, and what a request says about its client (D4, D7)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from gateway.proxy import client_address, is_secure
from gateway.settings import DEVELOPMENT_JWT_SECRET, Settings, SettingsError

SECRET = "s" * 40


def test_defaults():
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.jwt_secret == DEVELOPMENT_JWT_SECRET
    assert (settings.graphiql, settings.introspection) == (True, True)
    assert (settings.max_depth, settings.max_document_bytes, settings.max_fields, settings.max_root_fields) == (
        10,
        16384,
        500,
        10,
    )
    assert settings.list_cap == 10000
    assert settings.cors_allowed_origins == ("http://localhost", "http://127.0.0.1")
    assert settings.trusted_proxies == ()
    assert DEVELOPMENT_JWT_SECRET not in repr(settings)


def test_production_turns_tools_off_and_refuses_the_development_secret():
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        Settings.from_env({"EDUSPHERE_ENV": "production"})
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        Settings.from_env({"EDUSPHERE_ENV": "production", "JWT_SECRET": "short"})
    settings = Settings.from_env({"EDUSPHERE_ENV": "production", "JWT_SECRET": SECRET})
    assert (settings.graphiql, settings.introspection) == (False, False)
    settings = Settings.from_env({"EDUSPHERE_ENV": "production", "JWT_SECRET": SECRET, "GRAPHIQL": "on"})
    assert settings.graphiql is True


def test_values_are_parsed_and_checked():
    settings = Settings.from_env(
        {
            "GATEWAY_SERVICES": "users, rooms",
            "TRUSTED_PROXIES": "10.0.0.1, 172.16.0.0/12",
            "LIST_CAP": "50",
            "RPC_TIMEOUT": "2.5",
            "SECURE_COOKIES": "TRUE",
        }
    )
    assert settings.services == ("users", "rooms")
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.1/32", "172.16.0.0/12"]
    assert (settings.list_cap, settings.rpc_timeout, settings.secure_cookies) == (50, 2.5, "true")
    for env in ({"LIST_CAP": "x"}, {"TRUSTED_PROXIES": "nope"}, {"GRAPHIQL": "maybe"}, {"EDUSPHERE_ENV": "staging"}):
        with pytest.raises(SettingsError):
            Settings.from_env(env)


def request(peer: str, headers: dict[str, str] | None = None, scheme: str = "http") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "client": (peer, 1234),
            "headers": raw,
            "path": "/",
            "query_string": b"",
            "server": ("testserver", 80),
            "method": "GET",
        }
    )


def test_client_address():
    direct = Settings()
    proxied = Settings.from_env({"TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8"})
    forwarded = {"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}
    assert client_address(request("198.51.100.1", forwarded), direct) == "198.51.100.1"  # nobody trusted
    assert client_address(request("127.0.0.1", forwarded), proxied) == "203.0.113.7"  # skips trusted hops
    assert client_address(request("198.51.100.1", forwarded), proxied) == "198.51.100.1"  # untrusted peer
    assert client_address(request("127.0.0.1"), proxied) == "127.0.0.1"  # no header


def test_secure_cookies():
    proxied = Settings.from_env({"TRUSTED_PROXIES": "127.0.0.1"})
    assert is_secure(request("1.2.3.4", scheme="https"), Settings())
    assert not is_secure(request("1.2.3.4", {"X-Forwarded-Proto": "https"}), proxied)
    assert is_secure(request("127.0.0.1", {"X-Forwarded-Proto": "https"}), proxied)
    assert is_secure(request("1.2.3.4"), Settings(secure_cookies="true"))
    assert not is_secure(request("1.2.3.4", scheme="https"), Settings(secure_cookies="false"))
