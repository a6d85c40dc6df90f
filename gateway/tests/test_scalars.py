"""Scalar formats (CONTRACT §2.3, A6)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from graphql import GraphQLError, StringValueNode

from gateway.graphql.scalars import (
    SCALAR_MAP,
    CanonicalDateTime,
    CanonicalUUID,
    DateTimeDefinition,
    UUIDDefinition,
    canonical_uuid,
    normalize_uuid,
)

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


def test_canonical_ids_pass_through_untouched():
    canonical = "".join(ID)  # a str object of its own, as decoded from a service's reply
    assert normalize_uuid(canonical) is canonical


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-uuid",
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",  # canonical shape, not hexadecimal
        ID[:-1] + "g",
        ID + "\n",
        ID[:-1],
        ID.replace("-", "_"),
        "",
        None,
        42,
    ],
)
def test_anything_else_is_still_refused(bad):
    with pytest.raises((ValueError, TypeError)):
        normalize_uuid(bad)
    assert canonical_uuid(bad) is None
    with pytest.raises(GraphQLError):
        UUIDDefinition.parse_value(bad)


def test_canonical_uuid_fields_are_the_uuid_scalar():
    assert SCALAR_MAP[CanonicalUUID] is UUIDDefinition
    assert canonical_uuid(ID.upper()) == ID


def test_service_datetimes_go_out_as_they_came():
    for sent in ("2025-08-20T12:01:11.853118+00:00", "2025-08-20T12:01:11+00:00"):
        assert DateTimeDefinition.serialize(sent) is sent
    # Anything else is still parsed and printed in the contract's form.
    serialize = DateTimeDefinition.serialize
    assert serialize("2025-08-20T12:01:11.000000+00:00") == "2025-08-20T12:01:11+00:00"
    assert serialize("2025-08-20T14:01:11+02:00") == "2025-08-20T12:01:11+00:00"
    assert serialize("2025-08-20T12:01:11") == "2025-08-20T12:01:11+00:00"
    assert SCALAR_MAP[CanonicalDateTime] is DateTimeDefinition
