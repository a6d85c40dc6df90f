"""The database itself refuses bad rows, whoever writes them (DESIGN: "a bypassing writer still cannot
store bad rows")."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError

from services.users.tests.integration.conftest import unique

pytestmark = pytest.mark.integration

INSERT = "INSERT INTO users.users (email, username, name, password) VALUES (:email, :username, :name, 'x') RETURNING id"


def insert(sql, **fields):
    suffix = unique()
    values = dict(email=f"db.{suffix}@example.com", username=f"db_{suffix}", name="Direct")
    values.update(fields)
    return sql(INSERT, **values)


def constraint_of(error: IntegrityError) -> str:
    return error.orig.diag.constraint_name


def test_a_valid_row_gets_defaults(sql):
    [(user_id,)] = insert(sql)
    assert isinstance(user_id, uuid.UUID)
    [row] = sql("SELECT bio, avatar, is_staff, is_active, date_joined FROM users.users WHERE id = :id", id=user_id)
    assert row[:4] == ("", "", False, True) and row[4] is not None


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        (dict(username="Upper"), "ck_users_username_slug"),
        (dict(username="has space"), "ck_users_username_slug"),
        (dict(username=""), "ck_users_username_slug"),
        (dict(name="   "), "ck_users_name_not_blank"),
        (dict(email=""), "ck_users_email_not_blank"),
    ],
)
def test_rules_are_enforced(sql, fields, constraint):
    with pytest.raises(IntegrityError) as refused:
        insert(sql, **fields)
    assert constraint_of(refused.value) == constraint


def test_emails_are_unique_lower_cased_and_usernames_unique(sql):
    suffix = unique()
    insert(sql, email=f"Same.{suffix}@Example.com", username=f"one_{suffix}")
    with pytest.raises(IntegrityError) as email:
        insert(sql, email=f"same.{suffix}@example.COM")
    assert constraint_of(email.value) == "uq_users_email_lower"
    with pytest.raises(IntegrityError) as username:
        insert(sql, username=f"one_{suffix}")
    assert constraint_of(username.value) == "uq_users_username"


def test_lengths_are_enforced(sql):
    from sqlalchemy.exc import DataError

    for fields in (dict(username="u" * 201), dict(name="n" * 201), dict(email="e" * 250 + "@x.io")):
        with pytest.raises(DataError):
            insert(sql, **fields)
