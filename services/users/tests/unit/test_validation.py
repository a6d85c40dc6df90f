"""Input rules of CONTRACT §8.1–8.3: every message string, in the contract's key order."""

from __future__ import annotations

import pytest

from common.errors import ValidationFailed
from common.validation import NULL_CHARACTERS, REQUIRED, max_length
from services.users import validation
from services.users.validation import (
    EMAIL_TAKEN,
    INVALID_EMAIL,
    INVALID_SLUG,
    PASSWORD_MISMATCH,
    USERNAME_TAKEN,
)

GOOD = dict(username="alice", name="Alice", email="alice@example.com", password1="s3cret-Pa55", password2="s3cret-Pa55")


def nobody(_value: str) -> bool:
    return False


def everybody(_value: str) -> bool:
    return True


def register(*, username_taken=nobody, email_taken=nobody, **fields):
    return validation.check_registration(**{**GOOD, **fields}, username_taken=username_taken, email_taken=email_taken)


def errors_of(**fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as failed:
        register(**fields)
    assert failed.value.raw is False
    return failed.value.errors


# --- message strings --------------------------------------------------------------------------------


def test_exact_message_strings():
    assert INVALID_SLUG == "Enter a valid \u201cslug\u201d consisting of letters, numbers, underscores or hyphens."
    assert INVALID_EMAIL == "Enter a valid email address."
    assert USERNAME_TAKEN == "User with this Username already exists."
    assert EMAIL_TAKEN == "User with this Email already exists."
    assert PASSWORD_MISMATCH == "The two password fields didn\u2019t match."


# --- registration -----------------------------------------------------------------------------------


def test_valid_registration_is_cleaned():
    form = register(
        username="  JohnDoe ",
        name="  John  Doe ",
        email="  John.Doe@Example.COM  ",
        password1=" pw with spaces ",
        password2=" pw with spaces ",
    )
    assert form == validation.Registration(
        username="JohnDoe", name="John  Doe", email="John.Doe@Example.COM", password=" pw with spaces "
    )


def test_everything_missing_lists_every_field_in_contract_order():
    errors = errors_of(username="", name="   ", email=None, password1="", password2=None)
    assert list(errors) == ["username", "name", "email", "password1", "password2"]
    assert errors == {field: [REQUIRED] for field in errors}


def test_username_rules():
    assert errors_of(username="John Doe") == {"username": [INVALID_SLUG]}
    assert errors_of(username="jöhn") == {"username": [INVALID_SLUG]}
    assert errors_of(username="bob!") == {"username": [INVALID_SLUG]}
    assert errors_of(username="a" * 201) == {"username": [max_length(200, 201)]}
    assert errors_of(username="a b" * 70) == {"username": [INVALID_SLUG, max_length(200, 210)]}
    assert errors_of(username="a\x00b") == {"username": [INVALID_SLUG, NULL_CHARACTERS]}
    assert register(username="a" * 200).username == "a" * 200
    assert register(username="-_-Under_score-").username == "-_-Under_score-"


def test_username_duplicate_is_asked_only_for_a_valid_username():
    asked = []

    def taken(value):
        asked.append(value)
        return True

    assert errors_of(username="Alice", username_taken=taken) == {"username": [USERNAME_TAKEN]}
    assert asked == ["Alice"]
    asked.clear()
    assert errors_of(username="not valid", username_taken=taken) == {"username": [INVALID_SLUG]}
    assert asked == []


def test_name_rules():
    assert errors_of(name="") == {"name": [REQUIRED]}
    assert errors_of(name=" \t\n") == {"name": [REQUIRED]}
    assert errors_of(name="n" * 201) == {"name": [max_length(200, 201)]}
    assert errors_of(name="a\x00") == {"name": [NULL_CHARACTERS]}
    assert register(name="n" * 200).name == "n" * 200


def test_email_rules():
    assert errors_of(email="not-an-email") == {"email": [INVALID_EMAIL]}
    long_valid = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 59 + ".com"
    assert len(long_valid) == 256
    assert errors_of(email=long_valid) == {"email": [max_length(254, 256)]}
    assert errors_of(email="x" * 330 + "@x.com") == {"email": [INVALID_EMAIL, max_length(254, 336)]}
    assert errors_of(email="a@x.com", email_taken=everybody) == {"email": [EMAIL_TAKEN]}


def test_email_duplicate_is_asked_with_the_stripped_value_as_typed():
    asked = []
    register(email="  John@X.com ", email_taken=lambda value: asked.append(value) or False)
    assert asked == ["John@X.com"]


def test_password_required_and_not_stripped():
    assert errors_of(password1="", password2="") == {"password1": [REQUIRED], "password2": [REQUIRED]}
    # Whitespace is a password like any other: present, and here mismatching.
    assert errors_of(password1="   ", password2="    ") == {"password2": [PASSWORD_MISMATCH]}


def test_mismatch_is_the_only_password_message():
    assert errors_of(password1="1qwerty23", password2="4asdfgh56") == {"password2": [PASSWORD_MISMATCH]}
    assert errors_of(password1="123", password2="1234") == {"password2": [PASSWORD_MISMATCH]}


def test_password_validators_run_on_password2_in_order():
    assert errors_of(password1="123", password2="123") == {
        "password2": [
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric.",
        ]
    }


def test_password2_is_validated_even_when_password1_is_missing():
    assert errors_of(password1="", password2="123") == {
        "password1": [REQUIRED],
        "password2": [
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric.",
        ],
    }


def test_similarity_uses_the_username_and_email_that_passed_their_rules():
    assert errors_of(username="superman", password1="superman1", password2="superman1") == {
        "password2": ["The password is too similar to the username.", "This password is too common."]
    }
    # A duplicate username is still the unsaved user's username.
    assert errors_of(username="superman", username_taken=everybody, password1="superman1", password2="superman1") == {
        "username": [USERNAME_TAKEN],
        "password2": ["The password is too similar to the username.", "This password is too common."],
    }
    # An invalid username is not; the email still is.
    assert errors_of(username="john smith", email="johnsmith@x.com", password1="johnsmith", password2="johnsmith") == {
        "username": [INVALID_SLUG],
        "password2": ["The password is too similar to the email."],
    }
    assert errors_of(email="johnsmith@x.com", password1="johnsmith", password2="johnsmith") == {
        "password2": ["The password is too similar to the email."]
    }


def test_null_characters_in_passwords():
    assert errors_of(password1="a\x00bcdefghij", password2="a\x00bcdefghij") == {
        "password1": [NULL_CHARACTERS],
        "password2": [NULL_CHARACTERS],
    }


# --- usernames --------------------------------------------------------------------------------------


def test_username_slug_errors_are_raw():
    assert validation.username_slug("JohnDoe") == "johndoe"
    with pytest.raises(ValidationFailed) as blank:
        validation.username_slug("---")
    assert (blank.value.errors, blank.value.raw) == ({"username": ["This field cannot be blank."]}, True)
    assert repr(blank.value.errors) == "{'username': ['This field cannot be blank.']}"


def test_username_taken_style_follows_what_a_sequential_duplicate_gets():
    raw = validation.username_taken_error("-alice-", "alice")
    assert (raw.errors, raw.raw) == ({"username": [USERNAME_TAKEN]}, True)
    form = validation.username_taken_error("Alice", "alice")
    assert (form.errors, form.raw) == ({"username": [USERNAME_TAKEN]}, False)


# --- emails -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "alice@example.com",
        "John.Doe@Example.COM",
        "a+tag@sub.example.co.uk",
        "o'brien@example.ie",
        '"quoted.local"@example.com',
        "user@localhost",
        "user@[127.0.0.1]",
        "user@[::1]",
        "user@xn--80ak6aa92e.com",
        "user@bücher.de",
        "x@a-b.io",
    ],
)
def test_valid_emails(email):
    assert validation.is_valid_email(email)


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plainaddress",
        "@example.com",
        "user@",
        "user@example",  # no top-level domain
        "user@example.c",  # one-letter TLD
        "user@-example.com",
        "user@example-.com",
        "user@example.-com",
        "user@exa_mple.com",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "jöhn@example.com",
        "a b@example.com",
        '"quoted local"@example.com',  # Django's quoted-string excludes the space
        "user@[999.1.1.1]",
        "user@[not-an-ip]",
        "user@example.com.",  # Django's email domains take no trailing dot
        "a@b@example.com",
        "a" * 310 + "@example.com",  # over RFC 3696's 320
    ],
)
def test_invalid_emails(email):
    assert not validation.is_valid_email(email)


