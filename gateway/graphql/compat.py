"""The contract's validation and variable-coercion wording (§1.2), on graphql-core 3.3.

The contract quotes graphql-core 3.2's messages, e.g.::

    Field 'registerUser' argument 'email' of type 'String!' is required, but it was not provided.
    Variable '$roomId' of required type 'UUID!' was not provided.
    Variable '$roomId' got invalid value 'not-a-uuid'; UUID cannot represent value: 'not-a-uuid'
    Expected value of type 'UUID!', found "xyz"; badly formed hexadecimal UUID string

strawberry 0.341 requires graphql-core 3.3, which words these differently (``Argument
'Mutation.registerUser(email:)' of type …``, ``Variable '$roomId' has invalid value: …``). This module
restores the 3.2 behaviour in the three places it shows:

* :class:`LegacyProvidedRequiredArgumentsRule` rewords missing-argument errors;
* :class:`LegacyValuesOfCorrectTypeRule` checks literal values with 3.2's messages;
* :func:`coerce_variables` coerces variables with 3.2's messages; :class:`LegacyVariableCoercion` runs it
  before execution and answers with its errors (graphql-core's own coercion then never fails).

:class:`LegacyWording` installs all three.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    BooleanValueNode,
    EnumValueNode,
    FloatValueNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLSchema,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    OperationDefinitionNode,
    ProvidedRequiredArgumentsRule,
    StringValueNode,
    Undefined,
    ValidationRule,
    ValueNode,
    ValuesOfCorrectTypeRule,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_input_object_type,
    is_input_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_required_input_field,
    print_ast,
    type_from_ast,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.pyutils import did_you_mean, inspect, is_iterable, suggestion_list
from strawberry.extensions import SchemaExtension

MAX_VARIABLE_ERRORS = 50

_NOT_PROVIDED = r" of type '(?P<type>[^']+)' is required, but it was not provided\.$"
_MISSING_FIELD_ARGUMENT = re.compile(r"^Argument '\w+\.(?P<field>\w+)\((?P<arg>\w+):\)'" + _NOT_PROVIDED)
_MISSING_DIRECTIVE_ARGUMENT = re.compile(r"^Argument '@(?P<directive>\w+)\((?P<arg>\w+):\)'" + _NOT_PROVIDED)


def legacy_missing_argument_message(message: str) -> str:
    """3.3's missing-argument message in 3.2's words; other messages unchanged."""
    match = _MISSING_FIELD_ARGUMENT.match(message)
    if match:
        return (
            f"Field '{match['field']}' argument '{match['arg']}' of type '{match['type']}'"
            " is required, but it was not provided."
        )
    match = _MISSING_DIRECTIVE_ARGUMENT.match(message)
    if match:
        return (
            f"Directive '@{match['directive']}' argument '{match['arg']}' of type '{match['type']}'"
            " is required, but it was not provided."
        )
    return message


class LegacyProvidedRequiredArgumentsRule(ProvidedRequiredArgumentsRule):
    """graphql-core's rule, reporting in 3.2's words."""

    def report_error(self, error: GraphQLError) -> None:
        """Reword, then report."""
        message = legacy_missing_argument_message(error.message)
        if message != error.message:
            error = GraphQLError(message, error.nodes, original_error=error.original_error)
        super().report_error(error)


class LegacyValuesOfCorrectTypeRule(ValidationRule):
    """Literal values must be valid for their expected type (graphql-core 3.2's rule and messages)."""

    def enter_list_value(self, node: ListValueNode, *_args: Any) -> Any:
        # TypeInfo walks into a list's item type, so the parent input type says whether this is a list.
        type_ = get_nullable_type(self.context.get_parent_input_type())
        if not is_list_type(type_):
            self._check_leaf(node)
            return self.SKIP
        return None

    def enter_object_value(self, node: ObjectValueNode, *_args: Any) -> Any:
        type_ = get_named_type(self.context.get_input_type())
        if not is_input_object_type(type_):
            self._check_leaf(node)
            return self.SKIP
        assert isinstance(type_, GraphQLInputObjectType)
        given = {field.name.value for field in node.fields}
        for field_name, field_def in type_.fields.items():
            if field_name not in given and is_required_input_field(field_def):
                self.report_error(
                    GraphQLError(
                        f"Field '{type_.name}.{field_name}' of required type '{field_def.type}' was not provided.",
                        node,
                    )
                )
        return None

    def enter_object_field(self, node: ObjectFieldNode, *_args: Any) -> None:
        parent_type = get_named_type(self.context.get_parent_input_type())
        if not self.context.get_input_type() and isinstance(parent_type, GraphQLInputObjectType):
            suggestions = suggestion_list(node.name.value, list(parent_type.fields))
            self.report_error(
                GraphQLError(
                    f"Field '{node.name.value}' is not defined by type '{parent_type.name}'."
                    + did_you_mean(suggestions),
                    node,
                )
            )

    def enter_null_value(self, node: NullValueNode, *_args: Any) -> None:
        type_ = self.context.get_input_type()
        if is_non_null_type(type_):
            self.report_error(GraphQLError(f"Expected value of type '{type_}', found {print_ast(node)}.", node))

    def enter_enum_value(self, node: EnumValueNode, *_args: Any) -> None:
        self._check_leaf(node)

    def enter_int_value(self, node: IntValueNode, *_args: Any) -> None:
        self._check_leaf(node)

    def enter_float_value(self, node: FloatValueNode, *_args: Any) -> None:
        self._check_leaf(node)

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        self._check_leaf(node)

    def enter_boolean_value(self, node: BooleanValueNode, *_args: Any) -> None:
        self._check_leaf(node)

    def _check_leaf(self, node: ValueNode) -> None:
        # Errors name the full type expected at the location (``UUID!``, not ``UUID``).
        location_type = self.context.get_input_type()
        if not location_type:
            return
        type_ = get_named_type(location_type)
        if not is_leaf_type(type_):
            self.report_error(GraphQLError(f"Expected value of type '{location_type}', found {print_ast(node)}.", node))
            return
        try:
            coerce_literal = getattr(type_, "coerce_input_literal", None)
            result = coerce_literal(node) if coerce_literal is not None else type_.parse_literal(node)
        except GraphQLError as error:
            self.report_error(GraphQLError(error.message, node))
            return
        except Exception as error:  # a scalar's own parser: its text is the reason, by design of 3.2
            self.report_error(
                GraphQLError(
                    f"Expected value of type '{location_type}', found {print_ast(node)}; {error}",
                    node,
                    original_error=error,
                )
            )
            return
        if result is Undefined:
            self.report_error(GraphQLError(f"Expected value of type '{location_type}', found {print_ast(node)}.", node))


LEGACY_RULES = {
    ProvidedRequiredArgumentsRule: LegacyProvidedRequiredArgumentsRule,
    ValuesOfCorrectTypeRule: LegacyValuesOfCorrectTypeRule,
}


# --- variables --------------------------------------------------------------------------------------


def _path_suffix(path: list[str | int]) -> str:
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)


