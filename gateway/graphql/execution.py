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
value goes straight to its fields (:meth:`GatewayExecutor.complete_value`), and an object whose selected
fields are all plain leaves is answered once per execution: a list's users and topics are the same few
objects in many rows (:func:`~gateway.graphql.loading.made_once`). Schema extensions that wrap every
resolver (``SchemaExtension.resolve``) turn the shortcuts off, so they keep seeing every field.
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

Step = tuple[str, Any, str | None, Callable[[Any], Any] | None, bool, InHand | None]
"""One field of a selection: response name, field details, then a plain leaf's attribute, coercion and
nullability, or an in-hand field (all ``None``: the regular path)."""


class Plan(NamedTuple):
    """How :meth:`GatewayExecutor.execute_fields` answers one selection on one object type."""

    grouped_field_set: Any
    parent_type: GraphQLObjectType
    steps: list[Step] | None
    """One per field; ``None`` when no field of the type has a shortcut."""
    completed: dict[int, tuple[Any, dict[str, Any]]] | None
    """When every field is a plain leaf: the answers so far, by source object (``id``)."""


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
        self._plans: dict[int, Plan] = {}

    def build_per_event_executor(self, payload: Any) -> Any:
        """graphql-core's copy for one subscription event, with answers of its own (a copy shares them)."""
        executor = super().build_per_event_executor(payload)
        executor._plans = {}
        return executor

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
        other field goes through ``execute_field``. An object whose selected fields are all plain leaves
        is completed once per execution: the same user in a hundred rows gets the same answer."""
        plan = self.plan(parent_type, grouped_field_set)
        if plan.steps is None:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        completed = plan.completed
        if completed is not None:
            known = completed.get(id(source_value))
            if known is not None and known[0] is source_value:
                return known[1]
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        regular = False
        try:
            for response_name, field_details_list, attribute, coerce, nullable, hand in plan.steps:
                if attribute is not None:
                    value = getattr(source_value, attribute, _MISSING)
                    if value.__class__ in PLAIN_VALUE_TYPES:
                        try:
                            coerced = coerce(value)
                        except Exception:  # noqa: BLE001 - execute_field below reports it where it belongs
                            coerced = None
                        if coerced is not None and coerced is not Undefined:
                            results[response_name] = coerced
                            continue
                    elif value is None and nullable:
                        results[response_name] = None
                        continue
                elif hand is not None:
                    try:
                        value = hand.read(source_value, self.context_value)
                    except Exception:  # noqa: BLE001 - the resolver below runs instead, and reports its own
                        value = NOT_LOADED
                    if value is not NOT_LOADED:
                        result = self.complete_in_hand(
                            hand,
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
                regular = True
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
            if completed is not None and not regular:
                # The source kept with its answer, so its id cannot be reused while the answer is.
                completed[id(source_value)] = (source_value, results)
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

    def plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan:
        """How to answer the fields of ``grouped_field_set`` on ``parent_type``, worked out once per
        selection: graphql-core collects a selection once per execution (the same grouped field set for
        every row of a list)."""
        known = self._plans.get(id(grouped_field_set))
        if known is not None and known.grouped_field_set is grouped_field_set and known.parent_type is parent_type:
            return known
        shortcuts = self.shortcuts.get(parent_type.name)
        steps: list[Step] | None = None
        if shortcuts is not None:
            steps = []
            for response_name, field_details_list in grouped_field_set.items():
                shortcut = shortcuts.get(field_details_list[0].node.name.value)
                if shortcut.__class__ is PlainLeaf:
                    steps.append((response_name, field_details_list, *shortcut, None))
                else:
                    steps.append((response_name, field_details_list, None, None, False, shortcut))
        all_plain = steps is not None and all(step[2] is not None for step in steps)
        # The set is kept in its plan, so its id cannot be reused while the plan is.
        plan = Plan(grouped_field_set, parent_type, steps, {} if all_plain else None)
        self._plans[id(grouped_field_set)] = plan
        return plan

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
