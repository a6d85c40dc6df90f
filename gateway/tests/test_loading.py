"""What a request's DataLoaders hold, read without awaiting (gateway.graphql.loading and
``GraphQLContext.loaded``/``load_missing``): answers only for what is loaded, a failed load left to
``load``, no DataLoader round for what is held, keys in any UUID form."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from strawberry.dataloader import DataLoader

from gateway.graphql.context import GraphQLContext
from gateway.graphql.loading import NOT_LOADED, UuidKeyCache, load_all, made_once
from gateway.tests.fake_rooms import make_settings

USER_ID = "0b7c1c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
OTHER_ID = "1c8d2d2f-3a4b-4c5d-9e0f-1a2b3c4d5e6f"


def context(tmp_path: Path) -> GraphQLContext:
    request = Request({"type": "http", "method": "POST", "path": "/graphql/", "headers": [], "query_string": b""})
    return GraphQLContext(
        settings=make_settings(tmp_path, 100, ()),
        rpc=None,
        connection=request,
        avatar_store=None,  # type: ignore[arg-type]
    )


class Batches:
    """A loader factory recording every batch it is asked for."""

    def __init__(self, fail: bool = False) -> None:
        self.asked: list[list[str]] = []
        self.fail = fail

    def __call__(self, _context: GraphQLContext) -> DataLoader[str, dict[str, Any] | None]:
        async def batch(ids: Sequence[str]) -> list[dict[str, Any] | None]:
            self.asked.append(list(ids))
            if self.fail:
                raise RuntimeError("the service is down")
            return [{"id": i} for i in ids]

        return DataLoader(load_fn=batch, cache_map=UuidKeyCache())


def test_the_cache_takes_keys_in_any_uuid_form():
    cache = UuidKeyCache()
    future: Any = object()  # what it holds is the DataLoader's business
    cache.set(uuid.UUID(USER_ID), future)
    assert cache.futures == {USER_ID: future}
    for key in (USER_ID, USER_ID.upper(), uuid.UUID(USER_ID), USER_ID.replace("-", "")):
        assert cache.get(key) is future
    assert cache.get(OTHER_ID) is None
    cache.delete(USER_ID.upper())
    assert cache.get(USER_ID) is None
    cache.set(USER_ID, future)
    cache.clear()
    assert cache.futures == {}
    with pytest.raises(ValueError):
        cache.get("not a uuid")


async def test_loaded_answers_only_for_what_is_held(tmp_path):
    ctx, users = context(tmp_path), Batches()
    assert ctx.loaded(users, USER_ID) is NOT_LOADED
    pending = ctx.loader(users).load(USER_ID)
    assert ctx.loaded(users, USER_ID) is NOT_LOADED  # asked for, not answered yet
    await pending
    assert ctx.loaded(users, USER_ID.upper()) == {"id": USER_ID}
    ctx.loader(users).prime(OTHER_ID, None)
    assert ctx.loaded(users, OTHER_ID) is None  # held: there is no such user
    assert ctx.loaded_many(users, [USER_ID, OTHER_ID]) == [{"id": USER_ID}, None]
    assert ctx.loaded_many(users, [USER_ID, str(uuid.uuid4())]) is NOT_LOADED


async def test_a_failed_load_is_not_held_and_load_reports_it(tmp_path):
    ctx, users = context(tmp_path), Batches(fail=True)
    with pytest.raises(RuntimeError):
        await ctx.loader(users).load(USER_ID)
    assert ctx.loaded(users, USER_ID) is NOT_LOADED
    with pytest.raises(RuntimeError):
        await load_all(ctx.load_missing(users, [USER_ID]))


async def test_load_missing_asks_one_batch_for_what_is_not_held(tmp_path):
    ctx, users = context(tmp_path), Batches()
    ctx.loader(users).prime(USER_ID, {"id": USER_ID})
    assert ctx.load_missing(users, [USER_ID, USER_ID.upper()]) is None  # nothing to wait for
    third = str(uuid.uuid4())
    await load_all(ctx.load_missing(users, [USER_ID, OTHER_ID, third]), None)
    assert users.asked == [[OTHER_ID, third]]
    assert ctx.loaded_many(users, [OTHER_ID, third]) == [{"id": OTHER_ID}, {"id": third}]


def test_made_once_per_record_and_request(tmp_path):
    first, second = context(tmp_path), context(tmp_path)
    record, same_content = {"id": USER_ID}, {"id": USER_ID}
    made = made_once(first, dict, record)
    assert made_once(first, dict, record) is made
    assert made_once(first, dict, same_content) is not made  # another record: made anew
    assert made_once(second, dict, record) is not made  # another request
