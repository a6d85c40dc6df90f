"""Input rules of the messages context (CONTRACT §8.1 Message, §6.2 updateMessage, B2), as pure functions.

Body errors are raw (``{'body': [...]}``, the style ``updateMessage`` shows); the gateway maps the two a
socket can meet onto ``Message cannot be empty.`` and ``Message exceeds 500 characters.`` (C4). Ids and
paging arguments are checked by :mod:`common.validation` (``parse_uuid``, ``check_paging``).
"""

from __future__ import annotations

from typing import Any

from common.errors import ValidationFailed
from common.validation import BLANK, as_text, check_not_negative, text_errors
from services.messages.models import BODY_MAX_LENGTH


def body_errors(value: Any) -> list[str]:
    """The message a body fails with, as a list; ``[]`` when it may be stored. ``None``, ``""`` and
    whitespace only are blank (C4); otherwise the first of the text checks that fails (the length, in
    code points, then text PostgreSQL cannot hold: a NUL character, a lone surrogate), which is refused
    rather than left to fail in the database. One message only: a socket shows one (C4)."""
    body = as_text(value)
    if not body.strip():
        return [BLANK]
    return text_errors(body, BODY_MAX_LENGTH)[:1]


def check_body(value: Any) -> str:
    """The body to store, exactly as sent (not trimmed); else a raw ``ValidationFailed({"body": [...]})``."""
    errors = body_errors(value)
    if errors:
        raise ValidationFailed({"body": errors}, raw=True)
    return as_text(value)


def check_cap(cap: Any) -> int:
    """The list cap N the caller applies (B2); at least 1. Not an integer: ``TypeError``; ``None`` or
    below 1: ``ValueError`` (both the caller's bug, never the client's)."""
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int)):
        raise TypeError(f"cap must be an integer, not {type(cap).__name__}")
    if cap is None or cap < 1:
        raise ValueError(f"cap must be a positive integer, not {cap!r}")
    return cap


def check_last(last: Any, cap: int) -> int:
    """``messages(last:)``: how many of the newest to return, clamped to ``cap`` (``None``: ``cap``).
    Negative: ``ValidationFailed({"last": ["Ensure this value is greater than or equal to 0."]})``."""
    check_not_negative(last=last)
    return cap if last is None else min(last, cap)


def check_since(since_seq: Any) -> int:
    """A catch-up position (B7b): a non-negative sequence number."""
    if since_seq is None:
        raise TypeError("since_seq is required")
    check_not_negative(since_seq=since_seq)
    return since_seq
