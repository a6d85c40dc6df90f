"""The contract's (graphql-core 3.2) wording of validation and variable errors, on graphql-core 3.3."""

from __future__ import annotations

import uuid

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from gateway.graphql.compat import LegacyWording, legacy_missing_argument_message
from gateway.graphql.scalars import SCALAR_MAP


@strawberry.input
class Filter:
    name: str
    size: int | None = None


@strawberry.type
class Query:
    @strawberry.field
    def room(self, room_id: uuid.UUID, n: int | None = None, tags: list[str | None] | None = None) -> str:
        return str(room_id)

    @strawberry.field
    def search(self, filter: Filter | None = None) -> str:
        return "ok"


SCHEMA = strawberry.Schema(Query, config=StrawberryConfig(scalar_map=SCALAR_MAP), extensions=[LegacyWording])
ROOM_ID = "4a96f149-e353-471e-9137-8ea62fb13466"


async def messages(query: str, variables: dict | None = None) -> list[str]:
    result = await SCHEMA.execute(query, variables)
    return [error.message for error in result.errors or []]


@pytest.mark.parametrize(
    "variables, message",
    [
        ({}, "Variable '$r' of required type 'UUID!' was not provided."),
        ({"r": None}, "Variable '$r' of non-null type 'UUID!' must not be null."),
        (
            {"r": "not-a-uuid"},
            "Variable '$r' got invalid value 'not-a-uuid'; UUID cannot represent value: 'not-a-uuid'",
        ),
        ({"r": ROOM_ID, "n": "a"}, "Variable '$n' got invalid value 'a'; Int cannot represent non-integer value: 'a'"),
        (
            {"r": ROOM_ID, "t": ["a", 5]},
            "Variable '$t' got invalid value 5 at 't[1]'; String cannot represent a non string value: 5",
        ),
    ],
)
async def test_variable_messages(variables, message):
    query = "query($r: UUID!, $n: Int, $t: [String]) { room(roomId: $r, n: $n, tags: $t) }"
    assert await messages(query, variables) == [message]


async def test_input_object_variables():
    query = "query($f: Filter) { search(filter: $f) }"
    assert await messages(query, {"f": {"size": 1}}) == [
        "Variable '$f' got invalid value {'size': 1}; Field 'name' of required type 'String!' was not provided."
    ]
    assert await messages(query, {"f": {"name": "x", "nope": 1}}) == [
        "Variable '$f' got invalid value {'name': 'x', 'nope': 1}; Field 'nope' is not defined by type 'Filter'."
        " Did you mean 'name'?"
    ]
    assert await messages(query, {"f": {"name": "x"}}) == []


async def test_valid_variables_run():
    result = await SCHEMA.execute("query($r: UUID!) { room(roomId: $r) }", {"r": ROOM_ID.upper()})
    assert result.data == {"room": ROOM_ID}


@pytest.mark.parametrize(
    "literal, message",
    [
        ('"xyz"', "Expected value of type 'UUID!', found \"xyz\"; badly formed hexadecimal UUID string"),
        ("5", "Expected value of type 'UUID!', found 5."),
        ("null", "Expected value of type 'UUID!', found null."),
    ],
)
async def test_literal_messages(literal, message):
    assert await messages(f"{{ room(roomId: {literal}) }}") == [message]


async def test_missing_argument_message():
    assert await messages("{ room }") == [
        "Field 'room' argument 'roomId' of type 'UUID!' is required, but it was not provided."
    ]


def test_missing_argument_rewording():
    assert (
        legacy_missing_argument_message(
            "Argument 'Mutation.registerUser(email:)' of type 'String!' is required, but it was not provided."
        )
        == "Field 'registerUser' argument 'email' of type 'String!' is required, but it was not provided."
    )
    assert (
        legacy_missing_argument_message(
            "Argument '@include(if:)' of type 'Boolean!' is required, but it was not provided."
        )
        == "Directive '@include' argument 'if' of type 'Boolean!' is required, but it was not provided."
    )
    assert legacy_missing_argument_message("Something else.") == "Something else."


async def test_unknown_field_message():
    assert await messages("{ nosuch }") == ["Cannot query field 'nosuch' on type 'Query'."]
