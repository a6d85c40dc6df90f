"""Set-Cookie values (CONTRACT §9.2, D4) and the CSRF double submit (D3)."""

from __future__ import annotations

import re

from gateway.auth import cookies, csrf

NOW = 1_755_692_471  # Wed, 20 Aug 2025 12:21:11 GMT


def test_http_date():
    assert cookies.http_date(NOW) == "Wed, 20 Aug 2025 12:21:11 GMT"


def test_a_second_of_responses_formats_the_csrf_expiry_once(monkeypatch):
    formatted = []
    real = cookies.formatdate
    monkeypatch.setattr(cookies, "formatdate", lambda *a, **k: formatted.append(a) or real(*a, **k))
    cookies.http_date.cache_clear()
    values = {cookies.csrf_cookie("a" * 32, now=NOW + 7, secure=False) for _ in range(5)}
    assert values == {
        "csrftoken=" + "a" * 32 + "; expires=Wed, 19 Aug 2026 12:21:18 GMT; Max-Age=31449600; Path=/; SameSite=Lax"
    }
    assert len(formatted) == 1


def test_jwt_cookie():
    assert cookies.jwt_cookie("a.b.c", expires_at=NOW + 600, max_age=600, secure=False) == (
        "JWT=a.b.c; expires=Wed, 20 Aug 2025 12:31:11 GMT; HttpOnly; Max-Age=600; Path=/; SameSite=Lax"
    )
    assert cookies.jwt_cookie("a.b.c", expires_at=NOW + 600, max_age=600, secure=True).endswith(
        "; SameSite=Lax; Secure"
    )


def test_deletion_cookies():
    assert cookies.jwt_deletion_cookie(secure=False) == (
        'JWT=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/'
    )
    assert cookies.refresh_token_deletion_cookie(secure=False) == (
        'JWT-refresh-token=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/'
    )
    assert cookies.jwt_deletion_cookie(secure=True) == (
        'JWT=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; Secure'
    )


def test_csrf_cookie():
    token = "a" * 32
    assert cookies.csrf_cookie(token, now=NOW, secure=False) == (
        f"csrftoken={token}; expires=Wed, 19 Aug 2026 12:21:11 GMT; Max-Age=31449600; Path=/; SameSite=Lax"
    )
    assert cookies.csrf_cookie(token, now=NOW, secure=True).endswith("; SameSite=Lax; Secure")
    assert "HttpOnly" not in cookies.csrf_cookie(token, now=NOW, secure=True)


def test_new_csrf_tokens():
    first, second = csrf.new_token(), csrf.new_token()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", first)
    assert first != second
    assert csrf.is_well_formed(first)


def test_csrf_token_characters_are_drawn_without_bias(monkeypatch):
    draws = iter([bytes([248, 255, 0, 61, 62, 247]) + bytes(34), bytes(40)])
    monkeypatch.setattr(csrf.secrets, "token_bytes", lambda n: next(draws))
    # 248 and above would favour the first 8 characters: they are skipped.
    assert csrf.new_token() == "a9a9" + "a" * 28


def test_csrf_token_is_made_without_a_python_step_per_character(monkeypatch):
    steps = []
    monkeypatch.setattr(csrf, "_ALPHABET", _CountingAlphabet(csrf._ALPHABET, steps))
    assert csrf.is_well_formed(csrf.new_token())
    assert not csrf.is_well_formed("é" * 32) and not csrf.is_well_formed("a" * 31 + "-")
    assert steps == []


class _CountingAlphabet(str):
    def __new__(cls, value: str, steps: list) -> "_CountingAlphabet":
        alphabet = super().__new__(cls, value)
        alphabet.steps = steps
        return alphabet

    def __getitem__(self, index):
        self.steps.append(index)
        return super().__getitem__(index)

    def __contains__(self, char):
        self.steps.append(char)
        return super().__contains__(char)


def test_cookie_token_keeps_a_well_formed_value():
    assert csrf.cookie_token({"csrftoken": "b" * 32}) == "b" * 32
    replaced = csrf.cookie_token({"csrftoken": "short"})
    assert replaced != "short" and csrf.is_well_formed(replaced)
    assert csrf.is_well_formed(csrf.cookie_token({}))


def test_double_submit():
    assert csrf.passes({"csrftoken": "t" * 32}, {"x-csrftoken": "t" * 32})
    assert not csrf.passes({"csrftoken": "t" * 32}, {"x-csrftoken": "u" * 32})
    assert not csrf.passes({"csrftoken": "t" * 32}, {})
    assert not csrf.passes({}, {"x-csrftoken": "t" * 32})
    assert not csrf.passes({"csrftoken": ""}, {"x-csrftoken": ""})
    assert not csrf.passes({"csrftoken": "é" * 32}, {"x-csrftoken": "e" * 32})
