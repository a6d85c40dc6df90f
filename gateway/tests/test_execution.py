"""The gateway's executor (gateway.graphql.execution) against graphql-core's own, on small schemas of
their own: the same answers and errors, with less work per field (no resolver call, no resolve info, no
DataLoader round where the data is in hand)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from graphql import parse
from graphql.execution.executor import Executor
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from gateway.graphql.execution import GatewayExecutor, in_hand
from gateway.graphql.loading import NOT_LOADED
from gateway.graphql.scalars import SCALAR_MAP, CanonicalDateTime, CanonicalUUID

ROOM_ID = "4a8f6b1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
MOMENT = "2025-01-01T00:00:00+00:00"


class Reads:
    """Counts what the schema below reads: resolver calls, in-hand reads, attribute reads."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()


READS = Reads()


@strawberry.type
class Person:
    name: str
    nickname: str | None
    age: int


@strawberry.type
class Counted:
    label: str


class CountedLabel:
    """A ``Counted`` whose ``label`` counts how often it is read."""

    @property
    def label(self) -> str:
        READS.counts["label"] += 1
        return "same"


def _owner_in_hand(item: Item, context: dict[str, Any]) -> Person | Any:
    READS.counts["owner in hand"] += 1
    return item.owner_record if context.get("in hand") else NOT_LOADED


@strawberry.type
class Item:
    id: CanonicalUUID
    title: str
    rank: int
    score: float
    done: bool
    created: CanonicalDateTime
    tag: strawberry.ID
    note: str | None
    owner_record: strawberry.Private[Person]

    @strawberry.field(metadata=in_hand(_owner_in_hand))
    async def owner(self, info: Info) -> Person:
        READS.counts["owner resolver"] += 1
        return self.owner_record

    @strawberry.field
    async def later(self) -> str:
        return f"later {self.rank}"


def item(number: int, **changes: Any) -> Item:
    fields: dict[str, Any] = {
        "id": ROOM_ID,
        "title": f"item {number}",
        "rank": number,
        "score": number / 2,
        "done": number % 2 == 0,
        "created": MOMENT,
        "tag": strawberry.ID(str(number)),
        "note": None,
        "owner_record": Person(name=f"owner {number % 3}", nickname=None, age=40),
    }
    fields.update(changes)
    return Item(**fields)


ITEMS: list[Item] = []


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return ITEMS

    @strawberry.field
    def counted(self) -> list[Counted]:
        return [CountedLabel()] * 50  # type: ignore[list-item]  # the same object in every row


def schema(executor: bool, extensions: tuple[Any, ...] = ()) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        extensions=list(extensions),
        execution_context_class=GatewayExecutor if executor else None,
        config=strawberry.schema.config.StrawberryConfig(scalar_map=SCALAR_MAP),
    )


GATEWAY, STOCK = schema(True), schema(False)


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    READS.counts.clear()
    ITEMS[:] = [item(rank) for rank in range(10)]
    yield
    ITEMS.clear()


async def both(query: str, context: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The answers of the gateway's executor and of graphql-core's, as the client sees them."""
    results = []
    for built in (GATEWAY, STOCK):
        result = await built.execute(query, context_value=dict(context or {}))
        errors = [(e.message, e.path) for e in result.errors or []]
        results.append((result.data, errors))
    return results[0], results[1]


EVERY_FIELD = """{ items { id title rank score done created tag note alias: title __typename
  owner { name nickname age } ... on Item { later } ...More } }
fragment More on Item { rank skipped: title @skip(if: true) included: title @include(if: true) }"""


async def test_answers_match_graphql_cores_field_for_field():
    ours, theirs = await both(EVERY_FIELD)
    assert ours == theirs
    assert list(ours[0]["items"][3]) == list(theirs[0]["items"][3])  # field order too


async def test_answers_match_when_the_data_is_in_hand():
    ours, theirs = await both(EVERY_FIELD, {"in hand": True})
    assert ours == theirs


@pytest.mark.parametrize(
    "changes",
    [
        {"title": None},  # null for a non-null leaf
        {"id": "not a uuid"},  # a coercion that fails
        {"id": uuid.UUID(ROOM_ID)},  # not a plain value: coerced the regular way
        {"id": ROOM_ID.upper()},
        {"rank": "7"},  # Int cannot represent a string
        {"note": "present"},
        {"owner_record": Person(name=None, nickname=None, age=1)},  # type: ignore[arg-type]  # in hand, failing below
    ],
)
async def test_unusual_values_are_answered_and_reported_as_graphql_core_does(changes):
    ITEMS[4] = item(4, **changes)
    for context in ({}, {"in hand": True}):
        ours, theirs = await both(EVERY_FIELD, context)
        assert ours == theirs


async def test_plain_leaves_and_in_hand_fields_take_no_resolver_call(monkeypatch):
    calls: Counter[str] = Counter()
    original = Executor.execute_field

    def counting(self: Executor, parent_type: Any, *args: Any, **kwargs: Any) -> Any:
        calls[parent_type.name] += 1
        return original(self, parent_type, *args, **kwargs)

    monkeypatch.setattr(Executor, "execute_field", counting)
    query = "{ items { id title rank score done created tag note owner { name age } } }"
    result = await GATEWAY.execute(query, context_value={"in hand": True})
    assert result.errors is None and len(result.data["items"]) == 10
    assert calls == Counter({"Query": 1})  # the root field only
    assert READS.counts == Counter({"owner in hand": 10})

    calls.clear()
    READS.counts.clear()
    await STOCK.execute(query, context_value={"in hand": True})
    assert calls == Counter({"Query": 1, "Item": 90, "Person": 20})
    assert READS.counts == Counter({"owner resolver": 10})


async def test_an_in_hand_field_falls_back_to_its_resolver():
    result = await GATEWAY.execute("{ items { owner { name } } }", context_value={})
    assert result.errors is None
    assert READS.counts == Counter({"owner in hand": 10, "owner resolver": 10})


async def test_an_object_met_again_is_completed_once():
    result = await GATEWAY.execute("{ counted { label } }")
    assert result.data == {"counted": [{"label": "same"}] * 50}
    assert READS.counts["label"] == 1
    READS.counts.clear()
    await STOCK.execute("{ counted { label } }")
    assert READS.counts["label"] == 50


class EveryResolver(SchemaExtension):
    """Sees every field resolved, as a tracing or permission extension would."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        READS.counts[f"resolve {info.parent_type.name}.{info.field_name}"] += 1
        return _next(root, info, *args, **kwargs)


async def test_extensions_wrapping_resolvers_still_see_every_field():
    query = "{ items { title owner { name } } }"
    results = {}
    for name, built in (("gateway", schema(True, (EveryResolver,))), ("stock", schema(False, (EveryResolver,)))):
        READS.counts.clear()
        result = await built.execute(query, context_value={"in hand": True})
        results[name] = (result.data, +READS.counts)
    assert results["gateway"] == results["stock"]
    assert results["gateway"][1]["resolve Item.title"] == 10


def test_a_subscription_event_gets_answers_of_its_own():
    executor = GatewayExecutor.build(GATEWAY._schema, parse("{ counted { label } }"))
    assert isinstance(executor, GatewayExecutor)
    executor._plans[1] = "kept"  # type: ignore[assignment]
    event = executor.build_per_event_executor({"payload": 1})
    assert event._plans == {} and executor._plans == {1: "kept"}