class _TooManyErrors(Exception):
    pass


def coerce_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, inputs: Mapping[str, Any] | None
) -> list[GraphQLError]:
    """The variable errors graphql-core 3.2 would report for ``operation`` (empty when all coerce)."""
    inputs = inputs or {}
    errors: list[GraphQLError] = []

    def report(error: GraphQLError) -> None:
        if len(errors) >= MAX_VARIABLE_ERRORS:
            raise _TooManyErrors
        errors.append(error)

    try:
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            var_type = type_from_ast(schema, definition.type)
            if var_type is None or not is_input_type(var_type):
                report(
                    GraphQLError(
                        f"Variable '${name}' expected value of type '{print_ast(definition.type)}'"
                        " which cannot be used as an input type.",
                        definition.type,
                    )
                )
                continue
            if name not in inputs:
                if definition.default_value is None and is_non_null_type(var_type):
                    report(
                        GraphQLError(
                            f"Variable '${name}' of required type '{inspect(var_type)}' was not provided.", definition
                        )
                    )
                continue
            value = inputs[name]
            if value is None and is_non_null_type(var_type):
                report(
                    GraphQLError(
                        f"Variable '${name}' of non-null type '{inspect(var_type)}' must not be null.", definition
                    )
                )
                continue

            def on_error(
                path: list[str | int], invalid: Any, error: GraphQLError, name: str = name, node: Any = definition
            ) -> None:
                prefix = f"Variable '${name}' got invalid value {inspect(invalid)}"
                if path:
                    prefix += f" at '{name}{_path_suffix(path)}'"
                report(GraphQLError(f"{prefix}; {error.message}", node, original_error=error.original_error))

            _coerce_input(value, var_type, on_error, [])
    except _TooManyErrors:
        errors.append(GraphQLError("Too many errors processing variables, error limit reached. Execution aborted."))
    return errors


