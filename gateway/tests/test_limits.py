"""Query limits (D6) and introspection control (D5) as validation rules."""

from __future__ import annotations

import pytest
from graphql import DocumentNode, GraphQLError, NoSchemaIntrospectionCustomRule, parse, validate

from gateway.graphql.errors import GRAPHQL_VALIDATION_FAILED
from gateway.graphql.limits import document_size_error, query_limits_rule
from gateway.graphql.schema import build_schema
from gateway.settings import Settings

SCHEMA = build_schema(Settings(env="test"))._schema
RULE = query_limits_rule(max_depth=10, max_fields=500, max_root_fields=10)


def errors_of(query: str, *rules) -> list[GraphQLError]:
    return [e for e in validate(SCHEMA, parse(query), [RULE, *rules])]


def nested(depth: int) -> str:
    """A valid selection ``depth`` fields deep (introspection types nest as far as we like)."""
    inner = "name"
    for _ in range(depth - 3):
        inner = f"ofType {{ {inner} }}"
    return f"{{ __schema {{ queryType {{ {inner} }} }} }}"


def test_depth_ten_passes_eleven_fails():
    assert errors_of(nested(10)) == []
    (error,) = errors_of(nested(11))
    assert error.message == "Query is too deep: the maximum selection depth is 10."
    assert error.extensions == {"code": GRAPHQL_VALIDATION_FAILED}
    assert error.locations


def test_depth_counts_through_fragments():
    def query(levels: int) -> str:
        # __schema(1) queryType(2), then ``levels`` ofType fields, then name
        inner = "ofType { " * levels + "name" + " }" * levels
        return (
            "query { ...A } fragment A on Query { __schema { queryType { ...B } } } "
            f"fragment B on __Type {{ {inner} }}"
        )

    assert errors_of(query(7)) == []  # name at depth 10
    assert len(errors_of(query(8))) == 1  # name at depth 11


def test_fields_are_counted_after_fragment_expansion():
    fields = " ".join(f"f{i}: id" for i in range(250))
    fragment = f"fragment F on UserType {{ {fields} }}"
    # users(1) + 250 + me(1) + 250 = 502 > 500
    (error,) = errors_of("{ users { ...F } me { ...F } } " + fragment)
    assert error.message == "Query has too many fields: the maximum is 500 after fragment expansion."
    assert errors_of("{ users { ...F } } " + fragment) == []


def test_exactly_500_fields_pass():
    fields = " ".join(f"f{i}: id" for i in range(499))
    assert errors_of(f"{{ users {{ {fields} }} }}") == []
    fields = " ".join(f"f{i}: id" for i in range(500))
    assert len(errors_of(f"{{ users {{ {fields} }} }}")) == 1


def test_root_fields():
    ten = " ".join(f"a{i}: __typename" for i in range(10))
    assert errors_of(f"{{ {ten} }}") == []
    (error,) = errors_of(f"{{ {ten} b: __typename }}")
    assert error.message == "Operation has too many root fields: the maximum is 10."


def test_root_fields_through_fragments():
    spread = " ".join(f"a{i}: __typename" for i in range(6))
    five = " ".join(f"b{i}: __typename" for i in range(5))
    query = f"{{ ...R ...S }} fragment R on Query {{ {spread} }} fragment S on Query {{ {five} }}"
    assert len(errors_of(query)) == 1


