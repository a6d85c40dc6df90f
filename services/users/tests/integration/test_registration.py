"""register: CONTRACT §6.2 registerUser, §8.1, §8.2, D1, D2."""

from __future__ import annotations

from datetime import datetime

import pytest

from common.errors import ValidationFailed
from services.users.tests.integration.conftest import PASSWORD, register, unique

pytestmark = pytest.mark.integration

TAKEN_USERNAME = "User with this Username already exists."
TAKEN_EMAIL = "User with this Email already exists."


def test_health(users):
    assert users.health() == "ok"


def test_register_returns_the_stored_user(users, sql):
    suffix = unique()
    user = users.register(
        username=f"JohnDoe{suffix}",
        name="  John Doe ",
        email=f"  John.Doe.{suffix}@Example.COM ",
        password1=PASSWORD,
        password2=PASSWORD,
    )
    assert user == {
        "id": user["id"],
        "username": f"johndoe{suffix}",
        "name": "John Doe",
        "bio": "",
        "avatar": "",
        "email": f"John.Doe.{suffix}@Example.COM",  # as typed, minus surrounding whitespace (D1)
        "is_active": True,
        "is_staff": False,
        "date_joined": user["date_joined"],
        "date_joined_ts": user["date_joined_ts"],
    }
    assert user["id"] == user["id"].lower() and len(user["id"]) == 36
    joined = datetime.fromisoformat(user["date_joined"])
    assert user["date_joined"].endswith("+00:00")
    assert joined.timestamp() == pytest.approx(user["date_joined_ts"])

    [(stored_hash, email, username)] = sql(
        "SELECT password, email, username FROM users.users WHERE id = :id", id=user["id"]
    )
    assert stored_hash.startswith("$argon2id$")  # D2
    assert PASSWORD not in stored_hash
    assert (email, username) == (user["email"], user["username"])


@pytest.mark.parametrize(
    ("typed", "slug"), [("JohnDoe{}", "johndoe{}"), ("a--b{}", "a-b{}"), ("_x{}_", "x{}"), ("-alice{}-", "alice{}")]
)
def test_username_is_slugified(users, typed, slug):
    suffix = unique()
    assert register(users, username=typed.format(suffix))["username"] == slug.format(suffix)


def test_form_errors_come_in_contract_order(users):
    with pytest.raises(ValidationFailed) as failed:
        users.register(username="John Doe", name=" ", email="not-an-email", password1="123", password2="123")
    assert failed.value.raw is False
    assert list(failed.value.errors) == ["username", "name", "email", "password2"]
    assert failed.value.errors == {
        "username": ["Enter a valid \u201cslug\u201d consisting of letters, numbers, underscores or hyphens."],
        "name": ["This field is required."],
        "email": ["Enter a valid email address."],
        "password2": [
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric.",
        ],
    }


def test_password_mismatch_is_the_only_password_error(users):
    with pytest.raises(ValidationFailed) as failed:
        register(users, password1="1qwerty23", password2="4asdfgh56")
    assert failed.value.errors == {"password2": ["The two password fields didn\u2019t match."]}


def test_password_similar_to_the_username(users):
    suffix = unique()
    with pytest.raises(ValidationFailed) as failed:
        register(users, username=f"superman{suffix}", password1=f"superman{suffix}1", password2=f"superman{suffix}1")
    assert failed.value.errors == {"password2": ["The password is too similar to the username."]}


def test_duplicate_username_is_found_case_insensitively(users):
    suffix = unique()
    register(users, username=f"alice{suffix}")
    with pytest.raises(ValidationFailed) as failed:
        register(users, username=f"ALICE{suffix}")
    assert (failed.value.errors, failed.value.raw) == ({"username": [TAKEN_USERNAME]}, False)


def test_duplicate_email_is_found_lower_cased(users):
    suffix = unique()
    register(users, email=f"john.{suffix}@x.com")
    with pytest.raises(ValidationFailed) as failed:
        register(users, email=f"  JOHN.{suffix}@X.COM ")
    assert (failed.value.errors, failed.value.raw) == ({"email": [TAKEN_EMAIL]}, False)


def test_taken_slug_is_a_raw_error(users):
    suffix = unique()
    register(users, username=f"alice{suffix}")
    with pytest.raises(ValidationFailed) as failed:
        register(users, username=f"-alice{suffix}-")
    assert (failed.value.errors, failed.value.raw) == ({"username": [TAKEN_USERNAME]}, True)
    assert repr(failed.value.errors) == "{'username': ['User with this Username already exists.']}"


def test_empty_slug_is_a_raw_error(users):
    with pytest.raises(ValidationFailed) as failed:
        register(users, username="---")
    assert (failed.value.errors, failed.value.raw) == ({"username": ["This field cannot be blank."]}, True)


def test_nothing_is_stored_for_a_rejected_registration(users, sql):
    suffix = unique()
    with pytest.raises(ValidationFailed):
        register(users, username=f"nobody{suffix}", password1="123", password2="123")
    assert sql("SELECT count(*) FROM users.users WHERE username = :u", u=f"nobody{suffix}") == [(0,)]


def test_null_characters_are_a_form_error_not_a_database_error(users):
    with pytest.raises(ValidationFailed) as failed:
        register(users, name="a\x00b")
    assert failed.value.errors == {"name": ["Null characters are not allowed."]}