# --- profile updates --------------------------------------------------------------------------------


def profile_errors(changes, extra=None):
    with pytest.raises(ValidationFailed) as failed:
        validation.check_profile_changes(changes, extra)
    assert failed.value.raw is False
    return failed.value.errors


def test_profile_values_are_cleaned():
    assert validation.check_profile_changes({}) == {}
    assert validation.check_profile_changes({"name": "  Bob  ", "bio": "  hi  ", "avatar": "avatars/b.png"}) == {
        "name": "Bob",
        "bio": "  hi  ",
        "avatar": "avatars/b.png",
    }
    assert validation.check_profile_changes({"bio": None, "avatar": None}) == {"bio": "", "avatar": ""}
    assert validation.check_profile_changes({"bio": "b" * 500})["bio"] == "b" * 500


def test_profile_name_is_required_when_present():
    for name in (None, "", "   "):
        assert profile_errors({"name": name}) == {"name": [REQUIRED]}
    assert profile_errors({"name": "n" * 201}) == {"name": [max_length(200, 201)]}


def test_profile_bio_length():
    assert profile_errors({"bio": "b" * 501}) == {"bio": ["Ensure this value has at most 500 characters (it has 501)."]}


def test_profile_errors_merge_with_upload_errors_in_field_order():
    upload = "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
    errors = profile_errors({"bio": "b" * 501, "name": None}, {"avatar": [upload]})
    assert list(errors) == ["name", "bio", "avatar"]
    assert errors == {
        "name": [REQUIRED],
        "bio": ["Ensure this value has at most 500 characters (it has 501)."],
        "avatar": [upload],
    }
    # Upload errors alone fail the update too; empty lists are no errors.
    assert profile_errors({"name": "Ok"}, {"avatar": ["File too large. Size should not exceed 2 MiB."]}) == {
        "avatar": ["File too large. Size should not exceed 2 MiB."]
    }
    assert validation.check_profile_changes({"name": "Ok"}, {"avatar": []}) == {"name": "Ok"}


def test_profile_cannot_change_other_fields():
    with pytest.raises(ValueError):
        validation.check_profile_changes({"email": "x@y.com"})


# --- rate-limit keys --------------------------------------------------------------------------------


def test_rate_limit_keys():
    assert validation.login_account("John@X.com") == "john@x.com"
    assert validation.login_account("a\x00b") == "a\ufffdb"
    assert len(validation.login_account("x" * 10_000)) == validation.ACCOUNT_KEY_MAX_LENGTH
    assert validation.client_address(None) is None
    assert validation.client_address("") is None
    assert validation.client_address(" 127.0.0.1 ") == "127.0.0.1"
