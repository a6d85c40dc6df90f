"""What the users service hands its callers: JSON-able dicts, never rows or password hashes."""

from __future__ import annotations

from datetime import UTC
from typing import Any


def user(row: Any) -> dict[str, Any]:
    """The RPC shape of a user. ``email`` is as stored; ``date_joined`` is ISO 8601 in UTC and
    ``date_joined_ts`` the same instant in epoch seconds (the gateway compares it with a token's
    ``origIat``, CONTRACT §9.1)."""
    joined = row.date_joined.astimezone(UTC)
    return {
        "id": str(row.id),
        "username": row.username,
        "name": row.name,
        "bio": row.bio,
        "avatar": row.avatar,
        "email": row.email,
        "is_active": row.is_active,
        "is_staff": row.is_staff,
        "date_joined": joined.isoformat(),
        "date_joined_ts": joined.timestamp(),
    }
