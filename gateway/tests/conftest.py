"""Fixtures of the in-process GraphQL view tests (test_rooms_view, test_messages_view): ``client`` and
``capped_client`` serve the gateway app over the ``rpc`` fixture (a ``FakeRpc``) the test module defines,
waiting for exactly the services that fake answers for. A module's own fixtures of the same names win."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.tests.fake_rooms import gateway_client, make_settings
from gateway.tests.fake_users import FakeRpc, FakeUsers


@pytest.fixture
def users() -> FakeUsers:
    return FakeUsers()


@pytest.fixture
async def client(tmp_path: Path, rpc: FakeRpc) -> AsyncIterator[httpx.AsyncClient]:
    async for c in gateway_client(make_settings(tmp_path, 1000, tuple(rpc.services)), rpc):
        yield c


@pytest.fixture
async def capped_client(tmp_path: Path, rpc: FakeRpc) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose list cap N is 3."""
    async for c in gateway_client(make_settings(tmp_path, 3, tuple(rpc.services)), rpc):
        yield c
