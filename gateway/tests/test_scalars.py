"""Scalar formats (CONTRACT §2.3, A6)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from graphql import GraphQLError, StringValueNode

from gateway.graphql.scalars import DateTimeDefinition, UUIDDefinition, normalize_uuid

ID = "4a96f149-e353-471e-9137-8ea62fb13466"


@pytest.mark.parametrize("form", [ID, ID.upper(), ID.replace("-", ""), "{" + ID + "}", "urn:uuid:" + ID, uuid.UUID(ID)])
def test_uuid_input_forms_and_lowercase_output(form):
    assert normalize_uuid(form) == ID
    assert UUIDDefinition.serialize(form) == ID


def test_uuid_parse_errors():
    with pytest.raises(GraphQLError, match=r"^UUID cannot represent value: 'not-a-uuid'$"):
        UUIDDefinition.parse_value("not-a-uuid")
    with pytest.raises(ValueError, match="badly formed hexadecimal UUID string"):
        UUIDDefinition.parse_literal(StringValueNode(value="xyz"))
    assert UUIDDefinition.parse_literal(StringValueNode(value=ID.upper())) == uuid.UUID(ID)


def test_datetime_is_utc_isoformat():
    serialize = DateTimeDefinition.serialize
    assert serialize(datetime(2025, 8, 20, 12, 1, 11, 853118, tzinfo=UTC)) == "2025-08-20T12:01:11.853118+00:00"
    assert serialize(datetime(2025, 8, 20, 12, 1, 11, tzinfo=UTC)) == "2025-08-20T12:01:11+00:00"
    assert (
        serialize(datetime(2025, 8, 20, 14, 1, 11, tzinfo=timezone(timedelta(hours=2)))) == "2025-08-20T12:01:11+00:00"
    )
    assert serialize("2025-08-20T12:01:11.5+00:00") == "2025-08-20T12:01:11.500000+00:00"
