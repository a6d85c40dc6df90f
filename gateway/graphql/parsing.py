"""One LRU-cached parser shared by the HTTP view (which must know an operation's type before running
it, for CSRF and GET) and by execution, so a document is parsed once per distinct text; and the
validation results of each schema, cached by the same text."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from functools import lru_cache

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

PARSE_CACHE_SIZE = 256
VALIDATION_CACHE_SIZE = 256


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_document(query: str) -> DocumentNode:
    """Parse ``query`` (cached); raise ``GraphQLError`` on invalid syntax (errors are not cached)."""
    return parse(query)


def try_parse(query: str) -> DocumentNode | None:
    """The parsed document, or ``None`` when it does not parse (execution reports why)."""
    try:
        return parse_document(query)
    except (GraphQLError, RecursionError):
        return None


def selected_operation(document: DocumentNode | None, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation that would run, or ``None`` when it cannot be determined."""
    return get_operation_ast(document, operation_name) if document is not None else None


def operation_type(document: DocumentNode | None, operation_name: str | None) -> OperationType | None:
    """The type of the operation that would run, or ``None`` when it cannot be determined."""
    operation = selected_operation(document, operation_name)
    return operation.operation if operation is not None else None


def root_field_names(document: DocumentNode, operation: OperationDefinitionNode) -> set[str]:
    """The names of the root fields ``operation`` selects, through fragments at the root level."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    names: set[str] = set()
    seen: set[str] = set()
    pending = list(operation.selection_set.selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, FieldNode):
            names.add(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            pending.extend(selection.selection_set.selections)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                pending.extend(fragment.selection_set.selections)
    return names


class CachedParser(SchemaExtension):
    """Strawberry's ``ParserCache``, backed by :func:`parse_document`.

    A document that does not parse is left to strawberry's own parse step, which reports the syntax
    error as a normal pre-execution error (an exception raised from this hook would bypass the other
    extensions' handling).
    """

    def on_parse(self) -> Iterator[None]:
        execution_context = self.execution_context
        if execution_context.graphql_document is None and execution_context.query is not None:
            execution_context.graphql_document = try_parse(execution_context.query)
        yield


ValidationKey = tuple[str, tuple[type[ASTValidationRule], ...]]


class ValidationResults:
    """The validation errors of one schema's documents by their text and rules (an LRU), ``[]`` for a
    valid document."""

    def __init__(self, maxsize: int = VALIDATION_CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self._errors: OrderedDict[ValidationKey, list[GraphQLError]] = OrderedDict()
        self.validations = 0
        """Documents validated so far (the misses)."""

    def errors(
        self, query: str, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...], schema: object
    ) -> list[GraphQLError]:
        """The errors of ``document`` (the parse of ``query``) under ``rules``, validated on a miss only."""
        key = (query, rules)
        found = self._errors.get(key)
        if found is not None:
            self._errors.move_to_end(key)
            return found
        self.validations += 1
        found = self._errors[key] = validate_document(schema, document, rules)  # type: ignore[arg-type]
        while len(self._errors) > self.maxsize:
            self._errors.popitem(last=False)
        return found


class CachedValidation(SchemaExtension):
    """Strawberry's ``ValidationCache``, keyed by the document's text instead of its syntax tree.

    graphql-core 3.3's syntax nodes are frozen dataclasses: hashing one walks the whole tree, on every
    request, hit or miss (about 25 µs for a small query, over 1 ms for a 7 KB one), while the text's
    hash is a C loop. Pass a factory that closes over one :class:`ValidationResults` per schema: the key
    holds the operation's rules (the D5 and D6 ones included), so every request still gets their verdict.
    """

    def __init__(self, results: ValidationResults) -> None:
        self.results = results

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is not None and context.pre_execution_errors is None:
            context.pre_execution_errors = self.results.errors(
                context.query, context.graphql_document, context.validation_rules, context.schema._schema
            )
        yield
