"""The GraphQL schema, composed from per-domain root types.

Each domain (``gateway/<domain>/queries.py``, ``mutations.py``, later ``subscriptions.py``) defines a
``@strawberry.type`` with its root fields; add it to :data:`QUERY_TYPES`, :data:`MUTATION_TYPES` or
:data:`SUBSCRIPTION_TYPES` below. Every Query and Mutation root field gets the §4.2 credential check
automatically (except the exempt auth fields), so root resolvers must be ``async``.
"""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gateway.auth.credentials import protect_root_fields
from gateway.chat.subscriptions import ChatSubscription
from gateway.graphql.compat import LegacyWording
from gateway.graphql.errors import ErrorCodes
from gateway.graphql.execution import GatewayExecutor, shortcut_fields
from gateway.graphql.limits import limit_extensions
from gateway.graphql.parsing import CachedParser, CachedValidation, ValidationResults
from gateway.graphql.scalars import SCALAR_MAP
from gateway.messages.mutations import MessagesMutation
from gateway.messages.queries import MessagesQuery
from gateway.rooms.mutations import RoomsMutation
from gateway.rooms.queries import RoomsQuery
from gateway.settings import Settings
from gateway.users.mutations import UsersMutation
from gateway.users.queries import UsersQuery

log = logging.getLogger("gateway.graphql")

QUERY_TYPES: tuple[type, ...] = (UsersQuery, RoomsQuery, MessagesQuery)
MUTATION_TYPES: tuple[type, ...] = (UsersMutation, RoomsMutation, MessagesMutation)
SUBSCRIPTION_TYPES: tuple[type, ...] = (ChatSubscription,)


class GatewaySchema(strawberry.Schema):
    """A strawberry schema that leaves error logging to :mod:`gateway.graphql.errors`: expected errors
    (bad input, domain errors) are not worth a traceback, unexpected ones are logged when masked."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log each error at debug level only."""
        for error in errors:
            log.debug("graphql error: %s", error.message)


def _merge(name: str, types: tuple[type, ...]) -> type:
    # A fresh class per schema (also for one domain), so the domains' own types stay untouched.
    return merge_types(name, types)


def build_schema(settings: Settings) -> GatewaySchema:
    """The schema with D5/D6 limits, error codes and caches configured from ``settings``."""
    query = protect_root_fields(_merge("Query", QUERY_TYPES))
    mutation = protect_root_fields(_merge("Mutation", MUTATION_TYPES)) if MUTATION_TYPES else None
    subscription = _merge("Subscription", SUBSCRIPTION_TYPES) if SUBSCRIPTION_TYPES else None
    validation_results = ValidationResults()  # this schema's: its limits are part of what is cached
    extensions: list[Any] = [
        *limit_extensions(
            max_depth=settings.max_depth,
            max_fields=settings.max_fields,
            max_root_fields=settings.max_root_fields,
            max_document_bytes=settings.max_document_bytes,
            introspection=settings.introspection,
        ),
        LegacyWording,
        CachedParser,
        lambda: CachedValidation(validation_results),
        ErrorCodes,
    ]
    schema = GatewaySchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        extensions=extensions,
        execution_context_class=GatewayExecutor,
        config=StrawberryConfig(
            scalar_map=SCALAR_MAP,
            # Suggestions reveal field names; keep them only where introspection is allowed anyway.
            disable_field_suggestions=not settings.introspection,
        ),
    )
    shortcut_fields(schema._schema)  # worked out once, here, so a misdeclared in_hand field fails at start
    return schema
