"""Mutation fields of the messages domain: ``updateMessage`` and ``deleteMessage`` (§6.2, A12, C6, C7).

Each checks the login first (§4.1), then lets the messages service decide, in this order: ``Message not
found`` (``NOT_FOUND``), ``Permission denied`` unless the caller wrote it (``PERMISSION_DENIED``;
participation is not required, A12), then the body's raw errors (``BAD_USER_INPUT``). The service emits
the ``message_updated`` / ``message_deleted`` event the sockets and subscriptions relay (C7).
"""

from __future__ import annotations

import uuid

import strawberry
from strawberry.types import Info

from gateway.graphql.context import GraphQLContext
from gateway.messages import loaders
from gateway.messages.types import (
    DeleteMessage,
    MessageType,
    UpdateMessage,
    message_not_found,
)

Context = Info[GraphQLContext, None]


@strawberry.type
class MessagesMutation:
    """Root mutation fields about messages."""

    @strawberry.mutation(description="Change the body of one's own message; login required, author only.")
    async def update_message(self, info: Context, body: str, message_id: uuid.UUID) -> UpdateMessage | None:
        """Raw errors ``{'body': ['This field cannot be blank.']}`` (empty or whitespace only) and
        ``{'body': ['Ensure this value has at most 500 characters (it has N).']}``. A changed body is
        stored with ``edited`` true and ``updated`` bumped; an identical one writes nothing (C6). Either
        way an ``update`` event is broadcast (C7) and the message returned."""
        context = info.context
        user = await context.require_user()
        record = await context.call("messages", "edit_message", str(message_id), str(user["id"]), body)
        needs = loaders.room_needs(loaders.children(loaders.subfields(info.selected_fields), "message"))
        ready = await loaders.prepare_messages(context, [record], needs)
        if not ready:  # its room is being deleted (a cascade in flight): never a dangling room
            raise message_not_found()
        return UpdateMessage(message=MessageType.from_record(ready[0]))

    @strawberry.mutation(description="Delete one's own message; login required, author only.")
    async def delete_message(self, info: Context, message_id: uuid.UUID) -> DeleteMessage | None:
        """Deletes the message and broadcasts a ``delete`` event (C7). Returns ``{success: true}``."""
        context = info.context
        user = await context.require_user()
        await context.call("messages", "delete_message", str(message_id), str(user["id"]))
        return DeleteMessage(success=True)
