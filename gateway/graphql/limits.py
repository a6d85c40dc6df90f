"""Query limits (D6) and introspection control (D5), enforced before execution.

* Document size is checked on the raw text before it is parsed (:func:`document_size_error`).
* Selection depth, fields after fragment expansion and root fields are one graphql-core validation
  rule (:func:`query_limits_rule`): one walk of each operation, fragments expanded inline. The walk is
  iterative and stops as soon as a limit is exceeded, so hostile documents (deep nesting, fragment
  fan-out, fragment cycles) cost bounded work.
* With introspection off, graphql-core's ``NoSchemaIntrospectionCustomRule`` rejects ``__schema`` and
  ``__type``; ``__typename`` stays valid.

Every failure has ``extensions.code = GRAPHQL_VALIDATION_FAILED`` and, on HTTP, status 400.

Counting: a field at the top of an operation has depth 1, its subfields depth 2, and so on, so the
reference web client's ``messagesByUser { room { host { username } } }`` has depth 4. Every field
counts, ``__typename`` included. Where introspection is allowed (D5), the inside of ``__schema`` and
``__type`` is not counted: it reads the static schema, not data, and GraphiQL's own introspection query
nests about 13 deep; where it is not allowed, those fields fail validation anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from strawberry.extensions import AddValidationRules, SchemaExtension

from gateway.graphql.errors import GRAPHQL_VALIDATION_FAILED


def document_size_error(query: str, max_bytes: int) -> GraphQLError | None:
    """The error for a document over ``max_bytes`` UTF-8 bytes, else ``None``."""
    # Cheap bound first: a str never has more UTF-8 bytes than 4 per code point.
    if len(query) <= max_bytes // 4 or len(query.encode("utf-8")) <= max_bytes:
        return None
    return GraphQLError(
        f"Document is too large: the maximum size is {max_bytes} bytes.",
        extensions={"code": GRAPHQL_VALIDATION_FAILED},
    )


INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


def query_limits_rule(
    max_depth: int, max_fields: int, max_root_fields: int, introspection: bool = False
) -> type[ASTValidationRule]:
    """A validation rule enforcing the three structural limits of D6 on every operation."""

    class QueryLimitsRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            fragments = {
                definition.name.value: definition
                for definition in self.context.document.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
            error = _check_operation(node, fragments, max_depth, max_fields, max_root_fields, introspection)
            if error is not None:
                self.report_error(error)

    QueryLimitsRule.__name__ = f"QueryLimitsRule_{max_depth}_{max_fields}_{max_root_fields}"
    return QueryLimitsRule


def _limit_error(message: str, node: Any) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": GRAPHQL_VALIDATION_FAILED})


def _check_operation(
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    max_depth: int,
    max_fields: int,
    max_root_fields: int,
    introspection: bool = False,
) -> GraphQLError | None:
    fields = 0
    root_fields = 0
    # Spreads and inline fragments cost work without adding fields; bound them too.
    budget = 10 * max_fields + 100
    stack: list[tuple[SelectionSetNode, int, frozenset[str]]] = [(operation.selection_set, 1, frozenset())]
    while stack:
        selection_set, depth, expanding = stack.pop()
        for selection in selection_set.selections:
            budget -= 1
            if budget < 0:
                return _limit_error(
                    f"Query has too many fields: the maximum is {max_fields} after fragment expansion.", operation
                )
            if isinstance(selection, FieldNode):
                if depth > max_depth:
                    return _limit_error(f"Query is too deep: the maximum selection depth is {max_depth}.", selection)
                fields += 1
                if fields > max_fields:
                    return _limit_error(
                        f"Query has too many fields: the maximum is {max_fields} after fragment expansion.",
                        operation,
                    )
                if depth == 1:
                    root_fields += 1
                    if root_fields > max_root_fields:
                        return _limit_error(
                            f"Operation has too many root fields: the maximum is {max_root_fields}.", operation
                        )
                if introspection and selection.name.value in INTROSPECTION_FIELDS:
                    continue
                if selection.selection_set:
                    stack.append((selection.selection_set, depth + 1, expanding))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, depth, expanding))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                # Unknown fragments and cycles are reported by graphql-core's own rules.
                if fragment is not None and name not in expanding:
                    stack.append((fragment.selection_set, depth, expanding | {name}))
    return None


class DocumentSizeLimiter(SchemaExtension):
    """Refuses an over-long document before it is parsed (for transports that do not check first)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def on_operation(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None:
            error = document_size_error(query, self.max_bytes)
            if error is not None:
                raise error
        yield


def limit_extensions(
    *,
    max_depth: int,
    max_fields: int,
    max_root_fields: int,
    max_document_bytes: int,
    introspection: bool,
) -> list[Any]:
    """Schema extension factories enforcing D5 and D6, in the order they must run."""
    rules: list[type[ASTValidationRule]] = [query_limits_rule(max_depth, max_fields, max_root_fields, introspection)]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        lambda: DocumentSizeLimiter(max_document_bytes),
        lambda: AddValidationRules(rules),
    ]


__all__ = [
    "DocumentSizeLimiter",
    "document_size_error",
    "limit_extensions",
    "query_limits_rule",
]