def test_fragment_fan_out_is_bounded():
    # Each fragment spreads the next twice: 2^30 fields if expanded naively.
    fragments = " ".join(f"fragment F{i} on UserType {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
    query = "{ users { ...F0 } } " + fragments + " fragment F30 on UserType { id }"
    errors = errors_of(query)
    assert any("too many fields" in e.message for e in errors)


def test_fragment_cycles_terminate():
    query = "{ users { ...A } } fragment A on UserType { id ...B } fragment B on UserType { ...A }"
    errors = validate(SCHEMA, parse(query), [RULE])
    assert errors == []  # graphql-core's NoFragmentCyclesRule reports the cycle; ours just terminates


def test_reference_client_operation_passes():
    query = """query UserWithRooms($userSlug: String!) {
      user(userSlug: $userSlug) { id username name avatar bio __typename }
      authStatus { user { id name username avatar __typename } isAuthenticated __typename } me { id } }"""
    assert errors_of(query) == []


def test_document_size():
    assert document_size_error("{ a }", 16 * 1024) is None
    assert document_size_error("x" * 16 * 1024, 16 * 1024) is None
    error = document_size_error("x" * (16 * 1024 + 1), 16 * 1024)
    assert error is not None
    assert error.message == "Document is too large: the maximum size is 16384 bytes."
    assert error.extensions == {"code": GRAPHQL_VALIDATION_FAILED}
    # Counted in UTF-8 bytes, not characters.
    assert document_size_error("é" * (8 * 1024 + 1), 16 * 1024) is not None


@pytest.mark.parametrize("query", ["{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }'])
def test_introspection_off(query):
    errors = validate(SCHEMA, parse(query), [NoSchemaIntrospectionCustomRule])
    assert errors and "introspection has been disabled" in errors[0].message


def test_typename_with_introspection_off():
    assert validate(SCHEMA, parse("{ __typename users { __typename } }"), [NoSchemaIntrospectionCustomRule]) == []


def test_introspection_is_not_counted_where_it_is_allowed():
    """GraphiQL's introspection query nests about 13 deep; with introspection on it passes the depth limit,
    while a data query of the same depth would not."""
    from graphql import get_introspection_query

    document = parse(get_introspection_query())
    assert validate(SCHEMA, document, [query_limits_rule(10, 500, 10, introspection=True)]) == []
    assert validate(SCHEMA, document, [query_limits_rule(10, 500, 10, introspection=False)])


# --- cached validation ---------------------------------------------------------------------------------


class CountingValidation:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import gateway.graphql.parsing as parsing

        self.documents: list[object] = []
        real = parsing.validate_document

        def validate_document(schema, document, rules):  # type: ignore[no-untyped-def]
            self.documents.append(document)
            return real(schema, document, rules)

        monkeypatch.setattr(parsing, "validate_document", validate_document)


TOO_DEEP = "Query is too deep: the maximum selection depth is 2."


async def depth_errors(schema, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The depth-limit errors of executing ``query`` (anything it reaches after validation fails for want
    of a request context, which these tests do not need)."""
    result = await schema.execute(query)
    return [error.message for error in result.errors or [] if error.message == TOO_DEEP]


async def test_a_document_is_validated_once_per_text_and_its_limits_still_apply_every_time(monkeypatch):
    counting = CountingValidation(monkeypatch)
    hashed = []
    # graphql-core 3.3 hashes a document by walking all of it: the cache is keyed by the text instead.
    monkeypatch.setattr(DocumentNode, "__hash__", lambda document: hashed.append(document) or id(document))
    schema = build_schema(Settings(env="test", max_depth=2))
    shallow, deep = "{ __typename me { id } }", "{ me { id } rooms { host { id } } }"
    for _ in range(3):
        assert await depth_errors(schema, shallow) == []
        assert await depth_errors(schema, deep) == [TOO_DEEP]
    assert len(counting.documents) == 2
    assert hashed == []


async def test_each_schema_validates_under_its_own_limits(monkeypatch):
    counting = CountingValidation(monkeypatch)
    query = "{ rooms { host { id } } }"
    strict = build_schema(Settings(env="test", max_depth=2))
    lenient = build_schema(Settings(env="test", max_depth=3))
    assert await depth_errors(strict, query) == [TOO_DEEP]
    assert await depth_errors(lenient, query) == []
    assert await depth_errors(strict, query) == [TOO_DEEP]
    assert len(counting.documents) == 2
