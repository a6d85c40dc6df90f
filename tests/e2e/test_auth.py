"""Authentication over real HTTP: tokenAuth, verifyToken, refreshToken, logout, per-field credential
checks and login rate limits (CONTRACT §§4, 6.1, 7.2, 9; D1, D4, D7; C13; §16.2)."""

from __future__ import annotations

import re

import pytest

from testing.services import wait_until
from tests.e2e.conftest import PASSWORD, error_of, make_token, now, unique

TOKEN_AUTH = """mutation($e: String!, $p: String!) {
  tokenAuth(email: $e, password: $p) { success token payload refreshExpiresIn user { id username name } } }"""
VERIFY = "mutation($t: String) { verifyToken(token: $t) { payload } }"
REFRESH = "mutation($t: String) { refreshToken(token: $t) { payload refreshExpiresIn token } }"
AUTH_STATUS = "{ authStatus { isAuthenticated user { username } } }"
ME = "{ me { username } }"

JWT_COOKIE = re.compile(
    r"^JWT=(?P<token>[\w.-]+); expires=\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT; HttpOnly; Max-Age=600; Path=/; SameSite=Lax$"
)
CSRF_COOKIE = re.compile(r"^csrftoken=(?P<value>\w{32}); expires=[^;]+; Max-Age=31449600; Path=/; SameSite=Lax$")
JWT_DELETION = 'JWT=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/'


def set_cookies(response, name):
    return [value for value in response.headers.get_list("set-cookie") if value.startswith(name + "=")]


def test_token_auth_issues_the_contract_token_and_cookies(api):
    user = api.register()
    response = api.post(TOKEN_AUTH, {"e": user["email"], "p": PASSWORD})
    body = response.json()
    assert "errors" not in body
    result = body["data"]["tokenAuth"]
    payload = result["payload"]
    assert set(payload) == {"email", "exp", "origIat"}
    assert payload["email"] == user["email"]
    assert payload["exp"] - payload["origIat"] == 600
    assert abs(payload["origIat"] - now()) <= 5
    assert result["refreshExpiresIn"] == payload["origIat"] + 604800
    assert result["success"] is True
    assert result["user"] == {"id": user["id"], "username": user["username"], "name": user["name"]}
    (jwt_cookie,) = set_cookies(response, "JWT")
    match = JWT_COOKIE.match(jwt_cookie)
    assert match, jwt_cookie
    assert match["token"] == result["token"]
    (csrf_cookie,) = set_cookies(response, "csrftoken")
    assert CSRF_COOKIE.match(csrf_cookie), csrf_cookie


def test_token_auth_rotates_the_csrf_token(api):
    user = api.register()
    first = api.client.get(api.base_url + "/api/csrf/")
    old = first.cookies["csrftoken"]
    response = api.post(TOKEN_AUTH, {"e": user["email"], "p": PASSWORD}, cookies={"csrftoken": old})
    (csrf_cookie,) = set_cookies(response, "csrftoken")
    assert CSRF_COOKIE.match(csrf_cookie)["value"] != old


@pytest.mark.parametrize("case", ["wrong password", "unknown email", "username in the email slot"])
def test_token_auth_rejects_bad_credentials(api, case):
    user = api.register()
    email, password = {
        "wrong password": (user["email"], "not-the-password"),
        "unknown email": (unique() + "@example.com", PASSWORD),
        "username in the email slot": (user["username"], PASSWORD),
    }[case]
    body = api.gql(TOKEN_AUTH, {"e": email, "p": password})
    assert body["data"] == {"tokenAuth": None}
    error = error_of(body)
    assert error["message"] == "Please enter valid credentials"
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["path"] == ["tokenAuth"]


def test_email_is_compared_lower_cased_at_login(api):
    """D1: John@X.com logs into john@x.com's account; the payload carries the stored email."""
    local = unique()
    user = api.register(email=f"{local}@example.com")
    body = api.gql(TOKEN_AUTH, {"e": f"{local.upper()}@EXAMPLE.com", "p": PASSWORD})
    assert body["data"]["tokenAuth"]["payload"]["email"] == user["email"]


def test_token_auth_ignores_a_stale_jwt_cookie(api):
    user = api.register()
    body = api.gql(TOKEN_AUTH, {"e": user["email"], "p": PASSWORD}, cookies={"JWT": "garbage"})
    assert body["data"]["tokenAuth"]["success"] is True


def test_header_and_cookie_credentials(api):
    user = api.new_user()
    assert api.gql(ME, token=user["token"])["data"] == {"me": {"username": user["username"]}}
    assert api.gql(ME, headers={"Authorization": f"jwt {user['token']}"})["data"]["me"]["username"] == user["username"]
    assert api.gql(ME, cookies={"JWT": user["token"]})["data"]["me"]["username"] == user["username"]
    # Another scheme is ignored and the cookie is used instead.
    body = api.gql(ME, headers={"Authorization": f"Bearer {user['token']}"})
    assert error_of(body)["message"] == "You do not have permission to perform this action"


