"""The chat socket's wire format (CONTRACT §10.3, §10.4): client frames in, event and error frames out.

Frames are encoded like the reference implementation's ``json.dumps`` (``{"error": "…"}`` with its
spaces), keys in the contract's order, ``seq`` (B7a) last.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from gateway.chat.events import DELETE, NEW, UPDATE, ChatEvent, MessageRecord

TEXT = "text"
FRAME_TYPES = (TEXT, UPDATE, DELETE)
MAX_BODY_LENGTH = 500

# --- error frames (§10.4, exact strings) ----------------------------------------------------------

INVALID_FORMAT = "Invalid message format."
EMPTY = "Message cannot be empty."
TOO_LONG = "Message exceeds 500 characters."
NOT_FOUND = "Message not found."
NOT_YOUR_EDIT = "You can only edit your own messages."
NOT_YOUR_DELETE = "You can only delete your own messages."
RATE_LIMITED = "Rate limit exceeded."
SERVICE_UNAVAILABLE = "Service unavailable."
"""Not in the contract's list: the messages service did not answer in time (or the broker is away), so
the frame may not have been handled. Never silence: the sender learns it and may resend (the reference
web client shows nothing for it, as for every error frame)."""

# --- close codes (§10.4) ----------------------------------------------------------------------------

CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_USER_GONE = 4401
CLOSE_NOT_PARTICIPANT = 4403
CLOSE_ROOM_GONE = 4404

# The messages service's body errors (raw ``{"body": [...]}``, services/messages/validation.py) as the
# socket words them (C4); any other body error (a NUL character) is a malformed message.
SERVICE_BLANK = "This field cannot be blank."
SERVICE_TOO_LONG_PREFIX = "Ensure this value has at most"


class InvalidFrame(ValueError):
    """A client frame that C3 answers with ``Invalid message format.``."""


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A well-formed client frame: ``type``, the ``message`` (``None`` when missing or ``null``) and,
    for ``update``/``delete``, the canonical lowercase ``messageId`` (C5)."""

    type: str
    message: str | None = None
    message_id: str | None = None


def _is_text(value: str) -> bool:
    # JSON escapes can make lone surrogates, which are no text at all (and could not travel further).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_client_frame(text: str | None) -> ClientFrame:
    """Parse one client frame (``None`` for a binary frame); :class:`InvalidFrame` for everything C3
    lists. ``timestamp`` and unknown keys are ignored; a missing ``type`` means ``text``."""
    if text is None:
        raise InvalidFrame("binary frame")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidFrame("not JSON") from None
    if not isinstance(data, dict):
        raise InvalidFrame("not an object")
    kind = data.get("type", TEXT)
    if not isinstance(kind, str) or kind not in FRAME_TYPES:
        raise InvalidFrame("unknown type")
    message = data.get("message")
    if message is not None and not (isinstance(message, str) and _is_text(message)):
        raise InvalidFrame("message is not a string")
    if kind == TEXT:
        return ClientFrame(TEXT, message)
    raw_id = data.get("messageId")
    if not isinstance(raw_id, str):
        raise InvalidFrame("messageId missing")
    try:
        message_id = str(uuid.UUID(raw_id))
    except ValueError:
        raise InvalidFrame("messageId is not a UUID") from None
    return ClientFrame(kind, message, message_id)


def body_error(body: str | None) -> str | None:
    """The error frame text a ``text`` body gets (C4), ``None`` when it may be posted. Mirrors the
    messages service's rules, so a bad body costs no RPC."""
    if body is None or not body.strip():
        return EMPTY
    if len(body) > MAX_BODY_LENGTH:
        return TOO_LONG
    if "\x00" in body:
        return INVALID_FORMAT
    return None


def service_body_error(messages: Any) -> str:
    """The error frame text for the messages service's body errors (``exc_args[0]["body"]``)."""
    first = messages[0] if isinstance(messages, list) and messages else ""
    if first == SERVICE_BLANK:
        return EMPTY
    if isinstance(first, str) and first.startswith(SERVICE_TOO_LONG_PREFIX):
        return TOO_LONG
    return INVALID_FORMAT


# --- server frames ------------------------------------------------------------------------------------


def event_frame(event: ChatEvent, author: MessageRecord | None = None) -> dict[str, Any]:
    """The §10.4 frame of ``event`` plus ``seq`` (B7a); ``new`` needs the author's user record."""
    if event.action == DELETE:
        return {"type": "chat_message", "action": DELETE, "id": event.message_id, "seq": event.seq}
    message = event.message
    assert message is not None
    if event.action == UPDATE:
        return {
            "type": "chat_message",
            "action": UPDATE,
            "id": event.message_id,
            "body": message["body"],
            "edited": message["edited"],
            "updated": message["updated"],
            "seq": event.seq,
        }
    assert event.action == NEW and author is not None
    return {
        "type": "chat_message",
        "action": NEW,
        "id": event.message_id,
        "user": author["username"],
        "user_id": str(author["id"]),
        "body": message["body"],
        "created": message["created"],
        "edited": message["edited"],
        "updated": message["updated"],
        "userAvatar": author.get("avatar") or None,  # "" in GraphQL, null in frames (§13)
        "seq": event.seq,
    }


def encode(frame: dict[str, Any]) -> str:
    """A frame as the socket sends it."""
    return json.dumps(frame)


def error_frame(text: str) -> str:
    """``{"error": "<text>"}``, to the sender only."""
    return json.dumps({"error": text})
