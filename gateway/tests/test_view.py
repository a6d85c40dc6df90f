"""The /graphql/ endpoint in-process, with an in-memory users service behind a fake RPC client:
request handling (§1.2), CSRF (D3), cookies (§9.2), credentials (§4.2), the users fields (§§5, 6)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from PIL import Image

from gateway.app import create_app
from gateway.auth import tokens
from gateway.settings import Settings
from gateway.tests.fake_users import FakeRpc, FakeUsers

SECRET = "view-test-secret-" * 3


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        jwt_secret=SECRET,
        media_root=str(tmp_path / "media"),
        allowed_hosts=("testserver",),
        services=("users",),
        list_cap=5,
    )


@pytest.fixture
def users() -> FakeUsers:
    return FakeUsers()


@pytest.fixture
def rpc(users: FakeUsers) -> FakeRpc:
    return FakeRpc(users=users)


@pytest.fixture
async def client(settings: Settings, rpc: FakeRpc) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.state.rpc = rpc
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


def token_for(email: str, *, exp_in: int = 600, orig_iat: int | None = None, **extra: Any) -> str:
    now = tokens.now()
    payload = {"email": email, "exp": now + exp_in, "origIat": now if orig_iat is None else orig_iat, **extra}
    return jwt.encode(payload, SECRET, algorithm="HS256")


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict | None = None,
    *,
    token: str | None = None,
    headers: dict | None = None,
    cookies: dict | None = None,
    status: int = 200,
) -> dict[str, Any]:
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"JWT {token}"
    client.cookies.clear()
    response = await client.post(
        "/graphql/", json={"query": query, "variables": variables}, headers=all_headers, cookies=cookies
    )
    assert response.status_code == status, response.text
    return response.json()


def set_cookies(response: httpx.Response, name: str) -> list[str]:
    return [value for value in response.headers.get_list("set-cookie") if value.startswith(name + "=")]


# --- request handling ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/graphql/", "/graphql"])
async def test_both_paths_post_and_get(client, path):
    response = await client.post(path, json={"query": "{ __typename }"})
    assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})
    response = await client.get(path, params={"query": "{ __typename }"})
    assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})


async def test_application_graphql_body(client):
    response = await client.post("/graphql/", content="{ __typename }", headers={"content-type": "application/graphql"})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_request_level_errors(client):
    response = await client.get("/graphql/", params={"query": "mutation { deleteToken { deleted } }"})
    assert response.status_code == 405
    assert response.json() == {
        "errors": [
            {
                "message": "Can only perform a mutation operation from a POST request.",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
    response = await client.post("/graphql/", json=[{"query": "{ __typename }"}])
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"message": "The received data is not a valid JSON query.", "extensions": {"code": "BAD_REQUEST"}}]
    }
    response = await client.post("/graphql/", content="{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"message": "POST body sent invalid JSON.", "extensions": {"code": "BAD_REQUEST"}}]
    }
    response = await client.put("/graphql/", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}
    response = await client.post("/graphql/", json={"query": ""})
    assert response.status_code == 400


async def test_parse_validation_and_coercion_errors_are_400_without_data(client):
    for query, variables, code in [
        ("{ users { id ", None, "GRAPHQL_PARSE_FAILED"),
        ("{ nosuch }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($u: String!) { user(userSlug: $u) { id } }", {}, "BAD_USER_INPUT"),
    ]:
        body = await gql(client, query, variables, status=400)
        assert list(body) == ["errors"]
        assert body["errors"][0]["extensions"]["code"] == code
    body = await gql(client, "query($u: String!) { user(userSlug: $u) { id } }", {}, status=400)
    assert body["errors"][0]["message"] == "Variable '$u' of required type 'String!' was not provided."


async def test_body_over_the_limit_is_413(client, settings):
    big = "x" * (settings.max_body_bytes + 1)
    response = await client.post(
        "/graphql/", content=json.dumps({"query": big}), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}


async def test_document_size_limit(client):
    body = await gql(client, "{ __typename " + " " * 16 * 1024 + "}", status=400)
    assert body["errors"][0]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


async def test_errors_come_before_data(client):
    response = await client.post("/graphql/", json={"query": "{ me { id } }"})
    assert list(response.json()) == ["errors", "data"]


async def test_graphiql_page(client):
    response = await client.get("/graphql/", headers={"accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()
    assert set_cookies(response, "csrftoken")


async def test_graphiql_and_introspection_off(settings, rpc):
    app = create_app(dataclasses.replace(settings, graphiql=False, introspection=False))
    app.state.rpc = rpc
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        response = await c.get("/graphql/", headers={"accept": "text/html"})
        assert response.status_code == 400
        assert "graphiql" not in response.text.lower()
        response = await c.post("/graphql/", json={"query": "{ __schema { queryType { name } } }"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
        response = await c.post("/graphql/", json={"query": "{ __typename users { __typename } }"})
        assert response.status_code == 200


# --- cookies and CSRF ---------------------------------------------------------------------------------


async def test_every_response_sets_the_csrf_cookie(client):
    for response in [
        await client.post("/graphql/", json={"query": "{ __typename }"}, cookies={"csrftoken": "a" * 32}),
        await client.post("/graphql/", json={"query": "{ nosuch }"}, cookies={"csrftoken": "a" * 32}),
        await client.post("/graphql/", json=[], cookies={"csrftoken": "a" * 32}),
    ]:
        (cookie,) = set_cookies(response, "csrftoken")
        assert re.fullmatch(r"csrftoken=a{32}; expires=[^;]+ GMT; Max-Age=31449600; Path=/; SameSite=Lax", cookie)


async def test_csrf_endpoint(client):
    client.cookies.clear()
    response = await client.get("/api/csrf/")
    assert response.json() == {"SetCsrfToken": "X-CSRFToken"}
    (cookie,) = set_cookies(response, "csrftoken")
    assert re.fullmatch(r"csrftoken=[A-Za-z0-9]{32}; expires=[^;]+; Max-Age=31449600; Path=/; SameSite=Lax", cookie)


async def test_secure_cookies_behind_a_trusted_https_proxy(settings, rpc):
    app = create_app(
        dataclasses.replace(
            settings, trusted_proxies=Settings.from_env({"TRUSTED_PROXIES": "127.0.0.1"}).trusted_proxies
        )
    )
    app.state.rpc = rpc
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.post("/graphql/", json={"query": "{ __typename }"}, headers={"x-forwarded-proto": "https"})
        assert set_cookies(response, "csrftoken")[0].endswith("; Secure")
        response = await c.post("/graphql/", json={"query": "{ __typename }"})
        assert "Secure" not in set_cookies(response, "csrftoken")[0]
    # An untrusted peer's header is ignored.
    transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.post("/graphql/", json={"query": "{ __typename }"}, headers={"x-forwarded-proto": "https"})
        assert "Secure" not in set_cookies(response, "csrftoken")[0]


CSRF_FAILED = {"errors": [{"message": "CSRF verification failed.", "extensions": {"code": "FORBIDDEN"}}]}


async def test_cookie_authenticated_mutations_need_the_csrf_header(client, users):
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    mutation = 'mutation { updateUser(name: "Changed") { user { name } } }'
    assert await gql(client, mutation, cookies={"JWT": token}, status=403) == CSRF_FAILED
    assert (
        await gql(
            client,
            mutation,
            cookies={"JWT": token, "csrftoken": "b" * 32},
            headers={"X-CSRFToken": "c" * 32},
            status=403,
        )
        == CSRF_FAILED
    )
    assert users.get_by_username("alice")["name"] != "Changed"
    body = await gql(client, mutation, cookies={"JWT": token, "csrftoken": "b" * 32}, headers={"X-CSRFToken": "b" * 32})
    assert body == {"data": {"updateUser": {"user": {"name": "Changed"}}}}


async def test_queries_and_header_auth_are_exempt(client, users):
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    assert (await gql(client, "{ me { username } }", cookies={"JWT": token}))["data"] == {"me": {"username": "alice"}}
    body = await gql(
        client, 'mutation { updateUser(name: "H") { user { name } } }', token=token, cookies={"JWT": token}
    )
    assert body == {"data": {"updateUser": {"user": {"name": "H"}}}}


async def test_auth_mutations_with_a_jwt_cookie_need_the_csrf_header_too(client, users):
    """D3 names no exception: logout by cookie is checked like any other mutation (browsers send the header)."""
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    await gql(client, "mutation { deleteToken { deleted } }", cookies={"JWT": token}, status=403)
    body = await gql(
        client,
        "mutation { deleteToken { deleted } }",
        cookies={"JWT": token, "csrftoken": "d" * 32},
        headers={"X-CSRFToken": "d" * 32},
    )
    assert body["data"]["deleteToken"] == {"deleted": True}


async def test_multipart_always_needs_the_csrf_header(client, users):
    users.add("alice", "alice@x.com")
    response = await upload(client, token_for("alice@x.com"), png_bytes(), csrf=False)
    assert response.status_code == 403
    assert response.json() == CSRF_FAILED


# --- credentials --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_token, message",
    [
        (lambda: token_for("alice@x.com", exp_in=-10), "Signature has expired"),
        (lambda: "garbage", "Error decoding signature"),
        (lambda: "", "Error decoding signature"),
        (
            lambda: jwt.encode({"email": "alice@x.com", "exp": tokens.now() + 60}, "k" * 40, algorithm="HS256"),
            "Error decoding signature",
        ),
        (lambda: token_for("alice@x.com", nbf=tokens.now() + 3600), "Invalid token"),
        (lambda: jwt.encode({"exp": tokens.now() + 60}, SECRET, algorithm="HS256"), "Invalid payload"),
        (lambda: token_for("bob@x.com"), "User is disabled"),
    ],
)
async def test_bad_credentials_fail_every_root_field(client, users, make_token, message):
    users.add("alice", "alice@x.com")
    users.add("bob", "bob@x.com", is_active=False)
    body = await gql(client, "{ authStatus { isAuthenticated } users { id } }", cookies={"JWT": make_token()})
    assert body["data"] == {"authStatus": None, "users": None}
    assert [(e["message"], e["path"], e["extensions"]) for e in body["errors"]] == [
        (message, ["authStatus"], {"code": "UNAUTHENTICATED"}),
        (message, ["users"], {"code": "UNAUTHENTICATED"}),
    ]


async def test_header_wins_and_other_schemes_are_ignored(client, users):
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    body = await gql(
        client, "{ me { username } }", headers={"Authorization": f"jwt {token}"}, cookies={"JWT": "garbage"}
    )
    assert body["data"] == {"me": {"username": "alice"}}
    body = await gql(client, "{ me { username } }", headers={"Authorization": f"Bearer {token}"})
    assert body["errors"][0]["message"] == "You do not have permission to perform this action"


async def test_deleted_users_and_older_tokens_are_anonymous(client, users):
    body = await gql(client, "{ authStatus { isAuthenticated user { id } } }", token=token_for("gone@x.com"))
    assert body == {"data": {"authStatus": {"isAuthenticated": False, "user": None}}}
    users.add("carol", "carol@x.com", joined=tokens.now())
    stale = token_for("carol@x.com", orig_iat=tokens.now() - 3600)
    body = await gql(client, "{ authStatus { isAuthenticated } }", token=stale)
    assert body == {"data": {"authStatus": {"isAuthenticated": False}}}


async def test_exempt_fields_ignore_a_bad_credential(client, users):
    users.add("alice", "alice@x.com", "pw")
    body = await gql(
        client, 'mutation { tokenAuth(email: "alice@x.com", password: "pw") { success } }', token="garbage"
    )
    assert body == {"data": {"tokenAuth": {"success": True}}}


async def test_one_user_lookup_per_request(client, users, rpc):
    users.add("alice", "alice@x.com")
    await gql(client, "{ me { id } authStatus { isAuthenticated } a: me { id } }", token=token_for("alice@x.com"))
    assert rpc.methods_called() == ["users.get_by_email"]
    call_id_stack = rpc.calls[0][3]
    assert len(call_id_stack) == 1 and re.fullmatch(r"gateway\.[0-9a-f-]{36}", call_id_stack[0])


# --- auth mutations -----------------------------------------------------------------------------------

TOKEN_AUTH = """mutation($e: String!, $p: String!) {
  tokenAuth(email: $e, password: $p) { success token payload refreshExpiresIn user { username } } }"""


async def test_token_auth(client, users):
    users.add("alice", "Alice@X.com", "pw")
    client.cookies.clear()
    response = await client.post(
        "/graphql/",
        json={"query": TOKEN_AUTH, "variables": {"e": "alice@x.COM", "p": "pw"}},
        cookies={"csrftoken": "a" * 32},
    )
    result = response.json()["data"]["tokenAuth"]
    assert result["success"] is True and result["user"] == {"username": "alice"}
    payload = result["payload"]
    assert list(payload) == ["email", "exp", "origIat"] and payload["email"] == "Alice@X.com"
    assert payload["exp"] - payload["origIat"] == 600
    assert result["refreshExpiresIn"] == payload["origIat"] + 604800
    (cookie,) = set_cookies(response, "JWT")
    assert cookie == (
        f"JWT={result['token']}; expires={cookie.split('expires=')[1].split(';')[0]}; HttpOnly; "
        "Max-Age=600; Path=/; SameSite=Lax"
    )
    (csrf_cookie,) = set_cookies(response, "csrftoken")
    assert not csrf_cookie.startswith("csrftoken=" + "a" * 32)  # rotated


async def test_token_auth_failures(client, users):
    users.add("alice", "alice@x.com", "pw")
    body = await gql(client, TOKEN_AUTH, {"e": "alice@x.com", "p": "wrong"})
    assert body["data"] == {"tokenAuth": None}
    assert (body["errors"][0]["message"], body["errors"][0]["extensions"]) == (
        "Please enter valid credentials",
        {"code": "UNAUTHENTICATED"},
    )
    for _ in range(3):
        await gql(client, TOKEN_AUTH, {"e": "alice@x.com", "p": "wrong"})
    body = await gql(client, TOKEN_AUTH, {"e": "alice@x.com", "p": "pw"})
    assert body["errors"][0]["extensions"] == {"code": "RATE_LIMITED"}


async def test_verify_token(client, users):
    token = token_for("anyone@x.com")
    body = await gql(client, "mutation($t: String) { verifyToken(token: $t) { payload } }", {"t": token})
    assert body["data"]["verifyToken"]["payload"]["email"] == "anyone@x.com"
    for variables, message in [
        ({}, "Token is required"),
        ({"t": "garbage"}, "Error decoding signature"),
        ({"t": token_for("a@x.com", exp_in=-1)}, "Signature has expired"),
    ]:
        body = await gql(client, "mutation($t: String) { verifyToken(token: $t) { payload } }", variables)
        assert body["data"] == {"verifyToken": None}
        assert (body["errors"][0]["message"], body["errors"][0]["extensions"]) == (message, {"code": "BAD_USER_INPUT"})


async def test_refresh_token(client, users):
    users.add("alice", "Alice@x.com")
    orig = tokens.now() - 300
    client.cookies.clear()
    response = await client.post(
        "/graphql/",
        json={"query": "mutation { refreshToken { payload refreshExpiresIn token } }"},
        cookies={"JWT": token_for("alice@x.com", orig_iat=orig, exp_in=300), "csrftoken": "e" * 32},
        headers={"X-CSRFToken": "e" * 32},
    )
    result = response.json()["data"]["refreshToken"]
    assert result["payload"]["origIat"] == orig and result["payload"]["email"] == "Alice@x.com"
    assert result["refreshExpiresIn"] == orig + 604800
    assert set_cookies(response, "JWT")[0].startswith(f"JWT={result['token']};")


async def test_refreshing_a_token_older_than_the_account_gives_a_token_that_still_authenticates_nobody(client, users):
    users.add("alice", "alice@x.com", joined=tokens.now())
    orig_iat = tokens.now() - 3600
    old = token_for("alice@x.com", orig_iat=orig_iat)
    body = await gql(client, "mutation($t: String) { refreshToken(token: $t) { token payload } }", {"t": old})
    refreshed = body["data"]["refreshToken"]
    assert refreshed["payload"]["origIat"] == orig_iat
    body = await gql(client, "{ authStatus { isAuthenticated } }", token=refreshed["token"])
    assert body == {"data": {"authStatus": {"isAuthenticated": False}}}


@pytest.mark.parametrize(
    "token, message",
    [
        (None, "Token is required"),
        (lambda: token_for("alice@x.com", exp_in=-1), "Signature has expired"),
        (lambda: "garbage", "Error decoding signature"),
        (
            lambda: jwt.encode({"email": "alice@x.com", "exp": tokens.now() + 60}, SECRET, algorithm="HS256"),
            "origIat field is required",
        ),
        (lambda: token_for("alice@x.com", orig_iat=tokens.now() - 604801), "Refresh has expired"),
        (lambda: token_for("gone@x.com"), "Invalid token"),
        (lambda: token_for("bob@x.com"), "User is disabled"),
    ],
)
async def test_refresh_token_errors(client, users, token, message):
    users.add("alice", "alice@x.com", joined=tokens.now() - 10**6)
    users.add("bob", "bob@x.com", is_active=False)
    body = await gql(
        client, "mutation($t: String) { refreshToken(token: $t) { token } }", {"t": token() if token else None}
    )
    assert body["data"] == {"refreshToken": None}
    assert (body["errors"][0]["message"], body["errors"][0]["extensions"]) == (message, {"code": "BAD_USER_INPUT"})


@pytest.mark.parametrize("cookie", ["valid", "garbage", None])
async def test_delete_token(client, users, cookie):
    users.add("alice", "alice@x.com")
    value = {"valid": token_for("alice@x.com"), "garbage": "garbage", None: None}[cookie]
    client.cookies.clear()
    response = await client.post(
        "/graphql/",
        json={"query": "mutation { deleteToken { deleted } }"},
        cookies={"JWT": value, "csrftoken": "f" * 32} if value else None,
        headers={"X-CSRFToken": "f" * 32},
    )
    assert response.json() == {"data": {"deleteToken": {"deleted": cookie is not None}}}
    assert 'JWT=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/' in response.headers.get_list("set-cookie")


async def test_delete_refresh_token(client):
    client.cookies.clear()
    response = await client.post("/graphql/", json={"query": "mutation { deleteRefreshToken { deleted } }"})
    assert response.json() == {"data": {"deleteRefreshToken": {"deleted": False}}}
    assert (
        'JWT-refresh-token=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/'
        in response.headers.get_list("set-cookie")
    )


# --- users queries and mutations ---------------------------------------------------------------------


async def test_users_paging_and_cap(client, users):
    for name in ["d", "b", "a", "c", "e", "f", "g"]:
        users.add(name, f"{name}@x.com")
    query = "query($f: Int, $o: Int) { users(first: $f, offset: $o) { username } }"
    listed = lambda body: [u["username"] for u in body["data"]["users"]]  # noqa: E731
    assert listed(await gql(client, query)) == ["a", "b", "c", "d", "e"]  # capped at LIST_CAP=5
    assert listed(await gql(client, query, {"f": 100})) == ["a", "b", "c", "d", "e"]
    assert listed(await gql(client, query, {"f": 2, "o": 1})) == ["b", "c"]
    assert (await gql(client, query, {"f": 0}))["data"] == {"users": []}
    body = await gql(client, query, {"f": -1, "o": -1})
    assert body["data"] == {"users": None}
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "errors": {
            "first": ["Ensure this value is greater than or equal to 0."],
            "offset": ["Ensure this value is greater than or equal to 0."],
        },
    }


async def test_user_and_me(client, users):
    alice = users.add("alice", "alice@x.com")
    body = await gql(client, '{ user(userSlug: "alice") { id username name bio avatar } }')
    assert body["data"]["user"] == {"id": alice["id"], "username": "alice", "name": "Some One", "bio": "", "avatar": ""}
    body = await gql(client, '{ user(userSlug: "ALICE") { id } }')
    assert body["errors"][0]["message"] == "User not found" and body["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    body = await gql(client, "{ me { username } }")
    assert body == {
        "errors": [
            {
                "message": "You do not have permission to perform this action",
                "locations": [{"line": 1, "column": 3}],
                "path": ["me"],
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ],
        "data": {"me": None},
    }


async def test_register_user(client, users):
    mutation = """mutation($u: String!, $e: String!) {
      registerUser(username: $u, name: "N", email: $e, password1: "p", password2: "p") {
        success user { username } } }"""
    body = await gql(client, mutation, {"u": "-New-", "e": "new@x.com"})
    assert body == {"data": {"registerUser": {"success": True, "user": {"username": "new"}}}}
    body = await gql(client, mutation, {"u": "new", "e": "other@x.com"})
    assert body["errors"][0]["message"] == "{'username': ['User with this Username already exists.']}"
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
    body = await gql(client, mutation, {"u": "x", "e": "NEW@x.com"})
    assert body["errors"][0]["extensions"]["errors"] == {"email": ["User with this Email already exists."]}


async def test_update_user_fields(client, users):
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    body = await gql(client, 'mutation { updateUser(name: "New", bio: "hi") { user { name bio } } }', token=token)
    assert body["data"]["updateUser"]["user"] == {"name": "New", "bio": "hi"}
    body = await gql(client, "mutation { updateUser(bio: null) { user { name bio } } }", token=token)
    assert body["data"]["updateUser"]["user"] == {"name": "New", "bio": ""}
    body = await gql(client, "mutation { updateUser(name: null) { user { name } } }", token=token)
    assert body["errors"][0]["extensions"]["errors"] == {"name": ["This field is required."]}


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (255, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


async def upload(client, token, content, *, filename="me.png", csrf=True, variables=None, query=None):
    query = (
        query or "mutation($a: Upload, $r: Boolean) { updateUser(avatar: $a, removeAvatar: $r) { user { avatar } } }"
    )
    headers = {"Authorization": f"JWT {token}"}
    cookies = {}
    if csrf:
        headers["X-CSRFToken"] = cookies["csrftoken"] = "c" * 32
    client.cookies.clear()
    return await client.post(
        "/graphql/",
        data={
            "operations": json.dumps({"query": query, "variables": {"a": None, **(variables or {})}}),
            "map": json.dumps({"0": ["variables.a"]}),
        },
        files={"0": (filename, content, "image/png")},
        headers=headers,
        cookies=cookies,
    )


async def test_avatar_upload_replace_and_remove(client, users, settings):
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    media = Path(settings.media_root)
    first = (await upload(client, token, png_bytes(), filename="my photo!.png")).json()["data"]["updateUser"]["user"][
        "avatar"
    ]
    assert first == "avatars/my_photo.png" and (media / first).exists()
    second = (await upload(client, token, png_bytes())).json()["data"]["updateUser"]["user"]["avatar"]
    assert second == "avatars/me.png" and (media / second).exists() and not (media / first).exists()
    body = await gql(client, "mutation { updateUser(removeAvatar: true) { user { avatar } } }", token=token)
    assert body["data"]["updateUser"]["user"]["avatar"] == "" and not (media / second).exists()
    served = await client.get("/media/avatars/nothing.png")
    assert served.status_code == 404


async def test_avatar_errors(client, users, settings):
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    body = (await upload(client, token, b"GIF89a", filename="a.gif")).json()
    assert body["errors"][0]["extensions"]["errors"] == {
        "avatar": ["File extension \u201cgif\u201d is not allowed. Allowed extensions are: svg, png, jpg, jpeg."]
    }
    body = (await upload(client, token, png_bytes(), variables={"r": True})).json()
    assert body["errors"][0]["extensions"]["errors"] == {
        "avatar": ["Cannot upload and remove an avatar at the same time."]
    }
    body = await gql(client, 'mutation { updateUser(avatar: "x.png") { user { avatar } } }', token=token)
    assert body["errors"][0]["extensions"]["errors"] == {
        "avatar": ["No file was submitted. Check the encoding type on the form."]
    }
    # A file stored for a change the service refuses is removed again.
    body = (
        await upload(
            client,
            token,
            png_bytes(),
            query='mutation($a: Upload) { updateUser(avatar: $a, name: "") { user { avatar } } }',
        )
    ).json()
    assert body["errors"][0]["extensions"]["errors"] == {"name": ["This field is required."]}
    assert not list((Path(settings.media_root) / "avatars").glob("*"))


async def test_delete_account(client, users, settings):
    alice = users.add("alice", "alice@x.com", "pw")
    token = token_for("alice@x.com")
    avatar = (await upload(client, token, png_bytes())).json()["data"]["updateUser"]["user"]["avatar"]
    body = await gql(client, 'mutation { deleteAccount(password: "wrong") { success } }', token=token)
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "errors": {"password": ["Incorrect password."]},
    }
    client.cookies.clear()
    response = await client.post(
        "/graphql/",
        json={"query": 'mutation { deleteAccount(password: "pw") { success } }'},
        headers={"Authorization": f"JWT {token}"},
    )
    assert response.json() == {"data": {"deleteAccount": {"success": True}}}
    assert 'JWT=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/' in response.headers.get_list("set-cookie")
    assert alice["id"] not in users.users
    assert not (Path(settings.media_root) / avatar).exists()


# --- failures -----------------------------------------------------------------------------------------


async def test_unavailable_service_is_a_clear_error(client, rpc):
    rpc.down.add("users")
    body = await gql(client, "{ users { id } }")
    assert body["data"] == {"users": None}
    assert (body["errors"][0]["message"], body["errors"][0]["extensions"]) == (
        "Service unavailable",
        {"code": "INTERNAL_SERVER_ERROR"},
    )
    rpc.down.clear()
    rpc.slow.add("users")
    body = await gql(client, "{ users { id } }")
    assert body["errors"][0]["message"] == "Service unavailable"


async def test_unexpected_failures_leak_nothing(client, users, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(users, "list_active", broken)
    body = await gql(client, "{ users { id } }")
    assert body["errors"][0]["message"] == "Internal server error"
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "hunter2" not in json.dumps(body)


# --- CORS and probes ------------------------------------------------------------------------------------


async def test_cors(client):
    response = await client.post("/graphql/", json={"query": "{ __typename }"}, headers={"origin": "http://localhost"})
    assert response.headers["access-control-allow-origin"] == "http://localhost"
    assert response.headers["access-control-allow-credentials"] == "true"
    response = await client.post(
        "/graphql/", json={"query": "{ __typename }"}, headers={"origin": "http://localhost:5173"}
    )
    assert response.status_code == 200
    assert not [h for h in response.headers if h.startswith("access-control-")]
    preflight = await client.options(
        "/graphql/",
        headers={
            "origin": "http://127.0.0.1",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-csrftoken",
        },
    )
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1"
    assert preflight.headers["access-control-allow-headers"] == (
        "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"
    )
    assert preflight.headers["access-control-allow-methods"] == "DELETE, GET, OPTIONS, PATCH, POST, PUT"
    assert preflight.headers["access-control-max-age"] == "86400"
    assert preflight.headers["access-control-allow-credentials"] == "true"


async def test_unknown_host_is_refused_but_probes_answer(settings, rpc):
    app = create_app(settings)
    app.state.rpc = rpc
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://evil.example") as c:
        assert (await c.post("/graphql/", json={"query": "{ __typename }"})).status_code == 400
        assert (await c.get("/healthz")).json() == {"status": "ok"}


async def test_readiness(client, rpc):
    response = await client.get("/readyz")
    assert (response.status_code, response.json()["status"]) == (200, "ready")
    rpc.down.add("users")
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["not_ready"] == ["users"]
    rpc.connected = False
    response = await client.get("/readyz")
    assert response.status_code == 503 and response.json()["broker"] == "down"


async def test_credential_lookup_failure_is_reported_once_per_field_without_retrying(client, users, rpc):
    users.add("alice", "alice@x.com")
    rpc.slow.add("users")
    body = await gql(client, "{ me { id } authStatus { isAuthenticated } }", token=token_for("alice@x.com"))
    assert [e["message"] for e in body["errors"]] == ["Service unavailable", "Service unavailable"]
    assert rpc.methods_called() == ["users.get_by_email"]


async def test_graphiql_sends_the_current_csrf_cookie_with_every_request(client):
    """tokenAuth rotates csrftoken, so GraphiQL must read the cookie per request, not once at load."""
    client.cookies.clear()
    response = await client.get("/graphql/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert '"x-csrftoken": Cookies.get("csrftoken")' in response.text
