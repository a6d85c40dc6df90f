"""End-to-end fixtures: real service processes and a real gateway (the session `stack`), spoken to over
HTTP exactly as the contract's clients do."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from PIL import Image

from testing.fixtures import E2E_GATEWAY_ENV

JWT_SECRET = E2E_GATEWAY_ENV["JWT_SECRET"]
PASSWORD = "correct-horse-battery-staple"
CSRF_TOKEN = "e2eCsrfToken0123456789abcdefABCD"


def image_bytes(kind: str = "JPEG", size: tuple[int, int] = (1, 1)) -> bytes:
    """A real image; the contract's acceptance tests upload a 1x1 red JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (255, 0, 0)).save(buffer, kind)
    return buffer.getvalue()


_addresses = itertools.count(1)


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def make_token(payload: dict[str, Any], secret: str = JWT_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


@dataclass
class Api:
    """A GraphQL client of one gateway, presenting its own client address through the trusted proxy."""

    base_url: str
    client: httpx.Client
    address: str = field(default_factory=lambda: f"10.{random.randint(0, 255)}.{next(_addresses) % 256}.{random.randint(1, 254)}")

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        path: str = "/graphql/",
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        csrf: bool = True,
    ) -> httpx.Response:
        """POST one operation. Only the cookies given are sent; with a ``JWT`` cookie the matching CSRF
        cookie and header go along too, as the reference web client sends them, unless ``csrf=False``."""
        all_headers = {"X-Forwarded-For": self.address}
        if token:
            all_headers["Authorization"] = f"JWT {token}"
        cookies = dict(cookies or {})
        if csrf and "JWT" in cookies and "csrftoken" not in cookies:
            cookies["csrftoken"] = CSRF_TOKEN
            all_headers["X-CSRFToken"] = CSRF_TOKEN
        all_headers.update(headers or {})
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        self.client.cookies.clear()  # no jar: every test states the cookies it sends
        return self.client.post(self.base_url + path, json=body, headers=all_headers, cookies=cookies)

    def gql(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Execute and return the JSON body; the HTTP status must be 200."""
        response = self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def register(self, username: str | None = None, email: str | None = None, name: str = "Test User",
                 password: str = PASSWORD) -> dict[str, Any]:
        username = username or unique()
        email = email or f"{username}@example.com"
        body = self.gql(
            """mutation($u: String!, $n: String!, $e: String!, $p: String!) {
                 registerUser(username: $u, name: $n, email: $e, password1: $p, password2: $p) {
                   success user { id username name } } }""",
            {"u": username, "n": name, "e": email, "p": password},
        )
        assert "errors" not in body, body
        user = body["data"]["registerUser"]["user"]
        return {**user, "email": email, "password": password}

    def login(self, email: str, password: str = PASSWORD) -> str:
        body = self.gql(
            "mutation($e: String!, $p: String!) { tokenAuth(email: $e, password: $p) { token } }",
            {"e": email, "p": password},
        )
        assert "errors" not in body, body
        return body["data"]["tokenAuth"]["token"]

    def new_user(self, **kwargs: Any) -> dict[str, Any]:
        """A registered user with a fresh token under "token"."""
        user = self.register(**kwargs)
        user["token"] = self.login(user["email"], user["password"])
        return user


@pytest.fixture
def api(stack) -> Api:
    with httpx.Client(timeout=30) as client:
        yield Api(stack.gateway_url, client)


@pytest.fixture
def service_rpc(stack):
    """Call a service directly over RPC, as an operator or another component would."""
    from gateway.rpc import RpcClient

    def call(service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        async def once() -> Any:
            client = RpcClient(stack.amqp_uri, default_timeout=10)
            await client.start()
            try:
                return await client.call(service, method, *args, **kwargs)
            finally:
                await client.close()

        return asyncio.run(once())

    return call


@pytest.fixture(scope="session")
def production_gateway_url(stack) -> str:
    """A second gateway configured for production: no GraphiQL, no introspection, and (to test the depth
    limit, which this schema's data fields cannot reach otherwise) a maximum depth of 2."""
    url = stack.start_gateway(EDUSPHERE_ENV="production", GRAPHQL_MAX_DEPTH="2")
    stack.wait_ready()
    return url


@pytest.fixture
def production_api(production_gateway_url) -> Api:
    with httpx.Client(timeout=30) as client:
        yield Api(production_gateway_url, client)


@pytest.fixture
def other_api(stack) -> Api:
    """A second client, from another address and with its own cookie jar."""
    with httpx.Client(timeout=30) as client:
        yield Api(stack.gateway_url, client)


def error_of(body: dict[str, Any], index: int = 0) -> dict[str, Any]:
    assert body.get("errors"), body
    return body["errors"][index]


def now() -> int:
    return int(time.time())


# --- a gateway with the list cap N set to 3 ----------------------------------------------------------------


@pytest.fixture(scope="module")
def capped_gateway_url(stack) -> str:
    """Another gateway with the list cap N set to 3 (B2), on the same services (one per test module)."""
    url = stack.start_gateway(LIST_CAP="3")
    stack.wait_ready()
    return url


@pytest.fixture
def capped_api(capped_gateway_url):
    with httpx.Client(timeout=30) as client:
        yield Api(capped_gateway_url, client)


def log_record(log_path: Path, matches: Callable[[dict[str, Any]], bool], what: str, timeout: float = 5.0) -> dict[str, Any]:
    """The first structured line (one JSON object per line) of a process's log that ``matches``, waiting
    up to ``timeout`` seconds for it to be written."""
    deadline = time.monotonic() + timeout
    while True:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if matches(record):
                    return record
        assert time.monotonic() < deadline, f"no log line for {what}"
        time.sleep(0.1)


def request_log(stack, operation: str, url: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """The request log line of the request named ``operation`` on the gateway serving ``url`` (the
    first gateway by default)."""
    gateway = stack.gateways[stack.gateway_urls.index(url) if url else 0]
    return log_record(
        gateway.log_path,
        lambda record: record.get("logger") == "gateway.request" and record.get("operation") == operation,
        f"request {operation}",
        timeout,
    )


# --- GraphQL helpers shared by the rooms, messages and chat tests ---------------------------------------------


LOGIN_REQUIRED = "You do not have permission to perform this action"

USER_FIELDS = "id username name bio avatar"
ROOM_FIELDS = f"""id name slug description created updated host {{ {USER_FIELDS} }} topic {{ id name }}
  participants {{ {USER_FIELDS} }}"""

CREATE = f"""mutation($n: String!, $t: String!, $d: String!) {{
  createRoom(name: $n, topicName: $t, description: $d) {{ room {{ {ROOM_FIELDS} }} }} }}"""
JOIN = f"mutation($id: UUID!) {{ joinRoom(roomId: $id) {{ room {{ {ROOM_FIELDS} }} }} }}"
LEAVE = f"mutation($id: UUID!) {{ leaveRoom(roomId: $id) {{ room {{ {ROOM_FIELDS} }} }} }}"

_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def letters(prefix: str = "T") -> str:
    """A unique topic name: ASCII letters only (§8.1)."""
    return prefix + uuid.uuid4().hex[:12].translate(_TO_LETTERS)


def data(body: dict[str, Any], field: str) -> Any:
    """The field's value from a response that must have no errors."""
    assert "errors" not in body, body
    return body["data"][field]


def failure(body: dict[str, Any], field: str) -> dict[str, Any]:
    """The one error of a failed root field (its value null): ``{"message", "extensions"}``."""
    assert body["data"] == {field: None}, body
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["path"] == [field]
    return {"message": error["message"], "extensions": error["extensions"]}


def raw(message: str, code: str = "BAD_USER_INPUT") -> dict[str, Any]:
    """A raw error (§4.3, §16.1): the dict repr, and no ``extensions.errors``."""
    return {"message": message, "extensions": {"code": code}}


def invalid(errors: dict[str, list[str]]) -> dict[str, Any]:
    return {"message": "Invalid data", "extensions": {"code": "BAD_USER_INPUT", "errors": errors}}


NOT_FOUND = {"message": "Room not found", "extensions": {"code": "NOT_FOUND"}}
USER_NOT_FOUND = {"message": "User not found", "extensions": {"code": "NOT_FOUND"}}
PERMISSION_DENIED = {"message": "Permission denied", "extensions": {"code": "PERMISSION_DENIED"}}


def create(api, user, name: str | None = None, topic: str | None = None, description: str = "") -> dict[str, Any]:
    """``createRoom`` as ``user``; the response body."""
    return api.gql(CREATE, {"n": name if name is not None else unique("Room "),
                            "t": topic if topic is not None else letters(),
                            "d": description}, token=user["token"])


def create_room(api, user, name: str | None = None, topic: str | None = None, description: str = "") -> dict[str, Any]:
    """A new room hosted by ``user``."""
    return data(create(api, user, name, topic, description), "createRoom")["room"]


def join(api, user, room) -> dict[str, Any]:
    return data(api.gql(JOIN, {"id": room["id"]}, token=user["token"]), "joinRoom")["room"]


def leave(api, user, room) -> dict[str, Any]:
    return data(api.gql(LEAVE, {"id": room["id"]}, token=user["token"]), "leaveRoom")["room"]


def moment(value: str) -> datetime:
    """A DateTime as sent (§2.3: UTC, ``+00:00``); compare these, not the strings (the fraction may be
    omitted)."""
    parsed = datetime.fromisoformat(value)
    assert value.endswith("+00:00"), value
    return parsed


def public(user: dict[str, Any]) -> dict[str, Any]:
    """A user as ``UserType`` shows them (new accounts have no bio or avatar)."""
    return {"id": user["id"], "username": user["username"], "name": user["name"], "bio": "", "avatar": ""}
