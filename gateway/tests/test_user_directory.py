"""The gateway's user directory (gateway/users/directory.py) on its own: batched lookups (no RPC per chat
frame per socket), viewers and usernames without an RPC per request, kept current by events, bounded in
size and in time, and nothing kept while the event feed is down or from a read older than a change."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.rpc import RemoteError, RpcTimeout
from gateway.users.directory import VIEWER_TTL, UserDirectory

ALICE = "7c1d2b1e-3a4f-4f5e-8a9b-0c1d2e3f4a5b"
BOB = "8d2e3c2f-4b5a-4a6f-9bac-1d2e3f4a5b6c"
GONE = "9e3f4d3a-5c6b-4b7a-8cbd-2e3f4a5b6c7d"


def user(user_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": user_id, "username": f"user-{user_id[:4]}", "name": "N", "bio": "", "avatar": "",
            "email": f"{user_id[:4]}@example.com", "is_active": True, "date_joined_ts": 0, **fields}


class UsersRpc:
    """The users service's lookups over a dict, counting calls; ``release`` holds replies back."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()
        self.users = {ALICE: user(ALICE), BOB: user(BOB)}

    def methods(self) -> list[str]:
        return [method for method, _args in self.calls]

    async def call(self, service: str, method: str, *args: Any) -> Any:
        assert service == "users"
        self.calls.append((method, args[0]))
        await self.release.wait()
        if self.fail:
            raise RpcTimeout(f"users.{method} timed out")
        if method == "get_many":
            return [dict(self.users[i]) if i in self.users else None for i in args[0]]
        if method == "get_by_email":
            return next((dict(u) for u in self.users.values() if u["email"] == args[0]), None)
        if method == "get_by_username":
            found = next((dict(u) for u in self.users.values() if u["username"] == args[0]), None)
            if found is None:
                raise RemoteError("NotFound", "User not found", ["User not found"])
            return found
        raise AssertionError(method)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- public records by id (chat frames) ---------------------------------------------------------------


async def test_lookups_of_one_moment_share_one_rpc_and_then_hit_the_directory():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    found = await asyncio.gather(*(directory.lookup(i) for i in [ALICE, BOB, ALICE, GONE, BOB]))
    assert rpc.calls == [("get_many", [ALICE, BOB, GONE])]
    assert [r and r["id"] for r in found] == [ALICE, BOB, ALICE, None, BOB]
    assert "email" not in found[0]
    for _ in range(100):  # a room of many sockets, many frames
        await directory.lookup(ALICE)
    assert await directory.lookup(GONE) is None
    assert len(rpc.calls) == 1


async def test_get_many_and_learn():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    directory.learn(user(ALICE, username="alice"))
    found = await directory.get_many([ALICE, BOB, ALICE.upper()])
    assert found[ALICE]["username"] == "alice" and found[BOB]["id"] == BOB
    assert rpc.calls == [("get_many", [BOB])]


async def test_events_keep_entries_current():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    await directory.lookup(ALICE)
    directory.update({**user(ALICE), "avatar": "avatars/new.png", "changed": ["avatar"]})
    assert (await directory.lookup(ALICE))["avatar"] == "avatars/new.png"
    directory.update(user(BOB, avatar="x"))  # not known: not worth keeping
    directory.forget(ALICE)
    assert await directory.lookup(ALICE) is None
    assert rpc.calls == [("get_many", [ALICE])]


async def test_an_event_during_a_lookup_wins_over_the_older_read():
    rpc = UsersRpc()
    rpc.release.clear()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    pending = directory.lookup(ALICE)
    await asyncio.sleep(0.01)
    directory.learn(user(ALICE, avatar="avatars/fresh.png"))
    rpc.release.set()
    assert (await pending)["avatar"] == "avatars/fresh.png"


async def test_a_failed_lookup_reaches_every_waiter_and_is_retried_later():
    rpc = UsersRpc(fail=True)
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    first, second = directory.lookup(ALICE), directory.lookup(ALICE)
    for future in (first, second):
        with pytest.raises(RpcTimeout):
            await future
    rpc.fail = False
    assert (await directory.lookup(ALICE))["id"] == ALICE
    assert len(rpc.calls) == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_lookup():
    rpc = UsersRpc()
    rpc.release.clear()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    impatient = asyncio.create_task(directory.get_many([ALICE]))
    patient = directory.lookup(ALICE)
    await asyncio.sleep(0.01)
    impatient.cancel()
    rpc.release.set()
    assert (await asyncio.wait_for(patient, 1))["id"] == ALICE