def test_auth_status(api):
    anonymous = api.gql(AUTH_STATUS)
    assert anonymous == {"data": {"authStatus": {"isAuthenticated": False, "user": None}}}
    user = api.new_user()
    body = api.gql(AUTH_STATUS, token=user["token"])
    assert body["data"]["authStatus"] == {"isAuthenticated": True, "user": {"username": user["username"]}}


def _credential_error(api, token, query="{ authStatus { isAuthenticated } users { id } }"):
    body = api.gql(query, token=token)
    return body


@pytest.mark.parametrize(
    "token_kind, message",
    [
        ("expired", "Signature has expired"),
        ("garbage", "Error decoding signature"),
        ("empty", "Error decoding signature"),
        ("other key", "Error decoding signature"),
        ("not yet valid", "Invalid token"),
        ("no email", "Invalid payload"),
    ],
)
def test_bad_credentials_fail_every_root_field(api, token_kind, message):
    """§4.2: a bad credential gives each root field its own error and a null value."""
    user = api.register()
    token = {
        "expired": make_token({"email": user["email"], "exp": now() - 10, "origIat": now() - 700}),
        "garbage": "not.a.token",
        "empty": "",
        "other key": make_token({"email": user["email"], "exp": now() + 600, "origIat": now()}, "another-secret"),
        "not yet valid": make_token({"email": user["email"], "exp": now() + 600, "origIat": now(), "nbf": now() + 3600}),
        "no email": make_token({"exp": now() + 600, "origIat": now()}),
    }[token_kind]
    body = api.gql("{ authStatus { isAuthenticated } users { id } }", cookies={"JWT": token})
    assert body["data"] == {"authStatus": None, "users": None}
    assert [error["message"] for error in body["errors"]] == [message, message]
    assert sorted(error["path"][0] for error in body["errors"]) == ["authStatus", "users"]
    assert {error["extensions"]["code"] for error in body["errors"]} == {"UNAUTHENTICATED"}


def test_token_of_a_deleted_user_is_anonymous(api):
    user = api.new_user()
    assert "errors" not in api.gql(
        "mutation($p: String!) { deleteAccount(password: $p) { success } }", {"p": PASSWORD}, token=user["token"]
    )
    assert api.gql(AUTH_STATUS, token=user["token"])["data"]["authStatus"]["isAuthenticated"] is False
    body = api.gql(ME, token=user["token"])
    assert body["data"] == {"me": None}
    assert error_of(body)["message"] == "You do not have permission to perform this action"


def test_token_of_an_inactive_user(api, service_rpc):
    """§4.2 and §6.1: a disabled account's token fails every root field; it cannot log in or refresh."""
    user = api.new_user()
    service_rpc("users", "set_active", user["id"], False)

    def refused() -> dict | None:
        body = api.gql(AUTH_STATUS, token=user["token"])
        return body if body["data"] == {"authStatus": None} else None

    # The gateway hears of a change made straight at the service through its user_updated event.
    body = wait_until(refused, message="the gateway to learn of the deactivation")
    assert body["data"] == {"authStatus": None}
    assert (error_of(body)["message"], error_of(body)["extensions"]["code"]) == ("User is disabled", "UNAUTHENTICATED")
    body = api.gql(TOKEN_AUTH, {"e": user["email"], "p": PASSWORD})
    assert error_of(body)["message"] == "Please enter valid credentials"
    body = api.gql(REFRESH, {"t": user["token"]})
    assert error_of(body)["message"] == "User is disabled"


def test_token_older_than_the_account_does_not_authenticate_it(api):
    """§9.1: a token minted before the account existed (a deleted account's namesake) is nobody's."""
    user = api.register()
    stale = make_token({"email": user["email"], "exp": now() + 600, "origIat": now() - 3600})
    assert api.gql(AUTH_STATUS, token=stale)["data"]["authStatus"]["isAuthenticated"] is False


def test_verify_token(api):
    user = api.new_user()
    body = api.gql(VERIFY, {"t": user["token"]})
    assert body["data"]["verifyToken"]["payload"]["email"] == user["email"]
    body = api.gql(VERIFY, cookies={"JWT": user["token"]})
    assert body["data"]["verifyToken"]["payload"]["email"] == user["email"]


