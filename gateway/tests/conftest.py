"""Fixtures of the in-process GraphQL view tests (test_rooms_view, test_messages_view): ``client`` and
``capped_client`` serve the gateway app over the ``rpc`` fixture (a ``FakeRpc``; users and rooms unless
the test module defines its own), waiting for exactly the services that fake answers for. A module's own fixtures of the same names win."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.tests.fake_rooms import FakeRooms, gateway_client, make_settings
from gateway.tests.fake_users import FakeRpc, FakeUsers


@pytest.fixture
def users() -> FakeUsers:
    return FakeUsers()


@pytest.fixture
def rooms() -> FakeRooms:
    return FakeRooms()


@pytest.fixture
def rpc(users: FakeUsers, rooms: FakeRooms) -> FakeRpc:
    """Users and rooms; a module that needs other services defines its own."""
    return FakeRpc(users=users, rooms=rooms)


@pytest.fixture
async def client(tmp_path: Path, rpc: FakeRpc) -> AsyncIterator[httpx.AsyncClient]:
    async for c in gateway_client(make_settings(tmp_path, 1000, tuple(rpc.services)), rpc):
        yield c


@pytest.fixture
async def capped_client(tmp_path: Path, rpc: FakeRpc) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose list cap N is 3."""
    async for c in gateway_client(make_settings(tmp_path, 3, tuple(rpc.services)), rpc):
        yield c
