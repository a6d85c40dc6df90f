"""Password hashing and Django's four default password validators (CONTRACT D2, §8.2)."""

from __future__ import annotations

from argon2 import PasswordHasher

from services.users import passwords
from services.users.passwords import ENTIRELY_NUMERIC, TOO_COMMON, TOO_SHORT


def test_contract_examples():
    assert passwords.password_errors("123") == [TOO_SHORT, TOO_COMMON, ENTIRELY_NUMERIC]
    assert passwords.password_errors("superman1", username="superman") == [
        "The password is too similar to the username.",
        TOO_COMMON,
    ]
    assert passwords.password_errors("johnsmith", email="johnsmith@x.com") == [
        "The password is too similar to the email.",
    ]


def test_messages_are_exact():
    assert TOO_SHORT == "This password is too short. It must contain at least 8 characters."
    assert TOO_COMMON == "This password is too common."
    assert ENTIRELY_NUMERIC == "This password is entirely numeric."


def test_a_strong_password_passes():
    assert passwords.password_errors("correct horse battery", username="alice", email="alice@example.com") == []


def test_similarity_reports_the_username_before_the_email_and_only_once():
    assert passwords.password_errors("alicealice", username="alicealice", email="alicealice@x.com") == [
        "The password is too similar to the username.",
    ]


def test_similarity_compares_parts_of_the_email():
    # "johnsmith" is a part of the email once split on \W+; the whole address is too different.
    assert passwords.password_errors("Johnsmith!", email="johnsmith@example.org") == [
        "The password is too similar to the email.",
    ]


def test_similarity_of_short_parts():
    # len(password) >= 10 x len(part) and len(part) < 0.35 x len(password): "ab" is skipped (Django's
    # shortcut; such a part could never reach the ratio anyway).
    assert passwords.password_errors("abzzzzzzzzzzzzzzzzzz", username="ab") == []
    # A part just long enough to be compared is similar.
    assert passwords.password_errors("qzxjvkwpm7", username="qzxjvkwpm") == [
        "The password is too similar to the username."
    ]


def test_common_list_is_djangos_and_compares_lower_cased_and_stripped():
    assert len(passwords.common_passwords()) > 19000
    assert "password" in passwords.common_passwords()
    assert passwords.password_errors("PassWord") == [TOO_COMMON]
    assert passwords.password_errors(" password ") == [TOO_COMMON]


def test_entirely_numeric():
    assert passwords.password_errors("8302749183027") == [ENTIRELY_NUMERIC]
    assert passwords.password_errors("８３０２７４９１８３０２７") == [ENTIRELY_NUMERIC]  # str.isdigit, as Django


def test_hash_is_argon2id_and_verifies():
    password_hash = passwords.hash_password("correct horse battery")
    assert password_hash.startswith("$argon2id$")
    assert "correct horse battery" not in password_hash
    assert passwords.verify_password(password_hash, "correct horse battery") is True
    assert passwords.verify_password(password_hash, "correct horse batterY") is False
    assert passwords.needs_rehash(password_hash) is False


def test_hashes_are_salted():
    assert passwords.hash_password("same password") != passwords.hash_password("same password")


def test_verification_never_matches_without_a_usable_hash():
    assert passwords.verify_password(None, "anything") is False  # unknown account: a dummy is verified
    assert passwords.verify_password("!unusable", "!unusable") is False
    assert passwords.verify_password(passwords.hash_password("x"), None) is False


def test_lone_surrogates_hash_instead_of_crashing():
    password_hash = passwords.hash_password("pass\ud800word")
    assert passwords.verify_password(password_hash, "pass\ud800word") is True


def test_hashes_with_other_parameters_need_a_rehash():
    assert passwords.needs_rehash(PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1).hash("x")) is True
    assert passwords.needs_rehash("!unusable") is False
