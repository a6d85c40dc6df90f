"""update_profile, set_active and delete_account (CONTRACT §6.2 updateUser / deleteAccount, §8.3, B3, B4)."""

from __future__ import annotations

import uuid

import pytest

from common.errors import AuthenticationFailed, NotFound, ValidationFailed
from services.users.tests.integration.conftest import PASSWORD, register, unique

pytestmark = pytest.mark.integration

UPLOAD_ERROR = "Upload a valid image. The file you uploaded was either not an image or a corrupted image."


def test_update_name_and_bio(users):
    user = register(users)
    result = users.update_profile(user["id"], {"name": "  New Name ", "bio": "Hello there"})
    assert result == {
        "user": {**user, "name": "New Name", "bio": "Hello there"},
        "previous_avatar": "",
    }
    assert users.get_by_username(user["username"]) == result["user"]


def test_absent_keys_keep_their_values_and_none_clears_the_bio(users):
    user = register(users)
    users.update_profile(user["id"], {"bio": "Something"})
    result = users.update_profile(user["id"], {"name": "Only Name"})
    assert (result["user"]["name"], result["user"]["bio"]) == ("Only Name", "Something")
    assert users.update_profile(user["id"], {"bio": None})["user"]["bio"] == ""


def test_no_changes_succeed_unchanged(users):
    user = register(users)
    assert users.update_profile(user["id"], {}) == {"user": user, "previous_avatar": ""}
    assert users.update_profile(user["id"], {"name": user["name"]}) == {"user": user, "previous_avatar": ""}


def test_avatar_replacement_reports_the_file_to_delete(users):
    user = register(users)
    first = users.update_profile(user["id"], {"avatar": "avatars/first.png"})
    assert (first["user"]["avatar"], first["previous_avatar"]) == ("avatars/first.png", "")
    second = users.update_profile(user["id"], {"avatar": "avatars/second.jpg"})
    assert (second["user"]["avatar"], second["previous_avatar"]) == ("avatars/second.jpg", "avatars/first.png")
    same = users.update_profile(user["id"], {"avatar": "avatars/second.jpg", "bio": "x"})
    assert same["previous_avatar"] == ""  # unchanged: nothing to delete
    removed = users.update_profile(user["id"], {"avatar": ""})
    assert (removed["user"]["avatar"], removed["previous_avatar"]) == ("", "avatars/second.jpg")


def test_name_is_required_when_present(users):
    user = register(users)
    for name in (None, "", "   "):
        with pytest.raises(ValidationFailed) as failed:
            users.update_profile(user["id"], {"name": name})
        assert (failed.value.errors, failed.value.raw) == ({"name": ["This field is required."]}, False)
    assert users.get_by_username(user["username"])["name"] == user["name"]


def test_errors_merge_with_upload_errors_and_nothing_changes(users):
    user = register(users)
    with pytest.raises(ValidationFailed) as failed:
        users.update_profile(user["id"], {"bio": "b" * 501, "name": "n" * 201}, {"avatar": [UPLOAD_ERROR]})
    assert list(failed.value.errors) == ["name", "bio", "avatar"]
    assert failed.value.errors == {
        "name": ["Ensure this value has at most 200 characters (it has 201)."],
        "bio": ["Ensure this value has at most 500 characters (it has 501)."],
        "avatar": [UPLOAD_ERROR],
    }
    with pytest.raises(ValidationFailed) as upload_only:
        users.update_profile(user["id"], {"name": "Fine"}, {"avatar": [UPLOAD_ERROR]})
    assert upload_only.value.errors == {"avatar": [UPLOAD_ERROR]}
    assert users.get_by_username(user["username"]) == user


def test_unknown_user(users):
    for user_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFound) as missing:
            users.update_profile(user_id, {"name": "X"})
        assert missing.value.message == "User not found"
        with pytest.raises(NotFound):
            users.set_active(user_id, False)
        with pytest.raises(NotFound):
            users.delete_account(user_id, PASSWORD, None)


def test_set_active_hides_the_user_from_lists_and_logins(users):
    user = register(users)
    assert users.set_active(user["id"], False) == {**user, "is_active": False}
    assert users.list_active(user["username"]) == []
    assert users.get_by_username(user["username"])["is_active"] is False  # still found by name
    with pytest.raises(AuthenticationFailed):
        users.authenticate(user["email"], PASSWORD, None)
    assert users.set_active(user["id"], True) == user
    assert [found["id"] for found in users.list_active(user["username"])] == [user["id"]]


def test_delete_account_needs_the_password(users):
    user = register(users)
    with pytest.raises(ValidationFailed) as failed:
        users.delete_account(user["id"], "not my password", "127.0.0.1")
    assert (failed.value.errors, failed.value.raw) == ({"password": ["Incorrect password."]}, False)
    assert users.get_by_username(user["username"])["id"] == user["id"]


def test_delete_account(users, sql):
    user = register(users)
    address = f"test-address-{unique()}"
    users.update_profile(user["id"], {"avatar": "avatars/mine.png"})
    with pytest.raises(ValidationFailed):
        users.delete_account(user["id"], "wrong", address)
    assert users.delete_account(user["id"], PASSWORD, address) == {"previous_avatar": "avatars/mine.png"}
    with pytest.raises(NotFound):
        users.get_by_username(user["username"])
    assert users.get_many([user["id"]]) == [None]
    assert users.get_by_email(user["email"]) is None
    with pytest.raises(AuthenticationFailed):
        users.authenticate(user["email"], PASSWORD, None)
    with pytest.raises(NotFound):
        users.delete_account(user["id"], PASSWORD, None)
    # The account's attempts are unlinked from it; those from a known address keep counting for it.
    assert sql("SELECT account FROM users.login_attempts WHERE address = :a", a=address) == [(None,), (None,)]
    account = user["email"].lower()
    assert sql("SELECT address FROM users.login_attempts WHERE account = :a", a=account) == [(None,)]  # the login above
    # The email and username are free again.
    again = users.register(
        username=user["username"], name="Again", email=user["email"], password1=PASSWORD, password2=PASSWORD
    )
    assert again["id"] != user["id"]
