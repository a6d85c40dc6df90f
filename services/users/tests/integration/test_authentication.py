"""authenticate and the D7 login rate limits (CONTRACT §6.1, D1, D7)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from common.errors import AuthenticationFailed, RateLimited, ValidationFailed
from services.users import passwords
from services.users.tests.integration.conftest import PASSWORD, register, unique

pytestmark = pytest.mark.integration

SMALL_LIMITS = dict(LOGIN_MAX_FAILURES_PER_ACCOUNT=3, LOGIN_MAX_ATTEMPTS_PER_ADDRESS=5, LOGIN_WINDOW_SECONDS=900)


def address() -> str:
    return f"test-address-{unique()}"


@pytest.fixture
def limited_users(start_users, rpc_proxy):
    start_users(**SMALL_LIMITS)
    with rpc_proxy() as proxy:
        yield proxy


@pytest.fixture
def verifications(monkeypatch):
    """Records every password verification the service makes."""
    calls = []
    real = passwords.verify_password

    def recording(password_hash, password):
        calls.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", recording)
    return calls


def test_authenticate_returns_the_user_and_records_the_login(users, sql):
    user = register(users)
    assert users.authenticate(user["email"], PASSWORD, "127.0.0.1") == user
    [(last_login,)] = sql("SELECT last_login FROM users.users WHERE id = :id", id=user["id"])
    assert last_login is not None
    rows = sql(
        "SELECT account, address, succeeded FROM users.login_attempts WHERE account = :a", a=user["email"].lower()
    )
    assert rows == [(user["email"].lower(), "127.0.0.1", True)]


def test_email_is_compared_lower_cased(users):
    suffix = unique()
    user = register(users, email=f"john.{suffix}@x.com")
    assert users.authenticate(f"John.{suffix}@X.com", PASSWORD, None)["id"] == user["id"]
    mixed = register(users, email=f"Mixed.{suffix}@Example.COM")
    assert users.authenticate(f"mixed.{suffix}@example.com", PASSWORD, None)["id"] == mixed["id"]


def test_wrong_password_unknown_email_and_inactive_user_fail_alike(users, sql, verifications):
    user = register(users)
    with pytest.raises(AuthenticationFailed) as wrong:
        users.authenticate(user["email"], PASSWORD + "!", None)
    with pytest.raises(AuthenticationFailed) as unknown:
        users.authenticate(f"nobody.{unique()}@example.com", PASSWORD, None)
    users.set_active(user["id"], False)
    with pytest.raises(AuthenticationFailed) as inactive:
        users.authenticate(user["email"], PASSWORD, None)
    for failure in (wrong, unknown, inactive):
        assert failure.value.message == "Please enter valid credentials"
    # The unknown email still cost a verification (of a dummy hash), like the others.
    assert len(verifications) == 3 and verifications[1] is None
    assert sql(
        "SELECT count(*) FROM users.login_attempts WHERE account = :a AND NOT succeeded", a=user["email"].lower()
    ) == [(2,)]
    users.set_active(user["id"], True)
    assert users.authenticate(user["email"], PASSWORD, None)["id"] == user["id"]


def test_non_string_credentials_fail_cleanly(users):
    user = register(users)
    with pytest.raises(AuthenticationFailed):
        users.authenticate(user["email"], None, None)
    with pytest.raises(AuthenticationFailed):
        users.authenticate("a\x00b@example.com", PASSWORD, "x\x00y")


def test_account_limit_blocks_even_the_right_password_without_checking_it(limited_users, verifications):
    user = register(limited_users)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            limited_users.authenticate(user["email"], "wrong password", address())
    checked = len(verifications)
    with pytest.raises(RateLimited) as limited:
        limited_users.authenticate(user["email"].upper(), PASSWORD, address())
    assert limited.value.message == "Too many login attempts. Please try again later."
    assert len(verifications) == checked  # no password work once limited


def test_account_limit_counts_only_failures_in_the_window(limited_users, sql):
    user = register(limited_users)
    account = user["email"].lower()
    for _ in range(5):
        sql(
            "INSERT INTO users.login_attempts (account, succeeded, attempted_at) "
            "VALUES (:a, false, now() - interval '901 seconds')",
            a=account,
        )
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            limited_users.authenticate(user["email"], "wrong password", None)
    for _ in range(3):  # successes do not count against the account
        assert limited_users.authenticate(user["email"], PASSWORD, None)["id"] == user["id"]
    with pytest.raises(AuthenticationFailed):
        limited_users.authenticate(user["email"], "wrong password", None)
    with pytest.raises(RateLimited):
        limited_users.authenticate(user["email"], PASSWORD, None)


def test_address_limit_counts_every_attempt_from_the_address(limited_users):
    user = register(limited_users)
    crowded = address()
    assert limited_users.authenticate(user["email"], PASSWORD, crowded)["id"] == user["id"]
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            limited_users.authenticate(f"someone.{unique()}@example.com", "guess", crowded)
    with pytest.raises(RateLimited):
        limited_users.authenticate(user["email"], PASSWORD, crowded)
    # The account itself is fine from elsewhere.
    assert limited_users.authenticate(user["email"], PASSWORD, address())["id"] == user["id"]


def test_rate_limited_attempts_are_not_recorded(limited_users, sql):
    user = register(limited_users)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            limited_users.authenticate(user["email"], "wrong password", None)
    for _ in range(3):
        with pytest.raises(RateLimited):
            limited_users.authenticate(user["email"], PASSWORD, None)
    assert sql("SELECT count(*) FROM users.login_attempts WHERE account = :a", a=user["email"].lower()) == [(3,)]


def test_delete_account_password_failures_count_as_failed_logins(limited_users):
    user = register(limited_users)
    for _ in range(3):
        with pytest.raises(ValidationFailed) as failed:
            limited_users.delete_account(user["id"], "wrong password", address())
        assert failed.value.errors == {"password": ["Incorrect password."]}
    with pytest.raises(RateLimited):
        limited_users.authenticate(user["email"], PASSWORD, address())
    with pytest.raises(RateLimited):
        limited_users.delete_account(user["id"], PASSWORD, address())
    assert limited_users.get_by_username(user["username"])["id"] == user["id"]


def test_a_hash_with_old_parameters_is_upgraded_at_login(users, sql):
    user = register(users)
    old = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1).hash(PASSWORD)
    sql("UPDATE users.users SET password = :p WHERE id = :id", p=old, id=user["id"])
    assert users.authenticate(user["email"], PASSWORD, None)["id"] == user["id"]
    [(upgraded,)] = sql("SELECT password FROM users.users WHERE id = :id", id=user["id"])
    assert upgraded != old and not passwords.needs_rehash(upgraded)
    assert users.authenticate(user["email"], PASSWORD, None)["id"] == user["id"]


def test_old_attempts_are_pruned(users_container, users, sql):
    from nameko.testing.services import entrypoint_hook

    account = f"pruned.{unique()}@example.com"
    sql(
        "INSERT INTO users.login_attempts (account, attempted_at) VALUES (:a, now() - interval '2 hours'), (:a, now())",
        a=account,
    )
    with entrypoint_hook(users_container, "prune_login_attempts") as prune:
        assert prune() >= 1
    assert sql("SELECT count(*) FROM users.login_attempts WHERE account = :a", a=account) == [(1,)]
