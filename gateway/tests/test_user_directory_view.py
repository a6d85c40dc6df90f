"""The user directory behind /graphql/ in-process: the viewer, host and user slugs and the users of lists
cost no RPC once known; this gateway's mutations and the users events (through the chat relay, as in
the app's lifespan) keep it current; its TTL bounds a missed event; losing the relay's broker connection
empties it; refreshToken reads the user fresh."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.chat.relay import USERS_EXCHANGE, ChatRelay
from gateway.settings import Settings
from gateway.tests.fake_users import FakeRpc
from gateway.tests.test_view import SECRET, gql, token_for
from gateway.users.directory import VIEWER_TTL

ME = "{ me { id username name } }"
AUTH_STATUS = "{ authStatus { isAuthenticated } }"
DISABLED = ("User is disabled", {"code": "UNAUTHENTICATED"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def gateway(tmp_path: Path, rpc: FakeRpc) -> AsyncIterator[SimpleNamespace]:
    """The app with its user directory fed by a chat relay, connected as the lifespan leaves it."""
    settings = Settings(env="test", jwt_secret=SECRET, media_root=str(tmp_path / "media"),
                        allowed_hosts=("testserver",), services=("users", "rooms"))
    app = create_app(settings)
    app.state.rpc = rpc
    directory = app.state.user_directory
    directory.clock = Clock()
    relay = ChatRelay(settings, rpc, users=directory)  # type: ignore[arg-type]
    relay._connected = True  # what the relay's supervisor sets once its queue consumes
    app.state.chat_relay = relay
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield SimpleNamespace(client=client, relay=relay, clock=directory.clock)


def calls(rpc: FakeRpc) -> list[str]:
    """The calls made since the last time, then forgotten."""
    made = rpc.methods_called()
    rpc.calls.clear()
    return made


def only_error(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (error,) = body["errors"]
    return error["message"], error["extensions"]


async def user_event(relay: ChatRelay, kind: str, payload: dict[str, Any]) -> None:
    """A ``users.events`` event as the broker delivers it to the relay."""
    body = json.dumps(payload).encode()
    delivery = SimpleNamespace(exchange=USERS_EXCHANGE, routing_key=kind, body=body)
    await relay._on_message(delivery)  # type: ignore[arg-type]


def updated(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A ``user_updated`` payload (services/users/events.py): the public fields after the change."""
    public = {key: record[key] for key in ("id", "username", "name", "bio", "avatar", "is_active")}
    return {**public, "date_joined": "2025-01-01T00:00:00+00:00", **changes, "changed": list(changes)}


# --- fewer calls ------------------------------------------------------------------------------------


async def test_n_authenticated_requests_of_one_user_make_one_user_lookup(gateway, users, rpc):
    alice = users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    for _ in range(5):
        body = await gql(gateway.client, ME, token=token)
        assert body["data"]["me"] == {"id": alice["id"], "username": "alice", "name": "Some One"}
    assert calls(rpc) == ["users.get_by_email"]


async def test_without_the_event_feed_every_request_looks_the_user_up(gateway, users, rpc):
    users.add("alice", "alice@x.com")
    gateway.relay._connected = False
    for _ in range(3):
        await gql(gateway.client, ME, token=token_for("alice@x.com"))
    assert calls(rpc) == ["users.get_by_email"] * 3


async def test_user_slugs_and_hosts_come_from_the_directory(gateway, users, rooms, rpc):
    host = users.add("host", "host@x.com")
    rooms.add(host["id"], "Room", participants=(host["id"],))
    for _ in range(3):
        body = await gql(gateway.client, '{ user(userSlug: "host") { id } rooms(hostSlug: "host") { host { id } } }')
        assert body["data"] == {"user": {"id": host["id"]}, "rooms": [{"host": {"id": host["id"]}}]}
    users_calls = [call for call in calls(rpc) if call.startswith("users.")]
    assert users_calls == ["users.get_by_username"]  # the rooms' hosts: the user just read by its name


async def test_lists_ask_only_for_the_users_not_known(gateway, users, rooms, rpc):
    host, guest = users.add("host", "host@x.com"), users.add("guest", "guest@x.com")
    rooms.add(host["id"], "Room", participants=(host["id"], guest["id"]))
    query = "{ rooms { host { username } participants { username } } }"
    for _ in range(3):
        body = await gql(gateway.client, query)
        assert body["data"]["rooms"] == [{"host": {"username": "host"},
                                          "participants": [{"username": "guest"}, {"username": "host"}]}]
    assert [call for call in calls(rpc) if call.startswith("users.")] == ["users.get_many"]


# --- this gateway's mutations ----------------------------------------------------------------------------


