"""get_many, get_by_username, get_by_email and list_active (CONTRACT §5 users/user, D1, D11, B2)."""

from __future__ import annotations

import uuid

import pytest

from common.errors import NotFound, ValidationFailed
from services.users.tests.integration.conftest import register, unique

pytestmark = pytest.mark.integration


def test_get_many_is_aligned_with_the_ids(users):
    first, second = register(users), register(users)
    ids = [second["id"], "garbage", str(uuid.uuid4()), first["id"].upper(), second["id"], None]
    assert users.get_many(ids) == [second, None, None, first, second, None]
    assert users.get_many([]) == []


def test_get_by_username_is_exact(users):
    user = register(users)
    assert users.get_by_username(user["username"]) == user
    for other in (user["username"].upper(), user["username"] + "x", "", "a\x00b"):
        with pytest.raises(NotFound) as missing:
            users.get_by_username(other)
        assert missing.value.message == "User not found"


def test_get_by_email_compares_lower_cased(users):
    suffix = unique()
    user = register(users, email=f"John.{suffix}@X.com")
    assert users.get_by_email(f"john.{suffix}@x.com") == user
    assert users.get_by_email(f"JOHN.{suffix}@X.COM") == user
    assert users.get_by_email(f"john.{suffix}@y.com") is None
    assert users.get_by_email("a\x00b") is None


@pytest.fixture
def tribe(users):
    """Four users sharing a token in the username or the name; the last one inactive."""
    token = unique()
    members = [
        register(users, username=f"b{token}", name="Bravo"),
        register(users, username=f"a{token}", name="Alpha"),
        register(users, username=f"zed_{unique()}", name=f"Known As {token.upper()}"),
        register(users, username=f"c{token}", name="Gone"),
    ]
    users.set_active(members[3]["id"], False)
    return token, members


def test_search_matches_username_or_name_case_insensitively_by_username(users, tribe):
    token, (bravo, alpha, zed, gone) = tribe
    assert [user["id"] for user in users.list_active(token.upper())] == [alpha["id"], bravo["id"], zed["id"]]
    assert users.list_active(token)[0] == alpha


def test_paging(users, tribe):
    token, (bravo, alpha, zed, _gone) = tribe
    assert [user["id"] for user in users.list_active(token, 2)] == [alpha["id"], bravo["id"]]
    assert [user["id"] for user in users.list_active(token, 1, 1)] == [bravo["id"]]
    assert [user["id"] for user in users.list_active(token, None, 2)] == [zed["id"]]
    assert users.list_active(token, 0) == []
    assert users.list_active(token, 5, 10) == []
    with pytest.raises(ValidationFailed) as failed:
        users.list_active(token, -1, -1)
    assert failed.value.errors == {
        "first": ["Ensure this value is greater than or equal to 0."],
        "offset": ["Ensure this value is greater than or equal to 0."],
    }


def test_without_search_every_active_user_is_listed_in_order(users, tribe):
    _token, (bravo, alpha, zed, gone) = tribe
    listed = users.list_active()
    ids = [user["id"] for user in listed]
    assert {alpha["id"], bravo["id"], zed["id"]} <= set(ids)
    assert gone["id"] not in ids
    assert all(user["is_active"] for user in listed)
    assert [user["username"] for user in listed] == sorted(user["username"] for user in listed)
    assert users.list_active("", 2) == listed[:2]
    assert users.list_active(None, 2, 1) == listed[1:3]


def test_search_wildcards_are_literal(users):
    token = unique()
    percent = register(users, name=f"50%_{token}")
    register(users, name=f"50xx{token}")
    assert [user["id"] for user in users.list_active(f"%_{token}")] == [percent["id"]]
    assert users.list_active(f"a\x00{token}") == []