@pytest.mark.parametrize(
    "token, message",
    [
        (None, "Token is required"),
        ("garbage", "Error decoding signature"),
        ("expired", "Signature has expired"),
    ],
)
def test_verify_token_errors(api, token, message):
    if token == "expired":
        token = make_token({"email": "x@example.com", "exp": now() - 1, "origIat": now() - 601})
    body = api.gql(VERIFY, {"t": token})
    assert body["data"] == {"verifyToken": None}
    error = error_of(body)
    assert error["message"] == message
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_refresh_token_keeps_the_session_alive(api):
    user = api.register()
    orig_iat = now() - 300
    old = make_token({"email": user["email"], "exp": now() + 300, "origIat": orig_iat})
    response = api.post("mutation { refreshToken { payload refreshExpiresIn token } }", cookies={"JWT": old})
    body = response.json()
    assert "errors" not in body, body
    result = body["data"]["refreshToken"]
    assert result["payload"]["origIat"] == orig_iat
    assert result["payload"]["email"] == user["email"]
    assert abs(result["payload"]["exp"] - (now() + 600)) <= 5
    assert result["refreshExpiresIn"] == orig_iat + 604800
    (jwt_cookie,) = set_cookies(response, "JWT")
    assert JWT_COOKIE.match(jwt_cookie)["token"] == result["token"]
    assert set_cookies(response, "csrftoken")


@pytest.mark.parametrize(
    "case, message",
    [
        ("no token", "Token is required"),
        ("expired", "Signature has expired"),
        ("garbage", "Error decoding signature"),
        ("no origIat", "origIat field is required"),
        ("refresh expired", "Refresh has expired"),
        ("deleted user", "Invalid token"),
    ],
)
def test_refresh_token_errors(api, case, message):
    user = api.register()
    email = user["email"]
    token = {
        "no token": None,
        "expired": make_token({"email": email, "exp": now() - 1, "origIat": now() - 601}),
        "garbage": "garbage",
        "no origIat": make_token({"email": email, "exp": now() + 600}),
        "refresh expired": make_token({"email": email, "exp": now() + 600, "origIat": now() - 604801}),
        "deleted user": make_token({"email": unique() + "@example.com", "exp": now() + 600, "origIat": now()}),
    }[case]
    body = api.gql(REFRESH, {"t": token})
    assert body["data"] == {"refreshToken": None}
    error = error_of(body)
    assert error["message"] == message
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "NoneType" not in str(body)


@pytest.mark.parametrize("cookie", ["valid", "expired", "garbage", None])
def test_delete_token_always_logs_out(api, cookie):
    """C13: logout succeeds and clears the cookie whatever the cookie holds."""
    user = api.new_user()
    value = {
        "valid": user["token"],
        "expired": make_token({"email": user["email"], "exp": now() - 5, "origIat": now() - 605}),
        "garbage": "garbage",
        None: None,
    }[cookie]
    response = api.post("mutation { deleteToken { deleted } }", cookies={"JWT": value} if value else None)
    body = response.json()
    assert body == {"data": {"deleteToken": {"deleted": cookie is not None}}}
    assert JWT_DELETION in response.headers.get_list("set-cookie")


def test_delete_refresh_token(api):
    response = api.post("mutation { deleteRefreshToken { deleted } }")
    assert response.json() == {"data": {"deleteRefreshToken": {"deleted": False}}}
    assert 'JWT-refresh-token=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/' in response.headers.get_list(
        "set-cookie"
    )


def test_failed_logins_lock_the_account(api, other_api):
    """D7: after 10 failures for an account, even the right password is refused without being checked."""
    user = api.register()
    for _ in range(10):
        body = api.gql(TOKEN_AUTH, {"e": user["email"], "p": "wrong-password"})
        assert error_of(body)["extensions"]["code"] == "UNAUTHENTICATED"
    # From another address, and with the email in another case: the account is what is limited.
    body = other_api.gql(TOKEN_AUTH, {"e": user["email"].upper(), "p": PASSWORD})
    error = error_of(body)
    assert error["message"] == "Too many login attempts. Please try again later."
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert body["data"] == {"tokenAuth": None}


def test_attempts_per_address_are_limited(api, other_api):
    """D7: 100 attempts per client address per window, successful or not."""
    for _ in range(100):
        body = api.gql(TOKEN_AUTH, {"e": unique() + "@example.com", "p": "whatever"})
        assert error_of(body)["extensions"]["code"] == "UNAUTHENTICATED"
    user = other_api.register()
    body = api.gql(TOKEN_AUTH, {"e": user["email"], "p": PASSWORD})
    assert error_of(body)["extensions"]["code"] == "RATE_LIMITED"
    # Another address is unaffected.
    assert other_api.gql(TOKEN_AUTH, {"e": user["email"], "p": PASSWORD})["data"]["tokenAuth"]["success"] is True


def test_failed_account_deletions_count_as_failed_logins(api):
    user = api.new_user()
    for _ in range(10):
        body = api.gql(
            "mutation($p: String!) { deleteAccount(password: $p) { success } }", {"p": "wrong"}, token=user["token"]
        )
        assert error_of(body)["extensions"]["errors"] == {"password": ["Incorrect password."]}
    body = api.gql(TOKEN_AUTH, {"e": user["email"], "p": PASSWORD})
    assert error_of(body)["extensions"]["code"] == "RATE_LIMITED"