async def test_least_recently_used_entries_go_first():
    rpc = UsersRpc()
    directory = UserDirectory(rpc, capacity=2)  # type: ignore[arg-type]
    await directory.get_many([ALICE, BOB])
    await directory.lookup(ALICE)
    await directory.lookup(GONE)  # evicts BOB
    await directory.lookup(ALICE)
    await directory.lookup(BOB)
    assert [ids for _method, ids in rpc.calls] == [[ALICE, BOB], [GONE], [BOB]]


# --- public records by id (the GraphQL loader) ----------------------------------------------------------


async def test_users_by_id_fetch_only_what_is_not_known():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]

    async def get_many(ids: list[str]) -> list[dict[str, Any] | None]:
        return await rpc.call("users", "get_many", ids)

    first = await directory.users_by_id([ALICE, GONE, ALICE], get_many)
    assert [r and r["id"] for r in first] == [ALICE, None, ALICE]
    assert "email" not in first[0]
    second = await directory.users_by_id([BOB, ALICE.upper(), GONE], get_many)
    assert [r and r["id"] for r in second] == [BOB, ALICE, None]
    assert rpc.calls == [("get_many", [ALICE, GONE]), ("get_many", [BOB])]


async def test_a_read_older_than_a_deletion_is_not_kept():
    rpc = UsersRpc()
    rpc.release.clear()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]

    async def get_many(ids: list[str]) -> list[dict[str, Any] | None]:
        return await rpc.call("users", "get_many", ids)

    read = asyncio.create_task(directory.users_by_id([ALICE], get_many))
    await asyncio.sleep(0.01)
    directory.forget(ALICE)  # user_deleted arrives while the read is on its way
    rpc.release.set()
    (answer,) = await read
    assert answer["id"] == ALICE  # the answer of a read concurrent with the deletion
    await directory.users_by_id([ALICE], get_many)
    assert len(rpc.calls) == 2  # asked again: the older read was not kept


# --- viewers ------------------------------------------------------------------------------------------


async def test_a_viewer_is_read_once_then_served_until_its_ttl():
    rpc, clock = UsersRpc(), Clock()
    directory = UserDirectory(rpc, clock=clock)  # type: ignore[arg-type]
    email = user(ALICE)["email"]
    for _ in range(5):
        assert (await directory.viewer_by_email(email))["id"] == ALICE
    assert rpc.methods() == ["get_by_email"]
    clock.now += VIEWER_TTL - 0.1
    await directory.viewer_by_email(email)
    assert rpc.methods() == ["get_by_email"]
    clock.now += 0.2  # a missed event is believed no longer than the TTL
    await directory.viewer_by_email(email)
    assert rpc.methods() == ["get_by_email", "get_by_email"]


async def test_a_viewer_missing_an_event_is_seen_as_changed_after_the_ttl():
    rpc, clock = UsersRpc(), Clock()
    directory = UserDirectory(rpc, clock=clock)  # type: ignore[arg-type]
    email = user(ALICE)["email"]
    await directory.viewer_by_email(email)
    rpc.users[ALICE]["is_active"] = False  # deactivated, and the event lost
    assert (await directory.viewer_by_email(email))["is_active"] is True
    clock.now += VIEWER_TTL
    assert (await directory.viewer_by_email(email))["is_active"] is False


async def test_unknown_emails_are_not_remembered():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    assert await directory.viewer_by_email("nobody@example.com") is None
    assert await directory.viewer_by_email("nobody@example.com") is None
    assert rpc.methods() == ["get_by_email", "get_by_email"]


async def test_concurrent_requests_of_one_viewer_share_one_read():
    rpc = UsersRpc()
    rpc.release.clear()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    email = user(ALICE)["email"]
    waiters = [asyncio.create_task(directory.viewer_by_email(email)) for _ in range(10)]
    await asyncio.sleep(0.01)
    waiters[0].cancel()  # one client goes away; the others still get the answer
    rpc.release.set()
    found = await asyncio.gather(*waiters[1:])
    assert {record["id"] for record in found} == {ALICE}
    assert rpc.methods() == ["get_by_email"]


