"""Field execution without the per-field machinery where it does nothing (the schema's
``execution_context_class``).

graphql-core runs every field through the same steps: a path entry, a resolve-info object, the
resolver (strawberry wraps each one in a chain of its own, an attribute read included), value
completion and several awaitable checks; an awaited resolver adds a future or a task. That is most of a
list's cost: a 200-message list has 1,800 fields, a 40-room list with hosts, topics and participants
~1,200, nearly all of them an attribute holding a string, a number or a flag, the rest a user or a topic
the list loaded before its rows were resolved.

:class:`GatewayExecutor` takes two kinds of field out of that machinery, inside graphql-core's loop over
an object's fields (``execute_fields``, mirrored here from graphql-core 3.3, which ``constraints.txt``
pins):

* a *plain leaf*, a strawberry field without resolver, field extension or argument whose GraphQL type is
  a scalar, holding a ``str``, ``int``, ``float`` or ``bool``: the attribute read and the scalar's output
  coercion, which is what the regular path computes for it;
* a field declared with :func:`in_hand`: when its ``read(source, context)`` has the value (the data it
  needs is loaded already), the value is completed at once, without resolve info, resolver call or
  awaiting; otherwise the field's resolver runs as usual.

Anything else, or anything unusual (``None`` for a non-null leaf, another kind of value, a coercion that
fails, data not loaded), takes graphql-core's regular path, which reports errors as always. An object
value goes straight to its fields (:meth:`GatewayExecutor.complete_value`). Schema extensions that wrap
every resolver (``SchemaExtension.resolve``) turn the shortcuts off, so they keep seeing every field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from graphql import GraphQLField, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, Undefined, is_leaf_type
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from gateway.graphql.loading import NOT_LOADED

__all__ = ["IN_HAND", "GatewayExecutor", "in_hand", "shortcut_fields"]

IN_HAND = "gateway.in_hand"
"""The strawberry field metadata key :func:`in_hand` sets."""

PLAIN_VALUE_TYPES = frozenset({str, int, float, bool})
"""Values a plain leaf is answered for; anything else (``None``, an awaitable, an exception, an enum
member, an object) is left to graphql-core. ``strawberry.ID`` and the ``NewType`` scalars are ``str`` at
run time."""

_MISSING = object()


def in_hand(read: Callable[[Any, Any], Any]) -> dict[str, Any]:
    """Field metadata, ``strawberry.field(metadata=in_hand(read))``, for a field whose data a list loads
    before its rows are resolved: ``read(source, context)`` returns the value the resolver would, built
    from what the request already holds, or :data:`~gateway.graphql.loading.NOT_LOADED` when anything is
    missing (including what makes the resolver fail: it runs then, and reports it). The executor asks
    ``read`` first; the resolver remains for the rest, and for any other executor."""
    return {IN_HAND: read}


class PlainLeaf(NamedTuple):
    """A plain leaf: read ``attribute``, coerce it with ``coerce``."""

    attribute: str
    coerce: Callable[[Any], Any]
    nullable: bool


class InHand(NamedTuple):
    """A field declared with :func:`in_hand`."""

    read: Callable[[Any, Any], Any]
    field: GraphQLField
    object_type: GraphQLObjectType | None
    """The field's object type when it has one (completed straight to its fields), ``None`` for a list."""


Shortcuts = dict[str, dict[str, PlainLeaf | InHand]]
"""Object type name → field name → how to answer it."""

_SHORTCUTS: WeakKeyDictionary[GraphQLSchema, Shortcuts] = WeakKeyDictionary()


def shortcut_fields(schema: GraphQLSchema) -> Shortcuts:
    """The plain leaves and :func:`in_hand` fields of every object type of ``schema`` (computed once per
    schema)."""
    found = _SHORTCUTS.get(schema)
    if found is None:
        found = _SHORTCUTS[schema] = {}
        for type_ in schema.type_map.values():
            if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__"):
                fields = {
                    name: shortcut for name, field in type_.fields.items() if (shortcut := _shortcut(field)) is not None
                }
                if fields:
                    found[type_.name] = fields
    return found


