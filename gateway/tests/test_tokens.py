"""JWT issue and decode (CONTRACT §9.1, §7.2)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from gateway.auth import tokens

SECRET = "unit-test-secret-" * 4  # 68 bytes: long enough for HS512 too, so PyJWT does not warn


def sign(payload: dict, secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def test_issue_has_exactly_the_contract_payload():
    issued = tokens.issue("Alice@X.com", SECRET, lifetime=600, issued_at=1_700_000_000)
    assert issued.payload == {"email": "Alice@X.com", "exp": 1_700_000_600, "origIat": 1_700_000_000}
    assert list(issued.payload) == ["email", "exp", "origIat"]
    assert issued.expires_at == 1_700_000_600
    header, body, _ = issued.token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(body + "==")) == issued.payload


def test_refresh_keeps_orig_iat():
    issued = tokens.issue("a@x.com", SECRET, lifetime=600, issued_at=2_000, orig_iat=1_000)
    assert issued.payload == {"email": "a@x.com", "exp": 2_600, "origIat": 1_000}


def test_decode_round_trip():
    now = tokens.now()
    issued = tokens.issue("a@x.com", SECRET, lifetime=600, issued_at=now)
    assert tokens.decode(issued.token, SECRET) == issued.payload


@pytest.mark.parametrize(
    "token, message",
    [
        (
            lambda: sign({"email": "a@x.com", "exp": tokens.now() - 1, "origIat": tokens.now() - 601}),
            "Signature has expired",
        ),
        (lambda: "garbage", "Error decoding signature"),
        (lambda: "", "Error decoding signature"),
        (lambda: "not.a.token", "Error decoding signature"),
        (
            lambda: sign({"email": "a@x.com", "exp": tokens.now() + 600}, "another-secret-another-secret-xx"),
            "Error decoding signature",
        ),
        (lambda: sign({"email": "a@x.com", "exp": tokens.now() + 600, "nbf": tokens.now() + 60}), "Invalid token"),
        (lambda: sign({"email": "a@x.com"}), "Invalid token"),
        (
            lambda: jwt.encode({"email": "a@x.com", "exp": tokens.now() + 600}, SECRET, algorithm="HS512"),
            "Invalid token",
        ),
    ],
    ids=["expired", "garbage", "empty", "segments", "other key", "not yet valid", "no exp", "other algorithm"],
)
def test_decode_errors(token, message):
    with pytest.raises(tokens.TokenError) as caught:
        tokens.decode(token(), SECRET)
    assert caught.value.message == message


def test_expiry_has_no_leeway():
    now = tokens.now()
    with pytest.raises(tokens.TokenError, match=r"^Signature has expired$"):
        tokens.decode(sign({"email": "a@x.com", "exp": now - 1}), SECRET)


@pytest.mark.parametrize("payload", [{}, {"email": ""}, {"email": None}, {"email": 5}])
def test_payload_without_email_is_invalid(payload):
    with pytest.raises(tokens.TokenError, match=r"^Invalid payload$"):
        tokens.payload_email(payload)


def test_payload_email():
    assert tokens.payload_email({"email": "a@x.com"}) == "a@x.com"


def test_check_refreshable():
    assert tokens.check_refreshable({"origIat": 1_000}, current=1_000 + 604_800, window=604_800) == 1_000
    with pytest.raises(tokens.TokenError, match=r"^Refresh has expired$"):
        tokens.check_refreshable({"origIat": 1_000}, current=1_001 + 604_800, window=604_800)
    for payload in ({}, {"origIat": None}, {"origIat": 0}, {"origIat": "x"}):
        with pytest.raises(tokens.TokenError, match=r"^origIat field is required$"):
            tokens.check_refreshable(payload, current=2_000, window=604_800)


def test_a_verified_token_is_not_verified_again(monkeypatch):
    issued = tokens.issue("cached@x.com", SECRET, lifetime=600, issued_at=tokens.now())
    verifications = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: verifications.append(1) or real_decode(*a, **k))
    first = tokens.decode(issued.token, SECRET)
    first["email"] = "changed by a caller"
    assert tokens.decode(issued.token, SECRET) == issued.payload
    assert tokens.decode(issued.token, SECRET) == issued.payload
    assert len(verifications) == 1
    with pytest.raises(tokens.TokenError) as refused:
        tokens.decode(issued.token, SECRET + "x")  # the cache is per secret
    assert refused.value.message == "Error decoding signature"
    assert len(verifications) == 2


def test_a_cached_token_expires_at_exactly_its_exp(monkeypatch):
    issued = tokens.issue("expiring@x.com", SECRET, lifetime=600, issued_at=tokens.now())
    assert tokens.decode(issued.token, SECRET) == issued.payload
    monkeypatch.setattr(tokens, "_timestamp", lambda: issued.expires_at - 0.001)
    assert tokens.decode(issued.token, SECRET) == issued.payload
    monkeypatch.setattr(tokens, "_timestamp", lambda: float(issued.expires_at))
    with pytest.raises(tokens.TokenError) as refused:
        tokens.decode(issued.token, SECRET)
    assert refused.value.message == "Signature has expired"


def test_the_verified_token_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 3)
    monkeypatch.setattr(tokens, "_verified", {})
    issued = [tokens.issue(f"u{i}@x.com", SECRET, lifetime=600, issued_at=tokens.now()) for i in range(5)]
    for token in issued:
        tokens.decode(token.token, SECRET)
    assert [key[1] for key in tokens._verified] == [token.token for token in issued[2:]]