async def test_fresh_reads_skip_the_directory_and_refresh_it():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    email = user(ALICE)["email"]
    await directory.viewer_by_email(email)
    rpc.users[ALICE]["is_active"] = False
    assert (await directory.viewer_by_email(email, fresh=True))["is_active"] is False
    assert (await directory.viewer_by_email(email))["is_active"] is False
    assert rpc.methods() == ["get_by_email", "get_by_email"]


async def test_events_update_and_delete_viewers():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    email = user(ALICE)["email"]
    await directory.viewer_by_email(email)
    directory.update({**user(ALICE, name="Renamed", is_active=False), "changed": ["name", "is_active"]})
    viewer = await directory.viewer_by_email(email)
    assert (viewer["name"], viewer["is_active"], viewer["email"]) == ("Renamed", False, email)  # email kept
    directory.forget(ALICE, user(ALICE)["username"])
    rpc.users.pop(ALICE)
    assert await directory.viewer_by_email(email) is None
    assert rpc.methods() == ["get_by_email", "get_by_email"]


async def test_a_login_makes_the_next_request_cost_no_read():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    directory.learn(user(ALICE), viewer=True)
    assert (await directory.viewer_by_email(user(ALICE)["email"]))["date_joined_ts"] == 0
    assert rpc.calls == []


async def test_viewers_are_bounded():
    rpc = UsersRpc()
    directory = UserDirectory(rpc, capacity=1)  # type: ignore[arg-type]
    await directory.viewer_by_email(user(ALICE)["email"])
    await directory.viewer_by_email(user(BOB)["email"])  # evicts Alice's entry
    await directory.viewer_by_email(user(ALICE)["email"])
    assert rpc.methods() == ["get_by_email"] * 3
    assert len(directory._viewers) == 1 and set(directory._viewer_emails) == {ALICE}


# --- usernames --------------------------------------------------------------------------------------


async def test_usernames_are_read_once_and_misses_are_not_remembered():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    username = user(ALICE)["username"]
    for _ in range(3):
        assert await directory.id_by_username(username) == ALICE
    for _ in range(2):
        with pytest.raises(RemoteError):
            await directory.id_by_username("nobody")
    assert rpc.methods() == ["get_by_username", "get_by_username", "get_by_username"]
    assert "email" not in await directory.user_by_username(username)


async def test_a_deleted_users_name_can_be_taken_again():
    rpc = UsersRpc()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    username = user(ALICE)["username"]
    await directory.id_by_username(username)
    directory.forget(ALICE, username)
    rpc.users = {BOB: user(BOB, username=username)}  # registered again under the freed name
    assert await directory.id_by_username(username) == BOB


# --- the event feed -------------------------------------------------------------------------------------


async def test_nothing_is_kept_while_the_feed_is_down():
    rpc = UsersRpc()
    live = False
    directory = UserDirectory(rpc, feed_live=lambda: live)  # type: ignore[arg-type]
    email = user(ALICE)["email"]
    for _ in range(2):
        await directory.viewer_by_email(email)
        await directory.id_by_username(user(ALICE)["username"])
        await directory.lookup(BOB)
    directory.learn(user(BOB), viewer=True)
    assert rpc.methods() == ["get_by_email", "get_by_username", "get_many"] * 2
    live = True
    await directory.viewer_by_email(email)
    await directory.viewer_by_email(email)
    assert rpc.methods().count("get_by_email") == 3


async def test_a_read_begun_before_a_clear_is_not_kept():
    rpc = UsersRpc()
    rpc.release.clear()
    directory = UserDirectory(rpc)  # type: ignore[arg-type]
    email = user(ALICE)["email"]
    read = asyncio.create_task(directory.viewer_by_email(email))
    await asyncio.sleep(0.01)
    directory.clear()  # the feed was lost meanwhile: events may have been missed
    rpc.release.set()
    await read
    await directory.viewer_by_email(email)
    assert rpc.methods() == ["get_by_email", "get_by_email"]