def _shortcut(field: GraphQLField) -> PlainLeaf | InHand | None:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or definition.is_subscription or field.args:
        return None
    read = definition.metadata.get(IN_HAND)
    if read is not None:
        return _in_hand(field, read)
    # strawberry's resolver of a basic field reads the attribute; one that also applies exception
    # handlers is not marked default.
    if not definition.is_basic_field or definition.default_resolver is not getattr:
        return None
    if not getattr(field.resolve, "_is_default", False):
        return None
    nullable = not isinstance(field.type, GraphQLNonNull)
    leaf = field.type if nullable else field.type.of_type
    if not is_leaf_type(leaf):
        return None
    return PlainLeaf(definition.python_name, leaf.coerce_output_value, nullable)


def _in_hand(field: GraphQLField, read: Callable[[Any, Any], Any]) -> InHand:
    type_ = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if isinstance(type_, GraphQLList):
        item = type_.of_type.of_type if isinstance(type_.of_type, GraphQLNonNull) else type_.of_type
        if isinstance(item, GraphQLObjectType) and item.is_type_of is None:
            return InHand(read, field, None)
    elif isinstance(type_, GraphQLObjectType) and type_.is_type_of is None:
        return InHand(read, field, type_)
    raise TypeError(f"in_hand fields hold an object or a list of objects, not {field.type}")


class GatewayExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, answering plain leaves and in-hand fields without the per-field
    machinery."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        if manager is not None and not manager.middlewares:
            # An empty manager still looks up a wrapped resolver for every field.
            self.middleware_manager = None
        self.shortcuts: Shortcuts = {} if self.middleware_manager is not None else shortcut_fields(self.schema)

    def complete_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's ``complete_value``, with an object (a row of a list, a row's host or author)
        taken straight to its fields: the steps it skips (null and type checks for other kinds,
        ``is_type_of``, deferred fragments) do nothing for one."""
        object_type = return_type.of_type if return_type.__class__ is GraphQLNonNull else return_type
        if (
            object_type.__class__ is GraphQLObjectType
            and object_type.is_type_of is None
            and position_context is None
            and result is not None
            and result is not Undefined
            and not isinstance(result, Exception)
        ):
            grouped_field_set, new_defer_usages, _ = self.collect_subfields(object_type, field_details_list)
            if not new_defer_usages:
                return self.execute_fields(object_type, result, path, grouped_field_set, None)
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's ``execute_fields``, answering plain leaves and in-hand fields in the loop; every
        other field goes through ``execute_field``."""
        shortcuts = self.shortcuts.get(parent_type.name)
        if shortcuts is None:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                shortcut = shortcuts.get(field_details_list[0].node.name.value)
                if shortcut is not None:
                    if shortcut.__class__ is PlainLeaf:
                        value = getattr(source_value, shortcut.attribute, _MISSING)
                        if value.__class__ in PLAIN_VALUE_TYPES:
                            try:
                                coerced = shortcut.coerce(value)
                            except Exception:  # noqa: BLE001 - execute_field below reports it where it belongs
                                coerced = None
                            if coerced is not None and coerced is not Undefined:
                                results[response_name] = coerced
                                continue
                        elif value is None and shortcut.nullable:
                            results[response_name] = None
                            continue
                    else:
                        value = shortcut.read(source_value, self.context_value)
                        if value is not NOT_LOADED:
                            result = self.complete_in_hand(
                                shortcut,
                                parent_type,
                                field_details_list,
                                Path(path, response_name, parent_type.name),
                                value,
                                position_context,
                            )
                            results[response_name] = result
                            if is_awaitable(result):
                                awaitable_fields.append(response_name)
                            continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                # Settle what other fields started, as graphql-core does: they may fail too.
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise

        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def complete_in_hand(
        self,
        shortcut: InHand,
        parent_type: GraphQLObjectType,
        field_details_list: Any,
        path: Path,
        value: Any,
        position_context: Any,
    ) -> Any:
        """The rest of graphql-core's ``execute_field`` for a value an in-hand field already has: its
        completion, and its errors handled by the field's nullability."""
        return_type = shortcut.field.type
        try:
            # An object needs no resolve info (see complete_value); a list's items may, for their errors.
            info = (
                None
                if shortcut.object_type is not None
                else self.build_resolve_info(
                    shortcut.field, [details.node for details in field_details_list], parent_type, path
                )
            )
            completed = self.complete_value(return_type, field_details_list, info, path, value, position_context)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._completed_later(completed, return_type, field_details_list, path)
        return completed

    async def _completed_later(
        self, completed: Awaitable[Any], return_type: Any, field_details_list: Any, path: Path
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
