"""Each gateway's user directory (gateway/users/directory.py) across two gateways of one stack: a gateway
serves the users it knows without asking the users service, and a change made through another gateway
(or straight at the service) reaches it with the users event, within moments (CONTRACT §4.2, §6.2)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from testing.services import wait_until
from tests.e2e.conftest import PASSWORD, Api, error_of, letters, request_log

WHO = "query {name}($u: String!) {{ me {{ name }} user(userSlug: $u) {{ name }} }}"
UPDATE = 'mutation { updateUser(name: "Changed Name") { user { name } } }'
AUTH_STATUS = "{ authStatus { isAuthenticated } }"


@pytest.fixture
def second_api(stack):
    """A client of another gateway of the same stack."""
    url = stack.named_gateway("users-second")
    with httpx.Client(timeout=30) as client:
        yield Api(url, client)


def who(api: Api, user: dict[str, Any], operation: str | None = None) -> dict[str, Any]:
    """``me`` and ``user(userSlug)`` of ``user``, as ``api``'s gateway answers them."""
    query = WHO.format(name=operation or letters("Who"))
    return api.gql(query, {"u": user["username"]}, token=user["token"])


def test_a_change_through_one_gateway_reaches_another_with_its_event(api, second_api, stack):
    user = api.new_user()
    assert who(second_api, user)["data"] == {"me": {"name": "Test User"}, "user": {"name": "Test User"}}
    operation = letters("Known")
    assert who(second_api, user, operation)["data"]["me"] == {"name": "Test User"}
    # The viewer and the user by username, known now: no call to the users service at all.
    assert request_log(stack, operation, second_api.base_url)["rpc_calls"] == 0

    assert api.gql(UPDATE, token=user["token"])["data"]["updateUser"]["user"] == {"name": "Changed Name"}
    assert who(api, user)["data"] == {"me": {"name": "Changed Name"}, "user": {"name": "Changed Name"}}
    wait_until(
        lambda: who(second_api, user)["data"] == {"me": {"name": "Changed Name"}, "user": {"name": "Changed Name"}},
        message="the second gateway to show the new name",
    )


def test_a_deletion_through_one_gateway_ends_the_token_on_another(api, second_api):
    user = api.new_user()
    assert second_api.gql(AUTH_STATUS, token=user["token"])["data"] == {"authStatus": {"isAuthenticated": True}}
    body = api.gql("mutation($p: String!) { deleteAccount(password: $p) { success } }", {"p": PASSWORD},
                   token=user["token"])
    assert body == {"data": {"deleteAccount": {"success": True}}}
    assert api.gql(AUTH_STATUS, token=user["token"])["data"] == {"authStatus": {"isAuthenticated": False}}
    wait_until(
        lambda: second_api.gql(AUTH_STATUS, token=user["token"])["data"] == {"authStatus": {"isAuthenticated": False}},
        message="the second gateway to forget the deleted account",
    )
    assert error_of(second_api.gql('query($u: String!) { user(userSlug: $u) { id } }', {"u": user["username"]}))[
        "message"] == "User not found"


def test_a_deactivation_at_the_service_reaches_every_gateway(api, second_api, service_rpc):
    user = api.new_user()
    for gateway in (api, second_api):
        assert gateway.gql(AUTH_STATUS, token=user["token"])["data"] == {"authStatus": {"isAuthenticated": True}}
    service_rpc("users", "set_active", user["id"], False)
    for gateway in (api, second_api):
        wait_until(lambda gateway=gateway: disabled(gateway, user["token"]), message="the gateway to hear of it")


def disabled(api: Api, token: str) -> bool:
    body = api.gql(AUTH_STATUS, token=token)
    return [error["message"] for error in body.get("errors", [])] == ["User is disabled"]
