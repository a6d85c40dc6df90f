"""The author cache of ``new`` frames: batched lookups, no RPC per frame per socket, kept current."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.chat.authors import AuthorCache
from gateway.rpc import RpcTimeout

ALICE = "7c1d2b1e-3a4f-4f5e-8a9b-0c1d2e3f4a5b"
BOB = "8d2e3c2f-4b5a-4a6f-9bac-1d2e3f4a5b6c"
GONE = "9e3f4d3a-5c6b-4b7a-8cbd-2e3f4a5b6c7d"


def user(user_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": user_id, "username": f"user-{user_id[:4]}", "name": "N", "bio": "", "avatar": "",
            "email": "secret@example.com", "is_active": True, **fields}


class UsersRpc:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def call(self, service: str, method: str, ids: list[str]) -> list[dict[str, Any] | None]:
        assert (service, method) == ("users", "get_many")
        self.calls.append(list(ids))
        await self.release.wait()
        if self.fail:
            raise RpcTimeout("users.get_many timed out")
        return [None if i == GONE else user(i) for i in ids]


async def test_lookups_of_one_moment_share_one_rpc_and_then_hit_the_cache():
    rpc = UsersRpc()
    cache = AuthorCache(rpc)  # type: ignore[arg-type]
    found = await asyncio.gather(*(cache.lookup(i) for i in [ALICE, BOB, ALICE, GONE, BOB]))
    assert rpc.calls == [[ALICE, BOB, GONE]]
    assert [r and r["id"] for r in found] == [ALICE, BOB, ALICE, None, BOB]
    assert "email" not in found[0]
    for _ in range(100):  # a room of many sockets, many frames
        await cache.lookup(ALICE)
    assert await cache.lookup(GONE) is None
    assert len(rpc.calls) == 1


async def test_get_many_and_learn():
    rpc = UsersRpc()
    cache = AuthorCache(rpc)  # type: ignore[arg-type]
    cache.learn(user(ALICE, username="alice"))
    found = await cache.get_many([ALICE, BOB, ALICE.upper()])
    assert found[ALICE]["username"] == "alice" and found[BOB]["id"] == BOB
    assert rpc.calls == [[BOB]]


async def test_events_keep_entries_current():
    rpc = UsersRpc()
    cache = AuthorCache(rpc)  # type: ignore[arg-type]
    await cache.lookup(ALICE)
    cache.update({**user(ALICE), "avatar": "avatars/new.png", "changed": ["avatar"]})
    assert (await cache.lookup(ALICE))["avatar"] == "avatars/new.png"
    cache.update(user(BOB, avatar="x"))  # not cached: not worth keeping
    cache.forget(ALICE)
    assert await cache.lookup(ALICE) is None
    assert rpc.calls == [[ALICE]]


async def test_an_event_during_a_lookup_wins_over_the_older_read():
    rpc = UsersRpc()
    rpc.release.clear()
    cache = AuthorCache(rpc)  # type: ignore[arg-type]
    pending = cache.lookup(ALICE)
    await asyncio.sleep(0.01)
    cache.learn(user(ALICE, avatar="avatars/fresh.png"))
    rpc.release.set()
    assert (await pending)["avatar"] == "avatars/fresh.png"


async def test_a_failed_lookup_reaches_every_waiter_and_is_retried_later():
    rpc = UsersRpc(fail=True)
    cache = AuthorCache(rpc)  # type: ignore[arg-type]
    first, second = cache.lookup(ALICE), cache.lookup(ALICE)
    for future in (first, second):
        with pytest.raises(RpcTimeout):
            await future
    rpc.fail = False
    assert (await cache.lookup(ALICE))["id"] == ALICE
    assert len(rpc.calls) == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_lookup():
    rpc = UsersRpc()
    rpc.release.clear()
    cache = AuthorCache(rpc)  # type: ignore[arg-type]
    impatient = asyncio.create_task(cache.get_many([ALICE]))
    patient = cache.lookup(ALICE)
    await asyncio.sleep(0.01)
    impatient.cancel()
    rpc.release.set()
    assert (await asyncio.wait_for(patient, 1))["id"] == ALICE


async def test_least_recently_used_entries_go_first():
    rpc = UsersRpc()
    cache = AuthorCache(rpc, capacity=2)  # type: ignore[arg-type]
    await cache.get_many([ALICE, BOB])
    await cache.lookup(ALICE)
    await cache.lookup(GONE)  # evicts BOB
    await cache.lookup(ALICE)
    await cache.lookup(BOB)
    assert rpc.calls == [[ALICE, BOB], [GONE], [BOB]]
