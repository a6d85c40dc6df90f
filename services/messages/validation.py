"""Input rules of the messages context (CONTRACT §8.1 Message, §6.2 updateMessage, B2), as pure functions.

Body errors are raw (``{'body': [...]}``, the style ``updateMessage`` shows); the gateway maps the two a
socket can meet onto ``Message cannot be empty.`` and ``Message exceeds 500 characters.`` (C4).
"""

from __future__ import annotations

import uuid
from typing import Any

from common.errors import ValidationFailed
from services.messages.models import BODY_MAX_LENGTH

BLANK = "This field cannot be blank."
NULL_CHARACTERS = "Null characters are not allowed."
INVALID_VALUE = "Enter a valid value."
NOT_NEGATIVE = "Ensure this value is greater than or equal to 0."


def max_length(limit: int, length: int) -> str:
    return f"Ensure this value has at most {limit} characters (it has {length})."


def body_errors(value: Any) -> list[str]:
    """The messages a body fails with, in order; ``[]`` when it may be stored. ``None``, ``""`` and
    whitespace only are blank (C4); the length counts code points; text PostgreSQL cannot hold (a NUL
    character, a lone surrogate) is refused rather than left to fail in the database."""
    body = "" if value is None else value if isinstance(value, str) else str(value)
    if not body.strip():
        return [BLANK]
    if len(body) > BODY_MAX_LENGTH:
        return [max_length(BODY_MAX_LENGTH, len(body))]
    if "\x00" in body:
        return [NULL_CHARACTERS]
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return [INVALID_VALUE]
    return []


def check_body(value: Any) -> str:
    """The body to store, exactly as sent (not trimmed); else a raw ``ValidationFailed({"body": [...]})``."""
    errors = body_errors(value)
    if errors:
        raise ValidationFailed({"body": errors}, raw=True)
    return value if isinstance(value, str) else str(value)


def parse_uuid(value: Any) -> uuid.UUID | None:
    """A UUID from any form ``uuid.UUID`` accepts, or ``None`` (a malformed id is an unknown one)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _count(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an integer, not {type(value).__name__}")
    return value


def _not_negative(values: dict[str, int | None]) -> None:
    errors = {field: [NOT_NEGATIVE] for field, value in values.items() if value is not None and value < 0}
    if errors:
        raise ValidationFailed(errors)


def check_cap(cap: Any) -> int:
    """The list cap N the caller applies (B2); at least 1."""
    cap = _count("cap", cap)
    if cap is None or cap < 1:
        raise ValueError(f"cap must be a positive integer, not {cap!r}")
    return cap


def check_last(last: Any, cap: int) -> int:
    """``messages(last:)``: how many of the newest to return, clamped to ``cap`` (``None``: ``cap``).
    Negative: ``ValidationFailed({"last": ["Ensure this value is greater than or equal to 0."]})``."""
    last = _count("last", last)
    _not_negative({"last": last})
    return cap if last is None else min(last, cap)


def check_paging(first: Any, offset: Any, cap: int) -> tuple[int, int]:
    """``(limit, offset)``: ``first`` clamped to ``cap`` (``None`` means ``cap``), ``offset`` 0 when
    ``None``. Negative values: form ``ValidationFailed``, keys ``first`` then ``offset``."""
    first, offset = _count("first", first), _count("offset", offset)
    _not_negative({"first": first, "offset": offset})
    return (cap if first is None else min(first, cap)), offset or 0


def check_since(since_seq: Any) -> int:
    """A catch-up position (B7b): a non-negative sequence number."""
    since_seq = _count("since_seq", since_seq)
    if since_seq is None:
        raise TypeError("since_seq is required")
    _not_negative({"since_seq": since_seq})
    return since_seq