def _coerce_input(value: Any, type_: GraphQLInputType, on_error: Any, path: list[str | int]) -> None:
    """Check ``value`` against ``type_`` as 3.2's ``coerce_input_value`` does, reporting each problem."""
    if is_non_null_type(type_):
        if value is None or value is Undefined:
            on_error(path, value, GraphQLError(f"Expected non-nullable type '{inspect(type_)}' not to be None."))
            return
        _coerce_input(value, type_.of_type, on_error, path)
        return
    if value is None or value is Undefined:
        return
    if is_list_type(type_):
        item_type = type_.of_type
        if is_iterable(value):
            for index, item in enumerate(value):
                _coerce_input(item, item_type, on_error, [*path, index])
        else:  # a single value is a list of one
            _coerce_input(value, item_type, on_error, path)
        return
    if isinstance(type_, GraphQLInputObjectType):
        if not isinstance(value, dict):
            on_error(path, value, GraphQLError(f"Expected type '{type_.name}' to be a dict."))
            return
        for field_name, field in type_.fields.items():
            if field_name not in value:
                if is_required_input_field(field):
                    on_error(
                        path,
                        value,
                        GraphQLError(
                            f"Field '{field_name}' of required type '{inspect(field.type)}' was not provided."
                        ),
                    )
                continue
            _coerce_input(value[field_name], field.type, on_error, [*path, field_name])
        for field_name in value:
            if field_name not in type_.fields:
                suggestions = suggestion_list(field_name, list(type_.fields))
                on_error(
                    path,
                    value,
                    GraphQLError(
                        f"Field '{field_name}' is not defined by type '{type_.name}'." + did_you_mean(suggestions)
                    ),
                )
        return
    try:
        result = type_.coerce_input_value(value)  # type: ignore[union-attr]
    except GraphQLError as error:
        on_error(path, value, error)
        return
    except Exception as error:
        on_error(path, value, GraphQLError(f"Expected type '{type_.name}'. {error}", original_error=error))  # type: ignore[union-attr]
        return
    if result is Undefined:
        on_error(path, value, GraphQLError(f"Expected type '{type_.name}'."))  # type: ignore[union-attr]


class LegacyWording(SchemaExtension):
    """Installs the 3.2-worded validation rules and variable coercion for every operation."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = tuple(LEGACY_RULES.get(rule, rule) for rule in context.validation_rules)
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            operation = get_operation_ast(document, context.operation_name)
            if operation is not None:
                errors = coerce_variables(context.schema._schema, operation, context.variables)
                if errors:
                    # Execution sees a result already present and does not run (graphql-core's
                    # coercion would report the same problems in 3.3's words).
                    context.result = GraphQLExecutionResult(data=None, errors=errors)
        yield
