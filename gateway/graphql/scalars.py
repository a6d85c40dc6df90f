"""The contract's scalars (§2.3): ``UUID``, ``DateTime``, ``GenericScalar`` and ``Upload``.

Annotate fields with ``uuid.UUID`` and ``datetime.datetime`` (:data:`CanonicalUUID` and
:data:`CanonicalDateTime` for values read from the services), :data:`GenericScalar` and :data:`Upload`;
:data:`SCALAR_MAP` (passed to the schema config) gives them these names and behaviours.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from graphql import GraphQLError, StringValueNode, Undefined, ValueNode, value_from_ast_untyped
from strawberry.file_uploads import Upload
from strawberry.types.scalar import ScalarDefinition

GenericScalar = NewType("GenericScalar", object)
"""Any JSON value (the token ``payload``)."""

CanonicalUUID = NewType("CanonicalUUID", str)
"""A ``UUID`` field holding the canonical string the services send (see :func:`normalize_uuid`), so an
id goes out as it came in, without a ``uuid.UUID`` made and printed for every row."""

CanonicalDateTime = NewType("CanonicalDateTime", str)
"""A ``DateTime`` field holding the string the services send: ``isoformat()`` of a UTC value, already
the wire form (§2.3), so it goes out without being parsed and printed again."""

__all__ = [
    "SCALAR_MAP",
    "CanonicalDateTime",
    "CanonicalUUID",
    "GenericScalar",
    "Upload",
    "canonical_uuid",
    "normalize_uuid",
]

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CANONICAL_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.(?!000000)[0-9]{6})?\+00:00"
)
"""What ``isoformat()`` prints for an aware UTC value (no fraction when the microseconds are 0)."""


def normalize_uuid(value: Any) -> str:
    """The canonical lowercase hyphenated form of a UUID given in any form ``uuid.UUID`` accepts;
    ``ValueError`` (or ``TypeError``) for anything else."""
    # The canonical form is what uuid.UUID would print back, so it passes as it is: ids from the
    # services are always in it, and this runs for every id of every response.
    if value.__class__ is str and _CANONICAL_UUID.fullmatch(value):
        return value  # type: ignore[no-any-return]
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def canonical_uuid(value: Any) -> str | None:
    """:func:`normalize_uuid` of a string, ``None`` when it is not a UUID (or not a string)."""
    if not isinstance(value, str):
        return None
    try:
        return normalize_uuid(value)
    except ValueError:
        return None


def _parse_uuid_value(value: Any) -> uuid.UUID:
    # graphql-core prefixes this message: "Variable '$roomId' got invalid value 'x'; <message>".
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise GraphQLError(f"UUID cannot represent value: {value!r}") from None


def _parse_uuid_literal(node: ValueNode, _variables: Any = None) -> Any:
    # A ValueError here becomes "Expected value of type 'UUID!', found "xyz"; badly formed hexadecimal
    # UUID string" (graphql-core appends the exception's own text).
    if isinstance(node, StringValueNode):
        return uuid.UUID(node.value)
    return Undefined


def _serialize_datetime(value: Any) -> str:
    if value.__class__ is str and _CANONICAL_DATETIME.fullmatch(value):
        return value  # type: ignore[no-any-return]
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _parse_datetime_value(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except (ValueError, TypeError):
        raise GraphQLError(f"DateTime cannot represent value: {value!r}") from None


def _identity(value: Any) -> Any:
    return value


def _parse_generic_literal(node: ValueNode, variables: Any = None) -> Any:
    return value_from_ast_untyped(node, variables)


UUIDDefinition: ScalarDefinition = strawberry.scalar(
    name="UUID",
    description=(
        "Leverages the internal Python implementation of UUID (uuid.UUID) to provide native UUID objects\n"
        "in fields, resolvers and input."
    ),
    serialize=normalize_uuid,
    parse_value=_parse_uuid_value,
    parse_literal=_parse_uuid_literal,
)

DateTimeDefinition: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description=(
        "The `DateTime` scalar type represents a DateTime\nvalue as specified by\n"
        "[iso8601](https://en.wikipedia.org/wiki/ISO_8601)."
    ),
    serialize=_serialize_datetime,
    parse_value=_parse_datetime_value,
)

GenericScalarDefinition: ScalarDefinition = strawberry.scalar(
    name="GenericScalar",
    description=(
        "The `GenericScalar` scalar type represents a generic\nGraphQL scalar value that could be:\n"
        "String, Boolean, Int, Float, List or Object."
    ),
    serialize=_identity,
    parse_value=_identity,
    parse_literal=_parse_generic_literal,
)

UploadDefinition: ScalarDefinition = strawberry.scalar(
    name="Upload",
    description=(
        "Create scalar that ignores normal serialization/deserialization, since\n"
        "that will be handled by the multipart request spec"
    ),
    serialize=_identity,
    # Whatever arrives (a file part, or a plain string) reaches the resolver, which reports a
    # non-file value as the form error of §8.3 rather than as a coercion failure.
    parse_value=_identity,
    parse_literal=_parse_generic_literal,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    uuid.UUID: UUIDDefinition,
    CanonicalUUID: UUIDDefinition,
    CanonicalDateTime: DateTimeDefinition,
    datetime: DateTimeDefinition,
    GenericScalar: GenericScalarDefinition,
    Upload: UploadDefinition,
}