async def test_a_profile_change_made_here_is_seen_here_at_once(gateway, users, rpc):
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    await gql(gateway.client, ME, token=token)
    await gql(gateway.client, '{ user(userSlug: "alice") { name } }')
    body = await gql(gateway.client, 'mutation { updateUser(name: "New Name") { user { name } } }', token=token)
    assert body["data"]["updateUser"]["user"] == {"name": "New Name"}
    assert (await gql(gateway.client, ME, token=token))["data"]["me"]["name"] == "New Name"
    body = await gql(gateway.client, '{ user(userSlug: "alice") { name } }')
    assert body["data"]["user"] == {"name": "New Name"}
    # The viewer's read told its username too.
    assert calls(rpc) == ["users.get_by_email", "users.update_profile"]


async def test_an_account_deleted_here_authenticates_nobody_from_the_response_on(gateway, users, rpc):
    users.add("alice", "alice@x.com", "pw")
    token = token_for("alice@x.com")
    await gql(gateway.client, '{ me { id } user(userSlug: "alice") { id } }', token=token)
    body = await gql(gateway.client, 'mutation { deleteAccount(password: "pw") { success } }', token=token)
    assert body == {"data": {"deleteAccount": {"success": True}}}
    body = await gql(gateway.client, AUTH_STATUS, token=token)
    assert body == {"data": {"authStatus": {"isAuthenticated": False}}}
    body = await gql(gateway.client, '{ user(userSlug: "alice") { id } }')
    assert only_error(body) == ("User not found", {"code": "NOT_FOUND"})


async def test_a_login_here_makes_the_next_request_cost_no_lookup(gateway, users, rpc):
    users.add("alice", "alice@x.com", "pw")
    body = await gql(gateway.client, 'mutation { tokenAuth(email: "alice@x.com", password: "pw") { token } }')
    await gql(gateway.client, ME, token=body["data"]["tokenAuth"]["token"])
    assert calls(rpc) == ["users.authenticate"]


# --- events from other gateways and services -----------------------------------------------------------------


async def test_user_events_update_and_end_what_the_directory_holds(gateway, users, rpc):
    alice = users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    await gql(gateway.client, '{ me { id } user(userSlug: "alice") { id } }', token=token)
    # The events alone change what is served: the fake service still has the old values.
    await user_event(gateway.relay, "user_updated", updated(alice, name="Renamed"))
    assert (await gql(gateway.client, ME, token=token))["data"]["me"]["name"] == "Renamed"
    assert (await gql(gateway.client, '{ user(userSlug: "alice") { name } }'))["data"]["user"]["name"] == "Renamed"
    await user_event(gateway.relay, "user_updated", updated(alice, is_active=False))
    assert only_error(await gql(gateway.client, AUTH_STATUS, token=token)) == DISABLED
    assert calls(rpc) == ["users.get_by_email"]
    await user_event(gateway.relay, "user_deleted", {"id": alice["id"], "username": "alice"})
    users.users.pop(alice["id"])
    body = await gql(gateway.client, AUTH_STATUS, token=token)
    assert body == {"data": {"authStatus": {"isAuthenticated": False}}}
    assert only_error(await gql(gateway.client, '{ user(userSlug: "alice") { id } }')) == (
        "User not found", {"code": "NOT_FOUND"})


async def test_the_ttl_bounds_how_long_a_missed_event_is_believed(gateway, users, rpc):
    alice = users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    await gql(gateway.client, AUTH_STATUS, token=token)
    users.users[alice["id"]]["is_active"] = False  # deactivated, and its event lost
    gateway.clock.now += VIEWER_TTL - 0.5
    assert (await gql(gateway.client, AUTH_STATUS, token=token))["data"]["authStatus"]["isAuthenticated"] is True
    gateway.clock.now += 0.5
    assert only_error(await gql(gateway.client, AUTH_STATUS, token=token)) == DISABLED
    assert calls(rpc) == ["users.get_by_email", "users.get_by_email"]


async def test_refresh_token_reads_the_user_fresh(gateway, users, rpc):
    alice = users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    await gql(gateway.client, AUTH_STATUS, token=token)
    users.users[alice["id"]]["is_active"] = False  # no event yet
    body = await gql(gateway.client, "mutation($t: String) { refreshToken(token: $t) { token } }", {"t": token})
    assert only_error(body) == ("User is disabled", {"code": "BAD_USER_INPUT"})


async def test_losing_the_relays_broker_connection_empties_the_directory(gateway, users, rpc):
    users.add("alice", "alice@x.com")
    token = token_for("alice@x.com")
    await gql(gateway.client, ME, token=token)
    gateway.relay._lose_connection()  # events may be missed from now on
    await gql(gateway.client, ME, token=token)
    await gql(gateway.client, ME, token=token)
    assert calls(rpc) == ["users.get_by_email"] * 3
    gateway.relay._connected = True
    for _ in range(3):
        await gql(gateway.client, ME, token=token)
    assert calls(rpc) == ["users.get_by_email"]
