"""Plumbing of ``common.db`` that needs no database."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError

from common.db import unique_violations, violated_constraint


class Duplicate(Exception):
    pass


def integrity_error(constraint: str | None) -> IntegrityError:
    orig = Exception("duplicate key")
    orig.diag = SimpleNamespace(constraint_name=constraint)  # what psycopg's errors carry
    return IntegrityError("INSERT ...", {}, orig)


def test_violated_constraint():
    assert violated_constraint(integrity_error("uq_users_username")) == "uq_users_username"
    assert violated_constraint(IntegrityError("INSERT ...", {}, Exception("no diagnostics"))) is None


def test_unique_violations_become_the_domain_error_of_their_field():
    fields = {"uq_rooms_host_id_name": "name"}
    with pytest.raises(Duplicate) as raised, unique_violations(fields, Duplicate):
        raise integrity_error("uq_rooms_host_id_name")
    assert raised.value.args == ("name",)
    assert isinstance(raised.value.__cause__, IntegrityError)
    for other in (integrity_error("fk_rooms_topic_id_topics"), integrity_error(None)):
        with pytest.raises(IntegrityError), unique_violations(fields, Duplicate):
            raise other
    with unique_violations(fields, Duplicate):
        pass
